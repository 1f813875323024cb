// Heartbeats on a clock, not every N items: a slow item (a Temporal call waiting on a busy
// server) can no longer leave a long gap that looks like a dead worker, and a fast one does not
// flood the server. Progress goes along as the heartbeat's details.
import { heartbeat } from '@temporalio/activity';

export const HEARTBEAT_EVERY_MS = 2_000;

export async function withHeartbeat<T>(progress: () => unknown, work: () => Promise<T>): Promise<T> {
  heartbeat(progress());
  const timer = setInterval(() => heartbeat(progress()), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
