// runtime/metrics.ts (the Prometheus text format) and the bridge's metric set.
import { Registry, serveMetrics } from '../runtime/metrics';
import { classifyFailure } from './writer';
import { createBridgeMetrics } from './metrics';

describe('metrics registry', () => {
  it('renders counters, gauges and histograms in the Prometheus text format', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'Things\nthat happened', ['kind']);
    c.inc({ kind: 'a' });
    c.labels({ kind: 'b "quoted"\\' }).inc(2);
    r.gauge('depth', 'Queue depth').collect((g) => g.set(7));
    const h = r.histogram('lat_seconds', 'Latency', [], [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(r.render()).toBe(
      [
        '# HELP x_total Things\\nthat happened',
        '# TYPE x_total counter',
        'x_total{kind="a"} 1',
        'x_total{kind="b \\"quoted\\"\\\\"} 2',
        '# HELP depth Queue depth',
        '# TYPE depth gauge',
        'depth 7',
        '# HELP lat_seconds Latency',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.1"} 1',
        'lat_seconds_bucket{le="1"} 2',
        'lat_seconds_bucket{le="+Inf"} 3',
        'lat_seconds_sum 5.55',
        'lat_seconds_count 3',
        '',
      ].join('\n'),
    );
    expect(c.get({ kind: 'a' })).toBe(1);
  });

  it('refuses bad names, missing labels and counters going down', () => {
    const r = new Registry();
    expect(() => r.counter('bad-name', 'x')).toThrow();
    const c = r.counter('ok_total', 'x', ['a']);
    expect(() => c.inc({})).toThrow(/label a/);
    expect(() => c.inc({ a: 1 }, -1)).toThrow();
    expect(r.counter('ok_total', 'x', ['a'])).toBe(c);
    expect(() => r.gauge('ok_total', 'x')).toThrow(/already registered/);
  });

  it('serves /metrics and /healthz', async () => {
    const r = new Registry();
    const m = createBridgeMetrics(r);
    m.dropped.unknown_device.inc(3);
    let ok = true;
    const server = await serveMetrics(r, { port: 0, host: '127.0.0.1', health: () => ({ ok }) });
    try {
      const res = await fetch(`${server.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      const body = await res.text();
      expect(body).toContain('rdm_bridge_messages_dropped_total{reason="unknown_device"} 3');
      expect(body).toContain('# TYPE rdm_bridge_batch_seconds histogram');
      expect(body).toContain('rdm_alerts_raised_total{source="rule"} 0');
      expect(body).toContain('rdm_devices_online 0');
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      ok = false;
      expect((await fetch(`${server.url}/healthz`)).status).toBe(503);
      expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('batch failure classification', () => {
  it.each([
    [{ code: '40P01' }, 'transient'], // deadlock
    [{ code: '57P01' }, 'transient'], // admin shutdown
    [{ code: '08006' }, 'transient'],
    [{ code: 'ECONNREFUSED' }, 'transient'],
    [new Error('Connection terminated unexpectedly'), 'transient'],
    [{ code: '23503' }, 'missing-reference'],
    [{ code: '22P02' }, 'poison'], // invalid text representation
    [{ code: '23505' }, 'poison'],
    [{ code: '42601' }, 'bug'], // a syntax error: no retry fixes it, and no split either
    [new TypeError('x is not a function'), 'bug'],
  ])('%o is %s', (err, kind) => {
    expect(classifyFailure(err)).toBe(kind);
  });
});
