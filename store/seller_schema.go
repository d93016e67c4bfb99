package store

// sellerSchema is migration 5: the seller's capability-token uses, spend windows and payer
// records. Amounts are decimal text (uint256 does not fit a SQL integer) and are summed in Go
// inside a transaction that holds the row.
const sellerSchema = `CREATE TABLE seller_capabilities (
		id BLOB PRIMARY KEY,
		used BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX seller_capabilities_expires ON seller_capabilities (expires_at);
	CREATE TABLE seller_spend (
		payer TEXT NOT NULL,
		window_start BIGINT NOT NULL,
		spent TEXT NOT NULL,
		PRIMARY KEY (payer, window_start)
	);
	CREATE TABLE seller_payers (
		payer TEXT PRIMARY KEY,
		requests BIGINT NOT NULL DEFAULT 0,
		payments BIGINT NOT NULL DEFAULT 0,
		last_seen BIGINT NOT NULL DEFAULT 0,
		blocked BOOLEAN NOT NULL DEFAULT FALSE,
		block_reason TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE seller_paid (
		payer TEXT NOT NULL,
		asset TEXT NOT NULL,
		total TEXT NOT NULL,
		PRIMARY KEY (payer, asset)
	);
	CREATE TABLE seller_revenue (
		route TEXT NOT NULL,
		asset TEXT NOT NULL,
		payments BIGINT NOT NULL DEFAULT 0,
		total TEXT NOT NULL,
		PRIMARY KEY (route, asset)
	);
	CREATE TABLE seller_payments (
		key BLOB PRIMARY KEY,
		at BIGINT NOT NULL,
		payer TEXT NOT NULL,
		route TEXT NOT NULL,
		asset TEXT NOT NULL,
		amount TEXT NOT NULL,
		tx TEXT NOT NULL,
		status INTEGER NOT NULL
	);
	CREATE INDEX seller_payments_at ON seller_payments (at);
	CREATE TABLE seller_refusals (
		at BIGINT NOT NULL,
		payer TEXT NOT NULL,
		route TEXT NOT NULL,
		reason TEXT NOT NULL,
		status INTEGER NOT NULL
	);
	CREATE INDEX seller_refusals_at ON seller_refusals (at)`
