// Prometheus metrics without a dependency: counters, gauges and histograms with labels, the
// text exposition format (0.0.4) and an HTTP handler. Hot paths keep a labelled child
// (`counter.labels({ reason: 'x' })`) and call `inc()` on it: no map lookup per event.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type Labels = Record<string, string | number>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}
function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

abstract class Metric<Child> {
  protected readonly children = new Map<string, { values: string[]; child: Child }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not valid`);
    for (const l of labelNames) if (!LABEL.test(l) || l === 'le') throw new Error(`label name ${JSON.stringify(l)} is not valid`);
  }
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract create(): Child;

  /** The series for these label values (created on first use, then cached: keep it on a hot path). */
  labels(labels: Labels = {}): Child {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`${this.name}: label ${n} is missing`);
      return String(v);
    });
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) {
      entry = { values, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  abstract renderSeries(out: string[]): void;

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    this.renderSeries(out);
  }
}

export class CounterChild {
  value = 0;
  inc(n = 1): void {
    if (n < 0) throw new Error('a counter only goes up');
    this.value += n;
  }
}

export class Counter extends Metric<CounterChild> {
  readonly type = 'counter' as const;
  protected create() {
    return new CounterChild();
  }
  inc(labels?: Labels, n = 1): void {
    this.labels(labels).inc(n);
  }
  /** The current value of one series (0 when it was never incremented). */
  get(labels: Labels = {}): number {
    return this.children.get(this.labelNames.map((n) => String(labels[n])).join('\u0000'))?.child.value ?? 0;
  }
  renderSeries(out: string[]): void {
    if (this.children.size === 0 && this.labelNames.length === 0) this.labels();
    for (const { values, child } of this.children.values()) out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(child.value)}`);
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export class Gauge extends Metric<GaugeChild> {
  readonly type = 'gauge' as const;
  private collectFn: (() => void) | null = null;
  protected create() {
    return new GaugeChild();
  }
  set(v: number, labels?: Labels): void {
    this.labels(labels).set(v);
  }
  get(labels: Labels = {}): number {
    this.collectFn?.();
    return this.children.get(this.labelNames.map((n) => String(labels[n])).join('\u0000'))?.child.value ?? 0;
  }
  /** Computes the value when scraped (e.g. a buffer's current length); replaces any earlier one. */
  collect(fn: (g: Gauge) => void): this {
    this.collectFn = () => fn(this);
    return this;
  }
  renderSeries(out: string[]): void {
    this.collectFn?.();
    if (this.children.size === 0 && this.labelNames.length === 0) this.labels();
    for (const { values, child } of this.children.values()) out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(child.value)}`);
  }
}

export class HistogramChild {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= this.buckets[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
  /** Starts a timer; the returned function observes the seconds elapsed. */
  startTimer(): () => number {
    const t0 = process.hrtime.bigint();
    return () => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      this.observe(s);
      return s;
    };
  }
}

export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class Histogram extends Metric<HistogramChild> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DEFAULT_BUCKETS) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  protected create() {
    return new HistogramChild(this.buckets);
  }
  observe(v: number, labels?: Labels): void {
    this.labels(labels).observe(v);
  }
  renderSeries(out: string[]): void {
    if (this.children.size === 0 && this.labelNames.length === 0) this.labels();
    for (const { values, child } of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += child.counts[i]!;
        out.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${formatValue(this.buckets[i]!)}"`)} ${cumulative}`);
      }
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${child.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(child.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${child.count}`);
    }
  }
}

/** The metrics of one process. Registering a name twice returns the first metric (same type). */
export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();

  private register<M extends Metric<unknown>>(m: M): M {
    const existing = this.metrics.get(m.name);
    if (existing) {
      if (existing.type !== m.type) throw new Error(`metric ${m.name} is already registered as a ${existing.type}`);
      return existing as M;
    }
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(new Gauge(name, help, labelNames));
  }
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, labelNames, buckets));
  }
  get(name: string): Metric<unknown> | undefined {
    return this.metrics.get(name);
  }
  /** The Prometheus text exposition format. */
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) m.render(out);
    return `${out.join('\n')}\n`;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type HealthCheck = () => { ok: boolean; detail?: unknown };

/**
 * A request handler for node:http (or Express): `GET /metrics` renders the registry, `GET /healthz`
 * answers 200/503 from `health`; anything else is 404. Returns false when it did not answer.
 */
export function metricsHandler(registry: Registry, health?: HealthCheck) {
  return (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    if (url === '/metrics') {
      const body = registry.render();
      res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    }
    if (url === '/healthz') {
      const h = health ? health() : { ok: true };
      const body = JSON.stringify({ status: h.ok ? 'ok' : 'unhealthy', ...(h.detail !== undefined ? { detail: h.detail } : {}) });
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(body);
      return true;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"not found"}}');
    return true;
  };
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `/metrics` and `/healthz` on its own port (0: a free one). */
export async function serveMetrics(registry: Registry, opts: { port: number; host?: string; health?: HealthCheck }): Promise<MetricsServer> {
  const handle = metricsHandler(registry, opts.health);
  const server = http.createServer((req, res) => void handle(req, res));
  const host = opts.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
