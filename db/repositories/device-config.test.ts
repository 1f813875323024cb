import { createDevices } from '../../bridge/test-helpers';
import { repositoryDb } from '../../test/support/db';
import { getConfig, markConfigSent, patchDesiredConfig, pendingConfigs, setDesiredConfig, upsertReportedConfig } from './device-config';
import { recordCommandResults } from './command-results';

const { db, pool } = repositoryDb();

describe('device configuration', () => {
  it('has an empty default, stores reports (never an older one over a newer) and tells what is pending', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    expect(await getConfig(db, d)).toMatchObject({ desired: {}, desiredVersion: 0, reported: {}, reportedVersion: 0, pending: false });
    const T = Date.parse('2026-03-01T10:00:00Z');
    await upsertReportedConfig(pool, { deviceIds: [d], versions: [2], settings: ['{"a":2}'], atMs: [T + 2] });
    await upsertReportedConfig(pool, { deviceIds: [d], versions: [1], settings: ['{"a":1}'], atMs: [T + 1] });
    expect(await getConfig(db, d)).toMatchObject({ reported: { a: 2 }, reportedVersion: 2, reportedAt: new Date(T + 2).toISOString() });
    expect(await pendingConfigs(pool, [d])).toEqual([]);
    expect(await setDesiredConfig(db, d, { a: 3 }, 'me')).toBe(1);
    expect(await pendingConfigs(pool, [d])).toEqual([]); // desired 1 is not ahead of reported 2
    await setDesiredConfig(db, d, { a: 3 }, 'me');
    await setDesiredConfig(db, d, { a: 3 }, 'me');
    expect(await pendingConfigs(pool, [d])).toEqual([{ deviceId: d, version: 3, settings: { a: 3 } }]);
    await markConfigSent(pool, [d], new Date(T));
    expect(await getConfig(db, d)).toMatchObject({ pending: true, sentAt: new Date(T).toISOString(), desiredBy: 'me' });
  });

  it('merges PATCHes (RFC 7386), concurrent ones included', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    await Promise.all(Array.from({ length: 5 }, (_, i) => patchDesiredConfig(db, d, { [`k${i}`]: i }, 'me')));
    const c = await patchDesiredConfig(db, d, { k0: null }, 'me');
    expect(c.desiredVersion).toBe(6);
    expect(c.desired).toEqual({ k1: 1, k2: 2, k3: 3, k4: 4 });
  });
});

describe('command results', () => {
  it('finishes a command still sent, once', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    await db('device_commands').insert([
      { id: `c1-${d}`, device_id: d, command: 'ping', status: 'sent' },
      { id: `c2-${d}`, device_id: d, command: 'ping', status: 'timed_out' },
    ]);
    const write = (id: string, ok: boolean) =>
      recordCommandResults(pool, { requestIds: [id], deviceIds: [d], ok: [ok], results: [ok ? '{"pong":true}' : null], errors: [ok ? null : 'late'], atMs: [Date.now()] });
    expect(await write(`c1-${d}`, true)).toBe(1);
    expect(await write(`c1-${d}`, false)).toBe(0);
    expect(await write(`c2-${d}`, true)).toBe(0);
    expect(await db('device_commands').where({ id: `c1-${d}` }).first()).toMatchObject({ status: 'succeeded', result: { pong: true }, error: null });
  });
});
