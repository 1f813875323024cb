// Messages as received, kept column by column until their batch is written: what a batch is
// rebuilt from when it must be split (a poison message), and what its PUBACKs are sent from.

export class RawBatch {
  readonly topics: string[] = [];
  readonly payloads: Buffer[] = [];
  /** Receive time, ms since the epoch. */
  readonly ats: number[] = [];
  /** False for a retained message the broker replayed at subscription (not news from the device). */
  readonly live: boolean[] = [];
  /** QoS 1 packet ID to acknowledge once committed (0 for QoS 0). */
  readonly ackIds: number[] = [];
  /** Which MQTT connection it came on: a PUBACK is only valid on that one. */
  readonly ackConns: number[] = [];
  /** The broker's DUP flag: it sent this message before (bridge/redelivery.ts). */
  readonly dups: boolean[] = [];
  /** Some message has DUP set: the batch is checked against what was committed. */
  hasDup = false;

  constructor(readonly seq: number) {}

  get size(): number {
    return this.topics.length;
  }

  push(topic: string, payload: Buffer, at: number, live: boolean, ackId: number, conn: number, dup = false): void {
    this.topics.push(topic);
    this.payloads.push(payload);
    this.ats.push(at);
    this.live.push(live);
    this.ackIds.push(ackId);
    this.ackConns.push(conn);
    this.dups.push(dup);
    if (dup) this.hasDup = true;
  }

  /** Messages [from, to) as a batch of their own (same seq). */
  slice(from: number, to: number): RawBatch {
    const b = new RawBatch(this.seq);
    for (let i = from; i < to; i++) b.push(this.topics[i]!, this.payloads[i]!, this.ats[i]!, this.live[i]!, this.ackIds[i]!, this.ackConns[i]!, this.dups[i]!);
    return b;
  }
}
