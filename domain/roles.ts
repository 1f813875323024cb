// Who a person is to a company or a device. A participation gives a user one company role; an
// end user (a device owner) belongs to no company; shares give a user a role on
// one device. What each role may do is decided in one place: api/http/policy.ts.

export const COMPANY_ROLES = ['admin', 'manufacturer', 'technician', 'viewer'] as const;
export type CompanyRole = (typeof COMPANY_ROLES)[number];

/** What an owner may make a user on one device of theirs (device shares). */
export const SHARE_ROLES = ['serviceman', 'viewer'] as const;
export type ShareRole = (typeof SHARE_ROLES)[number];
