package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/x402"
)

var txHash = regexp.MustCompile(`0x[0-9a-f]{64}`)

func TestDemoPaysSettlesAndRefusesReplay(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"demo"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	got := out.String()
	if n := len(txHash.FindAllString(got, -1)); n != len(demoRoutes) {
		t.Errorf("%d settlement transactions printed, want %d:\n%s", n, len(demoRoutes), got)
	}
	for _, rt := range demoRoutes {
		if !strings.Contains(got, "GET "+rt.path) || !strings.Contains(got, rt.price) {
			t.Errorf("no line for %s at %s:\n%s", rt.path, rt.price, got)
		}
	}
	// The buyer starts with 1,000,000 qUSD and pays $0.265 in all.
	if !strings.Contains(got, "999999.735 qUSD") {
		t.Errorf("final buyer balance not shown:\n%s", got)
	}
	if !strings.Contains(got, "402 Payment Required (invalid_exact_evm_nonce_already_used): refused") {
		t.Errorf("replay not shown as refused:\n%s", got)
	}
}

func writeKey(t *testing.T, hexKey string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(hexKey+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPay(t *testing.T) {
	t.Parallel()
	s, err := startStack(stackConfig{chainID: 31337, rpcAddr: "127.0.0.1:0", facilitatorAddr: "127.0.0.1:0", apiAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buyerKey := fmt.Sprintf("%x", crypto.FromECDSA(s.chain.Accounts()[buyerAccount].Key))
	goodKey := writeKey(t, buyerKey, 0o600)

	cases := []struct {
		name        string
		args        []string
		code        int
		stdout      string
		stderr      string
		notInOutput string
	}{
		{"pays within the maximum", []string{"pay", s.apiURL + "/weather", "--max", "0.05", "--key-file", goodKey}, 0, `"sky":"clear"`, "paid 0.01 qUSD", ""},
		{"flags before the URL", []string{"pay", "--max", "0.01", "--key-file", goodKey, s.apiURL + "/quote"}, 0, "Value is what you get", "paid 0.005 qUSD", ""},
		{"refuses a price above the maximum", []string{"pay", s.apiURL + "/report", "--max", "0.10", "--key-file", goodKey}, 4, "", "exceeds the per-request maximum", ""},
		{"refuses a key file others can read", []string{"pay", s.apiURL + "/weather", "--max", "0.05", "--key-file", writeKey(t, buyerKey, 0o644)}, 1, "", "chmod 600", buyerKey},
		{"refuses a key file that is not a key", []string{"pay", s.apiURL + "/weather", "--max", "0.05", "--key-file", writeKey(t, "zz"+buyerKey[2:], 0o600)}, 1, "", "not a 32-byte hex", buyerKey[2:]},
		{"needs --max", []string{"pay", s.apiURL + "/weather", "--key-file", goodKey}, 2, "", "Usage", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			// Each case gets its own wallet store, after the URL when the URL comes first.
			at := 1
			if !strings.HasPrefix(tc.args[1], "-") {
				at = 2
			}
			args := slices.Concat(tc.args[:at], []string{"--store", filepath.Join(t.TempDir(), "wallet.db")}, tc.args[at:])
			code := run(context.Background(), args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
			if tc.notInOutput != "" && strings.Contains(out.String()+errOut.String(), tc.notInOutput) {
				t.Fatal("the key appeared in the output")
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestFacilitatorServesAgainstAnRPCEndpoint(t *testing.T) {
	t.Parallel()
	chain, err := devnet.Start(devnet.Config{ChainID: 84532})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	rpcURL, err := chain.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := writeKey(t, fmt.Sprintf("%x", crypto.FromECDSA(chain.Accounts()[relayerAccount].Key)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"facilitator", "--rpc", rpcURL, "--key-file", key, "--listen", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errOut)
	}()

	addr := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		base = addr.FindString(out.String())
	}
	if base == "" {
		cancel()
		t.Fatalf("facilitator did not start: %s %s", out.String(), errOut.String())
	}
	resp, err := http.Get(base + "/supported")
	if err != nil {
		t.Fatal(err)
	}
	var sup x402.SupportedResponse
	json.NewDecoder(resp.Body).Decode(&sup)
	resp.Body.Close()
	want := map[string]bool{"2 exact eip155:84532": false, "1 exact base-sepolia": false}
	for _, k := range sup.Kinds {
		want[fmt.Sprintf("%d %s %s", k.X402Version, k.Scheme, k.Network)] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("/supported lacks %s: %+v", k, sup)
		}
	}
	resp, err = http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
}
