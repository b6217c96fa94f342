/**
 * A Citus worker lost without a word (its VM gone, its zone's network down) while the coordinator has a statement on
 * it: the coordinator must give up on it within a minute, as citus.node_conninfo asks (config/src/dead-peers.ts,
 * appended to it in src/citus/patroni-vm.ts), not after TCP's 15 minutes of retransmissions with the tenant's request
 * and its connection slot held all that time.
 *
 * Real Citus 13 on PostgreSQL 15: the coordinator here, the worker on an isolated host in network namespaces of this
 * test's own (@platform/testing), and the cut drops every packet between them at the router, both ways, silently.
 * What differs from the VMs: no TLS (sslmode=disable instead of verify-full, the rest of node_conninfo as rendered),
 * trust instead of passwords between the two, one worker. Runs where Citus is installed (built from its source) and
 * as root; otherwise skipped with the reason.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEAD_PEER } from "@platform/config";
import { citusUnavailable, isolatedHostUnavailable, startIsolatedHost, startPostgres, type IsolatedHost, type PostgresServer } from "@platform/testing";
import { citusPatroniInput } from "../src/citus/patroni-vm.js";

const unavailable = citusUnavailable() ?? isolatedHostUnavailable();
if (unavailable) console.warn(`skipping the lost Citus worker test: ${unavailable}`);

/** citus.node_conninfo as a Citus VM renders it, its TLS settings swapped for none. */
function renderedNodeConninfo(): string {
  const input = citusPatroniInput({
    scope: "s", memberName: "m", memberHost: "m.db.internal", group: 0, database: "platform", etcdHosts: ["e:2379"], restApiPort: 8008, port: 5432,
    postgresMajor: 15, maxConnections: 100, maxSlotWalKeepSize: "10GB", shardCount: 32, stanza: "platform", dataCidr: "10.0.0.0/24", clientCidrs: [],
    synchronous: false, watchdog: "off",
  });
  const rendered = String(input.postgres.parameters!["citus.node_conninfo"]);
  expect(rendered).toMatch(/^sslmode=verify-full sslrootcert=\S+ /);
  return rendered.replace(/^sslmode=verify-full sslrootcert=\S+/, "sslmode=disable");
}

describe.skipIf(unavailable !== undefined)("a Citus worker lost silently under a running statement (real Citus, real namespaces)", () => {
  let host: IsolatedHost;
  let worker: PostgresServer;
  let coordinator: PostgresServer;
  let admin: pg.Client;
  const socketUrl = (server: PostgresServer) => `postgresql://postgres@/postgres?host=${encodeURIComponent(server.socketDir)}&port=${server.port}`;

  beforeAll(async () => {
    host = startIsolatedHost();
    const citus = { shared_preload_libraries: "'citus'", max_worker_processes: "16" };
    worker = await startPostgres({
      settings: { ...citus, listen_addresses: `'${host.hostAddress}'` },
      hbaRules: [`host all all ${host.serverAddress}/32 trust`],
      prefix: host.prefix,
    });
    coordinator = await startPostgres({
      settings: { ...citus, listen_addresses: `'127.0.0.1,${host.serverAddress}'`, "citus.node_conninfo": `'${renderedNodeConninfo()}'` },
      hbaRules: [`host all all ${host.hostAddress}/32 trust`],
    });
    const workerAdmin = new pg.Client({ connectionString: socketUrl(worker) });
    await workerAdmin.connect();
    await workerAdmin.query("CREATE EXTENSION citus");
    await workerAdmin.end();
    admin = new pg.Client({ connectionString: socketUrl(coordinator) });
    await admin.connect();
    await admin.query("CREATE EXTENSION citus");
    await admin.query("SELECT citus_set_coordinator_host($1, $2)", [host.serverAddress, coordinator.port]);
    await admin.query("SELECT citus_add_node($1, $2)", [host.hostAddress, worker.port]);
    await admin.query("CREATE TABLE items (tenant_id bigint, id bigint, title text, PRIMARY KEY (tenant_id, id))");
    await admin.query("SELECT create_distributed_table('items', 'tenant_id', shard_count => 4)");
    await admin.query("INSERT INTO items SELECT g % 100, g, 'item ' || g FROM generate_series(1, 10000) g");
  }, 180_000);
  afterAll(async () => {
    await admin?.end().catch(() => {});
    coordinator?.stop();
    worker?.stop();
    host?.remove();
  });

  it("the coordinator gives up the statement within DEAD_PEER's bounds and says which node, instead of waiting on TCP", async () => {
    expect(await admin.query("SHOW citus.node_conninfo").then((r) => r.rows[0]["citus.node_conninfo"] as string)).toContain(`tcp_user_timeout=${DEAD_PEER.userTimeoutMs}`);
    const session = new pg.Client({ connectionString: socketUrl(coordinator) });
    await session.connect();
    try {
      // The session's connection to the worker is open and cached, as a busy coordinator's are.
      expect((await session.query("SELECT count(*)::int AS n FROM items")).rows[0].n).toBe(10_000);
      host.cut();
      const cutAt = Date.now();
      const failure = await session.query("SELECT count(*) FROM items WHERE title LIKE 'item %'").then(
        () => new Error("the statement answered across a cut network"),
        (error: Error) => error,
      );
      const after = Date.now() - cutAt;
      console.log(`lost worker: the coordinator gave up the statement ${after} ms after the cut: ${failure.message}`);
      expect(failure.message).toMatch(new RegExp(`${host.hostAddress.replaceAll(".", "\\.")}|connection|remote|timeout`, "i"));
      // The cached connection fails by its TCP_USER_TIMEOUT; the executor's other connections by citus.node_connection_timeout (30 s).
      expect(after).toBeLessThanOrEqual(DEAD_PEER.userTimeoutMs + 60_000);
    } finally {
      await session.end().catch(() => {});
      host.heal();
    }
  }, 300_000);
});
