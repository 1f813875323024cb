import { createDevices } from '../../bridge/test-helpers';
import { repositoryDb } from '../../test/support/db';
import { ALERT_RULES_CHANNEL, breaches, createAlertRule, deleteAlertRule, emptyOpenAlertColumns, getAlertRule, listAlertRules, listAlerts, loadEnabledRules, openAlerts, resolveAlerts } from './alerts';

const { db, pool } = repositoryDb(3);

describe('alert rules', () => {
  it('creates, lists, loads and deletes rules, and notifies bridges of each change', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    const listener = await pool.connect();
    const notified: string[] = [];
    listener.on('notification', (n) => notified.push(n.payload ?? ''));
    await listener.query(`LISTEN ${ALERT_RULES_CHANNEL}`);
    try {
      const r = await createAlertRule(db, { name: 'cold', deviceId: d, node: 'env', property: 'temperature', operator: '<', threshold: 5 });
      expect(r).toMatchObject({ name: 'cold', deviceId: d, operator: '<', threshold: 5, severity: 'warning', enabled: true });
      expect(await getAlertRule(db, r.id)).toEqual(r);
      expect((await listAlertRules(db, { deviceId: d, limit: 10 })).items).toEqual([r]);
      expect((await loadEnabledRules(pool)).map((x) => x.id)).toContain(r.id);
      await expect(createAlertRule(db, { name: 'x', node: 'a', property: 'b', operator: '=>' as never, threshold: 1 })).rejects.toThrow(/operator/);
      expect(await deleteAlertRule(db, r.id)).toBe(true);
      expect(await deleteAlertRule(db, r.id)).toBe(false);
      await new Promise((res) => setTimeout(res, 100));
      expect(notified.filter((id) => id === r.id)).toHaveLength(2);
    } finally {
      listener.release(true);
    }
  });

  it('compares with each operator', () => {
    expect([breaches('>', 2, 1), breaches('>=', 1, 1), breaches('<', 1, 1), breaches('<=', 1, 1), breaches('==', 1, 1), breaches('!=', 1, 1)]).toEqual([true, true, false, true, true, false]);
  });
});

describe('alerts', () => {
  it('keeps one open alert per device and cause, resolves it, and lists newest first', async () => {
    const [d] = (await createDevices(db, 1)) as [string];
    const rule = await createAlertRule(db, { name: 'hot', node: 'env', property: 't', operator: '>', threshold: 30 });
    const T = Date.parse('2026-03-01T10:00:00Z');
    const open = (source: 'device' | 'rule', at: number) => {
      const c = emptyOpenAlertColumns();
      c.deviceIds.push(d);
      c.sources.push(source);
      c.ruleIds.push(source === 'rule' ? rule.id : null);
      c.nodes.push(null);
      c.properties.push(null);
      c.values.push(null);
      c.severities.push('warning');
      c.messages.push(source);
      c.atMs.push(at);
      return openAlerts(pool, c);
    };
    expect(await open('rule', T)).toEqual({ device: 0, rule: 1 });
    expect(await open('rule', T + 1)).toEqual({ device: 0, rule: 0 }); // already open
    expect(await open('device', T + 2)).toEqual({ device: 1, rule: 0 });
    expect(await resolveAlerts(pool, { deviceIds: [d], sources: ['rule'], ruleIds: [rule.id], atMs: [T - 1] })).toBe(0); // raised after that
    expect(await resolveAlerts(pool, { deviceIds: [d], sources: ['rule'], ruleIds: [rule.id], atMs: [T + 3] })).toBe(1);
    expect(await open('rule', T + 4)).toEqual({ device: 0, rule: 1 }); // a new one after resolution
    const all = (await listAlerts(db, { deviceId: d, limit: 10 })).items;
    expect(all.map((a) => [a.source, a.state])).toEqual([
      ['rule', 'open'],
      ['device', 'open'],
      ['rule', 'resolved'],
    ]);
    const page1 = await listAlerts(db, { deviceId: d, limit: 2 });
    const page2 = await listAlerts(db, { deviceId: d, limit: 2, cursor: page1.nextCursor! });
    expect([...page1.items, ...page2.items].map((a) => a.id)).toEqual(all.map((a) => a.id));
    expect((await listAlerts(db, { deviceId: d, state: 'open', limit: 10 })).items).toHaveLength(2);
  });
});
