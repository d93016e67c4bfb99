package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestAuditCommand(t *testing.T) {
	t.Parallel()
	e := newWcliEnv(t, wcliPolicy)
	for _, args := range [][]string{
		{"/weather", "--purpose", "plan the picnic", "--task", "T-42"},
		{"/quote", "--purpose", "a quote"},
		{"/weather", "--purpose", "again"}, // refused: duplicate, journaled
		{"/report", "--purpose", "quarterly numbers"},
	} {
		e.pay(t, args[0], args[1:]...)
	}
	who := []string{"--address", e.address, "--store", e.store}

	r := e.quid(t, append([]string{"audit", "verify"}, who...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "intact") {
		t.Fatal(r)
	}
	n := len(e.journal(t))
	if n < 4 {
		t.Fatalf("%d journal entries", n)
	}

	t.Run("export jsonl", func(t *testing.T) {
		r := e.quid(t, append([]string{"audit", "export", "--format", "jsonl"}, who...)...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != n {
			t.Fatalf("%d lines for %d entries: %v", len(lines), n, r)
		}
		var first struct {
			Seq     uint64 `json:"seq"`
			Kind    string `json:"kind"`
			Purpose string `json:"purpose"`
			TaskID  string `json:"task_id"`
			Hash    string `json:"hash"`
		}
		// Keys and passphrases are never journaled.
		hexKey := fmt.Sprintf("%x", crypto.FromECDSA(e.Buyer.Key))
		if strings.Contains(r.stdout, hexKey[:16]) || strings.Contains(r.stdout, wcliPassphrase) {
			t.Fatal("the journal holds a secret")
		}
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Seq != 1 || first.Kind != "paid" || first.Purpose != "plan the picnic" || first.TaskID != "T-42" || len(first.Hash) != 64 {
			t.Fatalf("%+v %v", first, err)
		}
	})
	t.Run("export csv to a file", func(t *testing.T) {
		out := filepath.Join(e.dir, "journal.csv")
		r := e.quid(t, append([]string{"audit", "export", "--format", "csv", "--out", out}, who...)...)
		if r.code != 0 || r.stdout != "" {
			t.Fatal(r)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil || len(rows) != n+1 || rows[0][0] != "seq" {
			t.Fatalf("%d rows, %v", len(rows), err)
		}
		if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
			t.Errorf("export mode %v", st.Mode())
		}
		// An existing file is never overwritten.
		if r := e.quid(t, append([]string{"audit", "export", "--format", "csv", "--out", out}, who...)...); r.code != 1 {
			t.Fatal(r)
		}
	})
	t.Run("bad usage", func(t *testing.T) {
		for _, args := range [][]string{{"audit"}, {"audit", "frobnicate"}, append([]string{"audit", "export", "--format", "xml"}, who...)} {
			if r := e.quid(t, args...); r.code != 2 {
				t.Fatalf("%v: %v", args, r)
			}
		}
	})

	// Edit the journal behind the wallet's back, as someone covering their tracks would.
	db, err := sql.Open("sqlite", e.store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), `UPDATE wallet_journal SET purpose = 'nothing to see' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	r = e.quid(t, append([]string{"audit", "verify"}, who...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "altered: entry 2") {
		t.Fatal(r)
	}
	if _, err := db.ExecContext(context.Background(), `DELETE FROM wallet_journal WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	r = e.quid(t, append([]string{"audit", "verify"}, who...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "altered: entry 3") {
		t.Fatal(r)
	}
}
