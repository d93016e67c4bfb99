package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeSetup is the outcome of looking for node and the pinned packages, once per test binary.
var nodeSetup = sync.OnceValues(func() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node is not on PATH")
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile("package.json")
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("package.json: %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", ".package-lock.json")); err != nil {
		return "", fmt.Errorf("interop/node_modules is missing: run `npm ci --prefix interop` (make test does)")
	}
	names := make([]string, 0, len(pkg.Dependencies))
	for name := range pkg.Dependencies {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want := pkg.Dependencies[name]
		var installed struct {
			Version string `json:"version"`
		}
		b, err := os.ReadFile(filepath.Join("node_modules", name, "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &installed)
		}
		if err != nil || installed.Version != want {
			return "", fmt.Errorf("interop/node_modules has %s %q, package.json pins %q: run `npm ci --prefix interop`", name, installed.Version, want)
		}
	}
	return node, nil
})

// requireNode returns the node binary, or ends the test: it fails when the CI environment
// variable is set (CI must run these tests) and skips otherwise.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := nodeSetup()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("interop test needs node and the pinned packages (CI is set, so this is a failure): %v", err)
		}
		t.Skipf("skipping interop test: %v", err)
	}
	return node
}

func environ(vars map[string]string) []string {
	env := os.Environ()
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// runScript runs scripts/<name> to completion and decodes the last line it printed into out.
func runScript(t *testing.T, name string, vars map[string]string, out any) {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("scripts", name))
	cmd.Env = environ(vars)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", name, err, stderr.String(), stdout.String())
	}
	t.Logf("node %s took %v", name, time.Since(start).Round(time.Millisecond))
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	if err := json.Unmarshal([]byte(last), out); err != nil {
		t.Fatalf("node %s printed %q: %v\nstderr:\n%s", name, last, err, stderr.String())
	}
}

// script is a long-running node script: a server or a facilitator.
type script struct {
	URL   string
	mu    sync.Mutex
	lines []json.RawMessage
}

// Lines returns what the script has printed after its listening line.
func (s *script) Lines() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.lines...)
}

// startScript starts scripts/<name>, waits for its {"listening": url} line and stops it when the
// test ends. The script exits by itself when its stdin closes, so it cannot outlive the test
// binary.
func startScript(t *testing.T, name string, vars map[string]string) *script {
	t.Helper()
	node := requireNode(t)
	cmd := exec.Command(node, filepath.Join("scripts", name))
	cmd.Env = environ(vars)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node %s: %v", name, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("node %s stderr:\n%s", name, stderr.String())
		}
	})

	s := &script{}
	listening := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			var l struct {
				Listening string `json:"listening"`
			}
			if json.Unmarshal(line, &l) == nil && l.Listening != "" {
				listening <- l.Listening
				continue
			}
			s.mu.Lock()
			s.lines = append(s.lines, line)
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	select {
	case s.URL = <-listening:
	case <-done:
		t.Fatalf("node %s exited before listening:\n%s", name, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("node %s did not start listening within 60s:\n%s", name, stderr.String())
	}
	return s
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
