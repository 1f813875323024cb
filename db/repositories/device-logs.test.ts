import { createDevices } from '../../bridge/test-helpers';
import { repositoryDb } from '../../test/support/db';
import { insertLogs, listLogs, pruneLogs } from './device-logs';

const { db, pool } = repositoryDb();

function logs(deviceId: string, n: number, t0: number, level = 'info') {
  return {
    deviceIds: Array(n).fill(deviceId),
    atMs: Array.from({ length: n }, (_, i) => t0 + i * 1000),
    deviceTimes: Array(n).fill(null),
    levels: Array(n).fill(level),
    messages: Array.from({ length: n }, (_, i) => `m${i}`),
    fields: Array.from({ length: n }, (_, i) => (i === 0 ? '{"k":1}' : null)),
  };
}

describe('device logs', () => {
  it('lists newest first with a cursor and a minimum level', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    const t0 = Date.now() - 60_000;
    await insertLogs(pool, logs(d, 5, t0));
    await insertLogs(pool, logs(d, 1, t0 + 100_000, 'error'));
    const messages: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await listLogs(db, { deviceId: d, limit: 2, cursor });
      messages.push(...p.items.map((l) => `${l.level}:${l.message}`));
      cursor = p.nextCursor ?? undefined;
    } while (cursor);
    expect(messages).toEqual(['error:m0', 'info:m4', 'info:m3', 'info:m2', 'info:m1', 'info:m0']);
    expect((await listLogs(db, { deviceId: d, limit: 10, minLevel: 'warn' })).items.map((l) => l.message)).toEqual(['m0']);
    expect((await listLogs(db, { deviceId: d, limit: 10 })).items.at(-1)).toMatchObject({ fields: { k: 1 }, deviceTime: null });
  });

  it('prunes by age and keeps at most N per device, in bounded deletes', async () => {
    const [a, b] = (await createDevices(db, 2)) as [string, string];
    const now = Date.now();
    await insertLogs(pool, logs(a, 7, now - 10 * 86_400_000)); // old
    await insertLogs(pool, logs(a, 3, now - 60_000));
    await insertLogs(pool, logs(b, 12, now - 60_000));
    let pauses = 0;
    const r = await pruneLogs(pool, {
      before: new Date(now - 86_400_000),
      perDevice: 5,
      deviceIds: [a, b],
      chunk: 2,
      between: async () => (pauses++, true),
    });
    expect(r.byAge).toBeGreaterThanOrEqual(7);
    expect(r.byCap).toBe(7);
    expect(pauses).toBeGreaterThan(3);
    expect(await db('device_logs').where({ device_id: a }).count({ n: '*' })).toEqual([{ n: '3' }]);
    const kept = await db('device_logs').where({ device_id: b }).orderBy('at').pluck('message');
    expect(kept).toEqual(['m7', 'm8', 'm9', 'm10', 'm11']);
  });
});
