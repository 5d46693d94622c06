// Package stacks makes new goroutines start with a stack as deep as the
// goroutines of a request grow to.
//
// A SpiceDB check runs most of its work in goroutines that live for one
// dispatch (singleflight's, a union's branches, the task runner's), each
// going 16-32 KiB deep through SpiceDB's graph code, the datastore and the
// pure-Go SQLite. Go starts a goroutine with the average stack in use that
// its last collection found (the adaptive starting stack of Go 1.19,
// /gc/stack/starting-size:bytes), and a server's idle goroutines (gRPC's
// workers, connections, timers: a few KiB each) hold that average far
// below: every dispatch goroutine then grows its stack two or three times,
// copying it each time. Measured on `spicegate serve` (BENCHMARKS.md,
// "Goroutines that start deep enough"): stack growth was 7% of the
// server's CPU on a dataset `view` check, and a client calling one check
// after another waited 18% less for each with goroutines starting at
// 32 KiB.
//
// The runtime offers no setting for the starting size, only the average,
// so Hold raises the average: it keeps goroutines parked with a stack in
// use just under the size it is asked for, in proportion to the process's
// other goroutines (twice as many at first; the proportion corrected after
// each collection by the runtime's choice, read back), at most MaxHeld. A
// process with thousands of goroutines of its own (connections) outweighs
// them: the runtime's choice then stands, as without Hold. Stacks the
// collector finds mostly unused still shrink, as always.
package stacks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	// DefaultStart is the starting size Hold is asked for by serve: what a
	// SpiceDB dispatch goroutine uses (16 KiB measured no faster than the
	// runtime's own, 64 KiB slower than 32: BENCHMARKS.md).
	DefaultStart = 32 << 10
	// MinStart and MaxStart bound the sizes Hold accepts: MaxHeld
	// goroutines at MaxStart hold 32 MiB.
	MinStart = 4 << 10
	MaxStart = 128 << 10
	// MaxHeld bounds the goroutines Hold parks: MaxHeld stacks of the
	// starting size (8 MiB at 32 KiB).
	MaxHeld = 256
	// checkEvery is how often Hold looks for a finished collection.
	checkEvery = 100 * time.Millisecond
)

// ErrSize is returned by Hold for a size it cannot hold.
var ErrSize = fmt.Errorf("stacks: the starting size must be a power of two from %d KiB to %d KiB", MinStart>>10, MaxStart>>10)

// ErrUnsupported is returned by Hold when the runtime does not report its
// starting stack size, or does not adapt it (GODEBUG=adaptivestackstart=0).
var ErrUnsupported = errors.New("stacks: the runtime does not report or does not adapt its starting stack size (/gc/stack/starting-size:bytes, GODEBUG adaptivestackstart)")

// held counts the goroutines Hold parks (Held).
var held atomic.Int64

// Held returns how many goroutines Hold keeps parked now: they are among
// the process's goroutines (runtime.NumGoroutine, go_goroutines).
func Held() int { return int(held.Load()) }

const (
	startingSize = "/gc/stack/starting-size:bytes"
	gcCycles     = "/gc/cycles/total:gc-cycles"
)

// StartingSize returns the stack size the runtime gives a new goroutine
// now (0 when it does not say).
func StartingSize() uint64 {
	s := []metrics.Sample{{Name: startingSize}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// Hold makes new goroutines start with at least start bytes of stack (a
// power of two from MinStart to MaxStart) until ctx ends, then lets the
// goroutines it parked go and returns ctx's error. It returns ErrSize or
// ErrUnsupported at once when it cannot.
func Hold(ctx context.Context, start uint64) error {
	if start < MinStart || start > MaxStart || bits.OnesCount64(start) != 1 {
		return ErrSize
	}
	if StartingSize() == 0 || !adaptive(os.Getenv("GODEBUG")) {
		return ErrUnsupported
	}
	release := make(chan struct{})
	var deep atomic.Int64 // parked goroutines at their depth
	n := 0
	defer func() {
		close(release) // every parked goroutine returns
		held.Add(-int64(n))
	}()
	// Each parks with a little less than start in use, so that its stack
	// is start (the runtime adds its guard to the average, then rounds it
	// up to a power of two) and the average stays under start.
	inUse := uintptr(start - start/8)
	hold := func(want int) {
		held.Add(int64(want - n))
		for ; n < want; n++ {
			go func() {
				var base byte
				descend(&base, inUse, &deep, release)
			}()
		}
		for ; n > want; n-- {
			release <- struct{}{}
		}
	}
	// factor is how many goroutines to hold per other goroutine. Twice:
	// goroutines of a few KiB and twice as many at start average a few KiB
	// over start/2, which the runtime rounds up to start. Each collection
	// corrects it for how deep the others are.
	factor := 2.0
	hold(holders(factor, runtime.NumGoroutine()))
	// A collection counts once it began after every parked goroutine had
	// reached its depth: before, the shallow newcomers pull the average
	// down.
	settledAt, settled := uint64(0), false
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if deep.Load() != int64(n) {
			continue
		}
		c := gcCount()
		if !settled {
			settledAt, settled = c, true
			continue
		}
		// The runtime sets the starting size at each collection's end:
		// the one under way when all were deep may have scanned some
		// before.
		if c < settledAt+2 {
			continue
		}
		settledAt = c - 1 // the next collection ending counts
		factor = adjust(factor, StartingSize(), start)
		if want := holders(factor, runtime.NumGoroutine()-n); want != n {
			hold(want)
			settled = false
		}
	}
}

// Bounds of Hold's factor (goroutines held per other goroutine).
const (
	minFactor = 1.0 / 16
	maxFactor = 32
)

// adjust returns Hold's next factor when the runtime starts goroutines at
// now and start is wanted: half as many again while it starts them smaller,
// a quarter fewer once it starts them larger (the process's own goroutines
// are deeper than Hold assumed).
func adjust(factor float64, now, start uint64) float64 {
	switch {
	case now < start:
		return min(factor*1.5, maxFactor)
	case now > start:
		return max(factor*0.75, minFactor)
	}
	return factor
}

// holders returns how many goroutines to hold beside others: factor per
// other goroutine, at most MaxHeld. It follows the others' count, so a
// load's goroutines gone, fewer are held.
func holders(factor float64, others int) int {
	return min(int(math.Ceil(factor*float64(max(others, 1)))), MaxHeld)
}

// adaptive reports whether a GODEBUG value leaves the runtime's adaptive
// starting stack on (its last adaptivestackstart setting wins).
func adaptive(godebug string) bool {
	on := true
	for _, kv := range strings.Split(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "adaptivestackstart" {
			on = v != "0"
		}
	}
	return on
}

func gcCount() uint64 {
	s := []metrics.Sample{{Name: gcCycles}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// descend calls itself until the stack in use, from base (a variable of
// the goroutine's first frame; the runtime moves the pointer with the
// stack when it grows), reaches inUse, then counts itself in deep and
// waits for release. Frames of
// 2 KiB keep the calls few, so collections scan few frames.
//
//go:noinline
func descend(base *byte, inUse uintptr, deep *atomic.Int64, release <-chan struct{}) {
	var frame [2 << 10]byte
	if uintptr(unsafe.Pointer(base))-uintptr(unsafe.Pointer(&frame[0])) < inUse {
		descend(base, inUse, deep, release)
		return
	}
	deep.Add(1)
	<-release
	deep.Add(-1)
}
