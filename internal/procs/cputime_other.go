//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package procs

import "time"

func cpuTime() (time.Duration, error) { return 0, ErrUnsupported }
