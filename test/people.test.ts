// Users, sign-in, sessions, companies, participations and tokens, against the real stack: what
// each answers, that secrets are stored hashed and shown once, that rights follow the user's
// current roles, and that sign-in is rate limited without a lasting lock-out.
import { SIGN_UP_RULES, SignInLimiter } from '../api/sign-in-limiter';
import { PasswordGate } from '../api/password-gate';

/** Counts the password hashes the API runs. */
class CountingGate extends PasswordGate {
  runs = 0;
  override run<T>(work: () => Promise<T>): Promise<T> {
    this.runs++;
    return super.run(work);
  }
}
const hashes = new CountingGate();
import { startStack, eventually, type Stack } from './support/stack';

let s: Stack;
beforeAll(async () => {
  // This file signs many users up from one address: sign-up's own limit is tested apart, below.
  s = await startStack({ worker: false, signUp: new SignInLimiter([{ name: 'address', key: (_e, a) => a, burst: 10_000, refillMs: 1 }]), passwords: hashes });
});
afterAll(() => s.stop());

const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;
let n = 0;
const freshEmail = () => `Person.${Date.now()}.${n++}@Example.com`;
const PASSWORD = 'a long enough password';

async function signUp(email = freshEmail(), password = PASSWORD): Promise<{ id: string; email: string }> {
  const r = await s.api('/api/v1/users', { token: null, method: 'POST', json: { email, password } });
  expect(r.status).toBe(201);
  return (await r.json()) as { id: string; email: string };
}
async function signIn(email: string, password = PASSWORD): Promise<Response> {
  return s.api('/api/v1/sessions', { token: null, method: 'POST', json: { email, password } });
}

describe('sign-up, sign-in, sessions', () => {
  it('creates an end user, stores only a scrypt hash, and signs them in with a session', async () => {
    const email = freshEmail();
    const user = await signUp(email);
    expect(user).toMatchObject({ email: email.toLowerCase(), platformAdmin: false });
    expect(JSON.stringify(user)).not.toContain(PASSWORD);
    const row = await s.db('users').where({ id: user.id }).first();
    expect(row.password_hash).toMatch(/^scrypt\$14\$8\$5\$/);
    expect(JSON.stringify(row)).not.toContain(PASSWORD);

    const r = await signIn(email.toUpperCase());
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const session = (await r.json()) as { token: string; expiresAt: string; user: { id: string } };
    expect(session.user.id).toBe(user.id);
    expect(session.token).toMatch(/^rdms_/);
    expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now());
    expect(JSON.stringify(await s.db('sessions').where({ user_id: user.id }))).not.toContain(session.token);

    const me = await s.api('/api/v1/me', { token: session.token });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ user: { id: user.id }, participations: [], credential: { via: 'session', companyId: null } });
    // An end user sees no company's devices or batches.
    expect(await (await s.api('/api/v1/devices', { token: session.token })).json()).toMatchObject({ items: [] });
    expect((await s.api('/api/v1/batches', { token: session.token })).status).toBe(403);
  });

  it('answers a wrong password and an unknown email alike, each after one password hash', async () => {
    const { email } = await signUp();
    const before = hashes.runs;
    const wrong = await signIn(email, 'not the password at all');
    expect(hashes.runs).toBe(before + 1);
    const unknown = await signIn(freshEmail(), 'not the password at all');
    expect(hashes.runs).toBe(before + 2); // a decoy hash: an unknown email takes as long
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(await errorOf(wrong)).toEqual(await errorOf(unknown));
  });

  it('refuses a second account with the same email (any case), and a short password', async () => {
    const { email } = await signUp();
    const again = await s.api('/api/v1/users', { token: null, method: 'POST', json: { email: email.toUpperCase(), password: PASSWORD } });
    expect(again.status).toBe(409);
    expect((await errorOf(again)).code).toBe('email_taken');
    const short = await s.api('/api/v1/users', { token: null, method: 'POST', json: { email: freshEmail(), password: 'short' } });
    expect(short.status).toBe(400);
  });

  it('lets no one but a platform admin make a platform admin', async () => {
    const anon = await s.api('/api/v1/users', { token: null, method: 'POST', json: { email: freshEmail(), password: PASSWORD, platformAdmin: true } });
    expect(anon.status).toBe(403);
    const companyAdmin = await s.token('admin');
    expect((await s.api('/api/v1/users', { token: companyAdmin, method: 'POST', json: { email: freshEmail(), password: PASSWORD, platformAdmin: true } })).status).toBe(403);
    const made = await s.api('/api/v1/users', { method: 'POST', json: { email: freshEmail(), password: PASSWORD, platformAdmin: true } });
    expect(made.status).toBe(201);
    expect(await made.json()).toMatchObject({ platformAdmin: true });
  });

  it('ends a session on sign-out, and refuses an expired one', async () => {
    const { email, id } = await signUp();
    const { token } = (await (await signIn(email)).json()) as { token: string };
    expect((await s.api('/api/v1/me', { token })).status).toBe(200);
    expect((await s.api('/api/v1/sessions/current', { token, method: 'DELETE' })).status).toBe(204);
    expect((await s.api('/api/v1/me', { token })).status).toBe(401);

    const second = (await (await signIn(email)).json()) as { token: string };
    await s.db('sessions').where({ user_id: id }).whereNull('revoked_at').update({ expires_at: new Date(Date.now() - 1000) });
    const expired = await s.api('/api/v1/me', { token: second.token });
    expect(expired.status).toBe(401);
    // An API token is not a session: signing it out is refused, and it keeps working.
    const t = await s.token('viewer');
    expect((await s.api('/api/v1/sessions/current', { token: t, method: 'DELETE' })).status).toBe(409);
    expect((await s.api('/api/v1/me', { token: t })).status).toBe(200);
  });

  it('changes a password with the current one: the old stops, other sessions end, this one goes on', async () => {
    const { email, id } = await signUp();
    const here = ((await (await signIn(email)).json()) as { token: string }).token;
    const elsewhere = ((await (await signIn(email)).json()) as { token: string }).token;
    const change = (token: string, body: unknown) => s.api('/api/v1/me/password', { token, method: 'PUT', json: body });
    const NEW = 'a brand new long password';
    expect(await errorOf(await change(here, { currentPassword: 'not the password', newPassword: NEW }))).toMatchObject({ code: 'wrong_password' });
    expect((await change(here, { currentPassword: PASSWORD, newPassword: 'short' })).status).toBe(400);
    expect((await change(here, { currentPassword: PASSWORD, newPassword: PASSWORD })).status).toBe(400);
    // Refusals changed nothing.
    expect((await signIn(email)).status).toBe(201);
    expect((await change(here, { currentPassword: PASSWORD, newPassword: NEW })).status).toBe(204);
    expect((await signIn(email)).status).toBe(401);
    expect((await signIn(email, NEW)).status).toBe(201);
    expect((await s.api('/api/v1/me', { token: here })).status).toBe(200);
    // Within the 5 s a credential is cached for.
    await eventually(async () => (await s.api('/api/v1/me', { token: elsewhere })).status === 401, 10_000, 250);
    const row = await s.db('users').where({ id }).first('password_hash');
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(JSON.stringify(row)).not.toContain(NEW);
    const logged = await s.db('audit_events').where({ action: 'user.password_changed', target_id: id }).first('details');
    expect(JSON.stringify(logged)).not.toContain(NEW);
    // An account without a password (the stack's users call with tokens) has none to change.
    expect(await errorOf(await change(await s.token('viewer'), { currentPassword: PASSWORD, newPassword: NEW }))).toMatchObject({ code: 'no_password' });
  });

  it('rate limits sign-in per account and address with 429 and Retry-After; other accounts are unaffected', async () => {
    const { email } = await signUp();
    for (let i = 0; i < 5; i++) expect((await signIn(email, 'wrong password number ' + i)).status).toBe(401);
    const limited = await signIn(email);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect((await errorOf(limited)).code).toBe('rate_limited');
    const other = await signUp();
    expect((await signIn(other.email)).status).toBe(201);
  });
});

describe('companies, participations, tokens', () => {
  it('a platform admin creates a company; its admin adds members; a member acts in it only', async () => {
    const created = await s.api('/api/v1/companies', { method: 'POST', json: { name: 'Acme Chargers' } });
    expect(created.status).toBe(201);
    const company = (await created.json()) as { id: string; name: string };
    const admin = await s.member('admin', company.id);
    const tech = await s.endUser();
    const added = await s.api(`/api/v1/companies/${company.id}/participations`, { token: admin.token, method: 'POST', json: { userId: tech.userId, role: 'technician' } });
    expect(added.status).toBe(201);
    const participation = (await added.json()) as { id: string; role: string };
    expect(participation.role).toBe('technician');

    const me = (await (await s.api('/api/v1/me', { token: tech.token })).json()) as { participations: { companyId: string; role: string }[] };
    expect(me.participations).toEqual([expect.objectContaining({ companyId: company.id, role: 'technician', companyName: 'Acme Chargers' })]);
    const list = (await (await s.api(`/api/v1/companies/${company.id}/participations`, { token: admin.token })).json()) as { items: { userId: string }[] };
    expect(list.items.map((p) => p.userId).sort()).toEqual([admin.userId, tech.userId].sort());
    // The company admin of another company sees nothing of it.
    const stranger = await s.member('admin');
    expect((await s.api(`/api/v1/companies/${company.id}`, { token: stranger.token })).status).toBe(404);
    expect((await s.api(`/api/v1/companies/${company.id}/participations`, { token: stranger.token, method: 'POST', json: { userId: stranger.userId, role: 'admin' } })).status).toBe(404);
    expect((await (await s.api('/api/v1/companies', { token: stranger.token })).json()) as { items: { id: string }[] }).toMatchObject({ items: [{ id: s.companyId }] });
  });

  it("keeps a company's last admin: not removed, not demoted, until another admin exists", async () => {
    const company = await s.company('one admin');
    const admin = await s.member('admin', company);
    const [p] = await s.db('participations').where({ user_id: admin.userId, company_id: company }).pluck('id');
    const remove = await s.api(`/api/v1/companies/${company}/participations/${p}`, { token: admin.token, method: 'DELETE' });
    expect(remove.status).toBe(409);
    expect((await errorOf(remove)).code).toBe('last_admin');
    expect((await s.api(`/api/v1/companies/${company}/participations`, { token: admin.token, method: 'POST', json: { userId: admin.userId, role: 'viewer' } })).status).toBe(409);
    const second = await s.endUser();
    expect((await s.api(`/api/v1/companies/${company}/participations`, { token: admin.token, method: 'POST', json: { userId: second.userId, role: 'admin' } })).status).toBe(201);
    expect((await s.api(`/api/v1/companies/${company}/participations/${p}`, { token: admin.token, method: 'DELETE' })).status).toBe(204);
  });

  it('keeps the last admin when two admins are removed at the same moment: one goes, the other stays', async () => {
    for (let round = 0; round < 5; round++) {
      const company = await s.company(`racing admins ${round}`);
      const admins = await Promise.all([s.member('admin', company), s.member('admin', company)]);
      const ids = (await s.db('participations').where({ company_id: company }).pluck('id')) as string[];
      const answers = await Promise.all(ids.map((p) => s.api(`/api/v1/companies/${company}/participations/${p}`, { method: 'DELETE' })));
      expect(answers.map((r) => r.status).sort()).toEqual([204, 409]);
      expect(await s.db('participations').where({ company_id: company, role: 'admin' }).count({ n: '*' })).toEqual([{ n: '1' }]);
      expect(admins).toHaveLength(2);
    }
  });

  it("a company token acts with the user's role there, and loses it with the role", async () => {
    const company = await s.company('token co');
    const tech = await s.member('technician', company);
    const minted = await s.api('/api/v1/tokens', { token: tech.token, method: 'POST', json: { name: 'ci', companyId: company } });
    expect(minted.status).toBe(201);
    const { token, id } = (await minted.json()) as { token: string; id: string };
    expect(JSON.stringify(await s.db('tokens').where({ id }).first())).not.toContain(token);
    expect((await s.api('/api/v1/alert-rules', { token })).status).toBe(200);
    // A company token may not mint a token with more reach, nor one for another company.
    const wider = (await (await s.api('/api/v1/tokens', { token, method: 'POST', json: { name: 'wider' } })).json()) as { companyId: string };
    expect(wider.companyId).toBe(company);
    expect((await s.api('/api/v1/tokens', { token, method: 'POST', json: { name: 'other', companyId: s.companyId } })).status).toBe(403);
    // A token for a company the user has no role in is refused.
    expect((await s.api('/api/v1/tokens', { token: tech.token, method: 'POST', json: { name: 'x', companyId: s.companyId } })).status).toBe(404);

    const [p] = await s.db('participations').where({ user_id: tech.userId, company_id: company });
    const admin = await s.member('admin', company);
    expect((await s.api(`/api/v1/companies/${company}/participations/${p.id}`, { token: admin.token, method: 'DELETE' })).status).toBe(204);
    await eventually(async () => (await s.api('/api/v1/alert-rules', { token })).status === 403, 30_000, 250);
  });

  it('refuses an expired or revoked token with 401', async () => {
    const viewer = await s.member('viewer');
    const soon = new Date(Date.now() + 60_000).toISOString();
    const made = (await (await s.api('/api/v1/tokens', { token: viewer.token, method: 'POST', json: { name: 'short', expiresAt: soon } })).json()) as { id: string; token: string; expiresAt: string };
    expect(made.expiresAt).toBe(soon);
    await s.db('tokens').where({ id: made.id }).update({ expires_at: new Date(Date.now() - 1000) });
    expect((await s.api('/api/v1/me', { token: made.token })).status).toBe(401);
    const past = await s.api('/api/v1/tokens', { token: viewer.token, method: 'POST', json: { name: 'past', expiresAt: '2020-01-01T00:00:00Z' } });
    expect(past.status).toBe(400);

    const other = await s.member('viewer');
    const mine = (await (await s.api('/api/v1/tokens', { token: viewer.token })).json()) as { items: { id: string; userId: string }[] };
    expect(mine.items.every((t) => t.userId === viewer.userId)).toBe(true);
    // Another user's token is hidden; the owner revokes it.
    expect((await s.api(`/api/v1/tokens/${made.id}`, { token: other.token, method: 'DELETE' })).status).toBe(404);
    expect((await s.api(`/api/v1/tokens/${made.id}`, { token: viewer.token, method: 'DELETE' })).status).toBe(204);
  });

  it('revokes a token at once: the next request with it is refused', async () => {
    const viewer = await s.member('viewer');
    const made = (await (await s.api('/api/v1/tokens', { token: viewer.token, method: 'POST', json: { name: 'doomed' } })).json()) as { id: string; token: string };
    expect((await s.api('/api/v1/me', { token: made.token })).status).toBe(200); // now cached
    expect((await s.api(`/api/v1/tokens/${made.id}`, { token: viewer.token, method: 'DELETE' })).status).toBe(204);
    expect((await s.api('/api/v1/me', { token: made.token })).status).toBe(401);
    // A second revoke changes nothing and records nothing more.
    expect((await s.api(`/api/v1/tokens/${made.id}`, { token: viewer.token, method: 'DELETE' })).status).toBe(204);
    expect(await s.db('audit_events').where({ action: 'token.revoked', target_id: made.id }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });

  it('ADMIN_TOKEN acts as the platform admin made on first start', async () => {
    const me = (await (await s.api('/api/v1/me')).json()) as { user: { platformAdmin: boolean; email: string }; credential: { via: string } };
    expect(me).toMatchObject({ user: { platformAdmin: true, email: 'admin@localhost' }, credential: { via: 'env' } });
  });
});

describe("a company's API tokens", () => {
  type TokenPage = { items: Record<string, unknown>[]; nextCursor: string | null };

  it("lets the company's admin list the tokens limited to it, page by page, never a secret, and none of elsewhere", async () => {
    const company = await s.company('token owners');
    const [admin, tech] = await Promise.all([s.member('admin', company), s.member('technician', company)]);
    const limited = await Promise.all([mint(tech.token, { name: 'ci', companyId: company }), mint(tech.token, { name: 'factory', companyId: company }), mint(admin.token, { name: 'mine', companyId: company })]);
    const personal = await mint(tech.token, { name: 'personal' }); // acts for the technician everywhere: theirs, not the company's
    const elsewhere = await mint((await s.member('admin')).token, { name: 'other company', companyId: s.companyId });

    const first = (await (await s.api(`/api/v1/companies/${company}/tokens?limit=2`, { token: admin.token })).json()) as TokenPage;
    expect(first.items).toHaveLength(2);
    const second = (await (await s.api(`/api/v1/companies/${company}/tokens?limit=2&cursor=${first.nextCursor}`, { token: admin.token })).json()) as TokenPage;
    expect(second.nextCursor).toBeNull();
    const all = [...first.items, ...second.items];
    expect(all.map((t) => t.id).sort()).toEqual(limited.map((t) => t.id).sort());
    expect(all.every((t) => t.companyId === company)).toBe(true);
    const text = JSON.stringify(all);
    for (const t of [...limited, personal, elsewhere]) expect(text).not.toContain(t.token);
    expect(text).not.toMatch(/hash/i);
    expect(text).not.toContain(personal.id);
    expect(text).not.toContain(elsewhere.id);
    // The platform admin sees them too.
    expect(((await (await s.api(`/api/v1/companies/${company}/tokens`)).json()) as TokenPage).items).toHaveLength(3);
  });

  it("lets the company's admin (and a platform admin) revoke a member's token: refused at once, audited; no one else", async () => {
    const company = await s.company('revoking');
    const [admin, tech, viewer] = await Promise.all([s.member('admin', company), s.member('technician', company), s.member('viewer', company)]);
    const t = await mint(tech.token, { name: 'ci', companyId: company });
    const revoke = (by: string | undefined, id = t.id, at = company) => s.api(`/api/v1/companies/${at}/tokens/${id}`, { token: by, method: 'DELETE' });
    expect((await s.api('/api/v1/alert-rules', { token: t.token })).status).toBe(200);

    expect((await revoke(viewer.token)).status).toBe(403);
    expect((await revoke(tech.token)).status).toBe(403);
    expect((await s.api(`/api/v1/companies/${company}/tokens`, { token: tech.token })).status).toBe(403);
    const otherAdmin = await s.member('admin');
    expect((await revoke(otherAdmin.token)).status).toBe(404);
    expect((await s.api(`/api/v1/companies/${company}/tokens`, { token: otherAdmin.token })).status).toBe(404);
    // A token of another company, or the member's own token without a company, is not the company's to revoke.
    const personal = await mint(tech.token, { name: 'personal' });
    expect((await revoke(admin.token, personal.id)).status).toBe(404);
    const foreign = await mint(otherAdmin.token, { name: 'foreign', companyId: s.companyId });
    expect((await revoke(admin.token, foreign.id)).status).toBe(404);
    expect((await s.api('/api/v1/me', { token: personal.token })).status).toBe(200);
    expect((await s.api('/api/v1/me', { token: foreign.token })).status).toBe(200);
    expect((await s.api('/api/v1/alert-rules', { token: t.token })).status).toBe(200); // nothing of that touched it

    expect((await revoke(admin.token)).status).toBe(204);
    expect((await s.api('/api/v1/alert-rules', { token: t.token })).status).toBe(401);
    const listed = ((await (await s.api(`/api/v1/companies/${company}/tokens`, { token: admin.token })).json()) as TokenPage).items;
    expect(listed.find((x) => x.id === t.id)?.revokedAt).toEqual(expect.any(String));
    const log = (await (await s.api(`/api/v1/audit?companyId=${company}`, { token: admin.token })).json()) as { items: { action: string; actor: { userId: string }; target: { id: string }; details: Record<string, unknown> }[] };
    const entry = log.items.find((e) => e.action === 'token.revoked');
    expect(entry).toMatchObject({ actor: { userId: admin.userId }, target: { id: t.id }, details: { userId: tech.userId } });
    expect(JSON.stringify(log)).not.toContain(t.token);

    const second = await mint(tech.token, { name: 'second', companyId: company });
    expect((await revoke(undefined, second.id)).status).toBe(204); // the platform admin (ADMIN_TOKEN)
    expect((await s.api('/api/v1/me', { token: second.token })).status).toBe(401);
  });
});

describe("a person's record", () => {
  type PersonRecord = { id: string; email: string; name: string | null; createdAt: string; participations: { companyId: string; role: string }[] };
  const read = (id: string, token?: string) => s.api(`/api/v1/users/${id}`, { token });

  it('shows a person to themselves, a platform admin, and the admins of their companies (their own companies\' roles only); to others it does not exist', async () => {
    const [x, y] = await Promise.all([s.company('record x'), s.company('record y')]);
    const [adminX, adminY, viewerX] = await Promise.all([s.member('admin', x), s.member('admin', y), s.member('viewer', x)]);
    const person = await s.member('technician', x);
    await s.api(`/api/v1/companies/${y}/participations`, { token: adminY.token, method: 'POST', json: { userId: person.userId, role: 'viewer' } });

    const own = (await (await read(person.userId, person.token)).json()) as PersonRecord;
    expect(own).toMatchObject({ id: person.userId, email: person.email });
    expect(Object.keys(own).sort()).toEqual(['createdAt', 'email', 'id', 'name', 'participations']);
    expect(own.participations.map((p) => p.companyId).sort()).toEqual([x, y].sort());
    const byPlatform = (await (await read(person.userId)).json()) as PersonRecord;
    expect(byPlatform.participations).toHaveLength(2);
    const byAdminX = (await (await read(person.userId, adminX.token)).json()) as PersonRecord;
    expect(byAdminX.participations).toEqual([expect.objectContaining({ companyId: x, role: 'technician' })]);
    expect(JSON.stringify(byAdminX)).not.toContain(y);

    // A fellow member without the right, an admin elsewhere, an end user, and an unknown ID: the same 404.
    const stranger = await s.endUser();
    const unknown = await (await read('ZZZZZZZZZZZZZZZZ', adminX.token)).json();
    for (const token of [viewerX.token, (await s.member('admin')).token, stranger.token]) {
      const r = await read(person.userId, token);
      expect(r.status).toBe(404);
      expect(JSON.stringify(await r.json()).replace(person.userId, 'ZZZZZZZZZZZZZZZZ')).toBe(JSON.stringify(unknown));
    }
    // Through a token limited to one company, the admin sees that company's roles only.
    const { token: limited } = await mint(adminY.token, { name: 'y only', companyId: y });
    expect(((await (await read(person.userId, limited)).json()) as PersonRecord).participations).toEqual([expect.objectContaining({ companyId: y, role: 'viewer' })]);
    const { token: xOnly } = await mint(adminX.token, { name: 'x only', companyId: x });
    expect((await read(adminY.userId, xOnly)).status).toBe(404);
  });

  it('finds a person by exact email for platform and company admins only: at most that one, no partial match', async () => {
    const admin = await s.member('admin');
    const target = await s.endUser();
    const find = (email: string, token?: string) => s.api(`/api/v1/users?email=${encodeURIComponent(email)}`, { token });
    const found = (await (await find(target.email.toUpperCase(), admin.token)).json()) as { items: PersonRecord[]; nextCursor: null };
    expect(found).toEqual({ items: [{ id: target.userId, email: target.email, name: null, createdAt: expect.any(String) }], nextCursor: null });
    expect(((await (await find(target.email)).json()) as { items: unknown[] }).items).toHaveLength(1);
    for (const near of [target.email.slice(1), target.email.replace('@', '@x'), `nobody.${Date.now()}@example.com`]) {
      expect(await (await find(near, admin.token)).json()).toEqual({ items: [], nextCursor: null });
    }
    // An end user and a member without the right cannot probe emails.
    for (const token of [(await s.endUser()).token, await s.token('viewer'), await s.token('technician')]) expect((await find(target.email, token)).status).toBe(403);
    expect((await s.api('/api/v1/users', { token: admin.token })).status).toBe(400); // the email is required: no listing of everyone
  });
});

/** An API token of the caller's own. */
async function mint(token: string, body: Record<string, unknown>) {
  return (await (await s.api('/api/v1/tokens', { token, method: 'POST', json: body })).json()) as { id: string; token: string };
}

describe('the audit log', () => {
  it("records people changes for the company's admins and the platform, never a secret", async () => {
    const company = (await (await s.api('/api/v1/companies', { method: 'POST', json: { name: 'Audited' } })).json()) as { id: string };
    const admin = await s.member('admin', company.id);
    const user = await s.endUser();
    await s.api(`/api/v1/companies/${company.id}/participations`, { token: admin.token, method: 'POST', json: { userId: user.userId, role: 'viewer' } });
    const minted = (await (await s.api('/api/v1/tokens', { token: admin.token, method: 'POST', json: { name: 'audited', companyId: company.id } })).json()) as { token: string; id: string };

    const page = (await (await s.api(`/api/v1/audit?companyId=${company.id}`, { token: admin.token })).json()) as { items: { action: string; actor: { userId: string } }[] };
    expect(page.items.map((e) => e.action)).toEqual(['token.created', 'participation.set', 'company.created']);
    expect(page.items[0]!.actor.userId).toBe(admin.userId);
    expect(JSON.stringify(page)).not.toContain(minted.token);
    const all = (await (await s.api('/api/v1/audit?limit=1000')).json()) as { items: { companyId: string | null }[] };
    expect(all.items.some((e) => e.companyId === company.id)).toBe(true);

    const stranger = await s.member('admin');
    expect((await s.api(`/api/v1/audit?companyId=${company.id}`, { token: stranger.token })).status).toBe(404);
    const theirs = (await (await s.api('/api/v1/audit?limit=1000', { token: stranger.token })).json()) as { items: { companyId: string | null }[] };
    expect(theirs.items.some((e) => e.companyId === company.id)).toBe(false);
    expect((await s.api('/api/v1/audit', { token: user.token })).status).toBe(403);
  });

  it('pages newest first with a cursor', async () => {
    const company = await s.company('paged');
    const admin = await s.member('admin', company);
    for (let i = 0; i < 3; i++) await s.api('/api/v1/tokens', { token: admin.token, method: 'POST', json: { name: `t${i}`, companyId: company } });
    const first = (await (await s.api(`/api/v1/audit?companyId=${company}&limit=2`, { token: admin.token })).json()) as { items: { details: { name: string } }[]; nextCursor: string };
    expect(first.items.map((e) => e.details.name)).toEqual(['t2', 't1']);
    const second = (await (await s.api(`/api/v1/audit?companyId=${company}&limit=2&cursor=${first.nextCursor}`, { token: admin.token })).json()) as { items: { details: { name: string } }[]; nextCursor: string | null };
    expect(second.items.map((e) => e.details.name)).toEqual(['t0']);
    expect(second.nextCursor).toBeNull();
  });
});

describe('sign-up with the default limits', () => {
  let fresh: Stack;
  beforeAll(async () => {
    // The default rules on a clock that stands still: ten sign-ups take seconds on a busy
    // machine, and a bucket refilled meanwhile would let an eleventh through.
    const t = Date.now();
    fresh = await startStack({ worker: false, signUp: new SignInLimiter(SIGN_UP_RULES, () => t) });
  });
  afterAll(() => fresh.stop());

  it('takes 10 anonymous sign-ups from one address at once, then answers 429 with Retry-After; an admin is not limited', async () => {
    const up = () => fresh.api('/api/v1/users', { token: null, method: 'POST', json: { email: freshEmail(), password: PASSWORD } });
    for (let i = 0; i < 10; i++) expect((await up()).status).toBe(201);
    const limited = await up();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await fresh.api('/api/v1/users', { method: 'POST', json: { email: freshEmail(), password: PASSWORD } })).status).toBe(201);
  });
});

describe('SIGNUP=closed', () => {
  let closed: Stack;
  beforeAll(async () => {
    closed = await startStack({ worker: false, signup: 'closed' });
  });
  afterAll(() => closed.stop());

  it('refuses an anonymous sign-up, and still lets an admin create users', async () => {
    const anon = await closed.api('/api/v1/users', { token: null, method: 'POST', json: { email: freshEmail(), password: PASSWORD } });
    expect(anon.status).toBe(401);
    const admin = await closed.token('admin');
    const made = await closed.api('/api/v1/users', { token: admin, method: 'POST', json: { email: freshEmail(), password: PASSWORD } });
    expect(made.status).toBe(201);
  });
});
