// The one place where device traffic becomes Temporal signals. High-volume traffic never goes
// through Temporal (design/architecture.md): only events a workflow waits for (a set
// confirmation, a pairing confirmation, OTA progress) are routed here, after the batch that holds
// them is committed, so a workflow never hears of something Postgres does not have.
//
// Extension point: add a route to SIGNAL_ROUTES (or pass `routes`) when a workflow starts waiting
// on a device event. The bridge builds events only of the types some route wants. A route names
// the event type it wants and maps an event to (workflow ID, signal name, args), or to null when
// the event is not for any workflow; `onlyStatus` keeps it to devices whose Postgres status is one
// of those (one lookup per dispatch), so that an event every connection makes does not become a
// signal every connection.
import type { Client } from '@temporalio/client';
import type { DeviceState } from '../domain/homie';
import type { DeviceStatus } from '../domain/device-status';
import { deviceAnswerSignal, deviceConnectedSignal, deviceWorkflowId, otaReportSignal, pairingWorkflowId } from '../domain/messages';
import type { OtaReportMessage } from '../domain/ota';
import type { Logger } from '../runtime/logger';

export type DeviceEvent =
  | { type: 'value'; deviceId: string; node: string; property: string; payload: string; at: number }
  | { type: 'state'; deviceId: string; state: DeviceState; at: number }
  | { type: 'config-reported'; deviceId: string; version: number; at: number }
  | { type: 'command-result'; deviceId: string; requestId: string; ok: boolean; at: number }
  | { type: 'pairing-response'; deviceId: string; pairingId: string; accept: boolean; at: number }
  | { type: 'ota-report'; deviceId: string; report: OtaReportMessage; at: number };
export type DeviceEventType = DeviceEvent['type'];

export interface SignalTarget {
  workflowId: string;
  signal: string;
  args: unknown[];
}

export interface SignalRouteOf<T extends DeviceEventType> {
  /** What it is for, for logs and docs. */
  name: string;
  event: T;
  /** Only for devices with one of these statuses in Postgres. */
  onlyStatus?: readonly DeviceStatus[];
  toSignal(event: Extract<DeviceEvent, { type: T }>): SignalTarget | null;
}
/** A route for any one event type. */
export type SignalRoute = { [T in DeviceEventType]: SignalRouteOf<T> }[DeviceEventType];

/** The device's answer to a pairing request goes to its pairing workflow (which ignores an answer to another attempt). */
const pairingResponseRoute: SignalRouteOf<'pairing-response'> = {
  name: 'pairing-response',
  event: 'pairing-response',
  toSignal: (e) => ({ workflowId: pairingWorkflowId(e.deviceId), signal: deviceAnswerSignal.name, args: [{ pairingId: e.pairingId, accept: e.accept }] }),
};

/** Each step a device reports of an update goes to its lifecycle workflow, which runs the update (and ignores a report of another one). */
const otaReportRoute: SignalRouteOf<'ota-report'> = {
  name: 'ota-report',
  event: 'ota-report',
  toSignal: (e) => ({ workflowId: deviceWorkflowId(e.deviceId), signal: otaReportSignal.name, args: [{ ...e.report, at: e.at }] }),
};

/** The routing table: add an entry when a workflow starts waiting on a device event. */
export const SIGNAL_ROUTES: readonly SignalRoute[] = [
  pairingResponseRoute,
  otaReportRoute,
  {
    // A device announcing itself has logged in to the broker: a `manufactured` one's lifecycle
    // decides whether that makes it `free` (the bridge only reports).
    name: 'first-connection',
    event: 'state',
    onlyStatus: ['manufactured'],
    toSignal: (e) => (e.state === 'init' || e.state === 'ready' ? { workflowId: deviceWorkflowId(e.deviceId), signal: deviceConnectedSignal.name, args: [{ at: e.at }] } : null),
  },
];

/** Reads devices' statuses (for routes with `onlyStatus`). */
export type StatusLookup = (deviceIds: string[]) => Promise<Map<string, string>>;

/** Sends one signal. The bridge's is Temporal's; tests pass their own. */
export type Signaller = (workflowId: string, signalName: string, args: unknown[]) => Promise<void>;

/** A Signaller on a Temporal client: `client.workflow.getHandle(id).signal(name, ...args)`. */
export function temporalSignaller(client: Client): Signaller {
  return async (workflowId, signalName, args) => {
    await client.workflow.getHandle(workflowId).signal(signalName, ...args);
  };
}

/** Every signal the routes make of these events, in event order (`statuses`: for routes with `onlyStatus`). */
export function routeEvents(events: readonly DeviceEvent[], routes: readonly SignalRoute[], statuses?: ReadonlyMap<string, string>): SignalTarget[] {
  const out: SignalTarget[] = [];
  for (const e of events) {
    for (const r of routes) {
      if (r.event !== e.type) continue;
      if (r.onlyStatus && !r.onlyStatus.includes(statuses?.get(e.deviceId) as DeviceStatus)) continue;
      const t = (r.toSignal as (ev: DeviceEvent) => SignalTarget | null)(e);
      if (t) out.push(t);
    }
  }
  return out;
}

export interface WorkflowEvents {
  /** Event types some route wants: the bridge builds events of these types only. */
  readonly wants: ReadonlySet<DeviceEventType>;
  /** Routes and sends; never throws (a failed signal is logged and counted). */
  dispatch(events: readonly DeviceEvent[]): Promise<void>;
}

export function createWorkflowEvents(o: {
  signaller?: Signaller;
  routes?: readonly SignalRoute[];
  /** Needed by routes with `onlyStatus` (without it they send nothing). */
  statusOf?: StatusLookup;
  log: Logger;
  onResult?: (result: 'sent' | 'not_found' | 'failed') => void;
  retries?: number;
}): WorkflowEvents {
  const routes = o.signaller ? (o.routes ?? SIGNAL_ROUTES) : [];
  const wants = new Set(routes.map((r) => r.event));
  const retries = o.retries ?? 3;

  async function send(t: SignalTarget): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await o.signaller!(t.workflowId, t.signal, t.args);
        o.onResult?.('sent');
        return;
      } catch (err) {
        const e = err as Error;
        // The workflow is gone (finished, never started): nobody waits, nothing to retry.
        if (e.name === 'WorkflowNotFoundError') {
          o.log.debug({ workflowId: t.workflowId, signal: t.signal }, 'no workflow for a device event');
          o.onResult?.('not_found');
          return;
        }
        if (attempt >= retries) {
          o.log.warn({ workflowId: t.workflowId, signal: t.signal, err: e.message }, 'could not signal a workflow');
          o.onResult?.('failed');
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  return {
    wants,
    async dispatch(events) {
      if (wants.size === 0 || events.length === 0) return;
      let statuses: Map<string, string> | undefined;
      const filtered = new Set(routes.filter((r) => r.onlyStatus).map((r) => r.event));
      if (filtered.size > 0 && o.statusOf) {
        const ids = [...new Set(events.filter((e) => filtered.has(e.type)).map((e) => e.deviceId))];
        try {
          statuses = ids.length > 0 ? await o.statusOf(ids) : new Map();
        } catch (err) {
          o.log.warn({ err: (err as Error).message }, 'could not read device statuses for device events');
        }
      }
      const targets = routeEvents(events, routes, statuses);
      // In order per workflow (a progress sequence must not be reordered), workflows in parallel.
      const byWorkflow = new Map<string, SignalTarget[]>();
      for (const t of targets) {
        const list = byWorkflow.get(t.workflowId);
        if (list) list.push(t);
        else byWorkflow.set(t.workflowId, [t]);
      }
      await Promise.all(
        [...byWorkflow.values()].map(async (list) => {
          for (const t of list) await send(t);
        }),
      );
    },
  };
}
