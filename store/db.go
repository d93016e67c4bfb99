package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/quidpay/quid/evm"
	_ "modernc.org/sqlite" // registers "sqlite"
)

// DB is quid's durable store on SQLite (the embedded default) or PostgreSQL (for many instances
// sharing state). Both run the same statements but for the few places the dialects differ; the
// same test suite runs against both.
type DB struct {
	db       *sql.DB
	postgres bool
}

var (
	_ Claims       = (*DB)(nil)
	_ Settlements  = (*DB)(nil)
	_ Reservations = (*DB)(nil)
)

// Open opens the store at dsn and applies pending migrations. A dsn starting with postgres://
// or postgresql:// is a PostgreSQL server; ":memory:" is a SQLite database that lives as long as
// the DB (for tests and demos); anything else is the path of a SQLite file (created with its
// directory if missing).
func Open(ctx context.Context, dsn string) (*DB, error) {
	var d *DB
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		db.SetMaxOpenConns(16)
		d = &DB{db: db, postgres: true}
	} else {
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("store: %w", err)
			}
		}
		// WAL lets readers proceed during a write; FULL synchronous makes every committed claim
		// survive a power cut, not only a process kill; BEGIN IMMEDIATE takes the write lock at
		// the start of a transaction, so read-then-write steps are atomic.
		q := "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
		db, err := sql.Open("sqlite", "file:"+path+q)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// One connection: SQLite has one writer anyway, and a single connection makes every
		// statement of this process see a consistent order without busy retries.
		db.SetMaxOpenConns(1)
		d = &DB{db: db}
	}
	if err := d.migrate(ctx); err != nil {
		d.db.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the store.
func (d *DB) Close() error { return d.db.Close() }

// q rewrites ? placeholders as $1, $2… for PostgreSQL.
func (d *DB) q(query string) string {
	if !d.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// migrations are applied in order, each once; never edit one that has shipped, add another.
// "BLOB" is rewritten as BYTEA for PostgreSQL.
var migrations = []string{
	`CREATE TABLE claims (
		key BLOB PRIMARY KEY,
		expires_at BIGINT NOT NULL
	);
	CREATE TABLE settlements (
		key BLOB PRIMARY KEY,
		state TEXT NOT NULL,
		network TEXT NOT NULL,
		payer TEXT NOT NULL,
		asset TEXT NOT NULL,
		pay_to TEXT NOT NULL,
		amount TEXT NOT NULL,
		payment BLOB NOT NULL,
		tx TEXT NOT NULL DEFAULT '',
		raw_tx BLOB,
		relayer TEXT NOT NULL DEFAULT '',
		relayer_nonce BIGINT NOT NULL DEFAULT 0,
		reason TEXT NOT NULL DEFAULT '',
		reported BOOLEAN NOT NULL DEFAULT FALSE,
		expires_at BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL,
		lease_until BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX settlements_state ON settlements (state, lease_until);
	CREATE INDEX settlements_updated ON settlements (updated_at);
	CREATE TABLE reservations (
		key BLOB PRIMARY KEY,
		scope BLOB NOT NULL,
		amount TEXT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX reservations_scope ON reservations (scope, expires_at);`,
	// A confirmed payment's reservation is kept, with its block, until balances read at later
	// blocks include it.
	`ALTER TABLE reservations ADD COLUMN settled_block BIGINT`,
	// A claimed payment whose settlement outcome is unknown, resumable when presented again.
	`ALTER TABLE claims ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE`,
	walletSchema,
	sellerSchema,
}

func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if d.postgres {
		// Instances starting together must not both apply a migration.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7199001)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var applied int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if applied > len(migrations) {
		return fmt.Errorf("store: the database is at schema version %d, newer than this quid (%d)", applied, len(migrations))
	}
	for v := applied + 1; v <= len(migrations); v++ {
		m := migrations[v-1]
		if d.postgres {
			m = strings.ReplaceAll(m, "BLOB", "BYTEA")
		}
		for _, stmt := range strings.Split(m, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("store: migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), v, time.Now().Unix()); err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	return tx.Commit()
}

// Claim implements Claims.
func (d *DB) Claim(ctx context.Context, key Key, expires time.Time) (bool, error) {
	now := time.Now().Unix()
	// An expired claim is replaced in the same statement, so there is no window between
	// "is it free?" and "take it".
	res, err := d.db.ExecContext(ctx, d.q(`INSERT INTO claims (key, expires_at) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, pending = FALSE WHERE claims.expires_at <= ?`),
		key[:], expires.Unix(), now)
	if err != nil {
		return false, fmt.Errorf("store: claim: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Release implements Claims.
func (d *DB) Release(ctx context.Context, key Key) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM claims WHERE key = ?`), key[:])
	return err
}

// settledRetention is how many blocks a settled reservation is kept after balances began to
// include it, for callers whose node lags a little behind.
const settledRetention = 64

// SetPending implements Claims.
func (d *DB) SetPending(ctx context.Context, key Key, pending bool, expires time.Time) error {
	_, err := d.db.ExecContext(ctx, d.q(`UPDATE claims SET pending = ?, expires_at = ? WHERE key = ?`), pending, expires.Unix(), key[:])
	return err
}

// TakePending implements Claims.
func (d *DB) TakePending(ctx context.Context, key Key) (bool, error) {
	res, err := d.db.ExecContext(ctx, d.q(`UPDATE claims SET pending = FALSE WHERE key = ? AND pending = TRUE AND expires_at > ?`), key[:], time.Now().Unix())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Reserve implements Reservations.
func (d *DB) Reserve(ctx context.Context, scope, key Key, amount, balance evm.Amount, asOf uint64, expires time.Time) (bool, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: reserve: %w", err)
	}
	defer tx.Rollback()
	if d.postgres {
		// Serialize reservations of one scope; other payers proceed in parallel.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, 'hex'), 0))`, scope[:]); err != nil {
			return false, fmt.Errorf("store: reserve: %w", err)
		}
	}
	var exists int
	err = tx.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM reservations WHERE key = ?`), key[:]).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("store: reserve: %w", err)
	}
	if exists > 0 {
		return true, nil
	}
	now := time.Now().Unix()
	rows, err := tx.QueryContext(ctx, d.q(`SELECT amount FROM reservations WHERE scope = ?
		AND ((settled_block IS NULL AND expires_at > ?) OR settled_block > ?)`), scope[:], now, int64(asOf))
	if err != nil {
		return false, fmt.Errorf("store: reserve: %w", err)
	}
	outstanding := amount
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return false, fmt.Errorf("store: reserve: %w", err)
		}
		a, err := evm.ParseAmount(s)
		if err != nil {
			rows.Close()
			return false, fmt.Errorf("store: reserve: corrupt amount %q", s)
		}
		var ok bool
		if outstanding, ok = outstanding.Add(a); !ok {
			rows.Close()
			return false, nil
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("store: reserve: %w", err)
	}
	if outstanding.Cmp(balance) > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM reservations WHERE scope = ?
		AND ((settled_block IS NULL AND expires_at <= ?) OR settled_block + ? < ?)`), scope[:], now, settledRetention, int64(asOf)); err != nil {
		return false, fmt.Errorf("store: reserve: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO reservations (key, scope, amount, expires_at) VALUES (?, ?, ?, ?)`),
		key[:], scope[:], amount.String(), expires.Unix()); err != nil {
		return false, fmt.Errorf("store: reserve: %w", err)
	}
	return true, tx.Commit()
}

// Reserved implements Reservations.
func (d *DB) Reserved(ctx context.Context, key Key) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM reservations WHERE key = ?
		AND (settled_block IS NOT NULL OR expires_at > ?)`), key[:], time.Now().Unix()).Scan(&n)
	return n > 0, err
}

// Settled implements Reservations.
func (d *DB) Settled(ctx context.Context, key Key, block uint64) error {
	_, err := d.db.ExecContext(ctx, d.q(`UPDATE reservations SET settled_block = ? WHERE key = ?`), int64(block), key[:])
	return err
}

// Unreserve implements Reservations.
func (d *DB) Unreserve(ctx context.Context, key Key) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM reservations WHERE key = ?`), key[:])
	return err
}

const settlementColumns = `key, state, network, payer, asset, pay_to, amount, payment, tx, raw_tx, relayer, relayer_nonce, reason, reported, expires_at, created_at, updated_at`

func scanSettlement(row interface{ Scan(...any) error }) (*Settlement, error) {
	var s Settlement
	var key, raw []byte
	var amount string
	var nonce int64
	var exp, created, updated int64
	if err := row.Scan(&key, &s.State, &s.Network, &s.Payer, &s.Asset, &s.PayTo, &amount, &s.Payment, &s.Tx, &raw, &s.Relayer, &nonce, &s.Reason, &s.Reported, &exp, &created, &updated); err != nil {
		return nil, err
	}
	if len(key) != len(s.Key) {
		return nil, errors.New("store: corrupt settlement key")
	}
	copy(s.Key[:], key)
	a, err := evm.ParseAmount(amount)
	if err != nil {
		return nil, fmt.Errorf("store: corrupt amount %q", amount)
	}
	s.Amount, s.RawTx, s.RelayerNonce = a, raw, uint64(nonce)
	s.Expires, s.Created, s.Updated = time.Unix(exp, 0), time.UnixMilli(created), time.UnixMilli(updated)
	return &s, nil
}

// Create implements Settlements.
func (d *DB) Create(ctx context.Context, s *Settlement) (bool, *Settlement, error) {
	now := time.Now()
	s.Created, s.Updated = now, now
	res, err := d.db.ExecContext(ctx, d.q(`INSERT INTO settlements (`+settlementColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`),
		s.Key[:], s.State, s.Network, s.Payer, s.Asset, s.PayTo, s.Amount.String(), s.Payment, s.Tx, s.RawTx,
		s.Relayer, int64(s.RelayerNonce), s.Reason, s.Reported, s.Expires.Unix(), now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, nil, fmt.Errorf("store: create settlement: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, nil, err
	} else if n == 1 {
		return true, nil, nil
	}
	existing, err := d.Get(ctx, s.Key)
	if err != nil {
		return false, nil, err
	}
	return false, existing, nil
}

// Update implements Settlements.
func (d *DB) Update(ctx context.Context, s *Settlement, from State) (bool, error) {
	s.Updated = time.Now()
	res, err := d.db.ExecContext(ctx, d.q(`UPDATE settlements SET state = ?, tx = ?, raw_tx = ?, relayer = ?, relayer_nonce = ?,
		reason = ?, reported = ?, updated_at = ?, lease_until = 0 WHERE key = ? AND state = ?`),
		s.State, s.Tx, s.RawTx, s.Relayer, int64(s.RelayerNonce), s.Reason, s.Reported, s.Updated.UnixMilli(), s.Key[:], from)
	if err != nil {
		return false, fmt.Errorf("store: update settlement: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Delete implements Settlements.
func (d *DB) Delete(ctx context.Context, key Key, from State) (bool, error) {
	res, err := d.db.ExecContext(ctx, d.q(`DELETE FROM settlements WHERE key = ? AND state = ?`), key[:], from)
	if err != nil {
		return false, fmt.Errorf("store: delete settlement: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Report implements Settlements.
func (d *DB) Report(ctx context.Context, key Key) (bool, error) {
	res, err := d.db.ExecContext(ctx, d.q(`UPDATE settlements SET reported = TRUE WHERE key = ? AND state = ? AND reported = FALSE`), key[:], StateConfirmed)
	if err != nil {
		return false, fmt.Errorf("store: report settlement: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Get implements Settlements.
func (d *DB) Get(ctx context.Context, key Key) (*Settlement, error) {
	s, err := scanSettlement(d.db.QueryRowContext(ctx, d.q(`SELECT `+settlementColumns+` FROM settlements WHERE key = ?`), key[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return s, err
}

// List implements Settlements.
func (d *DB) List(ctx context.Context, f Filter) ([]Settlement, error) {
	query := `SELECT ` + settlementColumns + ` FROM settlements`
	var args []any
	if len(f.States) > 0 {
		query += ` WHERE state IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(f.States)), ", ") + `)`
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	query += ` ORDER BY updated_at DESC`
	if f.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	return d.query(ctx, d.q(query), args...)
}

func (d *DB) query(ctx context.Context, query string, args ...any) ([]Settlement, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []Settlement
	for rows.Next() {
		s, err := scanSettlement(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, *s)
	}
	return out, rows.Err()
}

// Hold implements Settlements.
func (d *DB) Hold(ctx context.Context, key Key, until time.Time) error {
	var ms int64
	if !until.IsZero() {
		ms = until.UnixMilli()
	}
	_, err := d.db.ExecContext(ctx, d.q(`UPDATE settlements SET lease_until = ? WHERE key = ?`), ms, key[:])
	return err
}

// Lease implements Settlements.
func (d *DB) Lease(ctx context.Context, states []State, now time.Time, dur time.Duration, limit int) ([]Settlement, error) {
	if len(states) == 0 || limit <= 0 {
		return nil, nil
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", ")
	args := []any{now.Add(dur).UnixMilli()}
	for _, s := range states {
		args = append(args, s)
	}
	args = append(args, now.UnixMilli())
	lock := ""
	if d.postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	query := `UPDATE settlements SET lease_until = ? WHERE key IN (
		SELECT key FROM settlements WHERE state IN (` + in + `) AND lease_until <= ?
		ORDER BY updated_at LIMIT ` + fmt.Sprint(limit) + lock + `) RETURNING ` + settlementColumns
	return d.query(ctx, d.q(query), args...)
}
