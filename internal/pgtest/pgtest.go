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
	"os/user"
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
	// initdb refuses to run as root; run the server as the postgres user then.
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			cluster.err = fmt.Errorf("running as root and no postgres user: %w", err)
			return
		}
		if out, err := exec.Command("chown", "-R", u.Username, dir).CombinedOutput(); err != nil {
			cluster.err = fmt.Errorf("chown: %v: %s", err, out)
			return
		}
		asUser = []string{"runuser", "-u", u.Username, "--"}
	}
	cmd := func(name string, args ...string) *exec.Cmd {
		full := append(append([]string{}, asUser...), filepath.Join(bin, name))
		full = append(full, args...)
		return exec.Command(full[0], full[1:]...)
	}
	data := filepath.Join(dir, "data")
	if out, err := cmd("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		cluster.err = fmt.Errorf("initdb: %v: %s", err, out)
		return
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", port, dir)
	if out, err := cmd("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "30", "-o", opts, "start").CombinedOutput(); err != nil {
		cluster.err = fmt.Errorf("pg_ctl start: %v: %s", err, out)
		return
	}
	cluster.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	cluster.stop = func() {
		cmd("pg_ctl", "-D", data, "-m", "immediate", "stop").Run()
		os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, _ := sql.Open("pgx", cluster.url)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		cluster.err = fmt.Errorf("connecting to the test cluster: %w", err)
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
