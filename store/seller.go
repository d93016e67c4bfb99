package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/evm"
)

// SellerPayment is one settled payment for a paid route.
type SellerPayment struct {
	// Key is the payment's claim key; recording a payment twice counts it once.
	Key    Key
	At     time.Time
	Payer  common.Address
	Route  string // the route's "METHOD /path" pattern
	Asset  common.Address
	Amount evm.Amount
	Tx     string
	// Status is the status the handler answered. 400 or above means the payment was settled
	// (before the handler ran) but the request was not served: quid does not refund on chain,
	// so the seller settles it with the payer (see Payments with Unserved).
	Status int
}

// Refusal is one request a seller refused for its access policy or an invalid credential.
type Refusal struct {
	At     time.Time
	Payer  common.Address // zero when the payer was not known
	Route  string
	Reason string
	Status int
}

// PayerRecord is what a seller knows of one payer.
type PayerRecord struct {
	Payer common.Address
	// Requests counts served requests: paid ones and those on a capability token.
	Requests int64
	// Payments counts settled payments; Paid sums them per asset.
	Payments    int64
	Paid        []AssetTotal
	LastSeen    time.Time
	Blocked     bool
	BlockReason string
}

// AssetTotal is a sum of atomic units of one asset.
type AssetTotal struct {
	Asset  common.Address
	Amount evm.Amount
}

// RouteRevenue is what one route earned in one asset.
type RouteRevenue struct {
	Route    string
	Asset    common.Address
	Payments int64
	Total    evm.Amount
}

// PaymentFilter selects recorded payments.
type PaymentFilter struct {
	// Unserved selects payments settled for requests the handler then failed.
	Unserved bool
	// Limit bounds the answer; 0 is 100.
	Limit int
}

// UseCapability takes one use of capability token id if fewer than max were taken (max 0: no
// limit) and reports whether it did. It is one statement: of any number of concurrent calls for
// a token's last use — across goroutines and every process sharing the store — exactly one
// returns true. The count is kept at least until expires (the latest expiry seen for the id).
func (d *DB) UseCapability(ctx context.Context, id [16]byte, max uint64, expires time.Time) (bool, error) {
	limit := int64(math.MaxInt64)
	if max > 0 && max < math.MaxInt64 {
		limit = int64(max)
	}
	res, err := d.db.ExecContext(ctx, d.q(`INSERT INTO seller_capabilities (id, used, expires_at) VALUES (?, 1, ?)
		ON CONFLICT (id) DO UPDATE SET used = seller_capabilities.used + 1,
			expires_at = CASE WHEN excluded.expires_at > seller_capabilities.expires_at THEN excluded.expires_at ELSE seller_capabilities.expires_at END
		WHERE seller_capabilities.used < ?`), id[:], expires.Unix(), limit)
	if err != nil {
		return false, fmt.Errorf("store: use capability: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CapabilityUsed returns how many uses of token id were taken.
func (d *DB) CapabilityUsed(ctx context.Context, id [16]byte) (uint64, error) {
	var n int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT used FROM seller_capabilities WHERE id = ?`), id[:]).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(n), err
}

// PruneCapabilities forgets the use counts of tokens that expired before before. Their tokens
// are refused as expired, so the counts are no longer needed.
func (d *DB) PruneCapabilities(ctx context.Context, before time.Time) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM seller_capabilities WHERE expires_at < ?`), before.Unix())
	return err
}

// forUpdate locks the rows a read-modify-write reads on PostgreSQL; SQLite transactions hold the
// database's write lock from their start (BEGIN IMMEDIATE).
func (d *DB) forUpdate() string {
	if d.postgres {
		return " FOR UPDATE"
	}
	return ""
}

// AddSpend adds amount to payer's spend in the window starting at window if the window's total
// stays within max, and reports whether it did. Reading the total and adding to it are one
// transaction holding the row, so concurrent payments of one payer — from every process sharing
// the store — never take it past max. Earlier windows of the payer are dropped.
func (d *DB) AddSpend(ctx context.Context, payer common.Address, window time.Time, amount, max evm.Amount) (bool, error) {
	ok := false
	err := d.spend(ctx, payer, window, func(spent evm.Amount) (evm.Amount, bool) {
		total, fits := spent.Add(amount)
		if !fits || total.Cmp(max) > 0 {
			return spent, false
		}
		ok = true
		return total, true
	})
	return ok, err
}

// RefundSpend takes back amount from payer's spend in the window starting at window, for a
// payment that was admitted but not settled. It never goes below zero.
func (d *DB) RefundSpend(ctx context.Context, payer common.Address, window time.Time, amount evm.Amount) error {
	return d.spend(ctx, payer, window, func(spent evm.Amount) (evm.Amount, bool) {
		left, ok := spent.Sub(amount)
		if !ok {
			left = evm.Amount{}
		}
		return left, true
	})
}

// Spent returns payer's spend in the window starting at window.
func (d *DB) Spent(ctx context.Context, payer common.Address, window time.Time) (evm.Amount, error) {
	var s string
	err := d.db.QueryRowContext(ctx, d.q(`SELECT spent FROM seller_spend WHERE payer = ? AND window_start = ?`), payer.Hex(), window.Unix()).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return evm.Amount{}, nil
	}
	if err != nil {
		return evm.Amount{}, fmt.Errorf("store: spent: %w", err)
	}
	return evm.ParseAmount(s)
}

func (d *DB) spend(ctx context.Context, payer common.Address, window time.Time, f func(evm.Amount) (evm.Amount, bool)) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: spend: %w", err)
	}
	defer tx.Rollback()
	p, w := payer.Hex(), window.Unix()
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO seller_spend (payer, window_start, spent) VALUES (?, ?, '0') ON CONFLICT (payer, window_start) DO NOTHING`), p, w); err != nil {
		return fmt.Errorf("store: spend: %w", err)
	}
	var s string
	if err := tx.QueryRowContext(ctx, d.q(`SELECT spent FROM seller_spend WHERE payer = ? AND window_start = ?`+d.forUpdate()), p, w).Scan(&s); err != nil {
		return fmt.Errorf("store: spend: %w", err)
	}
	spent, err := evm.ParseAmount(s)
	if err != nil {
		return fmt.Errorf("store: spend: corrupt amount %q", s)
	}
	next, write := f(spent)
	if !write {
		return nil
	}
	if _, err := tx.ExecContext(ctx, d.q(`UPDATE seller_spend SET spent = ? WHERE payer = ? AND window_start = ?`), next.String(), p, w); err != nil {
		return fmt.Errorf("store: spend: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM seller_spend WHERE payer = ? AND window_start < ?`), p, w); err != nil {
		return fmt.Errorf("store: spend: %w", err)
	}
	return tx.Commit()
}

// RecordPayment records a settled payment: in the payment journal, the payer's record and the
// route's revenue, all in one transaction. A payment already recorded (same key) changes nothing.
func (d *DB) RecordPayment(ctx context.Context, p SellerPayment) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: record payment: %w", err)
	}
	defer tx.Rollback()
	at := p.At.UnixMilli()
	res, err := tx.ExecContext(ctx, d.q(`INSERT INTO seller_payments (key, at, payer, route, asset, amount, tx, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`),
		p.Key[:], at, p.Payer.Hex(), p.Route, p.Asset.Hex(), p.Amount.String(), p.Tx, p.Status)
	if err != nil {
		return fmt.Errorf("store: record payment: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	served := 1
	if p.Status >= 400 {
		served = 0
	}
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO seller_payers (payer, requests, payments, last_seen) VALUES (?, ?, 1, ?)
		ON CONFLICT (payer) DO UPDATE SET requests = seller_payers.requests + excluded.requests, payments = seller_payers.payments + 1,
			last_seen = CASE WHEN excluded.last_seen > seller_payers.last_seen THEN excluded.last_seen ELSE seller_payers.last_seen END`),
		p.Payer.Hex(), served, at); err != nil {
		return fmt.Errorf("store: record payment: %w", err)
	}
	if err := d.addTotal(ctx, tx, "seller_paid", "payer", p.Payer.Hex(), p.Asset, p.Amount); err != nil {
		return err
	}
	if err := d.addTotal(ctx, tx, "seller_revenue", "route", p.Route, p.Asset, p.Amount); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.q(`UPDATE seller_revenue SET payments = payments + 1 WHERE route = ? AND asset = ?`), p.Route, p.Asset.Hex()); err != nil {
		return fmt.Errorf("store: record payment: %w", err)
	}
	return tx.Commit()
}

// addTotal adds amount to the total of (keyCol = key, asset) in table, within tx. table and
// keyCol are constants of this file, never input.
func (d *DB) addTotal(ctx context.Context, tx *sql.Tx, table, keyCol, key string, asset common.Address, amount evm.Amount) error {
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO `+table+` (`+keyCol+`, asset, total) VALUES (?, ?, '0') ON CONFLICT (`+keyCol+`, asset) DO NOTHING`), key, asset.Hex()); err != nil {
		return fmt.Errorf("store: %s: %w", table, err)
	}
	var s string
	if err := tx.QueryRowContext(ctx, d.q(`SELECT total FROM `+table+` WHERE `+keyCol+` = ? AND asset = ?`+d.forUpdate()), key, asset.Hex()).Scan(&s); err != nil {
		return fmt.Errorf("store: %s: %w", table, err)
	}
	total, err := evm.ParseAmount(s)
	if err != nil {
		return fmt.Errorf("store: %s: corrupt amount %q", table, s)
	}
	if total, ok := total.Add(amount); ok {
		_, err = tx.ExecContext(ctx, d.q(`UPDATE `+table+` SET total = ? WHERE `+keyCol+` = ? AND asset = ?`), total.String(), key, asset.Hex())
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", table, err)
	}
	return nil
}

// RecordRequests counts n requests of payer served without a payment of their own (on a
// capability token), the last at last.
func (d *DB) RecordRequests(ctx context.Context, payer common.Address, n uint64, last time.Time) error {
	if n > math.MaxInt64 {
		n = math.MaxInt64
	}
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO seller_payers (payer, requests, last_seen) VALUES (?, ?, ?)
		ON CONFLICT (payer) DO UPDATE SET requests = seller_payers.requests + excluded.requests,
			last_seen = CASE WHEN excluded.last_seen > seller_payers.last_seen THEN excluded.last_seen ELSE seller_payers.last_seen END`),
		payer.Hex(), int64(n), last.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: record requests: %w", err)
	}
	return nil
}

// RecordRefusal records a refused request.
func (d *DB) RecordRefusal(ctx context.Context, r Refusal) error {
	payer := ""
	if r.Payer != (common.Address{}) {
		payer = r.Payer.Hex()
	}
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO seller_refusals (at, payer, route, reason, status) VALUES (?, ?, ?, ?, ?)`),
		r.At.UnixMilli(), payer, r.Route, r.Reason, r.Status)
	if err != nil {
		return fmt.Errorf("store: record refusal: %w", err)
	}
	return nil
}

// PruneRefusals forgets refusals recorded before before.
func (d *DB) PruneRefusals(ctx context.Context, before time.Time) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM seller_refusals WHERE at < ?`), before.UnixMilli())
	return err
}

// Known reports whether payer has a settled payment on record.
func (d *DB) Known(ctx context.Context, payer common.Address) (bool, error) {
	var n int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT payments FROM seller_payers WHERE payer = ?`), payer.Hex()).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: known: %w", err)
	}
	return n > 0, nil
}

// Blocked reports whether payer is blocked.
func (d *DB) Blocked(ctx context.Context, payer common.Address) (bool, error) {
	var b bool
	err := d.db.QueryRowContext(ctx, d.q(`SELECT blocked FROM seller_payers WHERE payer = ?`), payer.Hex()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: blocked: %w", err)
	}
	return b, nil
}

// BlockPayer blocks payer, with a reason for the admin.
func (d *DB) BlockPayer(ctx context.Context, payer common.Address, reason string) error {
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO seller_payers (payer, blocked, block_reason) VALUES (?, TRUE, ?)
		ON CONFLICT (payer) DO UPDATE SET blocked = TRUE, block_reason = excluded.block_reason`), payer.Hex(), reason)
	if err != nil {
		return fmt.Errorf("store: block payer: %w", err)
	}
	return nil
}

// UnblockPayer lifts a block.
func (d *DB) UnblockPayer(ctx context.Context, payer common.Address) error {
	_, err := d.db.ExecContext(ctx, d.q(`UPDATE seller_payers SET blocked = FALSE, block_reason = '' WHERE payer = ?`), payer.Hex())
	if err != nil {
		return fmt.Errorf("store: unblock payer: %w", err)
	}
	return nil
}

func limitOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return min(n, 10_000)
}

// Payers lists payer records, most recently seen first; limit 0 is 100.
func (d *DB) Payers(ctx context.Context, limit int) ([]PayerRecord, error) {
	rows, err := d.db.QueryContext(ctx, fmt.Sprintf(`SELECT payer, requests, payments, last_seen, blocked, block_reason
		FROM seller_payers ORDER BY last_seen DESC, payer LIMIT %d`, limitOr(limit, 100)))
	if err != nil {
		return nil, fmt.Errorf("store: payers: %w", err)
	}
	var out []PayerRecord
	index := map[common.Address]int{}
	for rows.Next() {
		var r PayerRecord
		var payer string
		var seen int64
		if err := rows.Scan(&payer, &r.Requests, &r.Payments, &seen, &r.Blocked, &r.BlockReason); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: payers: %w", err)
		}
		r.Payer, r.LastSeen = common.HexToAddress(payer), time.UnixMilli(seen)
		index[r.Payer] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: payers: %w", err)
	}
	paid, err := d.db.QueryContext(ctx, `SELECT payer, asset, total FROM seller_paid ORDER BY payer, asset`)
	if err != nil {
		return nil, fmt.Errorf("store: payers: %w", err)
	}
	defer paid.Close()
	for paid.Next() {
		var payer, asset, total string
		if err := paid.Scan(&payer, &asset, &total); err != nil {
			return nil, fmt.Errorf("store: payers: %w", err)
		}
		i, ok := index[common.HexToAddress(payer)]
		if !ok {
			continue
		}
		a, err := evm.ParseAmount(total)
		if err != nil {
			return nil, fmt.Errorf("store: payers: corrupt amount %q", total)
		}
		out[i].Paid = append(out[i].Paid, AssetTotal{Asset: common.HexToAddress(asset), Amount: a})
	}
	return out, paid.Err()
}

// Revenue lists what each route earned, per asset.
func (d *DB) Revenue(ctx context.Context) ([]RouteRevenue, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT route, asset, payments, total FROM seller_revenue ORDER BY route, asset`)
	if err != nil {
		return nil, fmt.Errorf("store: revenue: %w", err)
	}
	defer rows.Close()
	var out []RouteRevenue
	for rows.Next() {
		var r RouteRevenue
		var asset, total string
		if err := rows.Scan(&r.Route, &asset, &r.Payments, &total); err != nil {
			return nil, fmt.Errorf("store: revenue: %w", err)
		}
		a, err := evm.ParseAmount(total)
		if err != nil {
			return nil, fmt.Errorf("store: revenue: corrupt amount %q", total)
		}
		r.Asset, r.Total = common.HexToAddress(asset), a
		out = append(out, r)
	}
	return out, rows.Err()
}

// Refusals lists recorded refusals, newest first; limit 0 is 100.
func (d *DB) Refusals(ctx context.Context, limit int) ([]Refusal, error) {
	rows, err := d.db.QueryContext(ctx, fmt.Sprintf(`SELECT at, payer, route, reason, status FROM seller_refusals
		ORDER BY at DESC LIMIT %d`, limitOr(limit, 100)))
	if err != nil {
		return nil, fmt.Errorf("store: refusals: %w", err)
	}
	defer rows.Close()
	var out []Refusal
	for rows.Next() {
		var r Refusal
		var at int64
		var payer string
		if err := rows.Scan(&at, &payer, &r.Route, &r.Reason, &r.Status); err != nil {
			return nil, fmt.Errorf("store: refusals: %w", err)
		}
		r.At = time.UnixMilli(at)
		if payer != "" {
			r.Payer = common.HexToAddress(payer)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Payments lists recorded payments, newest first.
func (d *DB) Payments(ctx context.Context, f PaymentFilter) ([]SellerPayment, error) {
	where := ""
	if f.Unserved {
		where = ` WHERE status >= 400`
	}
	rows, err := d.db.QueryContext(ctx, fmt.Sprintf(`SELECT key, at, payer, route, asset, amount, tx, status FROM seller_payments%s
		ORDER BY at DESC LIMIT %d`, where, limitOr(f.Limit, 100)))
	if err != nil {
		return nil, fmt.Errorf("store: payments: %w", err)
	}
	defer rows.Close()
	var out []SellerPayment
	for rows.Next() {
		var p SellerPayment
		var key []byte
		var at int64
		var payer, asset, amount string
		if err := rows.Scan(&key, &at, &payer, &p.Route, &asset, &amount, &p.Tx, &p.Status); err != nil {
			return nil, fmt.Errorf("store: payments: %w", err)
		}
		if len(key) != len(p.Key) {
			return nil, errors.New("store: corrupt payment key")
		}
		copy(p.Key[:], key)
		a, err := evm.ParseAmount(amount)
		if err != nil {
			return nil, fmt.Errorf("store: payments: corrupt amount %q", amount)
		}
		p.At, p.Payer, p.Asset, p.Amount = time.UnixMilli(at), common.HexToAddress(payer), common.HexToAddress(asset), a
		out = append(out, p)
	}
	return out, rows.Err()
}
