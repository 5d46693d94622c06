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
// from saturating it, and gives it all of them within one sampling
// interval of a load that needs them.
package procs

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultUp       = 0.6
	DefaultDown     = 0.3
	DefaultHold     = 2 * time.Second
)

// Config tunes a Controller. A zero field takes its default.
type Config struct {
	// Interval is how often the process's CPU time is read: the longest a
	// load that needs more processors runs on one (DefaultInterval).
	Interval time.Duration
	// Up is the CPU the process may use on one processor, in cores averaged
	// over one interval: above it, the process gets every processor
	// (DefaultUp). One processor's queue grows fast past about 0.7.
	Up float64
	// Down is the CPU, in cores, under which the process goes back to one
	// processor once it has stayed under it for Hold (DefaultDown: half of
	// Up, so that a load between the two keeps whichever it has; a Down not
	// below Up becomes half of Up).
	Down float64
	// Hold is how long the load must stay under Down before the process
	// goes back to one processor (DefaultHold): bursts keep every processor.
	Hold time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
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
	return c
}

// ErrUnsupported is returned by Run where the process's CPU time cannot
// be read (platforms without getrusage).
var ErrUnsupported = errors.New("procs: the process's CPU time is not available on this platform")

// Controller decides, from the CPU time the process used over each
// interval, whether it runs on one processor or on all of them. It starts
// on all of them. Controller only decides; Run applies its decisions to the
// runtime.
type Controller struct {
	cfg  Config
	one  bool
	calm time.Duration // how long the load has stayed under Down
}

// NewController returns a Controller that starts on every processor.
func NewController(cfg Config) *Controller { return &Controller{cfg: cfg.withDefaults()} }

// Observe records that the process used `used` of CPU time over `elapsed`
// of wall time, and returns whether it should now run on one processor.
func (c *Controller) Observe(used, elapsed time.Duration) (one bool) {
	if elapsed <= 0 {
		return c.one
	}
	cores := used.Seconds() / elapsed.Seconds()
	switch {
	case cores > c.cfg.Up:
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

// Run adapts the runtime's processor count to the process's load until ctx
// ends, then gives the runtime back its default (and its own updates of it,
// which follow the CPU quota). It returns at once, with nil, when the
// process runs on a single processor: there is nothing to adapt.
// Nothing else in the process may set GOMAXPROCS while it runs.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if _, err := cpuTime(); err != nil {
		return err
	}
	if runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	c := NewController(cfg)
	defer runtime.SetDefaultGOMAXPROCS()
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	lastCPU, _ := cpuTime()
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			used, err := cpuTime()
			if err != nil {
				return err
			}
			was := c.One()
			one := c.Observe(used-lastCPU, now.Sub(lastAt))
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
			log.Debug("processors", "gomaxprocs", runtime.GOMAXPROCS(0))
		}
	}
}
