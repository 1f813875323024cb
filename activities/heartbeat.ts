// Heartbeats on a clock, not every N items: a slow item (a Temporal call waiting on a busy
// server) can no longer leave a long gap that looks like a dead worker, and a fast one does not
// flood the server. Progress goes along as the heartbeat's details. Heartbeating is also how a
// cancellation (a worker stopping past its grace time) reaches the activity: it then gives up
// at once rather than holding the stop until its last item; the retry resumes idempotently.
import { Context, heartbeat } from '@temporalio/activity';

export const HEARTBEAT_EVERY_MS = 2_000;

export async function withHeartbeat<T>(progress: () => unknown, work: () => Promise<T>): Promise<T> {
  heartbeat(progress());
  const timer = setInterval(() => heartbeat(progress()), HEARTBEAT_EVERY_MS);
  const running = work();
  running.catch(() => undefined); // still observed below; quiet if cancellation wins the race
  try {
    return await Promise.race([running, Context.current().cancelled]);
  } finally {
    clearInterval(timer);
  }
}
