// Heartbeats on a clock, not every N items: a slow item (a Temporal call waiting on a busy
// server) can no longer leave a long gap that looks like a dead worker, and a fast one does not
// flood the server. Progress goes along as the heartbeat's details. Heartbeating is also how a
// cancellation (a worker stopping past its grace time) reaches the activity: the work is told
// through `signal` to take no new item, and the activity ends once the items in flight have
// settled (milliseconds), so none of its calls outlives it; the retry resumes idempotently. Work
// that does not watch the signal is waited for at most SETTLE_MS, so a stop is never held by it.
import { Context, heartbeat } from '@temporalio/activity';

export const HEARTBEAT_EVERY_MS = 2_000;
const SETTLE_MS = 3_000;

export async function withHeartbeat<T>(progress: () => unknown, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  heartbeat(progress());
  const timer = setInterval(() => heartbeat(progress()), HEARTBEAT_EVERY_MS);
  const running = work(ctx.cancellationSignal);
  running.catch(() => undefined); // still observed below; quiet if cancellation wins the race
  try {
    return await Promise.race([running, ctx.cancelled]);
  } catch (err) {
    if (ctx.cancellationSignal.aborted) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, SETTLE_MS)))]);
      clearTimeout(timer);
    }
    throw err;
  } finally {
    clearInterval(timer);
  }
}
