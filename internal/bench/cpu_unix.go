//go:build unix

package bench

import (
	"syscall"
	"time"
)

// rusageSelf returns the CPU time (user + system) of every thread of this process.
func rusageSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
