/**
 * What each plan allows, and a tenant's effective limits: its own override where it has one, else its plan's.
 *
 * Plans are typed configuration, not a table: a plan's limits change with a release (a rolling update reaches every
 * replica within the rollout), a tenant's override with a PATCH (every replica within TENANT_CACHE_TTL_MS, README).
 * The plan names are the ones platform.tenants accepts (CHECK in migration 0001).
 */
export const PLAN_NAMES = ["free", "starter", "business", "enterprise"] as const;
export type PlanName = (typeof PLAN_NAMES)[number];

export interface Limits {
  /** Users the tenant may have. */
  readonly maxUsers: number;
  /** Bytes of items' titles and bodies, in GiB. */
  readonly maxStorageGb: number;
  /** Requests a minute, across every replica (the fixed window in Redis, rate-limit-store.ts). */
  readonly requestsPerMinute: number;
  /**
   * Requests one replica runs for the tenant at once: its database work in flight there. Past it, 429 at once,
   * so one tenant cannot take a replica's pool from the others (tenant-limits.ts).
   */
  readonly concurrentRequests: number;
}

export const PLANS: Readonly<Record<PlanName, Limits>> = {
  free: { maxUsers: 10, maxStorageGb: 1, requestsPerMinute: 600, concurrentRequests: 4 },
  starter: { maxUsers: 50, maxStorageGb: 10, requestsPerMinute: 3_000, concurrentRequests: 6 },
  business: { maxUsers: 500, maxStorageGb: 100, requestsPerMinute: 12_000, concurrentRequests: 8 },
  enterprise: { maxUsers: 5_000, maxStorageGb: 1_000, requestsPerMinute: 60_000, concurrentRequests: 10 },
};

/** A tenant's own values (null: its plan's), as platform.tenants keeps them. */
export type LimitOverrides = { readonly [K in keyof Limits]: number | null };

export const LIMIT_NAMES = ["maxUsers", "maxStorageGb", "requestsPerMinute", "concurrentRequests"] as const satisfies readonly (keyof Limits)[];

export function isPlanName(name: string): name is PlanName {
  return (PLAN_NAMES as readonly string[]).includes(name);
}

/**
 * The limits that apply to a tenant: each override that is set wins over its plan's value. A plan name this release
 * does not know (a newer release wrote it) gets the free plan's values, the most conservative.
 */
export function effectiveLimits(tenant: { readonly plan: string; readonly overrides: LimitOverrides }): Limits {
  const plan = PLANS[isPlanName(tenant.plan) ? tenant.plan : "free"];
  return {
    maxUsers: tenant.overrides.maxUsers ?? plan.maxUsers,
    maxStorageGb: tenant.overrides.maxStorageGb ?? plan.maxStorageGb,
    requestsPerMinute: tenant.overrides.requestsPerMinute ?? plan.requestsPerMinute,
    concurrentRequests: tenant.overrides.concurrentRequests ?? plan.concurrentRequests,
  };
}
