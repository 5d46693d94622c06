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
// after another waited 10-30% less for each with goroutines starting at
// 32 KiB.
//
// The runtime offers no setting for the starting size, only the average,
// so Hold raises the average: it keeps goroutines parked with a stack in
// use just under the size it is asked for, as many as the runtime's own
// figures of its last collection (the stack it scanned, the goroutines
// alive) say it takes, recomputed after each collection (fewer only when
// two in a row say so: a burst of goroutines gone by the time it reads
// the figures makes one look deep enough). When the
// process's goroutines are deep enough on their own, it parks none; when
// it would take more than 8 MiB of parked stacks (a process with thousands
// of goroutines of its own, connections), none either, and the runtime's
// choice stands, as without Hold. Stacks the collector finds mostly unused
// still shrink, as always.
package stacks

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"runtime/metrics"
	"strconv"
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
	// MinStart and MaxStart bound the sizes Hold accepts.
	MinStart = 16 << 10
	MaxStart = 128 << 10
	// MaxHeld bounds the goroutines Hold parks at DefaultStart; at other
	// sizes it parks at most as many bytes of stack (8 MiB).
	MaxHeld = 256
	// checkEvery is how often Hold looks for a finished collection.
	checkEvery = 100 * time.Millisecond
)

// ErrSize is returned by Hold for a size it cannot hold.
var ErrSize = fmt.Errorf("stacks: the starting size must be a power of two from %d KiB to %d KiB", MinStart>>10, MaxStart>>10)

// ErrUnsupported is returned by Hold when the runtime does not report its
// starting stack size, or does not follow the average (GODEBUG
// adaptivestackstart=0).
var ErrUnsupported = errors.New("stacks: the runtime does not report its starting stack size or does not follow the average stack (/gc/stack/starting-size:bytes, GODEBUG adaptivestackstart)")

// followsAverage tells whether the runtime sizes new goroutines by the
// average stack: GODEBUG's adaptivestackstart, which the runtime reads
// once, at start, from the environment, and never again. (Its compile-time
// default cannot name it: //go:debug and go.mod's godebug lines accept only
// the settings of internal/godebugs, which it is not among. A linker flag
// setting runtime.godebugDefault could; Hold does not see that one, and
// then parks up to 8 MiB of stacks for nothing.)
var followsAverage = adaptiveStackStart(os.Getenv("GODEBUG"))

// adaptiveStackStart reads adaptivestackstart from GODEBUG settings the
// way the runtime does (runtime1.go, parsegodebug): each string left to
// right, later settings over earlier ones, values that are not integers
// ignored; on by default.
func adaptiveStackStart(settings ...string) bool {
	on := true
	for _, godebug := range settings {
		for field := range strings.SplitSeq(godebug, ",") {
			key, value, ok := strings.Cut(field, "=")
			if !ok || key != "adaptivestackstart" {
				continue
			}
			if n, err := strconv.ParseInt(value, 10, 32); err == nil {
				on = n != 0
			}
		}
	}
	return on
}

// held counts the goroutines Hold parks (Held).
var held atomic.Int64

// Held returns how many goroutines Hold keeps parked now: they are among
// the process's goroutines (runtime.NumGoroutine, go_goroutines).
func Held() int { return int(held.Load()) }

const (
	startingSize   = "/gc/stack/starting-size:bytes"
	gcCycles       = "/gc/cycles/total:gc-cycles"
	stackScan      = "/gc/scan/stack:bytes"
	liveGoroutines = "/sched/goroutines:goroutines"
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
// goroutines it parked go and returns ctx's error. It returns ErrSize,
// ErrRunning or ErrUnsupported at once when it cannot (ErrUnsupported when
// the runtime does not follow the average: GODEBUG=adaptivestackstart=0).
func Hold(ctx context.Context, start uint64) error {
	if err := CheckSize(start); err != nil {
		return err
	}
	if !followsAverage || StartingSize() == 0 {
		return ErrUnsupported
	}
	if !running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer running.Store(false)
	release := make(chan struct{})
	var deep atomic.Int64 // parked goroutines at their depth
	n := 0
	defer func() {
		close(release) // every parked goroutine returns
		held.Add(-int64(n))
	}()
	// Each parks with a little less than start in use, so that its stack
	// is start, never more.
	inUse := start - start/8
	hold := func(want int) {
		held.Add(int64(want - n))
		for ; n < want; n++ {
			go func() {
				var base byte
				descend(&base, uintptr(inUse), &deep, release)
			}()
		}
		for ; n > want; n-- {
			release <- struct{}{}
		}
	}
	// from is the first collection whose figures count (0: not known yet).
	// With goroutines just parked, it is the second to end once all are
	// deep: the one under way then may have scanned some shallow, and
	// shallow newcomers pull the average down. Otherwise any new one.
	from := uint64(1)
	// shrink is what a reading that wanted fewer goroutines wanted (-1:
	// none pending). It takes two readings in a row to hold fewer: goroutines
	// that a collection scanned and that are gone when Hold reads its
	// figures (a burst of requests, a bulk import) make the stack look deep
	// for the ones left, once.
	shrink := -1
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
		r := read()
		if from == 0 {
			from = r.cycles + 1
			if n > 0 {
				from++
			}
		}
		if r.cycles < from {
			continue
		}
		from = r.cycles + 1
		want := next(n, r, start, inUse)
		switch {
		case want < n && shrink < 0:
			shrink = want
			continue
		case want < n:
			want = max(want, shrink)
		}
		shrink = -1
		if want != n {
			hold(want)
			from = 0
		}
	}
}

// CheckSize returns ErrSize unless Hold can hold size: a power of two
// from MinStart to MaxStart.
func CheckSize(size uint64) error {
	if size < MinStart || size > MaxStart || bits.OnesCount64(size) != 1 {
		return ErrSize
	}
	return nil
}

// ErrRunning is returned by Hold while another Hold runs in the process.
var ErrRunning = errors.New("stacks: Hold already runs in this process")

var running atomic.Bool

// maxBytes bounds the stacks Hold parks: MaxHeld goroutines at 32 KiB.
const maxBytes = MaxHeld * DefaultStart

// reading is what the runtime said of its last collection.
type reading struct {
	cycles       uint64 // collections so far
	stackScanned uint64 // bytes of stack in use it scanned
	goroutines   uint64 // goroutines alive now
}

func read() reading {
	s := []metrics.Sample{{Name: gcCycles}, {Name: stackScan}, {Name: liveGoroutines}}
	metrics.Read(s)
	var v [3]uint64
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	return reading{cycles: v[0], stackScanned: v[1], goroutines: v[2]}
}

// next returns how many goroutines to hold, holding held of inUse bytes
// each, after the collection r tells of, for a starting size of start.
//
// The runtime starts goroutines with the average stack in use it scanned,
// plus a guard, rounded up to a power of two: start once the average is
// over start/2. Hold aims at 9/16 of start (a margin for the guard and for
// goroutines that come and go), so with the others' goroutines g and their
// stack s, h held make the average (s + h*inUse) / (g + h) reach it when
// h >= (g*aim - s) / (inUse - aim). It holds a quarter more than that, and
// changes only when it holds too few, or over half again too many. None when
// the others average that much alone, or when more than its budget would be
// needed (thousands of goroutines): the runtime's choice then stands.
func next(held int, r reading, start, inUse uint64) int {
	aim := start * 9 / 16
	others := max(r.goroutines, uint64(held)+1) - uint64(held)
	own := uint64(held) * inUse
	otherStack := max(r.stackScanned, own) - own
	if otherStack >= others*aim {
		return 0
	}
	needed := int((others*aim - otherStack + inUse - aim - 1) / (inUse - aim))
	if needed > int(maxBytes/start) {
		return 0
	}
	if held >= needed && held <= needed*3/2 {
		return held
	}
	return min(needed+needed/4, int(maxBytes/start))
}

// descend calls itself until the stack in use, from base (a variable of
// the goroutine's first frame; the runtime moves the pointer with the
// stack when it grows), reaches inUse, then counts itself in deep and
// waits for release. Frames of 2 KiB keep the calls few, so collections
// scan few frames.
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
