// Sharing end to end against the real stack: an owner pairs a reference-firmware EV charger
// (its button confirms), shares it with a serviceman and a viewer, and the company declares per
// model what each of them sees and sets. Then: the sharees' lists, sensors, telemetry, control
// (the device confirms a set) and settings; a time-limited share ended by its durable timer on the
// dev server; a revoke; a share its person ends; alerts shown as properties are; an unpair that
// ends every share; and the refusals in between.
import type { Bridge } from '../bridge/bridge';
import { startTestBridge } from './support/bridge';
import { Device } from '../firmware/device';
import { provisioningRows, type Provisioning } from '../firmware/provisioning';
import { shareExpiryWorkflowId } from '../domain/messages';
import { newEntityId } from '../domain/ids';
import { testEnv } from './support/env';
import { eventually, startStack, type Caller, type Stack } from './support/stack';

let s: Stack;
let bridge: Bridge;
let creds: Provisioning[];
let next = 0;
const devices: Device[] = [];
let owner: Caller;
let serviceman: Caller;
let viewer: Caller;
let stranger: Caller;
let deviceId: string;

async function json<T = any>(res: Response, status: number): Promise<T> {
  const body = await res.text();
  if (res.status !== status) throw new Error(`${res.url}: expected ${status}, got ${res.status}: ${body}`);
  return (body ? JSON.parse(body) : undefined) as T;
}
const as = (c: Caller, path: string, init: { method?: string; json?: unknown } = {}) => s.api(`/api/v1${path}`, { token: c.token, ...init });

/** The next device, `free`, running the reference firmware, then paired to `to` through the API and its button. */
async function pairedDevice(to: Caller): Promise<Device> {
  const c = creds[next++]!;
  await json(await s.api(`/api/v1/devices/${c.deviceId}/status`, { method: 'POST', json: { status: 'free' } }), 200);
  const d = new Device({ deviceId: c.deviceId, secret: c.secret, mqttUrl: testEnv().mqttUrl, model: 'ev-charger', publishIntervalMs: 60_000, backoff: { initialMs: 100, maxMs: 500 } });
  devices.push(d);
  const connected = d.waitFor('connected');
  d.start();
  await connected;
  const asked = d.waitFor('pairing-request');
  await json(await as(to, '/pairings', { method: 'POST', json: { deviceId: c.deviceId, code: c.pairingCode } }), 202);
  await asked;
  const owned = d.waitFor('owner', 30_000);
  expect(d.pressButton()).toBe(true);
  await owned;
  await eventually(async () => (await s.db('devices').where({ id: c.deviceId }).first('status')).status === 'paired');
  // The bridge has stored what the device described.
  await eventually(async () => (await s.db('device_properties').where({ device_id: c.deviceId, node: 'charger', property: 'max-current' }).first()) !== undefined);
  return d;
}

const share = (by: Caller, device: string, body: Record<string, unknown>) => as(by, `/devices/${device}/shares`, { method: 'POST', json: body });
const sensorsOf = async (c: Caller, device = deviceId) => (await json<{ items: { node: string; property: string; canSet: boolean; visibility: string[] }[] }>(await as(c, `/devices/${device}/sensors`), 200)).items;
const names = (items: { node: string; property: string }[]) => items.map((i) => `${i.node}/${i.property}`).sort();

beforeAll(async () => {
  s = await startStack();
  bridge = await startTestBridge(s, 'sharing');
  const batch = await json(await s.api('/api/v1/batches', { method: 'POST', json: { companyId: s.companyId, name: 'sharing', count: 4, model: 'ev-charger' } }), 201);
  await eventually(async () => (await json(await s.api(`/api/v1/batches/${batch.id}`), 200)).provisioning.status === 'ready');
  for (const status of ['manufacturing', 'manufactured']) await json(await s.api(`/api/v1/batches/${batch.id}/status`, { method: 'POST', json: { status } }), 200);
  creds = provisioningRows(await (await s.api(`/api/v1/batches/${batch.id}/devices.csv`)).text(), { broker: testEnv().mqttUrl });
  [owner, serviceman, viewer, stranger] = await Promise.all([s.endUser(), s.endUser(), s.endUser(), s.endUser()]);
  deviceId = (await pairedDevice(owner)).deviceId;
  // Some history to read: the bridge stores what the device publishes.
  await s.db('telemetry').insert([
    { device_id: deviceId, node: 'charger', property: 'temperature', at: new Date(Date.now() - 60_000), value: '23.5', num: 23.5 },
    { device_id: deviceId, node: 'charger', property: 'max-current', at: new Date(Date.now() - 60_000), value: '16', num: 16 },
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all(devices.map((d) => d.stop().catch(() => undefined)));
  await bridge?.stop();
  await s?.stop();
});

describe('an owner shares a device', () => {
  let servicemanShare: string;

  it('with a serviceman and a viewer: each lists it, sees it and does what their role allows; a stranger still sees nothing', async () => {
    const made = await json<{ id: string; role: string; endedAt: null }>(await share(owner, deviceId, { userId: serviceman.userId, role: 'serviceman' }), 201);
    expect(made).toMatchObject({ deviceId, userId: serviceman.userId, role: 'serviceman', expiresAt: null, endedAt: null, createdBy: owner.userId });
    servicemanShare = made.id;
    await json(await share(owner, deviceId, { userId: viewer.userId, role: 'viewer' }), 201);

    for (const c of [serviceman, viewer]) {
      expect((await json<{ items: { id: string }[] }>(await as(c, '/devices'), 200)).items.map((d) => d.id)).toEqual([deviceId]);
      expect((await as(c, `/devices/${deviceId}`)).status).toBe(200);
    }
    // The serviceman sets the current limit: the device applies it and confirms.
    const set = await json<{ value: number }>(await as(serviceman, `/devices/${deviceId}/sensors/charger/max-current`, { method: 'PUT', json: { value: 20 } }), 200);
    expect(set.value).toBe(20);
    // The viewer reads but never sets; neither of them may share it on, nor unpair it.
    expect((await sensorsOf(viewer)).every((p) => !p.canSet)).toBe(true);
    expect((await as(viewer, `/devices/${deviceId}/sensors/charger/max-current`, { method: 'PUT', json: { value: 10 } })).status).toBe(403);
    expect((await as(viewer, `/devices/${deviceId}/config`, { method: 'PATCH', json: { temperatureLimitC: 50 } })).status).toBe(403);
    for (const c of [serviceman, viewer]) {
      expect((await share(c, deviceId, { userId: stranger.userId, role: 'viewer' })).status).toBe(403);
      expect((await as(c, `/devices/${deviceId}/owner`, { method: 'DELETE' })).status).toBe(403);
    }
    expect((await as(stranger, `/devices/${deviceId}`)).status).toBe(404);
    expect((await json<{ items: unknown[] }>(await as(stranger, '/devices'), 200)).items).toEqual([]);

    const listed = await json<{ items: { userId: string }[] }>(await as(owner, `/devices/${deviceId}/shares`), 200);
    expect(listed.items.map((x) => x.userId).sort()).toEqual([serviceman.userId, viewer.userId].sort());
  }, 60_000);

  it('refuses what is not a share: itself, an unknown user, a past end, a second share to the same person, another tenant', async () => {
    expect(await json(await share(owner, deviceId, { userId: owner.userId, role: 'viewer' }), 422)).toMatchObject({ error: { code: 'cannot_share_with_owner' } });
    expect((await share(owner, deviceId, { userId: 'ZZZZZZZZZZZZZZZZ', role: 'viewer' })).status).toBe(404);
    expect((await share(owner, deviceId, { userId: stranger.userId, role: 'viewer', expiresAt: new Date(Date.now() - 1_000).toISOString() })).status).toBe(400);
    expect((await share(owner, deviceId, { userId: stranger.userId, role: 'boss' })).status).toBe(400);
    expect(await json(await share(owner, deviceId, { userId: serviceman.userId, role: 'viewer' }), 409)).toMatchObject({ error: { code: 'already_shared' } });
    const other = await s.company('another tenant');
    const otherAdmin = await s.member('admin', other);
    expect((await share(otherAdmin, deviceId, { userId: stranger.userId, role: 'viewer' })).status).toBe(404);
    expect((await as(otherAdmin, `/devices/${deviceId}/shares/${servicemanShare}`)).status).toBe(404);
    expect((await as(stranger, `/devices/${deviceId}/shares/${servicemanShare}`, { method: 'DELETE' })).status).toBe(404);
    // Nothing of that changed the shares.
    expect((await json<{ items: unknown[] }>(await as(owner, `/devices/${deviceId}/shares`), 200)).items).toHaveLength(2);
  });

  it("follows the company's declaration for the model: what the owner, the serviceman and the viewer see and set", async () => {
    const admin = await s.member('admin', s.companyId);
    const rule = (model: string, node: string, property: string, body: unknown) =>
      as(admin, `/companies/${s.companyId}/models/${model}/property-access/${encodeURIComponent(node)}/${encodeURIComponent(property)}`, { method: 'PUT', json: body });
    // Diagnostics (the temperature) for the serviceman only; the current limit set by the serviceman only; a setting hidden from all but the serviceman.
    await json(await rule('ev-charger', 'charger', 'temperature', { visibleTo: ['serviceman'], settableBy: [] }), 200);
    await json(await rule('ev-charger', 'charger', 'max-current', { visibleTo: ['owner', 'serviceman', 'viewer'], settableBy: ['serviceman'] }), 200);
    await json(await rule('ev-charger', '$settings', 'temperatureLimitC', { visibleTo: ['serviceman'], settableBy: ['serviceman'] }), 200);
    expect((await rule('ev-charger', 'charger', 'relay', { visibleTo: ['owner'], settableBy: ['owner', 'viewer'] })).status).toBe(400);
    expect((await rule('ev-charger', 'charger', 'relay', { visibleTo: [], settableBy: ['owner'] })).status).toBe(400);
    const technician = await s.member('technician', s.companyId);
    expect((await as(technician, `/companies/${s.companyId}/models/ev-charger/property-access/charger/relay`, { method: 'PUT', json: { visibleTo: ['owner'], settableBy: [] } })).status).toBe(403);
    expect((await as(owner, `/companies/${s.companyId}/models/ev-charger/property-access/charger/relay`, { method: 'PUT', json: { visibleTo: ['owner'], settableBy: [] } })).status).toBe(403);
    await json(await rule('ev-charger', 'charger', 'relay', { visibleTo: ['owner', 'serviceman', 'viewer'], settableBy: ['owner', 'serviceman'] }), 200);

    const ownerSees = names(await sensorsOf(owner));
    expect(ownerSees).not.toContain('charger/temperature');
    expect(ownerSees).toContain('charger/max-current');
    expect(names(await sensorsOf(serviceman))).toContain('charger/temperature');
    // Staff see every property, whatever the declaration.
    expect(names(await sensorsOf(technician))).toContain('charger/temperature');

    // Telemetry: the hidden property's history is not there for the owner, and asking for it is a 404.
    const history = await json<{ items: { property: string }[] }>(await as(owner, `/devices/${deviceId}/telemetry`), 200);
    expect(history.items.some((p) => p.property === 'max-current')).toBe(true);
    expect(history.items.some((p) => p.property === 'temperature')).toBe(false);
    expect((await as(owner, `/devices/${deviceId}/telemetry?node=charger&property=temperature`)).status).toBe(404);
    const full = await json<{ items: { property: string }[] }>(await as(serviceman, `/devices/${deviceId}/telemetry`), 200);
    expect(full.items.some((p) => p.property === 'temperature')).toBe(true);

    // Control: the owner sees the current limit but may not set it (403, before the device is asked); the serviceman may.
    expect((await as(owner, `/devices/${deviceId}/sensors/charger/max-current`, { method: 'PUT', json: { value: 12 } })).status).toBe(403);
    expect((await as(owner, `/devices/${deviceId}/sensors/charger/temperature`, { method: 'PUT', json: { value: 12 } })).status).toBe(404);
    expect((await sensorsOf(owner)).find((p) => p.property === 'max-current')).toMatchObject({ canSet: false, visibility: ['owner', 'serviceman', 'viewer'] });
    expect((await json<{ value: number }>(await as(serviceman, `/devices/${deviceId}/sensors/charger/max-current`, { method: 'PUT', json: { value: 24 } }), 200)).value).toBe(24);
    expect((await json<{ value: boolean }>(await as(owner, `/devices/${deviceId}/sensors/charger/relay`, { method: 'PUT', json: { value: true } }), 200)).value).toBe(true);

    // Settings: the serviceman changes the hidden one; the owner neither sees nor changes it, and a refused change changes nothing.
    await json(await as(serviceman, `/devices/${deviceId}/config`, { method: 'PATCH', json: { temperatureLimitC: 70 } }), 200);
    const mine = await json<{ desired: Record<string, unknown> }>(await as(owner, `/devices/${deviceId}/config`), 200);
    expect(mine.desired).not.toHaveProperty('temperatureLimitC');
    expect((await as(owner, `/devices/${deviceId}/config`, { method: 'PATCH', json: { temperatureLimitC: 40, other: 1 } })).status).toBe(404);
    const staff = await json<{ desired: Record<string, unknown> }>(await as(technician, `/devices/${deviceId}/config`), 200);
    expect(staff.desired).toEqual({ temperatureLimitC: 70 });

    // Removing a rule brings back the next one: here the default (everyone related sees).
    expect((await as(admin, `/companies/${s.companyId}/models/ev-charger/property-access/charger/temperature`, { method: 'DELETE' })).status).toBe(204);
    expect(names(await sensorsOf(owner))).toContain('charger/temperature');
    const declared = await json<{ items: { node: string; property: string }[] }>(await as(technician, `/companies/${s.companyId}/models/ev-charger/property-access`), 200);
    expect(names(declared.items)).toEqual(['$settings/temperatureLimitC', 'charger/max-current', 'charger/relay']);
  }, 60_000);

  it("shows alerts as it shows properties: one of a property hidden from a person not to them, the device's own to all who see the device", async () => {
    const admin = await s.member('admin', s.companyId);
    const technician = await s.member('technician', s.companyId);
    const rule = (property: string, body: unknown) => as(admin, `/companies/${s.companyId}/models/ev-charger/property-access/charger/${property}`, { method: 'PUT', json: body });
    await json(await rule('temperature', { visibleTo: ['serviceman'], settableBy: [] }), 200);
    const ids = { device: newEntityId(), shown: newEntityId(), hidden: newEntityId() };
    const at = (ago: number) => new Date(Date.now() - ago);
    // Newest first: the hidden one heads the list. One open per device and cause: the older rule alert is resolved.
    await s.db('alerts').insert([
      { id: ids.device, device_id: deviceId, source: 'device', severity: 'warning', message: 'the device says alert', raised_at: at(3_000) },
      { id: ids.shown, device_id: deviceId, source: 'rule', node: 'charger', property: 'max-current', value: '40', severity: 'warning', message: 'high current', state: 'resolved', raised_at: at(2_000), resolved_at: at(1_500) },
      { id: ids.hidden, device_id: deviceId, source: 'rule', node: 'charger', property: 'temperature', value: '90', severity: 'critical', message: 'hot', raised_at: at(1_000) },
    ]);
    const mine = Object.values(ids);
    const seen = async (c: Caller, path: string) => (await json<{ items: { id: string }[] }>(await as(c, path), 200)).items.map((a) => a.id).filter((id) => mine.includes(id)).sort();
    const everything = [...mine].sort();
    const butHidden = [ids.device, ids.shown].sort();
    for (const path of [`/devices/${deviceId}/alerts`, `/alerts?deviceId=${deviceId}`, '/alerts?limit=1000']) {
      expect([path, await seen(owner, path)]).toEqual([path, butHidden]);
      expect([path, await seen(viewer, path)]).toEqual([path, butHidden]);
      expect([path, await seen(serviceman, path)]).toEqual([path, everything]);
      expect([path, await seen(technician, path)]).toEqual([path, everything]);
    }
    expect((await as(stranger, `/devices/${deviceId}/alerts`)).status).toBe(404);
    expect(await seen(stranger, '/alerts?limit=1000')).toEqual([]);
    // A page may come out shorter than asked; its cursor goes on to the rest.
    const first = await json<{ items: { id: string }[]; nextCursor: string }>(await as(owner, `/devices/${deviceId}/alerts?limit=1`), 200);
    expect(first.items).toEqual([]);
    const next = await json<{ items: { id: string }[] }>(await as(owner, `/devices/${deviceId}/alerts?limit=1&cursor=${encodeURIComponent(first.nextCursor)}`), 200);
    expect(next.items.map((a) => a.id)).toEqual([ids.shown]);
    // Hiding the current limit from the viewer takes its alert away from them too, at once.
    await json(await rule('max-current', { visibleTo: ['owner', 'serviceman'], settableBy: ['serviceman'] }), 200);
    expect(await seen(viewer, `/devices/${deviceId}/alerts`)).toEqual([ids.device]);
    expect(await seen(viewer, '/alerts?limit=1000')).toEqual([ids.device]);
    // The declaration as it was.
    await json(await rule('max-current', { visibleTo: ['owner', 'serviceman', 'viewer'], settableBy: ['serviceman'] }), 200);
    expect((await as(admin, `/companies/${s.companyId}/models/ev-charger/property-access/charger/temperature`, { method: 'DELETE' })).status).toBe(204);
  });

  it('ends a time-limited share by its durable timer: the person loses the device at its end', async () => {
    const until = new Date(Date.now() + 3_000).toISOString();
    const made = await json<{ id: string }>(await share(owner, deviceId, { userId: stranger.userId, role: 'viewer', expiresAt: until }), 201);
    expect((await as(stranger, `/devices/${deviceId}`)).status).toBe(200);
    const result = await s.temporal.workflow.getHandle(shareExpiryWorkflowId(made.id)).result();
    expect(result).toBe('expired');
    expect((await as(stranger, `/devices/${deviceId}`)).status).toBe(404);
    const ended = await json<{ endedAt: string; endReason: string }>(await as(owner, `/devices/${deviceId}/shares/${made.id}`), 200);
    expect(ended.endReason).toBe('expired');
    expect(Date.parse(ended.endedAt)).toBeLessThanOrEqual(Date.parse(until));
    const log = await json<{ items: { action: string; target: { id: string } | null; details: { reason?: string } }[] }>(await s.api(`/api/v1/audit?deviceId=${deviceId}&limit=1000`), 200);
    expect(log.items.find((e) => e.action === 'device.share_ended' && e.target?.id === made.id)?.details.reason).toBe('expired');
    // The same person may be given the device again.
    const again = await json<{ id: string }>(await share(owner, deviceId, { userId: stranger.userId, role: 'viewer' }), 201);
    expect((await as(owner, `/devices/${deviceId}/shares/${again.id}`, { method: 'DELETE' })).status).toBe(200);
  }, 60_000);

  it('is revoked at once, and a second revoke answers the ended share', async () => {
    const made = await json<{ id: string }>(await share(owner, deviceId, { userId: stranger.userId, role: 'serviceman', expiresAt: new Date(Date.now() + 86_400_000).toISOString() }), 201);
    expect((await as(stranger, `/devices/${deviceId}/sensors`)).status).toBe(200);
    const ended = await json<{ endReason: string }>(await as(owner, `/devices/${deviceId}/shares/${made.id}`, { method: 'DELETE' }), 200);
    expect(ended.endReason).toBe('revoked');
    expect((await as(stranger, `/devices/${deviceId}/sensors`)).status).toBe(404);
    expect(await json(await as(owner, `/devices/${deviceId}/shares/${made.id}`, { method: 'DELETE' }), 200)).toMatchObject({ endReason: 'revoked' });
    // Its timer was told and is done, not waiting a day.
    expect(await s.temporal.workflow.getHandle(shareExpiryWorkflowId(made.id)).result()).toBe('ended');
  }, 30_000);

  it('lets the person end their own share (named by email): they lose the device, its timer is told, the log says who', async () => {
    expect(await json(await share(owner, deviceId, { email: `nobody.${Date.now()}@example.com`, role: 'viewer' }), 404)).toMatchObject({ error: { code: 'user_not_found' } });
    expect(await json(await share(owner, deviceId, { userId: 'ZZZZZZZZZZZZZZZZ', role: 'viewer' }), 404)).toMatchObject({ error: { code: 'user_not_found' } });
    expect((await share(owner, deviceId, { userId: stranger.userId, email: stranger.email, role: 'viewer' })).status).toBe(400);
    expect((await share(owner, deviceId, { role: 'viewer' })).status).toBe(400);
    expect(await json(await share(owner, deviceId, { email: owner.email, role: 'viewer' }), 422)).toMatchObject({ error: { code: 'cannot_share_with_owner' } });
    const made = await json<{ id: string; userId: string }>(await share(owner, deviceId, { email: stranger.email.toUpperCase(), role: 'viewer', expiresAt: new Date(Date.now() + 86_400_000).toISOString() }), 201);
    expect(made.userId).toBe(stranger.userId);

    // Their share is theirs to read; the others' shares and the list are not.
    expect(await json(await as(stranger, `/devices/${deviceId}/shares/${made.id}`), 200)).toMatchObject({ id: made.id, userId: stranger.userId, endedAt: null });
    expect((await as(stranger, `/devices/${deviceId}/shares`)).status).toBe(403);
    expect((await as(stranger, `/devices/${deviceId}/shares/${servicemanShare}`)).status).toBe(403);
    expect((await as(stranger, `/devices/${deviceId}/shares/${servicemanShare}`, { method: 'DELETE' })).status).toBe(403);

    const ended = await json<{ endReason: string; endedAt: string }>(await as(stranger, `/devices/${deviceId}/shares/${made.id}`, { method: 'DELETE' }), 200);
    expect(ended.endReason).toBe('left');
    expect((await as(stranger, `/devices/${deviceId}`)).status).toBe(404);
    expect(await s.temporal.workflow.getHandle(shareExpiryWorkflowId(made.id)).result()).toBe('ended');
    // Still theirs to read, ended and why; a repeat answers it as it ended and records nothing more.
    expect(await json(await as(stranger, `/devices/${deviceId}/shares/${made.id}`), 200)).toMatchObject({ endReason: 'left', endedAt: ended.endedAt });
    expect(await json(await as(stranger, `/devices/${deviceId}/shares/${made.id}`, { method: 'DELETE' }), 200)).toMatchObject({ endReason: 'left', endedAt: ended.endedAt });
    const log = await json<{ items: { action: string; actor: { userId: string }; target: { id: string } | null; details: { reason?: string; userId?: string } }[] }>(await s.api(`/api/v1/audit?deviceId=${deviceId}&limit=1000`), 200);
    const entries = log.items.filter((e) => e.action === 'device.share_ended' && e.target?.id === made.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: { userId: stranger.userId }, details: { reason: 'left', userId: stranger.userId } });
    // The others' shares stand.
    expect(await json(await as(owner, `/devices/${deviceId}/shares/${servicemanShare}`), 200)).toMatchObject({ endedAt: null });
  }, 30_000);

  it('ends every share when the device is unpaired', async () => {
    await json(await as(owner, `/devices/${deviceId}/owner`, { method: 'DELETE' }), 200);
    for (const c of [serviceman, viewer]) {
      expect((await as(c, `/devices/${deviceId}`)).status).toBe(404);
      expect((await json<{ items: unknown[] }>(await as(c, '/devices'), 200)).items).toEqual([]);
    }
    const all = await json<{ items: { userId: string; endReason: string }[] }>(await s.api(`/api/v1/devices/${deviceId}/shares?includeEnded=true`), 200);
    const byUser = Object.fromEntries(all.items.filter((x) => x.endReason === 'unpaired').map((x) => [x.userId, x.endReason]));
    expect(byUser).toEqual({ [serviceman.userId]: 'unpaired', [viewer.userId]: 'unpaired' });
    expect((await json<{ items: unknown[] }>(await s.api(`/api/v1/devices/${deviceId}/shares`), 200)).items).toEqual([]);
    // A device without an owner is not shared.
    expect(await json(await s.api(`/api/v1/devices/${deviceId}/shares`, { method: 'POST', json: { userId: viewer.userId, role: 'viewer' } }), 409)).toMatchObject({ error: { code: 'not_paired' } });
  }, 60_000);
});
