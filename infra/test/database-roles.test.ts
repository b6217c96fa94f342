/**
 * The database roles are named once (config: DATABASE_ROLES). The Citus bootstrap creates them from variables of its
 * startup script and the migrations grant to them: a role renamed on one side only would fail a deploy (a GRANT to a
 * role that does not exist) or, worse, leave the service connecting as a role the schema grants nothing to.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DATABASE_ROLES } from "@platform/config";
import { MIGRATIONS_DIR, loadMigrations } from "@platform/citus";
import { BOOTSTRAP_LIBRARIES, BOOTSTRAP_MAIN, BOOTSTRAP_PROGRAMS, citusSharedScript, databaseRoleVariable } from "../src/citus/startup-script.js";
import { CITUS_ROLES, citusPgHba } from "../src/citus/patroni-vm.js";

/** PostgreSQL's own roles (15), and the pseudo-roles a GRANT or REVOKE may name. */
const POSTGRES_ROLES = new Set([
  "pg_monitor", "pg_read_all_settings", "pg_read_all_stats", "pg_stat_scan_tables", "pg_signal_backend", "pg_read_all_data",
  "pg_write_all_data", "pg_checkpoint", "pg_database_owner", "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program",
  "public", "current_role", "current_user", "session_user",
]);
const CONFIG_ROLES = new Set<string>(Object.values(DATABASE_ROLES));

const roleList = (list: string): string[] => list.split(",").map((r) => r.trim().replace(/^"|"$/g, "").toLowerCase()).filter(Boolean);

/**
 * Every role a migration names in SQL (comments left out, string literals such as a HINT's CREATE ROLE kept): GRANT
 * and REVOKE targets, roles created, owners, SET ROLE, and the roles it checks for in pg_roles.
 */
export function rolesNamedIn(sql: string): string[] {
  const code = sql.replace(/\/\*[\s\S]*?\*\//g, "").replace(/--[^\n]*/g, "");
  const found: string[] = [];
  for (const m of code.matchAll(/\bGRANT\b[^;]*?\bTO\s+([^;]+?)(?:\s+WITH\s+(?:GRANT|ADMIN|INHERIT|SET)\s+(?:OPTION|TRUE|FALSE))?\s*;/gi)) found.push(...roleList(m[1]!));
  for (const m of code.matchAll(/\bREVOKE\b[^;]*?\bFROM\s+([^;]+?)(?:\s+(?:CASCADE|RESTRICT))?\s*;/gi)) found.push(...roleList(m[1]!));
  for (const m of code.matchAll(/\bCREATE\s+(?:ROLE|USER|GROUP)\s+("?[\w$]+"?)/gi)) found.push(...roleList(m[1]!));
  for (const m of code.matchAll(/\bOWNER\s+TO\s+("?[\w$]+"?)/gi)) found.push(...roleList(m[1]!));
  for (const m of code.matchAll(/\bSET\s+(?:LOCAL\s+|SESSION\s+)?ROLE\s+("?[\w$]+"?)/gi)) found.push(...roleList(m[1]!));
  for (const m of code.matchAll(/\brolname\s*=\s*'([^']+)'/gi)) found.push(m[1]!.toLowerCase());
  return found;
}

describe("the migrations name only the config's database roles", async () => {
  const migrations = await loadMigrations(MIGRATIONS_DIR);
  const named = migrations.flatMap((m) => rolesNamedIn(m.sql).map((role) => ({ file: m.file, role })));

  it("reads roles where a migration names them: grants, revokes, checks, CREATE ROLE in a hint", () => {
    const sql = `-- GRANT SELECT ON t TO commented_out;
      DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'checked') THEN
        RAISE EXCEPTION 'x' USING HINT = 'CREATE ROLE hinted LOGIN'; END IF; END $$;
      GRANT USAGE ON SCHEMA s TO a, "b";
      GRANT EXECUTE ON FUNCTION f(integer), g(date) TO c WITH GRANT OPTION;
      REVOKE ALL ON SCHEMA s FROM PUBLIC;
      ALTER TABLE t OWNER TO d;`;
    expect(rolesNamedIn(sql).sort()).toEqual(["a", "b", "c", "checked", "d", "hinted", "public"]);
  });

  it("every role a migration grants to, revokes from, creates or checks for is a config role or PostgreSQL's own", () => {
    expect(named.length).toBeGreaterThan(0);
    const unknown = named.filter(({ role }) => !CONFIG_ROLES.has(role) && !POSTGRES_ROLES.has(role));
    expect(unknown, `roles not in DATABASE_ROLES (config/src/names.ts): rename them in the migration or add them there`).toEqual([]);
  });

  it("the service's role is the one the schema grants to and checks for", () => {
    const grantees = new Set(named.filter(({ role }) => CONFIG_ROLES.has(role)).map(({ role }) => role));
    expect([...grantees]).toEqual([DATABASE_ROLES.app]);
    expect(rolesNamedIn(migrations[0]!.sql)).toContain(DATABASE_ROLES.app);
  });
});

describe("the Citus bootstrap creates the config's database roles by their variables", () => {
  const shared = citusSharedScript();
  const variable = (key: string) => databaseRoleVariable(key as keyof typeof DATABASE_ROLES);
  const sources = [...BOOTSTRAP_LIBRARIES, ...BOOTSTRAP_PROGRAMS, BOOTSTRAP_MAIN];

  it("sets one readonly variable per role, from DATABASE_ROLES", () => {
    for (const [key, role] of Object.entries(DATABASE_ROLES)) expect(shared).toContain(`readonly ${variable(key)}='${role}'\n`);
  });

  it("uses every role variable, and names no role of its own in SQL", () => {
    const body = sources.map((s) => s.text).join("\n");
    for (const key of Object.keys(DATABASE_ROLES)) expect(body, variable(key)).toContain(`$${variable(key)}`);
    // The superuser and the exporter's role share their names with OS users (peer authentication), which the
    // bootstrap also runs commands as; the other roles are database roles only and appear in no source, but as
    // psql's variables of the same name (-v hydra=..., :'hydra').
    const databaseOnly = [DATABASE_ROLES.replication, DATABASE_ROLES.migrator, DATABASE_ROLES.app, DATABASE_ROLES.queue, DATABASE_ROLES.hydra];
    const literal = sources.flatMap((s) => databaseOnly.filter((role) => new RegExp(`(?<![\\w$]|:'|:"|-v )${role}(?!\\w)`).test(s.text)).map((role) => `${s.path}: ${role}`));
    expect(literal).toEqual([]);
  });

  it("creates each role but the superuser (Patroni's) with CREATE ROLE on its psql variable", () => {
    const roles = readFileSync(join(import.meta.dirname, "..", "src", "citus", "bootstrap", "lib", "roles.sh"), "utf8");
    const created = [...roles.matchAll(/format\('CREATE ROLE %I[^']*', :'(\w+)'\)/g)].map((m) => m[1]!).sort();
    expect(created).toEqual(Object.keys(DATABASE_ROLES).filter((k) => k !== "superuser").sort());
  });

  it("gives Patroni and pg_hba.conf the same names", () => {
    expect(CITUS_ROLES).toMatchObject({ superuser: DATABASE_ROLES.superuser, replication: DATABASE_ROLES.replication });
    const hba = citusPgHba("platform", "10.0.16.0/24", ["10.0.0.0/20"]).map((line) => line.split(/\s+/));
    const users = new Set(hba.map((fields) => fields[2]));
    for (const role of [DATABASE_ROLES.superuser, DATABASE_ROLES.replication, DATABASE_ROLES.monitoring, DATABASE_ROLES.hydra]) expect(users).toContain(role);
    for (const user of users) expect(user === "all" || CONFIG_ROLES.has(user!), `pg_hba.conf names ${user}`).toBe(true);
  });
});
