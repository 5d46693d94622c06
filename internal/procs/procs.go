// Package procs adapts the number of processors the Go scheduler runs
// goroutines on (GOMAXPROCS) to the process's load: one while it is light
// or comes one request at a time, the runtime's default as soon as
// requests overlap on a busy processor or goroutines queue for it.
//
// A request through the embedded SpiceDB hands off between about ten
// goroutines: gRPC's transport, SpiceDB's dispatch and singleflight
// goroutines, a union's branches, the datastore's reads. With more than
// one processor, a goroutine made runnable while a processor idles wakes
// another OS thread (a futex call) and runs on another core, its data in
// another core's cache; with one processor it runs next, on the same
// thread. Measured on `spicegate serve` (BENCHMARKS.md, "One processor
// while the load is light" and "One processor for one request at a
// time"): on one processor a check costs 17-24% less CPU at 500-2,000
// checks/s, and a client calling one check after another waits about 20%
// less for each; but requests that arrive together queue for the one
// processor (at 1,500-2,000 checks/s through HTTP, p99 13-26 ms against
// 6-9 ms on two).
//
// The process's CPU time alone does not tell these apart: a client
// calling back to back keeps one processor 94% busy with nothing to run
// beside its request, while 1,500 random arrivals per second queue at
// 60%. So the servers of the process report their requests
// (RequestStarted, RequestEnded) and the Controller counts those that
// started while another was in flight. It runs the process on one
// processor once, for Hold, it has used under Down cores, or under
// TryBelow cores with almost no request overlapping another (MaxOverlap);
// and on every processor as soon as, on one, it uses more than Up cores
// while requests overlap, or goroutines queue for the processor: more
// than MaxQueued sampled waits of QueueWait within Window, or two of
// MaxWait within one Interval (parallel work the requests do not
// announce, one long computation holding the processor, other processes
// on the core: the runtime's /sched/latencies). A switch to one processor
// for sequential requests that queues within Hold makes the next such
// switch wait twice as long as the last (from Hold to MaxBackoff); one
// that queues later halves that wait. A request that runs parts of itself in parallel (a
// bulk check, a lookup: ParallelRequestStarted) counts as overlapping, so
// a client calling them keeps every processor; a single one among a
// sequential client's checks runs on the one processor unless it queues.
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
	DefaultInterval   = 20 * time.Millisecond
	DefaultWindow     = 100 * time.Millisecond
	DefaultUp         = 0.6
	DefaultDown       = 0.3
	DefaultHold       = 2 * time.Second
	DefaultTryBelow   = 1.25
	DefaultMaxOverlap = 0.05
	DefaultMaxBackoff = time.Minute
	DefaultQueueWait  = 2 * time.Millisecond
	DefaultMaxQueued  = 2
	DefaultMaxWait    = 5 * time.Millisecond
)

// Config tunes a Controller. A zero field takes its default.
type Config struct {
	// Interval is how often the process's CPU time, its requests and the
	// runtime's scheduling latencies are read (DefaultInterval).
	Interval time.Duration
	// Window is the span over which CPU, overlapping requests and waits
	// for the one processor decide a switch to every processor
	// (DefaultWindow).
	Window time.Duration
	// Up is the CPU the process may use on one processor, in cores
	// averaged over Window, while its requests overlap (more than
	// MaxOverlap of them): above it, the process gets every processor
	// (DefaultUp). One processor's queue grows fast past about 0.7. Over
	// a Window without requests reported, the CPU alone decides.
	Up float64
	// Down is the CPU, in cores over Window, under which the process goes
	// back to one processor once it has stayed under it for Hold
	// (DefaultDown: half of Up, so that a load between the two keeps
	// whichever it has; a Down not below Up becomes half of Up).
	Down float64
	// Hold is how long the load must stay light before the process goes
	// back to one processor, and how long a switch for sequential
	// requests must last to count as held (DefaultHold).
	Hold time.Duration
	// TryBelow and MaxOverlap: a process that used under TryBelow cores
	// over Hold, with requests reported and at most MaxOverlap of them
	// started while another was in flight, runs on one processor
	// (DefaultTryBelow, DefaultMaxOverlap). A sequential client kept
	// 0.92-1.07 cores busy on two processors of this project's 2-core
	// machine (threads woken and spinning), 0.94 of the one.
	TryBelow   float64
	MaxOverlap float64
	// MaxBackoff bounds the wait after switches for sequential requests
	// that queued within Hold (DefaultMaxBackoff).
	MaxBackoff time.Duration
	// QueueWait and MaxQueued: more than MaxQueued of the runtime's
	// sampled schedulings (one in eight) waiting QueueWait or longer for
	// the one processor within Window is a queue, and gives the process
	// every processor, whatever its requests (DefaultQueueWait,
	// DefaultMaxQueued): parallel work the requests do not announce, a
	// long computation, other processes on the core. Measured through
	// `serve` (BENCHMARKS.md): on one processor, a sequential client at
	// 0.94 cores or 1,000 random checks/s never had more than two in
	// 100 ms.
	QueueWait time.Duration
	MaxQueued int
	// MaxWait is how long a goroutine may wait for the one processor: two
	// waits as long within one interval give the process every processor
	// at once (DefaultMaxWait): one long computation holding the
	// processor (others wait a time slice, 10 ms, at a time), or other
	// processes taking the core. Waits are counted by the runtime's
	// histogram buckets whose lower bound reaches the bound: from 5.24 ms
	// for 5 ms, 2.1 ms for 2 ms.
	MaxWait time.Duration
}

// maxWaitsAllowed is how many sampled schedulings per interval may wait
// MaxWait or longer on one processor; a second is a stall, not a hiccup.
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
	if c.Down >= c.Up {
		// A load between Up and Down would switch back and forth every Hold.
		c.Down = c.Up / 2
	}
	if c.Hold <= 0 {
		c.Hold = DefaultHold
	}
	if c.TryBelow <= 0 {
		c.TryBelow = DefaultTryBelow
	}
	if c.MaxOverlap <= 0 {
		c.MaxOverlap = DefaultMaxOverlap
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.QueueWait <= 0 {
		c.QueueWait = DefaultQueueWait
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	return c
}

// ErrUnsupported is returned by Run where the process's CPU time or the
// runtime's scheduling latencies cannot be read (platforms without
// getrusage).
var ErrUnsupported = errors.New("procs: the process's CPU time or scheduling latencies are not available on this platform")

// ErrRunning is returned by Run while another Run is adapting the process.
var ErrRunning = errors.New("procs: a controller already adapts this process")

// Sample is what the process did over one interval of a Controller.
type Sample struct {
	Used, Elapsed time.Duration // CPU time used over wall time elapsed
	// Started is how many requests started, Overlapped how many of them
	// while another was in flight (RequestStarted).
	Started, Overlapped int
	// Queued and Stalled are how many of the runtime's sampled
	// schedulings waited QueueWait and MaxWait or longer for a processor.
	Queued, Stalled int
}

// Controller decides, from what the process did over each interval,
// whether it runs on one processor or on all of them. It starts on all of
// them. Controller only decides; Run applies its decisions to the runtime.
type Controller struct {
	cfg     Config
	one     bool
	tried   bool          // on one processor for sequential requests, not for a light load
	calm    time.Duration // how long the load has stayed under Down
	now     time.Duration // the elapsed time observed, summed: the Controller's clock
	since   time.Duration // when the last switch happened
	backoff time.Duration // the wait after the last try that queued (0: none)
	nextTry time.Duration // no try before this
	samples []Sample      // since the last switch, covering at most max(Window, Hold), oldest first
}

// NewController returns a Controller that starts on every processor.
func NewController(cfg Config) *Controller { return &Controller{cfg: cfg.withDefaults()} }

// Observe records one interval and returns whether the process should now
// run on one processor.
func (c *Controller) Observe(iv Sample) (one bool) {
	if iv.Elapsed <= 0 {
		return c.one
	}
	c.now += iv.Elapsed
	c.samples = append(c.samples, iv)
	var window, hold, total Sample // the sums over the last Window and the last Hold
	keep := max(c.cfg.Window, c.cfg.Hold)
	for i := len(c.samples) - 1; i >= 0; i-- {
		if total.Elapsed >= keep {
			c.samples = c.samples[i+1:]
			break
		}
		s := c.samples[i]
		total.Elapsed += s.Elapsed
		if window.Elapsed < c.cfg.Window {
			window = add(window, s)
		}
		if hold.Elapsed < c.cfg.Hold {
			hold = add(hold, s)
		}
	}
	cores := window.Used.Seconds() / window.Elapsed.Seconds()
	if c.one {
		queue := iv.Stalled > maxWaitsAllowed || window.Queued > c.cfg.MaxQueued
		busy := cores > c.cfg.Up && (window.Started == 0 || c.overlapping(window))
		if queue || busy {
			if c.tried && queue {
				if c.now-c.since < c.cfg.Hold { // requests one at a time, but they queued
					c.backoff = min(max(2*c.backoff, c.cfg.Hold), c.cfg.MaxBackoff)
				} else { // they held for a while: the next try comes sooner
					c.backoff /= 2
				}
			}
			// Overlapping requests end a try without failing it: the
			// backoff stays as it is.
			c.nextTry = c.now + c.backoff
			c.switchTo(false, false)
		}
		return c.one
	}
	if cores < c.cfg.Down {
		c.calm += iv.Elapsed
	} else {
		c.calm = 0
	}
	switch {
	case c.calm >= c.cfg.Hold:
		c.switchTo(true, false)
	case hold.Elapsed >= c.cfg.Hold && c.now >= c.nextTry && hold.Started > 0 && !c.overlapping(hold) &&
		hold.Used.Seconds()/hold.Elapsed.Seconds() < c.cfg.TryBelow:
		c.switchTo(true, true)
	}
	return c.one
}

func add(a, b Sample) Sample {
	return Sample{Used: a.Used + b.Used, Elapsed: a.Elapsed + b.Elapsed, Started: a.Started + b.Started,
		Overlapped: a.Overlapped + b.Overlapped, Queued: a.Queued + b.Queued, Stalled: a.Stalled + b.Stalled}
}

// overlapping reports whether more than MaxOverlap of the requests of s
// started while another was in flight.
func (c *Controller) overlapping(s Sample) bool {
	return float64(s.Overlapped) > c.cfg.MaxOverlap*float64(s.Started)
}

func (c *Controller) switchTo(one, tried bool) {
	c.one, c.tried, c.since, c.calm, c.samples = one, tried, c.now, 0, c.samples[:0]
}

// One reports whether the Controller's last decision is one processor.
func (c *Controller) One() bool { return c.one }

// The process's requests, as its servers report them.
var (
	inFlight   atomic.Int64
	started    atomic.Int64
	overlapped atomic.Int64
)

// RequestStarted records a request's start; the server calls RequestEnded
// when it has answered. Servers report every request a client waits for
// (unary calls, HTTP requests, lookup and read streams), not streams that
// stay open (a Watch), which would make every other request look
// concurrent.
func RequestStarted() {
	started.Add(1)
	if inFlight.Add(1) > 1 {
		overlapped.Add(1)
	}
}

// ParallelRequestStarted is RequestStarted for a request that runs parts
// of itself in parallel (a bulk check, a lookup): it counts as
// overlapping, so a client calling such requests one after another keeps
// every processor, as concurrent clients do.
func ParallelRequestStarted() {
	started.Add(1)
	inFlight.Add(1)
	overlapped.Add(1)
}

// RequestEnded records the end of a request RequestStarted recorded.
func RequestEnded() { inFlight.Add(-1) }

// RequestCounts are the requests reported since the process started.
type RequestCounts struct {
	Started    int64 // RequestStarted calls
	Overlapped int64 // of them, while another request was in flight
}

// Requests returns the requests reported since the process started.
func Requests() RequestCounts {
	return RequestCounts{Started: started.Load(), Overlapped: overlapped.Load()}
}

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
	if !latenciesAvailable() {
		return ErrUnsupported
	}
	if !running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer running.Store(false)
	if runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	c := NewController(cfg)
	waits := newWaitCounter(c.cfg.QueueWait, c.cfg.MaxWait)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	lastCPU, _ := cpuTime()
	lastAt := time.Now()
	lastReq := Requests()
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
			queued, stalled := waits.since()
			req := Requests()
			one := c.Observe(Sample{Used: used - lastCPU, Elapsed: now.Sub(lastAt), Queued: queued, Stalled: stalled,
				Started: int(req.Started - lastReq.Started), Overlapped: int(req.Overlapped - lastReq.Overlapped)})
			lastReq = req
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
// schedulings that waited at least each of two bounds for a processor
// (/sched/latencies:seconds of runtime/metrics).
type waitCounter struct {
	bounds [2]float64
	sample []metrics.Sample
	last   []uint64
}

const latencies = "/sched/latencies:seconds"

// latenciesAvailable reports whether this runtime reports scheduling
// latencies: without them, one processor would never give way.
func latenciesAvailable() bool {
	s := []metrics.Sample{{Name: latencies}}
	metrics.Read(s)
	return s[0].Value.Kind() == metrics.KindFloat64Histogram
}

func newWaitCounter(short, long time.Duration) *waitCounter {
	w := &waitCounter{bounds: [2]float64{short.Seconds(), long.Seconds()}, sample: []metrics.Sample{{Name: latencies}}}
	w.since()
	return w
}

func (w *waitCounter) since() (short, long int) {
	metrics.Read(w.sample)
	if w.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0, 0 // not in this runtime: Run refuses to start
	}
	h := w.sample[0].Value.Float64Histogram()
	if len(w.last) == len(h.Counts) {
		for i, c := range h.Counts {
			n := int(c - w.last[i])
			if h.Buckets[i] >= w.bounds[0] { // the bucket's lower bound
				short += n
			}
			if h.Buckets[i] >= w.bounds[1] {
				long += n
			}
		}
	}
	w.last = append(w.last[:0], h.Counts...)
	return short, long
}
