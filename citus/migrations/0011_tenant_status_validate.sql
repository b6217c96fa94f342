-- migrate:no-transaction
-- 0010's wider status CHECK, NOT VALID there so that adding it scanned nothing under its lock; validating takes a
-- lock that lets reads and writes go on (SHARE UPDATE EXCLUSIVE), for the length of one scan of platform.tenants.
ALTER TABLE platform.tenants VALIDATE CONSTRAINT tenants_status_check;
