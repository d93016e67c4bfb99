// Package pgtest gives tests a real PostgreSQL: a throwaway cluster started with Debian's
// initdb and pg_ctl on 127.0.0.1 for the life of the test binary, and a fresh database per test.
// Set QUID_TEST_POSTGRES to a server URL to use an existing server instead.
//
// Where PostgreSQL is not installed the tests that need it skip, except under CI (CI set), where
// they fail: CI installs it and must not pass without it.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

var cluster struct {
	once sync.Once
	url  string // admin URL of the running server
	stop func()
	err  error
}

// Main runs the tests of a package that uses DSN, then stops the cluster. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if cluster.stop != nil {
		cluster.stop()
	}
	os.Exit(code)
}

// DSN returns the URL of a new, empty database for t.
func DSN(t testing.TB) string {
	t.Helper()
	cluster.once.Do(start)
	if cluster.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required under CI: %v", cluster.err)
		}
		t.Skipf("PostgreSQL not available: %v", cluster.err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "quid_test_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", cluster.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	return strings.Replace(cluster.url, "/postgres?", "/"+name+"?", 1)
}

func start() {
	if url := os.Getenv("QUID_TEST_POSTGRES"); url != "" {
		cluster.url = url
		return
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		cluster.err = fmt.Errorf("no initdb under /usr/lib/postgresql (apt-get install postgresql)")
		return
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "quid-pg-")
	if err != nil {
		cluster.err = err
		return
	}
	port, err := freePort()
	if err != nil {
		cluster.err = err
		return
	}
	// initdb refuses to run as root; run it and the server as the postgres user then. The
	// server is this process's child, not a pg_ctl daemon, so it dies with the test binary
	// however that ends (a test timeout runs no deferred calls).
	cred, err := postgresUser(dir)
	if err != nil {
		cluster.err = err
		return
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	asChild(initdb, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		cluster.err = fmt.Errorf("initdb: %v: %s", err, out)
		return
	}
	server := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-c", "listen_addresses=127.0.0.1", "-p", fmt.Sprint(port),
		"-k", dir, "-c", "fsync=off", "-c", "max_connections=200")
	asChild(server, cred)
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		cluster.err = err
		return
	}
	server.Stdout, server.Stderr = logFile, logFile
	if err := server.Start(); err != nil {
		cluster.err = fmt.Errorf("starting postgres: %w", err)
		return
	}
	cluster.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	cluster.stop = func() {
		server.Process.Signal(os.Interrupt) // fast shutdown
		server.Wait()
		logFile.Close()
		os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, _ := sql.Open("pgx", cluster.url)
	defer db.Close()
	for db.PingContext(ctx) != nil {
		select {
		case <-ctx.Done():
			cluster.err = fmt.Errorf("the test cluster did not accept connections in time")
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
