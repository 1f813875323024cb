// The first start and the upgrade, each on a database of its own: the platform admin is made
// once (its token printed once, saved 0600), ADMIN_TOKEN acts as that admin, and migration 004
// gives yesterday's admin and manufacturer tokens, batches and devices their place among users
// and companies, so they keep working with the rights they had.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import type { Request } from 'express';
import { ADMIN_TOKEN_FILE, ensureBootstrapAdmin } from '../api/bootstrap-admin';
import { authenticator } from '../api/http/auth';
import { decide } from '../api/http/policy';
import { newApiToken, sha256Hex } from '../domain/credentials';
import { createDb, type Db } from '../db/knex';
import { migrationSource } from '../db/migrations';
import { testEnv } from './support/env';

const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` } }) as Request;

/** A database of its own; `drop` closes and removes it. */
async function freshDatabase(): Promise<{ db: Db; drop: () => Promise<void> }> {
  const url = new URL(testEnv().databaseUrl);
  const name = `rdm_people_${Date.now()}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const onRun = () => knexFactory({ client: 'pg', connection: url.toString() });
  const admin = onRun();
  await admin.raw(`CREATE DATABASE ${name}`);
  await admin.destroy();
  const own = new URL(url);
  own.pathname = `/${name}`;
  const db = createDb(own.toString());
  const drop = async () => {
    await db.destroy();
    const a = onRun();
    await a.raw(`DROP DATABASE IF EXISTS ${name}`);
    await a.destroy();
  };
  return { db, drop };
}

describe('the first platform admin', () => {
  let db: Db;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ db, drop } = await freshDatabase());
    await db.migrate.latest({ migrationSource });
  });
  afterAll(() => drop());

  it('is made once however many starts race, its token saved 0600 and working as a platform admin', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bootstrap-'));
    const made = await Promise.all([1, 2, 3].map(() => ensureBootstrapAdmin(db, dir, undefined)));
    const tokens = made.filter((t): t is string => t !== null);
    expect(tokens).toHaveLength(1);
    const file = path.join(dir, ADMIN_TOKEN_FILE);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(tokens[0]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(await ensureBootstrapAdmin(db, dir, undefined)).toBeNull();
    expect(await db('users').where({ platform_admin: true }).count({ n: '*' }).first()).toEqual({ n: '1' });

    const p = await authenticator(db, undefined)(request(tokens[0]!));
    expect(p).toMatchObject({ platformAdmin: true, email: 'admin@localhost', via: 'token' });
    // ADMIN_TOKEN from the environment acts as that same user.
    const env = newApiToken();
    const q = await authenticator(db, env)(request(env));
    expect(q).toMatchObject({ userId: p.userId, platformAdmin: true, via: 'env' });
  });
});

describe('migration 004 on a database with yesterday\'s tokens and batches', () => {
  let db: Db;
  const adminToken = newApiToken();
  const makerToken = newApiToken();
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ db, drop } = await freshDatabase());
    for (let i = 0; i < 3; i++) await db.migrate.up({ migrationSource });
    await db('tokens').insert([
      { id: 'ADMINTOKEN000001', kind: 'admin', name: 'ops', token_hash: sha256Hex(adminToken) },
      { id: 'MAKERTOKEN000001', kind: 'manufacturer', name: 'factory', token_hash: sha256Hex(makerToken) },
    ]);
    await db('batches').insert({ id: 'OLDBATCH00000001', name: 'old', count: 1 });
    await db('devices').insert({ id: 'OLDDEVICE0001', batch_id: 'OLDBATCH00000001', seq: 0, secret_hash: 'x', pairing_code_hash: 'y' });
    await db.migrate.latest({ migrationSource });
  });
  afterAll(() => drop());

  it('keeps the admin token a platform admin, and the manufacturer token a manufacturer of the company its batches went to', async () => {
    const authenticate = authenticator(db, undefined);
    const admin = await authenticate(request(adminToken));
    expect(admin).toMatchObject({ platformAdmin: true, credentialId: 'ADMINTOKEN000001' });
    const maker = await authenticate(request(makerToken));
    expect(maker.platformAdmin).toBe(false);
    const batch = await db('batches').where({ id: 'OLDBATCH00000001' }).first();
    const device = await db('devices').where({ id: 'OLDDEVICE0001' }).first();
    expect(batch.company_id).toEqual(expect.any(String));
    expect(device.company_id).toBe(batch.company_id);
    expect(maker.roles).toEqual({ [batch.company_id]: 'manufacturer' });
    expect(decide(maker, 'batches:export', { kind: 'company', companyId: batch.company_id })).toBe('allow');
    expect(decide(maker, 'batches:create', { kind: 'company', companyId: batch.company_id })).toBe('forbidden');
    // The first start after the upgrade finds the platform admin made by the migration.
    expect(await ensureBootstrapAdmin(db, fs.mkdtempSync(path.join(os.tmpdir(), 'rdm-bootstrap-')), undefined)).toBeNull();
  });
});
