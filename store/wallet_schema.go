package store

// walletSchema is migration 4: the buyer wallet's budgets, approvals, delegations and journal.
// Times are Unix milliseconds, journal times Unix nanoseconds (hashed as stored); amounts are
// decimal strings of atomic units, summed exactly in Go. A spend has one row per scope it
// counts against, so a limit's sum reads one index range of one table, with no join for a
// planner to get wrong on a young table.
const walletSchema = `CREATE TABLE wallet_spends (
		wallet TEXT NOT NULL,
		id TEXT NOT NULL,
		scope TEXT NOT NULL,
		network TEXT NOT NULL,
		asset TEXT NOT NULL,
		amount TEXT NOT NULL,
		payee TEXT NOT NULL,
		host TEXT NOT NULL,
		state TEXT NOT NULL,
		dup_key BLOB,
		approval TEXT NOT NULL DEFAULT '',
		tx TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		PRIMARY KEY (wallet, id, scope)
	);
	CREATE INDEX wallet_spends_window ON wallet_spends (wallet, scope, network, asset, created_at);
	CREATE INDEX wallet_spends_dup ON wallet_spends (wallet, dup_key);
	CREATE INDEX wallet_spends_payee ON wallet_spends (wallet, payee, state);
	CREATE TABLE wallet_approvals (
		wallet TEXT NOT NULL,
		id TEXT NOT NULL,
		state TEXT NOT NULL,
		rule TEXT NOT NULL,
		network TEXT NOT NULL,
		asset TEXT NOT NULL,
		amount TEXT NOT NULL,
		payee TEXT NOT NULL,
		host TEXT NOT NULL,
		method TEXT NOT NULL,
		url TEXT NOT NULL,
		purpose TEXT NOT NULL,
		task_id TEXT NOT NULL,
		delegation TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		decided_at BIGINT NOT NULL DEFAULT 0,
		decided_by TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL DEFAULT '',
		used_by TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (wallet, id)
	);
	CREATE INDEX wallet_approvals_state ON wallet_approvals (wallet, state, created_at);
	CREATE TABLE wallet_delegations (
		wallet TEXT NOT NULL,
		id TEXT NOT NULL,
		parent TEXT NOT NULL,
		spend_limit TEXT NOT NULL,
		hosts TEXT NOT NULL,
		payees TEXT NOT NULL,
		routes TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		revoked_at BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (wallet, id)
	);
	CREATE TABLE wallet_journal (
		wallet TEXT NOT NULL,
		seq BIGINT NOT NULL,
		at BIGINT NOT NULL,
		kind TEXT NOT NULL,
		rule TEXT NOT NULL,
		detail TEXT NOT NULL,
		purpose TEXT NOT NULL,
		task_id TEXT NOT NULL,
		upstream_request_id TEXT NOT NULL,
		delegation TEXT NOT NULL,
		approval TEXT NOT NULL,
		spend TEXT NOT NULL,
		actor TEXT NOT NULL,
		payee TEXT NOT NULL,
		host TEXT NOT NULL,
		route TEXT NOT NULL,
		rail TEXT NOT NULL,
		network TEXT NOT NULL,
		asset TEXT NOT NULL,
		amount TEXT NOT NULL,
		tx TEXT NOT NULL,
		response_hash TEXT NOT NULL,
		prev BLOB NOT NULL,
		hash BLOB NOT NULL,
		PRIMARY KEY (wallet, seq)
	)`
