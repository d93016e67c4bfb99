package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process be killed when the test binary dies, however it dies (a
// test timeout ends it without running deferred calls).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
