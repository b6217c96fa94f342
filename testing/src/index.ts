export { startPostgres, postgresUnavailable, freePort, POSTGRES_BIN, type PostgresServer } from "./postgres.js";
export { startRedis, redisUnavailable, type RedisServer } from "./redis.js";
