import pino from 'pino';
import { createWorkflowEvents, routeEvents, SIGNAL_ROUTES, type DeviceEvent, type SignalRouteOf } from './workflow-events';

const log = pino({ level: 'silent' });

// A route as a later issue would add one (OTA progress → the device's update workflow).
const otaProgress: SignalRouteOf<'value'> = {
  name: 'ota-progress',
  event: 'value',
  toSignal: (e) => (e.node === 'ota' && e.property === 'progress' ? { workflowId: `update-${e.deviceId}`, signal: 'otaProgress', args: [Number(e.payload)] } : null),
};
const commandDone: SignalRouteOf<'command-result'> = {
  name: 'command-done',
  event: 'command-result',
  toSignal: (e) => ({ workflowId: `cmd-${e.requestId}`, signal: 'commandResult', args: [{ ok: e.ok }] }),
};

const events: DeviceEvent[] = [
  { type: 'value', deviceId: 'D1', node: 'env', property: 'temperature', payload: '20', at: 1 },
  { type: 'value', deviceId: 'D1', node: 'ota', property: 'progress', payload: '10', at: 2 },
  { type: 'command-result', deviceId: 'D1', requestId: 'r1', ok: true, at: 3 },
  { type: 'value', deviceId: 'D1', node: 'ota', property: 'progress', payload: '20', at: 4 },
  { type: 'state', deviceId: 'D1', state: 'ready', at: 5 },
];

describe('workflow events', () => {
  it('reports a connection of a manufactured device to its lifecycle, and of no other', async () => {
    expect(createWorkflowEvents({ signaller: async () => undefined, log }).wants).toEqual(new Set(['pairing-response', 'ota-report', 'state']));
    const sent: unknown[][] = [];
    const asked: string[][] = [];
    const w = createWorkflowEvents({
      signaller: async (...a) => void sent.push(a),
      statusOf: async (ids) => (asked.push(ids), new Map([['D1', 'manufactured'], ['D2', 'free']])),
      log,
    });
    await w.dispatch([
      { type: 'state', deviceId: 'D1', state: 'init', at: 1 },
      { type: 'state', deviceId: 'D2', state: 'init', at: 2 },
      { type: 'state', deviceId: 'D1', state: 'lost', at: 3 },
    ]);
    expect(asked).toEqual([['D1', 'D2']]);
    expect(sent).toEqual([['device-D1', 'deviceConnected', [{ at: 1 }]]]);
    expect(SIGNAL_ROUTES.map((r) => r.name)).toEqual(['pairing-response', 'ota-report', 'first-connection']);
  });

  it("routes a device's pairing answer to its pairing workflow, and builds no other events", () => {
    const answer: DeviceEvent = { type: 'pairing-response', deviceId: 'ABCDEFGHJKMN', pairingId: 'P1', accept: true, at: 6 };
    expect(routeEvents([...events, answer], SIGNAL_ROUTES)).toEqual([
      { workflowId: 'pairing-ABCDEFGHJKMN', signal: 'deviceAnswer', args: [{ pairingId: 'P1', accept: true }] },
    ]);
  });

  it("routes a device's OTA report to its lifecycle workflow, which runs its update", () => {
    const report: DeviceEvent = { type: 'ota-report', deviceId: 'ABCDEFGHJKMN', report: { updateId: 'U1', state: 'failed', error: 'sha256-mismatch' }, at: 7 };
    expect(routeEvents([...events, report], SIGNAL_ROUTES)).toEqual([
      { workflowId: 'device-ABCDEFGHJKMN', signal: 'otaReport', args: [{ updateId: 'U1', state: 'failed', error: 'sha256-mismatch', at: 7 }] },
    ]);
  });

  it('routes only the events a route matches, in order', () => {
    expect(routeEvents(events, [otaProgress, commandDone])).toEqual([
      { workflowId: 'update-D1', signal: 'otaProgress', args: [10] },
      { workflowId: 'cmd-r1', signal: 'commandResult', args: [{ ok: true }] },
      { workflowId: 'update-D1', signal: 'otaProgress', args: [20] },
    ]);
  });

  it('signals through the injected signaller, in order per workflow, and survives failures', async () => {
    const sent: string[] = [];
    const results: string[] = [];
    let failOnce = true;
    const we = createWorkflowEvents({
      routes: [otaProgress, commandDone],
      log,
      retries: 2,
      onResult: (r) => results.push(r),
      signaller: async (id, name, args) => {
        if (id === 'cmd-r1') {
          const e = new Error('gone');
          e.name = 'WorkflowNotFoundError';
          throw e;
        }
        if (failOnce) {
          failOnce = false;
          throw new Error('unavailable');
        }
        sent.push(`${id}:${name}:${JSON.stringify(args)}`);
      },
    });
    expect([...we.wants].sort()).toEqual(['command-result', 'value']);
    await we.dispatch(events);
    expect(sent).toEqual(['update-D1:otaProgress:[10]', 'update-D1:otaProgress:[20]']);
    expect(results.sort()).toEqual(['not_found', 'sent', 'sent']);
  });

  it('without a signaller wants nothing and sends nothing', async () => {
    const we = createWorkflowEvents({ routes: [otaProgress], log });
    expect(we.wants.size).toBe(0);
    await expect(we.dispatch(events)).resolves.toBeUndefined();
  });
});
