package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The TypeScript peer runs interop/scripts/bench-peer.mjs with the packages interop's lockfile
// pins. This file finds them, installs them when asked, and runs the script.

// FindInterop returns the interop directory of the quid checkout that contains dir or one of
// its parents, or an error when there is none (quid was installed without its sources).
func FindInterop(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(mod)), "module github.com/quidpay/quid") {
			interop := filepath.Join(dir, "interop")
			if _, err := os.Stat(filepath.Join(interop, "package-lock.json")); err != nil {
				return "", fmt.Errorf("%s has no interop/package-lock.json", dir)
			}
			return interop, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside a quid checkout (no go.mod of github.com/quidpay/quid above the working directory): run quid bench from the repository, or pass --interop")
		}
		dir = parent
	}
}

// ErrPeersMissing reports that the pinned npm packages are not installed.
var ErrPeersMissing = errors.New("the TypeScript peer's npm packages are not installed")

// checkPeers returns the node binary and the installed versions of the pinned packages, or an
// error wrapping ErrPeersMissing when node_modules is absent or differs from package.json.
func checkPeers(interop string) (node string, versions map[string]string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", nil, errors.New("node is not on PATH; the TypeScript peer needs Node.js 20 or later")
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(interop, "package.json"))
	if err != nil {
		return "", nil, err
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", nil, fmt.Errorf("interop/package.json: %v", err)
	}
	if _, err := os.Stat(filepath.Join(interop, "node_modules", ".package-lock.json")); err != nil {
		return "", nil, fmt.Errorf("%w: interop/node_modules is missing", ErrPeersMissing)
	}
	names := make([]string, 0, len(pkg.Dependencies))
	for name := range pkg.Dependencies {
		names = append(names, name)
	}
	sort.Strings(names)
	versions = map[string]string{}
	for _, name := range names {
		want := pkg.Dependencies[name]
		var installed struct {
			Version string `json:"version"`
		}
		b, err := os.ReadFile(filepath.Join(interop, "node_modules", name, "package.json"))
		if err == nil {
			err = json.Unmarshal(b, &installed)
		}
		if err != nil || installed.Version != want {
			return "", nil, fmt.Errorf("%w: interop/node_modules has %s %q, package.json pins %q", ErrPeersMissing, name, installed.Version, want)
		}
		versions[name] = installed.Version
	}
	return node, versions, nil
}

// installPeers runs npm ci in interop: it installs exactly what the lockfile pins, or fails.
func installPeers(interop string, out io.Writer) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm is not on PATH")
	}
	cmd := exec.Command(npm, "ci", "--prefix", interop, "--no-audit", "--no-fund")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci --prefix %s: %w", interop, err)
	}
	return nil
}

func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// peerProc is a running node script.
type peerProc struct {
	URL    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	stderr *tailBuffer
}

// startPeer starts a node script with env and waits for its {"listening": url} line. It exits
// by itself when its stdin closes, so it cannot outlive the bench.
func startPeer(node, script string, env map[string]string) (*peerProc, error) {
	cmd := exec.Command(node, script)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &peerProc{cmd: cmd, stdin: stdin, done: make(chan struct{}), stderr: &tailBuffer{max: 16 << 10}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting node %s: %w", filepath.Base(script), err)
	}
	listening := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l struct {
				Listening string `json:"listening"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Listening != "" {
				select {
				case listening <- l.Listening:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	select {
	case p.URL = <-listening:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("node %s exited before listening: %s", filepath.Base(script), p.stderr.String())
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("node %s did not listen within 60s: %s", filepath.Base(script), p.stderr.String())
	}
}

func (p *peerProc) pid() int { return p.cmd.Process.Pid }

// stop closes the script's stdin and waits for it to exit, killing it after 5 seconds.
func (p *peerProc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
