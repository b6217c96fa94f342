export {
  MIGRATIONS_DIR,
  MIGRATION_LOCK_KEY,
  MigrationError,
  loadMigrations,
  splitStatements,
  planMigrations,
  readApplied,
  runMigrations,
  hasCitus,
  acquireMigrationLock,
  type Migration,
  type AppliedMigration,
  type RunOptions,
  type RunResult,
} from "./migrations.js";
export { HOME_DATABASE, DATABASE_NAME_PATTERN, DatabaseEnvError, databasesFromEnv, type DatabaseEndpoint } from "./databases.js";
export { TENANT_COLOCATION_TABLE, groupOfTenant, readShardMap, uuidHash, type ShardInterval, type ShardMap } from "./shard-map.js";
