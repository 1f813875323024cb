// An API client that behaves like a careful integrator's script: a request that fails because
// the api is down (connection refused, reset mid-answer) is sent again after a short pause, as is
// a 503. Every other answer is returned as it is; the caller decides what it means. Requests that
// needed a retry are counted, and so are answers no client should ever see (5xx other than 503).
import { sleep } from '../bench/support';

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ClientStats {
  requests: number;
  /** Attempts that failed because the api was down or restarting. */
  retried: number;
  /** 5xx answers other than 503 (each one is a failure of the run). */
  serverErrors: { method: string; path: string; status: number; body: string }[];
}

export class ApiClient {
  readonly stats: ClientStats = { requests: 0, retried: 0, serverErrors: [] };

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly o: { giveUpAfterMs?: number; timeoutMs?: number } = {},
  ) {}

  withToken(token: string): ApiClient {
    const c = new ApiClient(this.baseUrl, token, this.o);
    (c as { stats: ClientStats }).stats = this.stats; // one tally for the run
    return c;
  }

  async request<T = unknown>(method: string, path: string, o: { json?: unknown; headers?: Record<string, string> } = {}): Promise<ApiAnswer<T>> {
    const until = Date.now() + (this.o.giveUpAfterMs ?? 180_000);
    this.stats.requests++;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let text: string;
      try {
        res = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(o.json !== undefined ? { 'content-type': 'application/json' } : {}),
            ...o.headers,
          },
          body: o.json !== undefined ? JSON.stringify(o.json) : undefined,
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 90_000),
        });
        text = await res.text();
      } catch (err) {
        // ECONNREFUSED while the api is down, ECONNRESET / "other side closed" when it died mid-answer.
        if (Date.now() > until) throw new Error(`${method} ${path}: the api did not answer for ${(this.o.giveUpAfterMs ?? 180_000) / 1000} s (${describe(err)})`);
        this.stats.retried++;
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(attempt, 4)));
        continue;
      }
      if (res.status === 503 && Date.now() < until) {
        this.stats.retried++;
        await sleep(500);
        continue;
      }
      if (res.status >= 500) this.stats.serverErrors.push({ method, path, status: res.status, body: text.slice(0, 300) });
      let body: unknown = text;
      if ((res.headers.get('content-type') ?? '').includes('json')) {
        try {
          body = JSON.parse(text);
        } catch {
          // left as text
        }
      }
      return { status: res.status, body: body as T, headers: res.headers };
    }
  }
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

/** The error code of a JSON error answer, if any. */
export function errorCode(a: ApiAnswer): string | undefined {
  return (a.body as { error?: { code?: string } } | null)?.error?.code;
}
