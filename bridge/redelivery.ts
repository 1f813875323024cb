// The redelivery guard: a batch can commit while its PUBACKs have not reached the broker (acks go
// out after the commit, in batch order); if the bridge or its connection dies then, the broker
// sends those messages again, with DUP set and the same packet IDs, to the same session. Each
// batch therefore records, in its own transaction, the packet IDs it committed for this client
// ID with a digest of topic and payload (bridge_committed_packets). A DUP message whose packet
// ID is recorded with the same digest was stored already: it is acknowledged, not stored.
//
// - The digest matters: the broker reuses a packet ID once it has our PUBACK, so after 65,535
//   messages every ID has a record of some earlier message. A redelivered message that was never
//   committed finds that older record; only a digest mismatch tells them apart. (What it cannot
//   tell apart: the same topic and payload as the message that last had this ID; that one is
//   taken as a duplicate. docs/chaos.md.)
// - Only DUP messages are looked up (rare: after a reconnect), once per batch; and the pipeline
//   writes such a batch only when every earlier one has finished, so a first delivery still in
//   an earlier batch is committed and recorded before the check. A first delivery in the same
//   batch is found in the batch itself.
import type { Sql } from '../db/repositories/sql';
import { findCommittedPackets } from '../db/repositories/telemetry';
import { RawBatch } from './raw-batch';

/**
 * A 32-bit signed digest of a message's topic and payload (what the int column holds): FNV-1a,
 * computed for every QoS 1 message, so cheap (md5 through node:crypto cost ~20 times more).
 */
export function messageDigest(topic: string, payload: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193); // separator: ("a/b", "c") differs from ("a/", "bc")
  for (let i = 0; i < payload.length; i++) h = Math.imul(h ^ payload[i]!, 0x01000193);
  return h | 0;
}

export interface CommittedPackets {
  packetIds: number[];
  digests: number[];
}

/** The packet IDs (QoS 1 only) a batch commits, each once (the last message with that ID wins). */
export function committedPackets(raw: RawBatch): CommittedPackets {
  const at = new Map<number, number>();
  for (let i = 0; i < raw.size; i++) if (raw.ackIds[i]! > 0) at.set(raw.ackIds[i]!, i);
  const out: CommittedPackets = { packetIds: [], digests: [] };
  for (const [id, i] of at) {
    out.packetIds.push(id);
    out.digests.push(messageDigest(raw.topics[i]!, raw.payloads[i]!));
  }
  return out;
}

/**
 * The batch without the redelivered messages already stored (same seq; their PUBACKs still go
 * out from the original batch), and how many were left out. Without DUP messages: `raw` itself.
 */
export async function withoutRedelivered(sql: Sql, clientId: string, raw: RawBatch): Promise<{ batch: RawBatch; skipped: number }> {
  if (!raw.hasDup) return { batch: raw, skipped: 0 };
  const dupIds: number[] = [];
  for (let i = 0; i < raw.size; i++) if (raw.dups[i] && raw.ackIds[i]! > 0) dupIds.push(raw.ackIds[i]!);
  const committed = await findCommittedPackets(sql, clientId, dupIds);
  const inBatch = new Map<number, number>(); // packet ID → digest, for messages kept so far
  const batch = new RawBatch(raw.seq);
  let skipped = 0;
  for (let i = 0; i < raw.size; i++) {
    const id = raw.ackIds[i]!;
    const digest = id > 0 ? messageDigest(raw.topics[i]!, raw.payloads[i]!) : 0;
    if (id > 0 && raw.dups[i]) {
      const seen = inBatch.get(id) ?? committed.get(id);
      if (seen === digest) {
        skipped++;
        continue;
      }
    }
    if (id > 0) inBatch.set(id, digest);
    batch.push(raw.topics[i]!, raw.payloads[i]!, raw.ats[i]!, raw.live[i]!, id, raw.ackConns[i]!, raw.dups[i]!);
  }
  return { batch, skipped };
}
