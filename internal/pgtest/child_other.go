//go:build !linux

package pgtest

import (
	"os/exec"
)

type credential struct{}

func postgresUser(string) (*credential, error) { return nil, nil }

func asChild(*exec.Cmd, *credential) {}
