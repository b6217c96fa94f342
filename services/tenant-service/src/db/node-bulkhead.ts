/**
 * A bulkhead per Citus node group in front of the pool: one node's tenants hold at most `cap` of the pool's
 * connections at once (config/src/dead-peers.ts, nodeConnectionCap), so a lost worker cannot take the pool from the
 * other nodes' tenants.
 *
 * Why: when a worker is lost silently, each transaction of its tenants holds a connection until the statement timeout
 * (10 s), then up to ROLLBACK_WAIT_MS more (db/postgres.ts). A replica's pool is a few connections (4 in production),
 * and those tenants keep sending, so without a bound the pool is theirs within a second, and every tenant of every
 * node waits for a slot until Patroni has replaced the worker (test/citus-lost-worker.test.ts shows both).
 *
 * Quarantine: a transaction whose ROLLBACK went unanswered is the coordinator cancelling on a worker it cannot reach
 * (a slow query's ROLLBACK is answered at once), so its node's cap drops to one connection for
 * DEAD_PEER.nodeLinkUserTimeoutMs after the last such sign: the lost worker's tenants then cost one connection, not
 * `cap`.
 *
 * The node of a tenant is worked out here, from the shard map (@platform/citus, shard-map.ts) read from the
 * coordinator's metadata and read again in the background once it is `refreshMs` old. Until the first read, for a
 * tenant no interval covers, and while every shard is on one node (a one-worker cluster: there is no other node's
 * tenants to keep connections for, and the bound would only cost a quarter of the pool), a transaction is not bounded. A transaction that waits longer than `waitMs` for its node
 * is refused (NodeBusy: 503, Retry-After) without taking a connection.
 */
import { groupOfTenant, type ShardMap } from "@platform/citus";

export interface NodeBulkheadOptions {
  /** Connections one node's tenants may hold at once. */
  readonly cap: number;
  /** How long a transaction waits for its node's turn (the pool's own connection wait). */
  readonly waitMs: number;
  /** How long a node stays at one connection after its last unanswered ROLLBACK. */
  readonly quarantineMs: number;
  /** Reads the shard map (the coordinator's metadata). */
  readonly readMap: () => Promise<ShardMap>;
  /** Age at which the map is read again, in the background. */
  readonly refreshMs: number;
  readonly now?: () => number;
}

/**
 * Refused for a node: its tenants' transactions hold its share of the pool, or (enterEveryNode) the transaction must
 * write a node that is quarantined. Answered 503 with Retry-After (plugins/errors.ts).
 */
export class NodeBusy extends Error {
  readonly code = "NODE_BUSY";
  constructor(group: number, cap: number, waitedMs: number);
  constructor(message: string);
  constructor(groupOrMessage: number | string, cap?: number, waitedMs?: number) {
    super(
      typeof groupOrMessage === "string"
        ? groupOrMessage
        : `the tenant's database node (group ${groupOrMessage}) has ${cap} transactions of this replica in flight, its share of the pool, and none ended within ${waitedMs} ms`,
    );
  }
}

/** One transaction's place: released when its connection is back (or closed), marked troubled on an unanswered ROLLBACK. */
export interface NodePass {
  readonly group?: number;
  release(): void;
  troubled(): void;
}

interface Node {
  active: number;
  readonly waiting: (() => void)[];
  quarantinedUntil: number;
}

const UNBOUNDED: NodePass = { release() {}, troubled() {} };

export class NodeBulkhead {
  private map: ShardMap = [];
  /** Whether the map names two node groups or more: with one, nothing is bounded. */
  private severalNodes = false;
  private readAt = -Infinity;
  private reading?: Promise<void>;
  private readonly nodes = new Map<number, Node>();
  private readonly now: () => number;

  constructor(private readonly options: NodeBulkheadOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Waits for a place among the tenant's node's transactions; NodeBusy after `waitMs`. */
  async enter(tenantId: string): Promise<NodePass> {
    this.refresh();
    if (!this.severalNodes) return UNBOUNDED;
    const group = groupOfTenant(this.map, tenantId);
    if (group === undefined) return UNBOUNDED;
    const node = this.node(group);
    if (node.waiting.length > 0 || node.active >= this.capOf(node)) await this.wait(group, node);
    else node.active += 1;
    let released = false;
    return {
      group,
      release: () => {
        if (released) return;
        released = true;
        node.active -= 1;
        this.admitWaiting(node);
      },
      troubled: () => {
        node.quarantinedUntil = this.now() + this.options.quarantineMs;
      },
    };
  }

  /**
   * For a transaction that writes every node: a change to a reference table such as platform.tenants, which Citus
   * writes on every node in one distributed transaction. While a node is quarantined its ROLLBACKs go unanswered, so
   * such a write would hold a connection for the statement timeout and longer, then fail: it is refused at once
   * instead, without a connection, and tried again after Retry-After. Nothing is bounded otherwise: these are a
   * platform administrator's rare changes.
   */
  enterEveryNode(): void {
    const now = this.now();
    const away = [...this.nodes].filter(([, node]) => node.quarantinedUntil > now).map(([group]) => group);
    if (away.length > 0) {
      throw new NodeBusy(
        `this change writes every database node (a reference table), and node group ${away.join(", ")} left a ROLLBACK unanswered within the last ${this.options.quarantineMs} ms (quarantined: the coordinator cannot reach it); refused without waiting, try again after Retry-After`,
      );
    }
  }

  /** Node groups held at one connection now. */
  quarantined(): number {
    const now = this.now();
    let count = 0;
    for (const node of this.nodes.values()) if (node.quarantinedUntil > now) count += 1;
    return count;
  }

  /** Waits for the map: a read in progress, or one started now if it is due (for tests). */
  async ready(): Promise<void> {
    this.refresh();
    await this.reading;
  }

  private capOf(node: Node): number {
    return node.quarantinedUntil > this.now() ? 1 : this.options.cap;
  }

  private node(group: number): Node {
    let node = this.nodes.get(group);
    if (!node) this.nodes.set(group, (node = { active: 0, waiting: [], quarantinedUntil: 0 }));
    return node;
  }

  private wait(group: number, node: Node): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const admitted = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const at = node.waiting.indexOf(admitted);
        if (at !== -1) node.waiting.splice(at, 1);
        reject(new NodeBusy(group, this.capOf(node), this.options.waitMs));
      }, this.options.waitMs);
      node.waiting.push(admitted);
    });
  }

  /** Hands freed places to the waiting transactions, first come first served; `active` counts them as they go. */
  private admitWaiting(node: Node): void {
    while (node.waiting.length > 0 && node.active < this.capOf(node)) {
      node.active += 1;
      node.waiting.shift()!();
    }
  }

  private refresh(): void {
    if (this.reading || this.now() - this.readAt < this.options.refreshMs) return;
    this.reading = this.options
      .readMap()
      .then(
        (map) => {
          this.map = map;
          this.severalNodes = new Set(map.map((interval) => interval.group)).size > 1;
          this.readAt = this.now();
        },
        // Kept as it was: a map that cannot be read now (a failover) is tried again by the next transaction, after a
        // pause so a coordinator that is away is not asked once per request.
        () => {
          this.readAt = this.now() - this.options.refreshMs + Math.min(this.options.refreshMs, 1_000);
        },
      )
      .finally(() => (this.reading = undefined));
  }
}
