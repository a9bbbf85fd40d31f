-- bulk-enroll's own table: the durable outbox (SPEC §5).  Rows are written
-- in the same transaction as the enrollments they describe and drained by
-- the dispatcher.  Safe to apply twice; names no database.  Runs on
-- MariaDB 10.6+ and MySQL 8.0.13+ alike (docs/operations.md, "SQL
-- dialect"): expression defaults in parentheses, no display widths.
--
-- idempotency_key is the receiver's deduplication key and ours: a re-sent
-- request inserts nothing new (src/outbox.c inserts with ON DUPLICATE KEY
-- UPDATE id = id, so only a duplicate key is tolerated).  Scheme
-- (src/outbox.h): "order:<fulfillment uuid>:<subsidy uuid>",
-- "email:<fulfillment uuid>:<subsidy uuid>" for successes and
-- "email-pending:<enterprise uuid>:<pending enrollment id>" for pending ones.
CREATE TABLE IF NOT EXISTS bulk_enroll_outbox (
	id bigint unsigned NOT NULL AUTO_INCREMENT,
	kind enum('order','email') NOT NULL,
	idempotency_key varchar(191) NOT NULL,
	payload longtext NOT NULL CHECK (json_valid(payload)),
	state enum('pending','sending','done','failed') NOT NULL DEFAULT 'pending',
	attempts int unsigned NOT NULL DEFAULT 0,
	next_attempt_at datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
	last_error varchar(2048) DEFAULT NULL,
	created datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
	modified datetime(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
	PRIMARY KEY (id),
	UNIQUE KEY bulk_enroll_outbox_idempotency_key (idempotency_key),
	-- the dispatcher claims due rows of one kind:
	-- WHERE kind = ? AND state IN ('pending', 'sending')
	-- AND next_attempt_at <= UTC_TIMESTAMP(6)
	-- ORDER BY next_attempt_at, id ... FOR UPDATE SKIP LOCKED;
	-- /metrics (outbox_read_depth in src/outbox.c) reads it alone too:
	-- WHERE kind IN ('order', 'email')
	-- AND state IN ('pending', 'sending', 'failed') GROUP BY kind, state,
	-- a COUNT and the MIN(next_attempt_at) of each range
	KEY bulk_enroll_outbox_due (kind, state, next_attempt_at),
	-- the retention purge: WHERE state = 'done' AND modified < ... ORDER BY modified
	KEY bulk_enroll_outbox_retention (state, modified)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A table made by an earlier version of this file lacks the retention
-- index.  Neither server shares an "ADD INDEX IF NOT EXISTS", so the
-- statement is chosen from information_schema and run as a prepared one.
SET @bulk_enroll_ddl = (
	SELECT IF(COUNT(*) = 0,
		'ALTER TABLE bulk_enroll_outbox ADD KEY bulk_enroll_outbox_retention (state, modified)',
		'DO 0')
	FROM information_schema.statistics
	WHERE table_schema = DATABASE() AND table_name = 'bulk_enroll_outbox'
	AND index_name = 'bulk_enroll_outbox_retention');
PREPARE bulk_enroll_stmt FROM @bulk_enroll_ddl;
EXECUTE bulk_enroll_stmt;
DEALLOCATE PREPARE bulk_enroll_stmt;
SET @bulk_enroll_ddl = NULL;
