// The end of one time-limited share (ID `share-<shareId>`): a durable timer until `expiresAt`,
// then the share is ended in Postgres. A share revoked or ended by an unpair before then signals
// this workflow, which stops; a signal that never arrives costs nothing but the wait, since ending
// an ended share changes nothing. The policy never trusts the timer alone: a share past its
// expiry counts as over when read (db/repositories/shares.ts), so a late timer never extends one.
import { condition, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { shareEndedSignal, type ShareExpiryInput } from '../domain/messages';

// One short Postgres write; it must happen eventually (the audit log records the end): retried for a day.
const quick = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

export async function shareExpiry(input: ShareExpiryInput): Promise<'expired' | 'ended'> {
  let ended = false;
  setHandler(shareEndedSignal, () => {
    ended = true;
  });
  // Workflow time: the same on every replay.
  const wait = Date.parse(input.expiresAt) - Date.now();
  if (wait > 0) await condition(() => ended, wait);
  if (ended) return 'ended';
  await quick.expireShare({ shareId: input.shareId });
  return 'expired';
}
