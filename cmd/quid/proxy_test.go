package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/wallet"
)

func writeConfig(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestProxyCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeConfig(t, good, "upstream: http://127.0.0.1:9\nfacilitator: http://127.0.0.1:4021\nchain_id: 84532\npay_to: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8\nroutes:\n  - path: /a\n    price: $0.01\n")
	bad := filepath.Join(dir, "bad.yaml")
	writeConfig(t, bad, "upstream: http://127.0.0.1:9\nchain_id: 84532\npay_to: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8\nroutes:\n  - path: /a\n    price: $0.001x\n  - path: /b\n    free: true\n    colour: red\n")
	cases := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"valid", []string{"proxy", "--config", good, "--check"}, 0, []string{good + ": ok, 1 routes"}},
		{"errors with lines", []string{"proxy", "--config", bad, "--check"}, 1, []string{bad + ":6: routes[0].price", bad + `:9: unknown key "colour"`}},
		{"missing file", []string{"proxy", "--config", filepath.Join(dir, "none.yaml"), "--check"}, 1, []string{"none.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			all := out.String() + errOut.String()
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, all)
			}
			for _, want := range tc.out {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q:\n%s", want, all)
				}
			}
		})
	}
}

// The command serves the file, reloads it on a real SIGHUP, and keeps the running
// configuration when the new file is broken.
func TestProxyReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	fac := httptest.NewServer(env.Facilitator.Handler())
	t.Cleanup(fac.Close)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s %s", r.URL.Path, r.Header.Get("X-Version"))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "quid.yaml")
	head := fmt.Sprintf("listen: 127.0.0.1:%d\nupstream: %s\nfacilitator: %s\nchain_id: %d\npay_to: %s\nstore: %s\nroutes:\n",
		freePort(t), up.URL, fac.URL, env.Chain.ChainID(), env.Seller.Address.Hex(), filepath.Join(dir, "quid.db"))
	writeConfig(t, file, head+"  - path: /a\n    free: true\n    headers: {X-Version: one}\n  - path: /paid\n    price: $0.01\n")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"proxy", "--config", file}, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("quid proxy exited %d: %s", code, errOut.String())
		}
	})
	listening := regexp.MustCompile(`quid proxy on (http://[0-9.:]+)`)
	waitOutput := func(buf *syncBuffer, re *regexp.Regexp) []string {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if m := re.FindStringSubmatch(buf.String()); m != nil {
				return m
			}
		}
		t.Fatalf("no %s in output: %s %s", re, out.String(), errOut.String())
		return nil
	}
	base := waitOutput(&out, listening)[1]

	fetch := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := fetch("/a"); code != 200 || body != "upstream /a one" {
		t.Fatalf("/a: %d %q", code, body)
	}
	if code, _ := fetch("/paid"); code != http.StatusPaymentRequired {
		t.Fatalf("/paid: %d, want 402", code)
	}
	waitBody := func(path, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, body := fetch(path); body == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never answered %q", path, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	writeConfig(t, file, head+"  - path: /a\n    free: true\n    headers: {X-Version: two}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitBody("/a", "upstream /a two")

	writeConfig(t, file, head+"  - path: /a\n    free: true\n    headers: {X-Version: three}\n  - path: /b\n    price: lots\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The refusal is logged with the line; version two serves on.
	waitOutput(&errOut, regexp.MustCompile(`configuration not reloaded.*quid.yaml:12: routes\[1\]\.price`))
	if code, body := fetch("/a"); code != 200 || body != "upstream /a two" {
		t.Fatalf("after a broken reload: %d %q", code, body)
	}
}

// quid proxy --dev settles on a chain of its own: the devnet's buyer account pays through it.
func TestProxyDevSettlesOnItsOwnChain(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "paid content") }))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "quid.yaml")
	writeConfig(t, file, fmt.Sprintf("listen: 127.0.0.1:%d\nupstream: %s\nchain_id: 31337\npay_to: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8\nstore: %s\nroutes:\n  - path: /r\n    price: $0.01\n",
		freePort(t), up.URL, filepath.Join(dir, "quid.db")))
	out := startCommand(t, regexp.MustCompile(`quid proxy on http://[0-9.:]+`), "proxy", "--config", file, "--dev")
	base := regexp.MustCompile(`quid proxy on (http://[0-9.:]+)`).FindStringSubmatch(out)[1]

	// The devnet's account 2, a public test key.
	key, err := crypto.HexToECDSA("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
	if err != nil {
		t.Fatal(err)
	}
	w, err := wallet.New(wallet.Config{Key: key, Assets: evm.NewRegistry(evm.DevToken(31337)), Max: "0.01"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.Client().Get(base + "/r")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if st, ok := wallet.Settlement(resp); resp.StatusCode != 200 || string(body) != "paid content" || !ok || !st.Success {
		t.Fatalf("%d %q %+v", resp.StatusCode, body, st)
	}
}
