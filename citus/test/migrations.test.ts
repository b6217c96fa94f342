import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresUnavailable, startPostgres, type PostgresServer } from "@platform/testing";
import { MIGRATIONS_DIR, loadMigrations, planMigrations, runMigrations, splitStatements } from "../src/index.js";

/** Every table of the migrated schema (partitions by their root): a new one is added here, and its RLS checked below. */
const PLATFORM_TABLES = ["audit_log", "exports", "import_rows", "items", "tenant_erasures", "tenant_fences", "tenant_metrics", "tenant_move_progress", "tenant_moves", "tenant_placements", "tenants", "users", "webhook_deliveries", "webhooks"];

describe("migration files", () => {
  it("are numbered without gaps and parse with PostgreSQL 15's parser", async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    for (const m of migrations) expect(m.statements.length, m.file).toBeGreaterThan(0);
  });

  it("splits statements at real boundaries, not at semicolons inside dollar quotes or strings", async () => {
    const sql = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\nSELECT 'a;b';\n-- trailing comment\n";
    expect(await splitStatements(sql, "x.sql")).toEqual([
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
      "SELECT 'a;b'",
    ]);
  });

  it("reports a syntax error with the file, line and column", async () => {
    await expect(splitStatements("SELECT 1;\nSELEC 2;", "0009_bad.sql")).rejects.toThrow(/0009_bad\.sql: syntax error at line 2, column 1/);
  });

  it("rejects badly named files and gaps", async () => {
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    try {
      writeFileSync(join(dir, "0001_a.sql"), "SELECT 1;");
      writeFileSync(join(dir, "0003_c.sql"), "SELECT 1;");
      await expect(loadMigrations(dir)).rejects.toThrow(/0003_c\.sql: versions must run .* expected 0002/);
      writeFileSync(join(dir, "2_Bad Name.sql"), "SELECT 1;");
      await expect(loadMigrations(dir)).rejects.toThrow(/named NNNN_lowercase_name\.sql/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses an edited or a missing applied migration", async () => {
    const migrations = await loadMigrations();
    const first = migrations[0]!;
    const appliedAt = new Date("2026-01-01T00:00:00Z");
    expect(() => planMigrations(migrations, [{ version: 1, name: first.name, checksum: "0".repeat(64), appliedAt }])).toThrow(
      /0001_schema\.sql was applied on 2026-01-01.*immutable.*new migration/,
    );
    expect(() => planMigrations(migrations, [{ version: 99, name: "gone", checksum: "x", appliedAt }])).toThrow(/0099_gone\.sql .* file is missing/);
    expect(planMigrations(migrations, [{ version: 1, name: first.name, checksum: first.checksum, appliedAt }]).pending.map((m) => m.version)).toEqual(
      migrations.slice(1).map((m) => m.version),
    );
  });
});

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping PostgreSQL migration tests: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("runner on a real PostgreSQL 15", () => {
  let server: PostgresServer;
  let migrator: string;
  let app: string;
  const connect = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  };
  const asAdmin = async <T>(run: (c: pg.Client) => Promise<T>, database = "postgres"): Promise<T> => {
    const client = await connect(server.urlFor("postgres", "postgres", database));
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };
  let dbCounter = 0;
  /** A fresh database owned by nobody special, with the two platform roles able to use it. */
  const freshDatabase = async (): Promise<string> => {
    const name = `t${++dbCounter}`;
    await asAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    await asAdmin((c) => c.query(`GRANT CREATE ON DATABASE ${name} TO platform_migrator`));
    return name;
  };

  beforeAll(async () => {
    server = await startPostgres();
    await asAdmin(async (c) => {
      await c.query("CREATE ROLE platform_migrator LOGIN PASSWORD 'migrator'");
      await c.query("CREATE ROLE platform_app LOGIN PASSWORD 'app'");
    });
    migrator = "platform_migrator";
    app = "platform_app";
  }, 120_000);
  afterAll(() => server?.stop());

  it("applies every migration once, records it, and is a no-op the second time", async () => {
    const db = await freshDatabase();
    const client = await connect(server.urlFor(migrator, "migrator", db));
    try {
      const all = await loadMigrations();
      const first = await runMigrations(client);
      expect(first.citus).toBe(false);
      expect(first.ran).toEqual(all.map((m) => m.version));
      const second = await runMigrations(client);
      expect(second.ran).toEqual([]);
      const { rows } = await client.query("SELECT version, checksum, applied_by FROM platform_migrations.history ORDER BY version");
      expect(rows).toEqual(all.map((m) => ({ version: m.version, checksum: m.checksum, applied_by: migrator })));
    } finally {
      await client.end();
    }
  });

  it("--dry-run lists pending migrations and changes nothing", async () => {
    const db = await freshDatabase();
    const client = await connect(server.urlFor(migrator, "migrator", db));
    try {
      const lines: string[] = [];
      const result = await runMigrations(client, { dryRun: true, log: (l) => lines.push(l) });
      expect(result.pending.length).toBeGreaterThan(0);
      expect(lines[0]).toMatch(/^would apply 0001_schema\.sql \(sha256 [0-9a-f]{12}\)$/);
      const { rows } = await client.query("SELECT to_regclass('platform.tenants') AS t, to_regclass('platform_migrations.history') AS h");
      expect(rows[0]).toEqual({ t: null, h: null });
    } finally {
      await client.end();
    }
  });

  it("refuses to run when an applied migration file was edited, naming it", async () => {
    const db = await freshDatabase();
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    const client = await connect(server.urlFor(migrator, "migrator", db));
    try {
      await runMigrations(client, { migrations: await loadMigrations(dir) });
      appendFileSync(join(dir, "0002_row_level_security.sql"), "\n-- an innocent-looking edit\n");
      await expect(runMigrations(client, { migrations: await loadMigrations(dir) })).rejects.toThrow(
        /0002_row_level_security\.sql was applied on .* but the file now has/,
      );
    } finally {
      await client.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rolls a failing migration back entirely: no partial schema, no history row", async () => {
    const db = await freshDatabase();
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    const next = String((await loadMigrations(dir)).length + 1).padStart(4, "0");
    writeFileSync(join(dir, `${next}_broken.sql`), "CREATE TABLE platform.half_done (id int);\nSELECT 1 / 0;\n");
    const client = await connect(server.urlFor(migrator, "migrator", db));
    try {
      await expect(runMigrations(client, { migrations: await loadMigrations(dir) })).rejects.toThrow(
        new RegExp(`${next}_broken\\.sql failed and was rolled back: division by zero`),
      );
      const { rows } = await client.query("SELECT to_regclass('platform.half_done') AS t, (SELECT max(version) FROM platform_migrations.history) AS v");
      expect(rows[0]).toEqual({ t: null, v: Number(next) - 1 });
    } finally {
      await client.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serializes two runners with the advisory lock, and a runner that cannot get it says who holds it", async () => {
    const db = await freshDatabase();
    const [a, b] = [await connect(server.urlFor(migrator, "migrator", db)), await connect(server.urlFor(migrator, "migrator", db))];
    const holder = await connect(server.urlFor(migrator, "migrator", db));
    try {
      const both = await Promise.all([runMigrations(a), runMigrations(b)]);
      expect(both.map((r) => r.ran.length).sort()).toEqual([0, (await loadMigrations()).length]);

      await holder.query("SET application_name = 'stuck-runner'");
      await holder.query("SELECT pg_advisory_lock(7302615001)");
      await expect(runMigrations(a, { lockTimeoutMs: 500 })).rejects.toThrow(/another migration runner holds the lock \(pid \d+, user platform_migrator, stuck-runner/);
    } finally {
      await Promise.all([a.end(), b.end(), holder.end()]);
    }
  });

  it("takes table locks in short tries, so the service's writes never queue behind a migration for long", async () => {
    const db = await freshDatabase();
    const all = await loadMigrations();
    const client = await connect(server.urlFor(migrator, "migrator", db));
    const holder = await connect(server.urlFor(app, "app", db));
    const writer = await connect(server.urlFor(app, "app", db));
    const A = "33333333-3333-4333-8333-333333333333";
    const asTenant = async (c: pg.Client, sql: string, params: unknown[] = []) => {
      await c.query("BEGIN");
      await c.query(`SET LOCAL app.tenant_id = '${A}'`);
      const r = await c.query(sql, params);
      await c.query("COMMIT");
      return r;
    };
    try {
      // Everything before the migration that ALTERs tables the service writes (0004).
      await runMigrations(client, { migrations: all.filter((m) => m.version < 4) });
      await holder.query("BEGIN");
      await holder.query("SET LOCAL app.platform_admin = 'on'");
      await holder.query("INSERT INTO platform.tenants (id, code, name) VALUES ($1, 'lockco', 'Lock Co')", [A]);
      await holder.query("COMMIT");
      const owner = (await asTenant(holder, "INSERT INTO platform.users (tenant_id, email) VALUES ($1, 'o@lock.test') RETURNING id", [A])).rows[0].id;

      // A long transaction of the service's holds items (as any read does) for 2.5 s.
      await holder.query("BEGIN");
      await holder.query(`SET LOCAL app.tenant_id = '${A}'`);
      await holder.query("SELECT count(*) FROM platform.items");
      const lines: string[] = [];
      const migrating = runMigrations(client, { migrations: all, ddlLockTimeoutMs: 200, retryDelayMs: () => 100, log: (l) => lines.push(l) });
      let longest = 0;
      let writes = 0;
      for (const until = Date.now() + 2500; Date.now() < until; writes++) {
        const started = Date.now();
        await asTenant(writer, "INSERT INTO platform.items (tenant_id, owner_id, title) VALUES ($1, $2, 'during the migration')", [A, owner]);
        longest = Math.max(longest, Date.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await holder.query("COMMIT");
      const result = await migrating;
      expect(result.ran).toEqual(all.filter((m) => m.version >= 4).map((m) => m.version));
      expect(lines.filter((l) => /0004_\w+\.sql: a table lock was not free within 200 ms .*rolled back, trying again/.test(l)).length).toBeGreaterThan(1);
      // Each write waited at most about one lock_timeout behind the migration's queued lock, never the holder's 2.5 s
      // (a write queued behind the holder would wait for a commit that comes only after this loop). 2 s leaves a
      // loaded CI machine its round trips.
      expect(writes).toBeGreaterThan(5);
      expect(longest).toBeLessThan(2000);

      // A lock that never frees: the migration gives up, rolled back, and says what to look at.
      const fresh = await freshDatabase();
      const c2 = await connect(server.urlFor(migrator, "migrator", fresh));
      const h2 = await connect(server.urlFor(migrator, "migrator", fresh));
      try {
        await runMigrations(c2, { migrations: all.filter((m) => m.version < 4) });
        await h2.query("BEGIN");
        await h2.query("LOCK TABLE platform.items IN ACCESS SHARE MODE");
        await expect(runMigrations(c2, { migrations: all, ddlLockTimeoutMs: 100, ddlAttempts: 2, retryDelayMs: () => 10 })).rejects.toThrow(
          /0004_\w+\.sql could not take its table locks within 100 ms in 2 tries .* rolled back: nothing changed\. Long transactions hold them/,
        );
        expect((await c2.query("SELECT max(version)::int AS v FROM platform_migrations.history")).rows[0].v).toBe(3);
        expect((await c2.query("SELECT relforcerowsecurity AS f FROM pg_class WHERE oid = 'platform.tenants'::regclass")).rows[0].f).toBe(true);
      } finally {
        await Promise.all([c2.end(), h2.end()]);
      }
    } finally {
      await Promise.all([client.end(), holder.end().catch(() => {}), writer.end()]);
    }
  });

  it("refuses a blocking CREATE INDEX on a table with rows, and applies the concurrent one", async () => {
    const db = await freshDatabase();
    const client = await connect(server.urlFor(migrator, "migrator", db));
    const dir = mkdtempSync(join(tmpdir(), "migrations-"));
    try {
      cpSync(MIGRATIONS_DIR, dir, { recursive: true });
      const shipped = await loadMigrations(dir);
      // The shipped 0003 builds plain indexes on tables just created and still empty: allowed, it blocks no one.
      await runMigrations(client, { migrations: shipped });
      const next = String(shipped.length + 1).padStart(4, "0");
      await asAdmin((c) => c.query("INSERT INTO platform.tenants (code, name) SELECT 'idx-' || i, 'I' || i FROM generate_series(1, 50) i"), db);
      writeFileSync(join(dir, `${next}_tenants_by_name.sql`), "CREATE INDEX tenants_by_name ON platform.tenants (name);\n");
      await expect(runMigrations(client, { migrations: await loadMigrations(dir) })).rejects.toThrow(
        new RegExp(`${next}_tenants_by_name\\.sql: CREATE INDEX on platform\\.tenants, which holds rows, blocks every write to it until the build ends\\. Use CREATE INDEX CONCURRENTLY`),
      );
      expect((await client.query("SELECT to_regclass('platform.tenants_by_name') AS i")).rows[0].i).toBeNull();
      writeFileSync(join(dir, `${next}_tenants_by_name.sql`), "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY tenants_by_name ON platform.tenants (name);\n");
      const result = await runMigrations(client, { migrations: await loadMigrations(dir) });
      expect(result.ran).toEqual([shipped.length + 1]);
      expect((await client.query("SELECT to_regclass('platform.tenants_by_name')::text AS i")).rows[0].i).toBe("platform.tenants_by_name");
    } finally {
      await client.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails clearly when the service role does not exist yet", async () => {
    const db = await freshDatabase();
    await asAdmin((c) => c.query("ALTER ROLE platform_app RENAME TO platform_app_away"));
    const client = await connect(server.urlFor(migrator, "migrator", db));
    try {
      await expect(runMigrations(client)).rejects.toThrow(/role platform_app does not exist \(hint: Create it first/);
    } finally {
      await client.end();
      await asAdmin((c) => c.query("ALTER ROLE platform_app_away RENAME TO platform_app"));
    }
  });

  describe("the migrated schema", () => {
    let db: string;
    beforeAll(async () => {
      db = await freshDatabase();
      const client = await connect(server.urlFor(migrator, "migrator", db));
      await runMigrations(client);
      await client.end();
    });

    it("enables row-level security on every table, with USING and WITH CHECK, without FORCE (shard moves need the owner exempt)", async () => {
      const { rows } = await asAdmin(
        (c) =>
          c.query(`SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                          (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polwithcheck IS NOT NULL)::int AS with_check,
                          has_table_privilege('platform_app', c.oid, 'INSERT, UPDATE') AS writable
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'platform' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`),
        db,
      );
      expect(rows.map((r) => r.relname)).toEqual(PLATFORM_TABLES);
      for (const r of rows) expect(r, r.relname).toMatchObject({ relrowsecurity: true, relforcerowsecurity: false });
      // A table the service role can write needs a policy saying which rows it may write; the placement and move
      // tables it cannot write at all (tenantctl does, as the owner).
      for (const r of rows.filter((r) => r.writable)) expect(r.with_check, r.relname).toBeGreaterThan(0);
      expect(rows.filter((r) => !r.writable).map((r) => r.relname)).toEqual(["tenant_fences", "tenant_move_progress", "tenant_moves", "tenant_placements"]);
    });

    it("lets the service role own nothing, bypass nothing, belong to no owner, and not be a superuser", async () => {
      const { rows } = await asAdmin(
        (c) =>
          c.query(`SELECT r.rolsuper, r.rolbypassrls,
                          (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = 'platform' AND pg_has_role(r.oid, c.relowner, 'USAGE'))::int AS owned
                     FROM pg_roles r WHERE r.rolname = 'platform_app'`),
        db,
      );
      expect(rows[0]).toEqual({ rolsuper: false, rolbypassrls: false, owned: 0 });
      // What PostgreSQL itself decides: row-level security is active for the service on every platform table.
      const app = await connect(server.urlFor("platform_app", "app", db));
      try {
        const active = await app.query(
          "SELECT c.relname, row_security_active(c.oid) AS on FROM pg_class c WHERE c.relnamespace = 'platform'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
        );
        expect(active.rows.map((r) => r.relname)).toEqual(PLATFORM_TABLES);
        for (const r of active.rows) expect(r.on, r.relname).toBe(true);
      } finally {
        await app.end();
      }
    });

    it("runs as the owner only the SECURITY DEFINER functions reviewed for it (the owner is not subject to row-level security)", async () => {
      const { rows } = await asAdmin(
        (c) => c.query("SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'platform'::regnamespace AND p.prosecdef ORDER BY 1"),
        db,
      );
      // Two manage audit_log partitions and read no tenant rows. tenant_counts (0006, reviewed): counts by plan and
      // status only, no tenant's row, name or code; executable by pg_monitor alone (revoked from PUBLIC), search_path
      // pinned. rollup_tenant_metrics (0007, reviewed): writes counts to tenant_metrics for the tenants it is given,
      // returns a row count only; executable by the service role alone, search_path pinned. list_tenants (0008,
      // reviewed): platform.tenants rows only, and only in a platform administrator's transaction (app.platform_admin,
      // what the platform_admin policy admits; it raises otherwise); executable by the service role alone, search_path
      // pinned. enter_tenant (0012, reviewed): reads the fence of the one tenant it is given and returns nothing, so it
      // tells a caller only whether that tenant is fenced; executable by the service role alone, search_path pinned.
      // place_new_tenant (0015, reviewed): writes at most one registry row, naming the home database, for the one tenant
      // it is given, only where that tenant's row is in this database and it has no placement yet; returns that
      // tenant's placement, which the service role may read anyway (tenant_lookup); executable by the service role
      // alone, search_path pinned.
      // A new one must filter by tenant itself: add it here only after that review (docs/ARCHITECTURE.md,
      // "Tenant isolation").
      expect(rows.map((r) => r.proname)).toEqual(["drop_audit_log_partitions_before", "ensure_audit_log_partitions", "enter_tenant", "list_tenants", "place_new_tenant", "rollup_tenant_metrics", "tenant_counts"]);
      const list = await asAdmin(
        (c) => c.query("SELECT has_function_privilege('platform_app', 'platform.list_tenants(text, text, text, timestamptz, uuid, integer, text[], text[])', 'EXECUTE') AS app, has_function_privilege('pg_monitor', 'platform.list_tenants(text, text, text, timestamptz, uuid, integer, text[], text[])', 'EXECUTE') AS monitor, (SELECT proconfig FROM pg_proc WHERE proname = 'list_tenants') AS config"),
        db,
      );
      expect(list.rows[0]).toEqual({ app: true, monitor: false, config: ["search_path=pg_catalog, pg_temp"] });
      const rollup = await asAdmin(
        (c) => c.query("SELECT has_function_privilege('platform_app', 'platform.rollup_tenant_metrics(date, uuid[])', 'EXECUTE') AS app, has_function_privilege('pg_monitor', 'platform.rollup_tenant_metrics(date, uuid[])', 'EXECUTE') AS monitor, (SELECT proconfig FROM pg_proc WHERE proname = 'rollup_tenant_metrics') AS config"),
        db,
      );
      expect(rollup.rows[0]).toEqual({ app: true, monitor: false, config: ["search_path=pg_catalog, pg_temp"] });
      const enter = await asAdmin(
        (c) => c.query("SELECT has_function_privilege('platform_app', 'platform.enter_tenant(uuid)', 'EXECUTE') AS app, has_function_privilege('pg_monitor', 'platform.enter_tenant(uuid)', 'EXECUTE') AS monitor, (SELECT proconfig FROM pg_proc WHERE proname = 'enter_tenant') AS config"),
        db,
      );
      expect(enter.rows[0]).toEqual({ app: true, monitor: false, config: ["search_path=pg_catalog, pg_temp"] });
      const place = await asAdmin(
        (c) => c.query("SELECT has_function_privilege('platform_app', 'platform.place_new_tenant(uuid)', 'EXECUTE') AS app, has_function_privilege('pg_monitor', 'platform.place_new_tenant(uuid)', 'EXECUTE') AS monitor, (SELECT proconfig FROM pg_proc WHERE proname = 'place_new_tenant') AS config"),
        db,
      );
      expect(place.rows[0]).toEqual({ app: true, monitor: false, config: ["search_path=pg_catalog, pg_temp"] });
      const granted = await asAdmin((c) => c.query("SELECT has_function_privilege('platform_app', 'platform.tenant_counts()', 'EXECUTE') AS app, has_function_privilege('pg_monitor', 'platform.tenant_counts()', 'EXECUTE') AS monitor"), db);
      expect(granted.rows[0]).toEqual({ app: false, monitor: true });
    });

    it("keeps tenants apart for the service role: no context sees nothing, a foreign tenant_id is refused", async () => {
      const client = await connect(server.urlFor(app, "app", db));
      const A = "11111111-1111-4111-8111-111111111111";
      const B = "22222222-2222-4222-8222-222222222222";
      try {
        await client.query("BEGIN");
        await client.query("SET LOCAL app.platform_admin = 'on'");
        await client.query("INSERT INTO platform.tenants (id, code, name) VALUES ($1, 'acme', 'Acme'), ($2, 'globex', 'Globex')", [A, B]);
        await client.query("COMMIT");
        for (const [tenant, email] of [[A, "a@acme.test"], [B, "b@globex.test"]] as const) {
          await client.query("BEGIN");
          await client.query(`SET LOCAL app.tenant_id = '${tenant}'`);
          await client.query("INSERT INTO platform.users (tenant_id, email) VALUES ($1, $2)", [tenant, email]);
          await client.query("COMMIT");
        }
        expect((await client.query("SELECT count(*)::int AS n FROM platform.users")).rows[0].n).toBe(0);
        expect((await client.query("SELECT count(*)::int AS n FROM platform.tenants")).rows[0].n).toBe(0);
        await client.query("BEGIN");
        await client.query(`SET LOCAL app.tenant_id = '${A}'`);
        expect((await client.query("SELECT email FROM platform.users")).rows).toEqual([{ email: "a@acme.test" }]);
        expect((await client.query("SELECT count(*)::int AS n FROM platform.users WHERE tenant_id = $1", [B])).rows[0].n).toBe(0);
        await expect(client.query("INSERT INTO platform.users (tenant_id, email) VALUES ($1, 'x@globex.test')", [B])).rejects.toThrow(/row-level security/);
        await client.query("ROLLBACK");
        // After the transaction the context is gone again.
        expect((await client.query("SELECT count(*)::int AS n FROM platform.users")).rows[0].n).toBe(0);
        await expect(client.query("UPDATE platform.audit_log SET actor = 'x'")).rejects.toThrow(/permission denied/);
      } finally {
        await client.end();
      }
    });

    it("creates audit_log partitions ahead and drops old ones only through the owner's functions", async () => {
      const client = await connect(server.urlFor(app, "app", db));
      try {
        const partitions = async () =>
          (await client.query("SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'platform.audit_log'::regclass")).rows[0].n as number;
        const before = await partitions();
        expect(before).toBe(8); // last month through six months ahead
        expect((await client.query("SELECT platform.ensure_audit_log_partitions(8) AS n")).rows[0].n).toBe(2);
        expect((await client.query("SELECT platform.drop_audit_log_partitions_before(date_trunc('month', now())::date) AS n")).rows[0].n).toBe(1);
        expect(await partitions()).toBe(9);
        await expect(client.query("SELECT platform.drop_audit_log_partitions_before((now() + interval '2 months')::date)")).rejects.toThrow(
          /refusing to drop the current month/,
        );
        await expect(client.query("DROP TABLE platform.audit_log")).rejects.toThrow(/must be owner/);
      } finally {
        await client.end();
      }
    });
  });
});
