import { z } from "zod";

export const TenantParam = z.object({ tenant: z.string().min(1).max(100) });
export const IdParam = z.object({ id: z.uuid("must be a uuid").transform((v) => v.toLowerCase()) });

const plan = z.enum(["free", "starter", "business", "enterprise"]);

export const CreateTenantBody = z.object({
  code: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen"),
  name: z.string().trim().min(1).max(200),
  plan: plan.optional(),
  maxUsers: z.number().int().min(1).max(1_000_000).optional(),
  maxStorageGb: z.number().int().min(1).max(100_000).optional(),
  features: z.record(z.string(), z.unknown()).optional(),
});

export const PatchTenantBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    status: z.enum(["active", "suspended"]).optional(),
    plan: plan.optional(),
    maxUsers: z.number().int().min(1).max(1_000_000).optional(),
    maxStorageGb: z.number().int().min(1).max(100_000).optional(),
    features: z.record(z.string(), z.unknown()).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

export const CreateUserBody = z.object({
  email: z.email("must be an email address").max(320),
  displayName: z.string().trim().max(200).optional(),
  role: z.enum(["admin", "member"]).optional(),
});

export const PatchUserBody = z
  .object({
    displayName: z.string().trim().max(200).optional(),
    role: z.enum(["admin", "member"]).optional(),
    status: z.enum(["active", "disabled"]).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

const tags = z.array(z.string().trim().min(1).max(64)).max(50);

export const CreateItemBody = z.object({
  ownerId: z.uuid("must be the uuid of a user of this tenant"),
  title: z.string().trim().min(1).max(500),
  body: z.string().max(100_000).optional(),
  tags: tags.optional(),
});

export const PatchItemBody = z
  .object({
    ownerId: z.uuid("must be the uuid of a user of this tenant").optional(),
    title: z.string().trim().min(1).max(500).optional(),
    body: z.string().max(100_000).optional(),
    tags: tags.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

export const ListQuery = z.object({
  limit: z.coerce.number().int().optional(),
  cursor: z.string().max(500).optional(),
});

export const ListItemsQuery = ListQuery.extend({
  ownerId: z.uuid("must be a uuid").optional(),
  q: z.string().trim().min(1).max(200).optional(),
});

/** Clamped, never rejected: a client asking for 10,000 gets the maximum page. */
export function clampLimit(limit: number | undefined, max = 100, fallback = 20): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(max, Math.max(1, Math.trunc(limit)));
}
