/** Schemas more than one resource's routes use; each resource's own are in its route file. */
import { z } from "zod";

export const TenantParam = z.object({ tenant: z.string().min(1).max(100) });
export const IdParam = z.object({ id: z.uuid("must be a uuid").transform((v) => v.toLowerCase()) });

export const ListQuery = z.object({
  limit: z.coerce.number().int().optional(),
  cursor: z.string().max(500).optional(),
});

/** Clamped, never rejected: a client asking for 10,000 gets the maximum page. */
export function clampLimit(limit: number | undefined, max = 100, fallback = 20): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(max, Math.max(1, Math.trunc(limit)));
}
