-- Row-level security stays enabled on every tenant table, but no longer FORCEd.
--
-- Why: Citus moves a shard (rebalance, drain, move-shard, add-node --rebalance, isolate-tenant) by copying it and
-- then replicating the writes made during the copy through a logical replication subscription on the target node.
-- That subscription runs as a temporary role Citus creates as a member of the table's owner
-- (citus_shard_move_subscription_role_*, "CREATE USER ... IN ROLE <owner>"). PostgreSQL's apply worker refuses to
-- write into a table where row-level security applies to it ("cannot replicate into relation with row-level security
-- enabled"): with FORCE, RLS applies to the owner and its members too, so the catch-up never ends while anything
-- writes, and the source node's replication slot holds back WAL meanwhile. Without FORCE the owner's members are
-- exempt and the move completes.
--
-- What still holds: RLS applies to every role that is neither the owner, nor a member of it, nor BYPASSRLS. The
-- service's role (platform_app) is none of these; the tenant service refuses to start if that ever changes
-- (row_security_active on every platform table, checked at boot). The owner, platform_migrator, is the migration
-- role: it runs DDL, never serves a request, and now reads every tenant's rows unfiltered, as a superuser does.
-- docs/ARCHITECTURE.md, "Tenant isolation", has the reasoning and what it costs.
--
-- Each ALTER takes a short ACCESS EXCLUSIVE lock on the table and its shards. The runner sets a lock_timeout and
-- retries, so on a live cluster this waits behind the service's transactions for moments at a time instead of
-- queueing every later write behind itself.
--
-- All the locks first, in one statement, in the order the service's transactions take them: the table a request
-- writes, the tables its foreign keys check, the audit log last. Taken one ALTER at a time instead, a write could hold
-- one while waiting for another this migration held, and Citus's distributed deadlock detector cancelled those
-- writes (6 of about 300 in a test on Citus 13.2). Holding the coordinator's locks, no new statement of the service
-- starts, so the shards' locks are free by the time the ALTERs reach the workers.
LOCK TABLE platform.items, platform.users, platform.tenants, platform.tenant_metrics, platform.audit_log IN ACCESS EXCLUSIVE MODE;

ALTER TABLE platform.tenants NO FORCE ROW LEVEL SECURITY;
ALTER TABLE platform.users NO FORCE ROW LEVEL SECURITY;
ALTER TABLE platform.items NO FORCE ROW LEVEL SECURITY;
ALTER TABLE platform.audit_log NO FORCE ROW LEVEL SECURITY;
ALTER TABLE platform.tenant_metrics NO FORCE ROW LEVEL SECURITY;
