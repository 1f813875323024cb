// Who may do what: the one place that decides. A route names the permission it needs (the route
// table, api/http/route.ts); the caller's roles give permissions; a resource (a company's batch,
// a device with its company, owner and shares) narrows where they hold. Three answers:
//   allow; forbidden (403: the caller can see the thing but not do this to it);
//   hidden (404: the caller has no relation to it, so they do not learn that it exists).
import type { CompanyRole, ShareRole } from '../../domain/roles';

export const PERMISSIONS = [
  'self', // one's own account: GET /me, signing out, one's own API tokens
  'batches:create',
  'batches:read',
  'batches:export', // CSV, bundle, QR: they carry device credentials
  'devices:read',
  'devices:status', // move a device through its lifecycle (manufacturers: provisioning statuses only)
  'devices:telemetry', // sensors' values, history, logs, alerts: what the device says
  'devices:control', // set a sensor, run a diagnostic command
  'devices:configure', // change a device's desired settings
  'devices:block', // refuse a device at the broker (and cut it off), or let it in again
  'devices:credentials', // rotate a device's MQTT secret (the new one is shown once)
  'devices:unpair', // make a paired device forget its owner (the owner, or an admin)
  'devices:share', // lend a device to another person as serviceman or viewer, end such a share (the owner, or an admin)
  'properties:declare', // declare per model which property a device's owner, serviceman and viewer see and set
  'alerts:manage', // threshold rules
  'users:create', // create accounts (then give them a role with participations:manage)
  'users:read', // a person's record: one's own; a company admin's: their members' (with their roles in the admin's companies)
  'companies:create', // platform admins only
  'companies:read',
  'participations:manage',
  'tokens:manage', // list and revoke the API tokens limited to a company (its members' scripts and machines)
  'audit:read',
  'firmware:read', // a company's firmware releases
  'firmware:upload', // upload a signed release (it starts in staging)
  'firmware:promote', // promote a release to stable: what auto-updates install
  'devices:update', // install a firmware release on a device, cancel such an update
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const COMPANY_ROLE_PERMISSIONS: Record<CompanyRole, readonly Permission[]> = {
  admin: PERMISSIONS.filter((p) => p !== 'companies:create'),
  manufacturer: ['self', 'companies:read', 'batches:read', 'batches:export', 'devices:read', 'devices:status', 'properties:declare', 'firmware:read', 'firmware:upload'],
  technician: ['self', 'companies:read', 'batches:read', 'devices:read', 'devices:telemetry', 'devices:control', 'devices:configure', 'alerts:manage', 'firmware:read', 'devices:update'],
  viewer: ['self', 'companies:read', 'batches:read', 'devices:read', 'devices:telemetry', 'firmware:read'],
};
/** What a device's owner (an end user) may do with it. */
const OWNER_PERMISSIONS: readonly Permission[] = ['devices:read', 'devices:telemetry', 'devices:control', 'devices:configure', 'devices:unpair', 'devices:share', 'devices:update'];
/** What a user a device is shared with may do with it; which properties they see and set is the model's declaration (domain/sharing.ts). */
const SHARE_PERMISSIONS: Record<ShareRole, readonly Permission[]> = {
  serviceman: ['devices:read', 'devices:telemetry', 'devices:control', 'devices:configure'],
  viewer: ['devices:read', 'devices:telemetry'],
};
/** What everyone signed in may do (an end user with no company and no device yet): on their own things only. */
const ANYONE: readonly Permission[] = ['self', 'users:read'];
/** What the person a share is for may do with that share: read it, and end it (give the device back). */
const SHAREE_PERMISSIONS: readonly Permission[] = ['devices:share'];

export interface Principal {
  /** What authenticated the call: a token's or a session's ID, or 'env:ADMIN_TOKEN'. Never the secret. */
  credentialId: string;
  via: 'token' | 'session' | 'env';
  userId: string;
  email: string;
  /** Above every company. False for a token limited to one company, whoever made it. */
  platformAdmin: boolean;
  /** The user's role in each company this call may act in (a company token: that one only). */
  roles: Readonly<Record<string, CompanyRole>>;
  /** A company token's company; null when the call acts with all the user's rights. */
  companyId: string | null;
}

/** What a call touches, as far as the policy cares. */
export type Resource =
  | { kind: 'company'; companyId: string | null }
  | { kind: 'device'; companyId: string | null; ownerId: string | null; shareRole?: ShareRole | null }
  /** One share of a device: the device's parties, and the person it is shared with (`userId`). */
  | { kind: 'share'; companyId: string | null; ownerId: string | null; shareRole?: ShareRole | null; userId: string }
  /** A person; `companyIds`: the companies they have a role in (whose people managers relate to them). */
  | { kind: 'user'; userId: string; companyIds?: readonly string[] };

export type Decision = 'allow' | 'forbidden' | 'hidden';

/** Whether an end-user relation (owner, share) counts: not through a token limited to one company. */
const personal = (p: Principal) => p.companyId === null;

/**
 * The policy. Without a resource: may the caller hold this permission anywhere (checked before a
 * route reads its input). With one: may they hold it on that resource.
 */
export function decide(p: Principal, permission: Permission, resource?: Resource): Decision {
  if (p.platformAdmin) return 'allow';
  if (!resource) {
    const anywhere =
      ANYONE.includes(permission) ||
      Object.values(p.roles).some((role) => COMPANY_ROLE_PERMISSIONS[role].includes(permission)) ||
      (personal(p) && (OWNER_PERMISSIONS.includes(permission) || Object.values(SHARE_PERMISSIONS).some((ps) => ps.includes(permission))));
    return anywhere ? 'allow' : 'forbidden';
  }
  const held = heldOn(p, resource);
  if (held === null) return 'hidden';
  return held.includes(permission) ? 'allow' : 'forbidden';
}

/** The permissions the caller holds on a resource; null when they have no relation to it at all. */
function heldOn(p: Principal, r: Resource): readonly Permission[] | null {
  if (r.kind === 'user') {
    if (r.userId === p.userId) return ANYONE;
    // Those who may read people in one of the person's companies see them (their record only);
    // to anyone else, fellow members included, the person does not exist.
    const manages = (r.companyIds ?? []).some((c) => {
      const role = p.roles[c];
      return role !== undefined && COMPANY_ROLE_PERMISSIONS[role].includes('users:read');
    });
    return manages ? ['users:read'] : null;
  }
  const held: Permission[] = [];
  let related = false;
  const role = r.companyId !== null ? p.roles[r.companyId] : undefined;
  if (role) {
    related = true;
    held.push(...COMPANY_ROLE_PERMISSIONS[role]);
  }
  if (r.kind !== 'company' && personal(p)) {
    if (r.ownerId !== null && r.ownerId === p.userId) {
      related = true;
      held.push(...OWNER_PERMISSIONS);
    }
    if (r.shareRole) {
      related = true;
      held.push(...SHARE_PERMISSIONS[r.shareRole]);
    }
    // Also once the share is over: its person may still read it (and see why it ended).
    if (r.kind === 'share' && r.userId === p.userId) {
      related = true;
      held.push(...SHAREE_PERMISSIONS);
    }
  }
  return related ? held : null;
}

/**
 * What a list may show: everything (null), or rows of these companies, plus (for device lists)
 * the devices the user owns or has a live share of in one of `shareRoles`.
 */
export interface ListScope {
  companyIds: string[];
  ownerId: string | null;
  /** Share roles that grant the permission: a device shared with `userId` in one of them is listed. */
  shareRoles: ShareRole[];
  userId: string;
}

export function listScope(p: Principal, permission: Permission): ListScope | null {
  if (p.platformAdmin) return null;
  const companyIds = Object.entries(p.roles)
    .filter(([, role]) => COMPANY_ROLE_PERMISSIONS[role].includes(permission))
    .map(([id]) => id);
  const ownerId = personal(p) && OWNER_PERMISSIONS.includes(permission) ? p.userId : null;
  const shareRoles = personal(p) ? (Object.keys(SHARE_PERMISSIONS) as ShareRole[]).filter((r) => SHARE_PERMISSIONS[r].includes(permission)) : [];
  return { companyIds, ownerId, shareRoles, userId: p.userId };
}

/** Companies where the caller holds `permission` (for a body that may name one, or default to the only one). */
export function companiesWith(p: Principal, permission: Permission): string[] {
  return Object.entries(p.roles)
    .filter(([, role]) => COMPANY_ROLE_PERMISSIONS[role].includes(permission))
    .map(([id]) => id);
}

/** The roles and their permissions, for docs/api.md and tests. */
export const ROLE_TABLE = { company: COMPANY_ROLE_PERMISSIONS, owner: OWNER_PERMISSIONS, share: SHARE_PERMISSIONS, sharee: SHAREE_PERMISSIONS, anyone: ANYONE } as const;
