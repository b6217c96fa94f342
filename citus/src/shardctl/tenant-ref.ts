import type { ClientBase } from "pg";
import { ShardctlError } from "./operations.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A tenant named by id (used as it is) or by code (looked up in the platform's tenants table); exit 2 if none. */
export async function resolveTenant(c: ClientBase, ref: string): Promise<string> {
  const id = ref.toLowerCase();
  if (UUID.test(id)) return id;
  const found = await c.query<{ id: string }>("SELECT id::text FROM platform.tenants WHERE code = $1", [ref]).catch(() => ({ rows: [] as { id: string }[] }));
  if (found.rows.length === 0) throw new ShardctlError(`no tenant with id or code "${ref}"`, 2);
  return found.rows[0]!.id;
}
