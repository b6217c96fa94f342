export { startPostgres, postgresUnavailable, freePort, POSTGRES_BIN, type PostgresServer } from "./postgres.js";
