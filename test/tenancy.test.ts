// The tenancy matrix, generated from the route table (api/app.ts apiRoutes): for every route that
// needs a caller, a revoked token and an expired session get 401; callers of another company and
// an end user who neither owns nor shares the device get 403/404 and no byte of the other
// tenant's data; each role of the company without the right gets 403; each role with it, the
// platform admin and (on device routes) the device's owner get through. A new route without an
// entry in SAMPLES below fails this test, so every route is covered as it is added.
import { apiRoutes } from '../api/app';
import type { ApiDeps } from '../api/deps';
import type { ExportGate } from '../api/exports';
import { authenticator } from '../api/http/auth';
import { PERMISSIONS, ROLE_TABLE } from '../api/http/policy';
import type { RouteSpec } from '../api/http/route';
import { SignInLimiter } from '../api/sign-in-limiter';
import { PasswordGate } from '../api/password-gate';
import { newEntityId } from '../domain/ids';
import { newSessionToken, sha256Hex } from '../domain/credentials';
import { COMPANY_ROLES, type CompanyRole } from '../domain/roles';
import type { Batch } from '../domain/model';
import { insertCommand } from '../db/repositories/diagnostic-commands';
import { insertSession } from '../db/repositories/sessions';
import { bootstrapAdminId } from '../db/repositories/users';
import { hashPassword } from '../domain/passwords';
import { transitionDevice } from '../temporal/device-workflows';
import { startStack, eventually, type Caller, type Stack } from './support/stack';

let s: Stack;
const routes: RouteSpec[] = apiRoutes({} as ApiDeps, {} as ExportGate, authenticator({} as never, undefined), { signIn: new SignInLimiter(), signUp: new SignInLimiter(), passwords: new PasswordGate() });
// The firmware image is for devices (their link or MQTT login: test/firmware.test.ts); the public key is public.
const PUBLIC = ['get /healthz', 'get /readyz', 'get /openapi.json', 'post /sessions', 'get /firmware/public-key', 'get /firmware/:id/image'];
const key = (r: RouteSpec) => `${r.method} ${r.path}`;

interface Tenant {
  companyId: string;
  batchId: string;
  deviceId: string;
  ownedDeviceId: string;
  members: Record<CompanyRole, Caller>;
  ids: string[];
  /** What only a holder of devices:telemetry may read: alerts, rules, commands. */
  telemetryIds: string[];
  /** A firmware release of the company's. */
  firmwareId: string;
}
let A: Tenant;
let B: Tenant;
let owner: Caller;
let stranger: Caller;
/** An end user the samples share A's devices with (not one of A's staff: their share would be theirs to read and end). */
let shareTarget: Caller;
/** An end user of no company: whom the email lookup finds (its answer names no one of A). */
let lookupTarget: Caller;
let revoked: string;
let expiredSession: string;
let bulkOperationId: string;
/** A third device of A's, paired to `owner` through its lifecycle: the owner's unpair call takes this one (it unpairs for real). */
let spareOwnedId: string;
const KNOWN_PASSWORD = 'a known long password';
let knownPasswordHash: string;
const commandOf: Record<string, string> = {};
const ruleOf: Record<string, string> = {};

async function ok<T>(r: Response, status = 201): Promise<T> {
  if (r.status !== status) throw new Error(`${r.url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** A firmware upload: the fields, then a small image. */
function firmwareForm(fields: Record<string, string>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  f.append('file', new Blob([Buffer.from('tenancy test image')]), 'image.bin');
  return f;
}

async function tenant(name: string): Promise<Tenant> {
  const companyId = await s.company(name);
  const alertIds: string[] = [];
  const members = Object.fromEntries(await Promise.all(COMPANY_ROLES.map(async (role) => [role, await s.member(role, companyId)]))) as Record<CompanyRole, Caller>;
  const batch = await ok<Batch>(await s.api('/api/v1/batches', { method: 'POST', json: { companyId, name, count: 3 } }));
  await eventually(async () => (await ok<Batch>(await s.api(`/api/v1/batches/${batch.id}`), 200)).provisioning.status === 'ready', 60_000);
  const [deviceId, ownedDeviceId] = (await s.db('devices').where({ batch_id: batch.id }).orderBy('seq').pluck('id')) as [string, string];
  for (const id of [deviceId, ownedDeviceId]) {
    // A settable property, a command and an alert: something behind every per-device route.
    await s.db('device_properties').insert({ device_id: id, node: 'charger', property: 'current', datatype: 'integer', settable: true, value: '6', value_at: new Date() });
    commandOf[id] = newEntityId();
    await insertCommand(s.db, { id: commandOf[id]!, deviceId: id, command: 'ping', args: null, createdBy: null });
    const alertId = newEntityId();
    alertIds.push(alertId);
    await s.db('alerts').insert({ id: alertId, device_id: id, source: 'device', severity: 'warning', message: 'test', raised_at: new Date() });
  }
  const rule = await ok<{ id: string }>(await s.api('/api/v1/alert-rules', { method: 'POST', json: { companyId, name: 'hot', node: 'charger', property: 'current', operator: '>', threshold: 30 } }));
  ruleOf[companyId] = rule.id;
  const release = await ok<{ id: string }>(await s.api('/api/v1/firmware', { method: 'POST', body: firmwareForm({ version: '1.0.0', model: 'ev-charger', companyId }) }));
  const ids = [companyId, batch.id, deviceId, ownedDeviceId, rule.id, commandOf[deviceId]!, release.id, ...Object.values(members).map((m) => m.userId)];
  const telemetryIds = [...alertIds, rule.id, commandOf[deviceId]!, commandOf[ownedDeviceId]!];
  return { companyId, batchId: batch.id, deviceId, ownedDeviceId, members, ids: [...ids, ...telemetryIds], telemetryIds, firmwareId: release.id };
}

beforeAll(async () => {
  s = await startStack({ bulkWaitMs: 1_000 });
  knownPasswordHash = await hashPassword(KNOWN_PASSWORD);
  A = await tenant('tenant A');
  B = await tenant('tenant B');
  owner = await s.endUser();
  stranger = await s.endUser();
  [shareTarget, lookupTarget] = await Promise.all([s.endUser(), s.endUser()]);
  await s.db('devices').where({ id: A.ownedDeviceId }).update({ owner_id: owner.userId });
  A.ids.push(owner.userId, shareTarget.userId);
  spareOwnedId = ((await s.db('devices').where({ batch_id: A.batchId }).orderBy('seq').pluck('id')) as string[])[2]!;
  for (const to of ['manufacturing', 'manufactured', 'free'] as const) await ok(await s.api(`/api/v1/devices/${spareOwnedId}/status`, { method: 'POST', json: { status: to } }), 200);
  for (const to of ['pairing', 'paired'] as const) await transitionDevice(s.temporal, spareOwnedId, { to, actor: 'system' });
  await s.db('devices').where({ id: spareOwnedId }).update({ owner_id: owner.userId });
  // On the owned device only: the matrix's own status changes of A.deviceId must change something.
  // Finished within the second it waits (200) on a quiet machine, still running (202) on a busy one.
  const bulk = await s.api(`/api/v1/batches/${A.batchId}/status`, { method: 'POST', json: { status: 'manufacturing', deviceIds: [A.ownedDeviceId] } });
  bulkOperationId = (await ok<{ id: string }>(bulk, bulk.status === 202 ? 202 : 200)).id;
  await eventually(async () => (await ok<{ state: string }>(await s.api(`/api/v1/bulk-operations/${bulkOperationId}`), 200)).state === 'completed', 120_000, 200);
  A.ids.push(bulkOperationId);

  // A revoked token and an expired session of A's admin, never used before (so never cached).
  const r = await ok<{ id: string; token: string }>(await s.api('/api/v1/tokens', { token: A.members.admin.token, method: 'POST', json: { name: 'revoked' } }));
  await s.db('tokens').where({ id: r.id }).update({ revoked_at: new Date() });
  revoked = r.token;
  expiredSession = newSessionToken();
  await insertSession(s.db, { id: newEntityId(), userId: A.members.admin.userId, tokenHash: sha256Hex(expiredSession), expiresAt: new Date(Date.now() - 1_000) });
}, 180_000);
afterAll(() => s.stop());

/** Who is calling, and whose things a request names: the victim's (A's), or, for user-owned things, the caller's own. */
interface Call {
  caller: Caller | { token: string; userId: string };
  device: string;
}

/** What each route is called with: path parameters, query and body. Resource-making calls make a fresh one each time. */
type Sample = (c: Call) => Promise<{ path?: Record<string, string>; query?: string; body?: unknown; /** multipart fields (and a small file) instead of a JSON body */ form?: Record<string, string> }>;
const dev: Sample = async (c) => ({ path: { id: c.device } });
let seq = 0;
const SAMPLES: Record<string, Sample> = {
  'post /batches': async () => ({ body: { companyId: A.companyId, name: `t${seq++}`, count: 1 } }),
  'get /batches': async () => ({ query: 'limit=1000' }),
  'get /batches/:id': async () => ({ path: { id: A.batchId } }),
  'get /batches/:id/devices.csv': async () => ({ path: { id: A.batchId } }),
  'get /batches/:id/bundle.zip': async () => ({ path: { id: A.batchId } }),
  // The owned device only: POST /devices/{id}/status then changes A.deviceId (and is audited).
  'post /batches/:id/status': async () => ({ path: { id: A.batchId }, body: { status: 'manufacturing', deviceIds: [A.ownedDeviceId] } }),
  'get /bulk-operations/:id': async () => ({ path: { id: bulkOperationId } }),
  'get /devices': async () => ({ query: `batchId=${A.batchId}` }),
  'get /devices/:id': dev,
  'post /devices/:id/status': async (c) => ({ path: { id: c.device }, body: { status: 'manufacturing' } }),
  // Block then unblock: a caller allowed one is allowed the other, so the device ends unblocked.
  'post /devices/:id/block': dev,
  'post /devices/:id/unblock': dev,
  'post /devices/:id/secret': dev,
  'get /devices/:id/qr.png': dev,
  'get /devices/:id/qr.svg': dev,
  'get /devices/:id/sensors': dev,
  'put /devices/:id/sensors/:node/:property': async (c) => ({ path: { id: c.device, node: 'charger', property: 'current' }, body: { value: 8 } }),
  'post /devices/:id/commands': async (c) => ({ path: { id: c.device }, body: { command: 'ping' } }),
  'get /devices/:id/commands': dev,
  'get /devices/:id/commands/:commandId': async (c) => ({ path: { id: c.device, commandId: commandOf[c.device]! } }),
  'get /devices/:id/config': dev,
  'patch /devices/:id/config': async (c) => ({ path: { id: c.device }, body: { interval: 5 } }),
  'get /devices/:id/telemetry': dev,
  'get /devices/:id/logs': dev,
  'get /devices/:id/alerts': dev,
  'get /alerts': async () => ({ query: 'limit=1000' }),
  'get /alert-rules': async () => ({ query: 'limit=1000' }),
  'post /alert-rules': async () => ({ body: { companyId: A.companyId, name: 'r', node: 'charger', property: 'current', operator: '>', threshold: 1 } }),
  'get /alert-rules/:id': async () => ({ path: { id: ruleOf[A.companyId]! } }),
  'delete /alert-rules/:id': async () => {
    const r = await ok<{ id: string }>(await s.api('/api/v1/alert-rules', { method: 'POST', json: { companyId: A.companyId, name: 'doomed', node: 'charger', property: 'current', operator: '<', threshold: 0 } }));
    return { path: { id: r.id } };
  },
  'post /tokens': async () => ({ body: { name: 'made', companyId: A.companyId } }),
  'get /tokens': async () => ({ query: 'limit=1000' }),
  // A token is its user's: a member reads their own; anyone else is pointed at A's admin's.
  'get /tokens/:id': async (c) => ({ path: { id: await tokenFor(c) } }),
  'delete /tokens/:id': async (c) => ({ path: { id: await tokenFor(c) } }),
  'get /companies/:id/tokens': async () => ({ path: { id: A.companyId }, query: 'limit=1000' }),
  'delete /companies/:id/tokens/:tokenId': async () => {
    const t = await ok<{ id: string }>(await s.api('/api/v1/tokens', { token: A.members.viewer.token, method: 'POST', json: { name: 'company', companyId: A.companyId } }));
    return { path: { id: A.companyId, tokenId: t.id } };
  },
  // A's admin reads a member of A; A's other people their own record (what anyone may read); everyone else is pointed at A's admin.
  'get /users/:id': async (c) => ({ path: { id: c.caller === A.members.admin ? A.members.viewer.userId : isAs(c) ? c.caller.userId : A.members.admin.userId } }),
  'get /users': async () => ({ query: `email=${encodeURIComponent(lookupTarget.email)}` }),
  'post /users': async () => ({ body: { email: `u${Date.now()}.${seq++}@tenancy.invalid`, password: 'long enough password' } }),
  'delete /sessions/current': async () => ({}),
  'get /me': async () => ({}),
  // The caller's password is set to a known one first (the stack's users have none), so the change succeeds.
  'put /me/password': async (c) => {
    const userId = c.caller.userId || (await bootstrapAdminId(s.db));
    if (userId) await s.db('users').where({ id: userId }).update({ password_hash: knownPasswordHash });
    return { body: { currentPassword: KNOWN_PASSWORD, newPassword: 'another long password' } };
  },
  'post /companies': async () => ({ body: { name: 'new company' } }),
  'get /companies': async () => ({ query: 'limit=1000' }),
  'get /companies/:id': async () => ({ path: { id: A.companyId } }),
  'post /companies/:id/participations': async () => ({ path: { id: A.companyId }, body: { userId: (await s.endUser()).userId, role: 'viewer' } }),
  'get /companies/:id/participations': async () => ({ path: { id: A.companyId } }),
  'delete /companies/:id/participations/:participationId': async () => {
    const u = await s.member('viewer', A.companyId);
    const [p] = await s.db('participations').where({ user_id: u.userId }).pluck('id');
    return { path: { id: A.companyId, participationId: p as string } };
  },
  'get /audit': async () => ({ query: 'limit=1000' }),
  // Not a QR: answered 422 by the pairing rules to everyone the policy lets in (nothing changes).
  'post /pairings': async () => ({ body: { qr: 'not a device QR code' } }),
  'get /pairings/:id': async (c) => ({ path: { id: await pairingFor(c) } }),
  'delete /pairings/:id': async (c) => ({ path: { id: await pairingFor(c) } }),
  // An owner unpairs the spare device (for real); everyone else names the device they are given.
  'delete /devices/:id/owner': async (c) => ({ path: { id: c.caller === owner && c.device === A.ownedDeviceId ? spareOwnedId : c.device } }),
  'post /devices/:id/shares': async (c) => ({ path: { id: c.device }, body: { userId: (await s.endUser()).userId, role: 'viewer' } }),
  'get /devices/:id/shares': dev,
  'get /devices/:id/shares/:shareId': async (c) => ({ path: { id: c.device, shareId: await shareOf(c.device) } }),
  'delete /devices/:id/shares/:shareId': async (c) => ({ path: { id: c.device, shareId: await shareOf(c.device) } }),
  // Neither device of the samples runs firmware yet (not flashed): allowed callers get 409 device_not_ready, nothing starts.
  'post /devices/:id/update': async (c) => ({ path: { id: c.device }, body: { firmwareId: A.firmwareId } }),
  'get /devices/:id/updates': dev,
  'get /devices/:id/updates/:updateId': async (c) => ({ path: { id: c.device, updateId: await finishedUpdateOf(c.device) } }),
  // A finished update: cancelling it answers it as it ended.
  'delete /devices/:id/updates/:updateId': async (c) => ({ path: { id: c.device, updateId: await finishedUpdateOf(c.device) } }),
  // A fresh version each time, for A: its manufacturers and admins get through (201).
  'post /firmware': async () => ({ form: { version: `2.0.${seq++}`, model: 'ev-charger', companyId: A.companyId } }),
  'get /firmware': async () => ({ query: 'limit=1000' }),
  'get /firmware/:id': async () => ({ path: { id: A.firmwareId } }),
  'post /firmware/:id/promote': async () => ({ path: { id: A.firmwareId }, body: { channel: 'stable' } }),
  'get /companies/:id/models/:model/property-access': async () => ({ path: { id: A.companyId, model: 'ev-charger' } }),
  'put /companies/:id/models/:model/property-access/:node/:property': async () => ({ path: { id: A.companyId, model: 'ev-charger', node: 'charger', property: 'current' }, body: { visibleTo: ['owner', 'serviceman', 'viewer'], settableBy: ['owner', 'serviceman'] } }),
  'delete /companies/:id/models/:model/property-access/:node/:property': async () => {
    await s.db('property_access').insert({ company_id: A.companyId, model: 'ev-charger', node: 'charger', property: 'doomed', visible_to: [], settable_by: [], updated_by: 'tenancy' }).onConflict(['company_id', 'model', 'node', 'property']).ignore();
    return { path: { id: A.companyId, model: 'ev-charger', node: 'charger', property: 'doomed' } };
  },
};

/** Whether the caller is one of A's people (its staff, or the owner of its devices). */
const isAs = (c: Call) => [...Object.values(A.members), owner].some((m) => m.userId === c.caller.userId);

/** A fresh open share of the device (with an end user counted among A's things, so nobody outside A is named). */
async function shareOf(deviceId: string): Promise<string> {
  const id = newEntityId();
  const userId = shareTarget.userId;
  await s.db('device_shares').where({ device_id: deviceId, user_id: userId }).whereNull('ended_at').update({ ended_at: new Date(), end_reason: 'revoked' });
  await s.db('device_shares').insert({ id, device_id: deviceId, user_id: userId, role: 'viewer', created_by: A.members.admin.userId });
  return id;
}

/** A finished update of the device (to A's release). */
async function finishedUpdateOf(deviceId: string): Promise<string> {
  const id = newEntityId();
  await s.db('device_updates').insert({ id, device_id: deviceId, release_id: A.firmwareId, version: '1.0.0', status: 'failed', error: 'timeout', finished_at: new Date() });
  return id;
}

/** A finished pairing attempt on A's device: the caller's own when they are one of A's people, else A's admin's. */
async function pairingFor(c: Call): Promise<string> {
  const id = newEntityId();
  const userId = isAs(c) ? c.caller.userId : A.members.admin.userId;
  await s.db('pairings').insert({ id, device_id: A.deviceId, user_id: userId, status: 'expired', expires_at: new Date(), created_at: new Date(), finished_at: new Date() });
  return id;
}

/** A fresh token: the caller's own when they are one of A's people, else one of A's admin. */
async function tokenFor(c: Call): Promise<string> {
  const by = isAs(c) ? c.caller.token : A.members.admin.token;
  return (await ok<{ id: string }>(await s.api('/api/v1/tokens', { token: by, method: 'POST', json: { name: 'target' } }))).id;
}

/** The answer, with what the request itself named left out (an error may repeat the ID it was asked about). */
async function call(r: RouteSpec, c: Call): Promise<{ status: number; body: string }> {
  const sample = await SAMPLES[key(r)]!(c);
  const path = r.path.replace(/:(\w+)/g, (_m, name: string) => encodeURIComponent(sample.path![name]!));
  const res = await s.api(`/api/v1${path}${sample.query ? `?${sample.query}` : ''}`, { token: c.caller.token, method: r.method.toUpperCase(), ...(sample.form ? { body: firmwareForm(sample.form) } : { json: sample.body }) });
  let body = await res.text();
  for (const named of [...Object.values(sample.path ?? {}), ...Object.values((sample.body ?? sample.form ?? {}) as Record<string, unknown>)]) {
    if (typeof named === 'string' && named.length >= 12) body = body.split(named).join('<named>');
  }
  return { status: res.status, body };
}

const guarded = () => routes.filter((r) => r.permission !== null);
const leaks = (body: string, t: Tenant) => t.ids.filter((id) => body.includes(id));

describe('the route table', () => {
  it('declares who may call every route: a known permission, or public for the few that are', () => {
    for (const r of routes) {
      if (r.permission === null) expect(PUBLIC).toContain(key(r));
      else expect(PERMISSIONS).toContain(r.permission);
    }
  });

  it('has a sample call for every guarded route (a new route needs one here)', () => {
    expect(guarded().map(key).filter((k) => !SAMPLES[k])).toEqual([]);
  });
});

describe('the tenancy matrix', () => {
  it('refuses a revoked token and an expired session with 401 on every route', async () => {
    const wrong: string[] = [];
    for (const r of guarded()) {
      for (const token of [revoked, expiredSession]) {
        const { status } = await call(r, { caller: { token, userId: '' }, device: A.deviceId });
        if (status !== 401) wrong.push(`${key(r)} ${token.slice(0, 5)}: ${status}`);
      }
    }
    expect(wrong).toEqual([]);
  }, 120_000);

  it("gives another company's people and an unrelated end user 403/404 on A's things, and none of A's data anywhere", async () => {
    const wrong: string[] = [];
    const outsiders: [string, Caller, string][] = [
      ...COMPANY_ROLES.map((role): [string, Caller, string] => [`B ${role}`, B.members[role], A.deviceId]),
      ['end user', stranger, A.ownedDeviceId],
    ];
    for (const r of guarded()) {
      const sample = await SAMPLES[key(r)]!({ caller: stranger, device: A.deviceId });
      const namesA = /:\w+/.test(r.path) || JSON.stringify(sample.body ?? sample.form ?? {}).includes(A.companyId);
      for (const [who, caller, device] of outsiders) {
        const { status, body } = await call(r, { caller, device });
        if (namesA && status !== 403 && status !== 404) wrong.push(`${key(r)} as ${who}: ${status}`);
        if (!namesA && (status === 401 || status >= 500)) wrong.push(`${key(r)} as ${who}: ${status}`);
        const seen = leaks(body, A);
        if (seen.length > 0) wrong.push(`${key(r)} as ${who} saw ${seen.join(', ')}`);
      }
    }
    expect(wrong).toEqual([]);
  }, 300_000);

  it('gives each role of A 403 where it lacks the right and lets it through where it has it; never shows B', async () => {
    const wrong: string[] = [];
    for (const r of guarded()) {
      for (const role of COMPANY_ROLES) {
        // What anyone holds on their own things (their account, their record) each role holds too: the samples name the caller's own.
        const has = ROLE_TABLE.company[role].includes(r.permission!) || ROLE_TABLE.anyone.includes(r.permission!);
        const { status, body } = await call(r, { caller: A.members[role], device: A.deviceId });
        if (has && [401, 403, 404].includes(status)) wrong.push(`${key(r)} as A ${role}: ${status} (has '${r.permission}')`);
        // Lacking the right in A: 403; except a list of what anyone may hold as a device owner
        // (alerts, rules), which answers with the caller's own devices' only: none of A's.
        const ownList = status === 200 && !/:\w+/.test(r.path) && ROLE_TABLE.owner.includes(r.permission!);
        if (!has && status !== 403 && !ownList) wrong.push(`${key(r)} as A ${role}: ${status} (lacks '${r.permission}')`);
        if (ownList && !has && A.telemetryIds.some((id) => body.includes(id))) wrong.push(`${key(r)} as A ${role} saw A's telemetry`);
        if (status >= 500) wrong.push(`${key(r)} as A ${role}: ${status}`);
        const seen = leaks(body, B);
        if (seen.length > 0) wrong.push(`${key(r)} as A ${role} saw B's ${seen.join(', ')}`);
      }
    }
    expect(wrong).toEqual([]);
  }, 300_000);

  it("lets the platform admin through everywhere, seeing A's data on A's lists (so the checks above can fail)", async () => {
    const wrong: string[] = [];
    for (const r of guarded()) {
      const { status, body } = await call(r, { caller: { token: s.adminToken, userId: '' }, device: A.deviceId });
      if ([401, 403, 404].includes(status) || status >= 500) wrong.push(`${key(r)}: ${status}`);
      if (r.method === 'get' && ['/batches', '/devices', '/alerts', '/alert-rules', '/companies', '/audit', '/firmware'].includes(r.path) && leaks(body, A).length === 0) wrong.push(`${key(r)} shows none of A`);
    }
    expect(wrong).toEqual([]);
  }, 300_000);

  it("lets the device's owner do what an owner may, only on that device, and list it", async () => {
    const wrong: string[] = [];
    for (const r of guarded().filter((x) => x.path.startsWith('/devices/:id'))) {
      const has = ROLE_TABLE.owner.includes(r.permission!);
      const { status } = await call(r, { caller: owner, device: A.ownedDeviceId });
      if (has && ([401, 403, 404].includes(status) || status >= 500)) wrong.push(`${key(r)}: ${status} (an owner may)`);
      if (!has && status !== 403) wrong.push(`${key(r)}: ${status} (an owner may not)`);
      const other = await call(r, { caller: owner, device: A.deviceId });
      // Where an owner may do this at all, another device is hidden (404); where not, refused outright (403).
      if (other.status !== (has ? 404 : 403)) wrong.push(`${key(r)} on a device not theirs: ${other.status}`);
    }
    expect(wrong).toEqual([]);
    const listed = await ok<{ items: { id: string }[] }>(await s.api('/api/v1/devices', { token: owner.token }), 200);
    expect(listed.items.map((d) => d.id)).toEqual([A.ownedDeviceId]);
  }, 120_000);
  it('lets a serviceman and a viewer do what their share allows, only on the shared device, and list it', async () => {
    const wrong: string[] = [];
    for (const role of ['serviceman', 'viewer'] as const) {
      const sharee = await s.endUser();
      await ok(await s.api(`/api/v1/devices/${A.ownedDeviceId}/shares`, { token: owner.token, method: 'POST', json: { userId: sharee.userId, role } }));
      for (const r of guarded().filter((x) => x.path.startsWith('/devices/:id'))) {
        const has = ROLE_TABLE.share[role].includes(r.permission!);
        const { status } = await call(r, { caller: sharee, device: A.ownedDeviceId });
        if (has && ([401, 403, 404].includes(status) || status >= 500)) wrong.push(`${key(r)} as ${role}: ${status} (a ${role} may)`);
        if (!has && status !== 403) wrong.push(`${key(r)} as ${role}: ${status} (a ${role} may not)`);
        // Another device: hidden (404) wherever an end user may hold the permission at all (as its owner, too); else 403.
        const other = await call(r, { caller: sharee, device: A.deviceId });
        const anywhere = has || ROLE_TABLE.owner.includes(r.permission!);
        if (other.status !== (anywhere ? 404 : 403)) wrong.push(`${key(r)} as ${role} on a device not shared: ${other.status}`);
      }
      const listed = await ok<{ items: { id: string }[] }>(await s.api('/api/v1/devices', { token: sharee.token }), 200);
      if (JSON.stringify(listed.items.map((d) => d.id)) !== JSON.stringify([A.ownedDeviceId])) wrong.push(`${role} lists ${listed.items.map((d) => d.id).join(', ')}`);
    }
    expect(wrong).toEqual([]);
  }, 120_000);

  it("records in A's audit log what the matrix did to A's things, without a secret, for A's admin only", async () => {
    type Page = { items: { action: string; deviceId: string | null; details: unknown }[] };
    const deviceLog = await ok<Page>(await s.api(`/api/v1/audit?deviceId=${A.deviceId}&limit=1000`, { token: A.members.admin.token }), 200);
    const actions = new Set(deviceLog.items.map((e) => e.action));
    for (const a of ['device.status_changed', 'device.config_changed', 'device.qr_exported']) expect(actions).toContain(a);
    expect(deviceLog.items.every((e) => e.deviceId === A.deviceId)).toBe(true);
    const companyLog = await ok<Page>(await s.api(`/api/v1/audit?companyId=${A.companyId}&limit=1000`, { token: A.members.admin.token }), 200);
    for (const a of ['batch.created', 'batch.exported', 'batch.status_changed', 'alert_rule.created', 'alert_rule.deleted', 'participation.set', 'participation.removed', 'token.created', 'token.revoked']) {
      expect(new Set(companyLog.items.map((e) => e.action))).toContain(a);
    }
    const { secret, pairingCode } = s.credentials.device(A.deviceId);
    const text = JSON.stringify(companyLog);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(pairingCode);
    expect((await s.api(`/api/v1/audit?deviceId=${A.deviceId}`, { token: B.members.admin.token })).status).toBe(404);
  });
});
