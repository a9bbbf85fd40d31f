-- bulk-enroll's own table: the durable outbox (SPEC §5).  Rows are written
-- in the same transaction as the enrollments they describe and drained by
-- the dispatcher.  Safe to apply twice; names no database.
--
-- idempotency_key is the receiver's deduplication key and ours: a re-sent
-- request inserts nothing new (INSERT IGNORE on the unique key).  Scheme
-- (src/outbox.h): "order:<fulfillment uuid>:<subsidy uuid>",
-- "email:<fulfillment uuid>:<subsidy uuid>" for successes and
-- "email-pending:<enterprise uuid>:<pending enrollment id>" for pending ones.
CREATE TABLE IF NOT EXISTS bulk_enroll_outbox (
	id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
	kind enum('order','email') NOT NULL,
	idempotency_key varchar(191) NOT NULL,
	payload longtext NOT NULL CHECK (json_valid(payload)),
	state enum('pending','sending','done','failed') NOT NULL DEFAULT 'pending',
	attempts int(10) unsigned NOT NULL DEFAULT 0,
	next_attempt_at datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	last_error varchar(2048) DEFAULT NULL,
	created datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	modified datetime(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
	PRIMARY KEY (id),
	UNIQUE KEY bulk_enroll_outbox_idempotency_key (idempotency_key),
	-- the dispatcher claims due rows of one kind:
	-- WHERE kind = ? AND state = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(6)
	-- ORDER BY next_attempt_at ... FOR UPDATE SKIP LOCKED
	KEY bulk_enroll_outbox_due (kind, state, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
