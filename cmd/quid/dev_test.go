package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startCommand runs a long-lived command until the test ends and returns its output once it
// has printed want.
func startCommand(t *testing.T, want *regexp.Regexp, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("quid %s exited %d: %s", args[0], code, errOut.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if want.MatchString(out.String()) {
			return out.String()
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("quid %s exited %d: %s %s", args[0], code, out.String(), errOut.String())
		default:
		}
	}
	t.Fatalf("quid %s printed no %s: %s", args[0], want, out.String())
	return ""
}

func rpcCall(t *testing.T, url, method string) string {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":[]}`, method)
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Result string }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Result
}

func TestDevchainServesJSONRPC(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	out := startCommand(t, regexp.MustCompile(`Press Ctrl-C`), "devchain", "--port", fmt.Sprint(port), "--chain-id", "84532")
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if !strings.Contains(out, url) || !strings.Contains(out, "0x5FbDB2315678afecb367f032d93F642f64180aa3") || !strings.Contains(out, "PUBLIC TEST KEYS") {
		t.Errorf("output lacks the URL, the token or the test-key warning:\n%s", out)
	}
	if got := rpcCall(t, url, "eth_chainId"); got != "0x14a34" {
		t.Errorf("eth_chainId = %s, want 0x14a34 (84532)", got)
	}
}

func TestDevRunsTheStackUntilInterrupted(t *testing.T) {
	t.Parallel()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	out := startCommand(t, regexp.MustCompile(`Press Ctrl-C`), "dev",
		"--rpc-listen", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--facilitator-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	for _, want := range []string{"chain id 31337", "PUBLIC TEST KEYS", "0x5FbDB2315678afecb367f032d93F642f64180aa3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The paid API answers 402 with terms; the facilitator lists the chain.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/weather", ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired || resp.Header.Get("PAYMENT-REQUIRED") == "" {
		t.Errorf("paid API answered %d without terms", resp.StatusCode)
	}
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/supported", ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(b.String(), "eip155:31337") {
		t.Errorf("/supported: %s", b.String())
	}
}

func TestDevRefusesNonLoopbackAddresses(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"dev", "--api-listen", "0.0.0.0:0", "--rpc-listen", "127.0.0.1:0", "--facilitator-listen", "127.0.0.1:0"}, &out, &errOut)
	if code == 0 || !strings.Contains(errOut.String(), "not a loopback address") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
