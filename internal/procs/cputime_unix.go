//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package procs

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, in user and kernel mode,
// on every thread.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
