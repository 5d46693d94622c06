// Package procs adapts the number of processors the Go scheduler runs
// goroutines on (GOMAXPROCS) to the process's load: one while the process
// uses a small part of a core, the runtime's default as soon as it uses
// more.
//
// A request through the embedded SpiceDB hands off between about ten
// goroutines: gRPC's transport, SpiceDB's dispatch and singleflight
// goroutines, a union's branches, the datastore's reads. With more than
// one processor, a goroutine made runnable while a processor idles wakes
// another OS thread (a futex call) and runs on another core, its data in
// another core's cache; with one processor it runs next, on the same
// thread. Measured on `spicegate serve` (BENCHMARKS.md, "One processor
// while the load is light"): on one processor a check costs 17-24% less
// CPU at 500-2,000 checks/s, but one processor saturates at 0.6-0.7 of a
// core (at 2,000 checks/s through HTTP, p99 26 ms against 9 ms on two).
// So the Controller runs the process on one processor while it stays far
// from saturating it, and gives it all of them as soon as a load needs
// them: more CPU than one processor should carry, or goroutines waiting
// for the processor (which the process's CPU time cannot show when other
// processes take the core, or when one long computation holds it).
// Measured: goroutines stalled by a 500 ms computation got the second
// processor after about 30 ms, a load started beside three busy processes
// after 30-70 ms.
//
// A corner of the runtime: Go's own updates of GOMAXPROCS to a changed CPU
// quota do not apply while one processor is in effect, and if the quota
// changes at such a moment the runtime's updater stops for good (Go 1.26,
// updateMaxProcsGoroutine). The count still follows the quota at every
// switch up and at Run's end, which take the runtime's default afresh.
package procs

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultInterval = 20 * time.Millisecond
	DefaultWindow   = 100 * time.Millisecond
	DefaultUp       = 0.6
	DefaultDown     = 0.3
	DefaultHold     = 2 * time.Second
	DefaultMaxWait  = 5 * time.Millisecond
)

// Config tunes a Controller. A zero field takes its default.
type Config struct {
	// Interval is how often the process's CPU time and the runtime's
	// scheduling latencies are read (DefaultInterval).
	Interval time.Duration
	// Window is the span over which the CPU the process used is averaged
	// (DefaultWindow): the rules on Up and Down look at the last Window.
	Window time.Duration
	// Up is the CPU the process may use on one processor, in cores
	// averaged over Window: above it, the process gets every processor
	// (DefaultUp). One processor's queue grows fast past about 0.7.
	Up float64
	// Down is the CPU, in cores over Window, under which the process goes
	// back to one processor once it has stayed under it for Hold
	// (DefaultDown: half of Up, so that a load between the two keeps
	// whichever it has; a Down not below Up becomes half of Up).
	Down float64
	// Hold is how long the load must stay under Down before the process
	// goes back to one processor (DefaultHold): bursts keep every processor.
	Hold time.Duration
	// MaxWait is how long a goroutine may wait for the one processor: two
	// waits as long within one interval (the runtime samples one
	// scheduling in eight) give the process every processor at once,
	// whatever its CPU time (DefaultMaxWait). This catches what the CPU
	// time cannot: a processor shared with other processes (the process
	// gets less than Up of a core while its requests queue), and one
	// long computation holding the processor (others wait a time slice,
	// 10 ms, at a time). Waits are counted by the runtime's histogram
	// buckets whose lower bound reaches MaxWait: from 5.24 ms for 5 ms.
	MaxWait time.Duration
}

// maxWaitsAllowed is how many sampled schedulings per interval may wait
// MaxWait or longer on one processor; a third is a queue, not a hiccup.
const maxWaitsAllowed = 1

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Window < c.Interval {
		c.Window = max(DefaultWindow, c.Interval)
	}
	if c.Up <= 0 {
		c.Up = DefaultUp
	}
	if c.Down <= 0 {
		c.Down = DefaultDown
	}
	if c.Hold <= 0 {
		c.Hold = DefaultHold
	}
	if c.Down >= c.Up {
		// A load between Up and Down would switch back and forth every Hold.
		c.Down = c.Up / 2
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	return c
}

// ErrUnsupported is returned by Run where the process's CPU time cannot
// be read (platforms without getrusage).
var ErrUnsupported = errors.New("procs: the process's CPU time is not available on this platform")

// ErrRunning is returned by Run while another Run is adapting the process.
var ErrRunning = errors.New("procs: a controller already adapts this process")

// Controller decides, from what the process did over each interval,
// whether it runs on one processor or on all of them. It starts on all of
// them. Controller only decides; Run applies its decisions to the runtime.
type Controller struct {
	cfg     Config
	one     bool
	calm    time.Duration // how long the load has stayed under Down
	samples []sample      // the intervals of the last Window, oldest first
}

type sample struct{ used, elapsed time.Duration }

// NewController returns a Controller that starts on every processor.
func NewController(cfg Config) *Controller { return &Controller{cfg: cfg.withDefaults()} }

// Observe records one interval: the process used `used` of CPU time over
// `elapsed` of wall time, and `waits` of the runtime's sampled schedulings
// waited MaxWait or longer for a processor. It returns whether the process
// should now run on one processor.
func (c *Controller) Observe(used, elapsed time.Duration, waits int) (one bool) {
	if elapsed <= 0 {
		return c.one
	}
	c.samples = append(c.samples, sample{used, elapsed})
	var u, e time.Duration
	for i := len(c.samples) - 1; i >= 0; i-- {
		if e >= c.cfg.Window {
			c.samples = c.samples[i+1:]
			break
		}
		u, e = u+c.samples[i].used, e+c.samples[i].elapsed
	}
	cores := u.Seconds() / e.Seconds()
	switch {
	case cores > c.cfg.Up || (c.one && waits > maxWaitsAllowed):
		c.one, c.calm = false, 0
	case cores >= c.cfg.Down:
		c.calm = 0
	case !c.one:
		c.calm += elapsed
		if c.calm >= c.cfg.Hold {
			c.one, c.calm = true, 0
		}
	}
	return c.one
}

// One reports whether the Controller's last decision is one processor.
func (c *Controller) One() bool { return c.one }

var running atomic.Bool

// Run adapts the runtime's processor count to the process's load until ctx
// ends, then gives the runtime back its default (and its own updates of it,
// which follow the CPU quota). It returns at once, with nil, when the
// process runs on a single processor: there is nothing to adapt. While it
// runs, nothing else may set GOMAXPROCS: if something does, Run leaves the
// count as that set it, logs a warning and returns nil. One Run at a time
// (ErrRunning).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if _, err := cpuTime(); err != nil {
		return err
	}
	if !running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer running.Store(false)
	if runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	c := NewController(cfg)
	waits := newWaitCounter(c.cfg.MaxWait)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	lastCPU, _ := cpuTime()
	lastAt := time.Now()
	set := runtime.GOMAXPROCS(0)
	for {
		select {
		case <-ctx.Done():
			runtime.SetDefaultGOMAXPROCS()
			return nil
		case <-tick.C:
			if n := runtime.GOMAXPROCS(0); n != set {
				if !c.One() {
					// On the runtime's default, the runtime itself changes
					// the count when the CPU quota or affinity changes:
					// the default taken afresh tells that apart.
					runtime.SetDefaultGOMAXPROCS()
					if runtime.GOMAXPROCS(0) == n {
						set = n
						continue
					}
					runtime.GOMAXPROCS(n)
				}
				log.Warn("processors: GOMAXPROCS was set by something else; no longer adapting it", "gomaxprocs", n)
				return nil
			}
			used, err := cpuTime()
			if err != nil {
				runtime.SetDefaultGOMAXPROCS()
				return err
			}
			// When the CPU time was read, not when the tick was due: a tick
			// runs late exactly when one computation holds the processor.
			now := time.Now()
			was := c.One()
			one := c.Observe(used-lastCPU, now.Sub(lastAt), waits.since())
			lastCPU, lastAt = used, now
			if one == was {
				continue
			}
			if one {
				runtime.GOMAXPROCS(1)
			} else {
				// The runtime's default, not a number remembered at start:
				// it follows changes of the CPU quota while in effect.
				runtime.SetDefaultGOMAXPROCS()
			}
			set = runtime.GOMAXPROCS(0)
			log.Debug("processors", "gomaxprocs", set)
		}
	}
}

// waitCounter counts, between two calls of since, the runtime's sampled
// schedulings that waited at least a bound for a processor
// (/sched/latencies:seconds of runtime/metrics).
type waitCounter struct {
	bound  float64
	sample []metrics.Sample
	last   []uint64
}

func newWaitCounter(bound time.Duration) *waitCounter {
	w := &waitCounter{bound: bound.Seconds(), sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
	w.since()
	return w
}

func (w *waitCounter) since() int {
	metrics.Read(w.sample)
	if w.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0 // not in this runtime: the CPU rule alone
	}
	h := w.sample[0].Value.Float64Histogram()
	n := 0
	if len(w.last) == len(h.Counts) {
		for i, c := range h.Counts {
			if h.Buckets[i] >= w.bound { // the bucket's lower bound
				n += int(c - w.last[i])
			}
		}
	}
	w.last = append(w.last[:0], h.Counts...)
	return n
}
