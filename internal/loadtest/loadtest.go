// Package loadtest drives a Spicegate deployment with an open-loop load:
// requests are sent at a fixed (or ramped) arrival rate whatever the
// answers' speed, and each one's latency counts from the time it was due
// to be sent, not from when it was sent, so a stalled server shows as the
// queue it causes instead of hiding it (coordinated omission).
//
// The requests address the data seed.Generate makes (a few hot
// organizations, by a Zipf skew), through the HTTP API or the Go facade
// over SpiceDB's gRPC API, in a configurable mix of reads and writes. The
// results are HDR histograms per operation (github.com/HdrHistogram/hdrhistogram-go).
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Config is one run.
type Config struct {
	Target Target
	Shape  Shape
	Mix    Mix
	// Rate is the arrival rate in requests per second; RateTo, when set,
	// the rate at the end of the run, reached by a linear ramp.
	Rate, RateTo float64
	// Duration bounds the run: no request is due after it.
	Duration time.Duration
	// MaxInFlight caps concurrent requests. A request due while the cap is
	// reached waits, and its wait counts in its latency.
	MaxInFlight int
	// Timeout bounds each request (a request past it fails "deadline_exceeded").
	Timeout time.Duration
	// Seed makes the requests repeatable (the same seed, the same requests).
	Seed uint64
	// Progress, when set, gets a line every second.
	Progress io.Writer
}

func (c *Config) validate() error {
	switch {
	case c.Target == nil:
		return errors.New("loadtest: no target")
	case c.Rate <= 0 || c.RateTo < 0:
		return errors.New("loadtest: --rate must be above 0 (and --rate-to not below)")
	case c.Duration <= 0:
		return errors.New("loadtest: --duration must be above 0")
	case c.MaxInFlight <= 0:
		return errors.New("loadtest: --max-in-flight must be above 0")
	case c.Shape.Orgs <= 0 || c.Shape.Members <= 0 || c.Shape.Datasets <= 0:
		return errors.New("loadtest: the data shape (--orgs, --members, --datasets) must be above 0")
	}
	if c.Mix == nil {
		c.Mix = DefaultMix
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	// Rate and RateTo are the arrival rates asked for; Throughput the
	// completions per second achieved.
	Rate       float64       `json:"rate"`
	RateTo     float64       `json:"rate_to,omitempty"`
	Mix        string        `json:"mix"`
	Elapsed    time.Duration `json:"-"`
	ElapsedSec float64       `json:"elapsed_seconds"`
	Sent       int64         `json:"sent"`
	Errors     int64         `json:"errors"`
	Throughput float64       `json:"throughput"`
	// MaxLateness is how far behind its schedule the sender fell at worst
	// (the load generator's own limit: above a few ms, the rate asked for
	// was not offered).
	MaxLateness time.Duration `json:"-"`
	// Ops has one entry per operation sent, in report order, and "all" last.
	Ops []OpResult `json:"operations"`
}

// OpResult is one operation's figures. Latencies count from the time each
// request was due.
type OpResult struct {
	Op     Op               `json:"op"`
	Count  int64            `json:"count"`
	Errors int64            `json:"errors"`
	Codes  map[string]int64 `json:"error_codes,omitempty"`
	// Samples holds the first error message of each code in Codes, so
	// that a failure can be diagnosed from the report alone.
	Samples map[string]string `json:"error_samples,omitempty"`
	P50     time.Duration     `json:"-"`
	P90     time.Duration     `json:"-"`
	P95     time.Duration     `json:"-"`
	P99     time.Duration     `json:"-"`
	P999    time.Duration     `json:"-"`
	Max     time.Duration     `json:"-"`
	// The same in milliseconds, for JSON.
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P95ms  float64 `json:"p95_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// OpAll names the line of every operation together.
const OpAll Op = "all"

// Op returns the figures of one operation (OpAll for all), or a zero one.
func (r *Result) Op(op Op) OpResult {
	for _, o := range r.Ops {
		if o.Op == op {
			return o
		}
	}
	return OpResult{Op: op}
}

// recorder collects latencies and errors by operation.
type recorder struct {
	mu       sync.Mutex
	hists    map[Op]*hdrhistogram.Histogram
	errors   map[Op]map[string]int64
	samples  map[Op]map[string]string // the first message of each code
	interval *hdrhistogram.Histogram  // since the last progress line
	intErrs  int64
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3) // 1 us to 10 min, 3 significant digits
}

func (r *recorder) record(op Op, latency time.Duration, err error) {
	us := max(int64(latency/time.Microsecond), 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hists[op]
	if h == nil {
		h = newHistogram()
		r.hists[op] = h
	}
	_ = h.RecordValue(us) // values above the range are clamped by the caller's Timeout
	_ = r.interval.RecordValue(us)
	if err != nil {
		if r.errors[op] == nil {
			r.errors[op] = map[string]int64{}
			r.samples[op] = map[string]string{}
		}
		code := codeOf(err)
		if r.errors[op][code] == 0 {
			r.samples[op][code] = sample(err)
		}
		r.errors[op][code]++
		r.intErrs++
	}
}

// Run sends the load and returns its figures. It stops early, with what it
// measured so far, when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := newWorkload(cfg.Shape, cfg.Mix, cfg.Seed)
	rec := &recorder{hists: map[Op]*hdrhistogram.Histogram{}, errors: map[Op]map[string]int64{}, samples: map[Op]map[string]string{}, interval: newHistogram()}
	slots := make(chan struct{}, cfg.MaxInFlight)
	var wg sync.WaitGroup
	var sent, inFlight atomic.Int64
	var maxLate time.Duration

	start := time.Now()
	stopProgress := startProgress(cfg.Progress, start, rec, &sent, &inFlight)
	due := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
schedule:
	for due < cfg.Duration {
		at := start.Add(due)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			break schedule
		case slots <- struct{}{}:
		}
		maxLate = max(maxLate, time.Since(at))
		req := w.next()
		sent.Add(1)
		inFlight.Add(1)
		wg.Go(func() {
			defer func() { <-slots; inFlight.Add(-1) }()
			rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			err := cfg.Target.Do(rctx, req)
			cancel()
			rec.record(req.Op, time.Since(at), err)
		})
		rate := cfg.Rate
		if cfg.RateTo > 0 {
			rate += (cfg.RateTo - cfg.Rate) * float64(due) / float64(cfg.Duration)
		}
		due += time.Duration(float64(time.Second) / rate)
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	return rec.result(cfg, elapsed, sent.Load(), maxLate), nil
}

func (r *recorder) result(cfg Config, elapsed time.Duration, sent int64, maxLate time.Duration) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{Rate: cfg.Rate, RateTo: cfg.RateTo, Mix: cfg.Mix.String(), Elapsed: elapsed, ElapsedSec: elapsed.Seconds(),
		Sent: sent, MaxLateness: maxLate}
	all := newHistogram()
	allCodes, allSamples := map[string]int64{}, map[string]string{}
	for _, op := range Ops {
		h := r.hists[op]
		if h == nil {
			continue
		}
		all.Merge(h)
		o := figures(op, h, r.errors[op], r.samples[op])
		for code, n := range o.Codes {
			allCodes[string(op)+" "+code] += n
			allSamples[string(op)+" "+code] = o.Samples[code]
		}
		res.Errors += o.Errors
		res.Ops = append(res.Ops, o)
	}
	total := figures(OpAll, all, allCodes, allSamples)
	res.Ops = append(res.Ops, total)
	res.Throughput = float64(total.Count) / elapsed.Seconds()
	return res
}

func figures(op Op, h *hdrhistogram.Histogram, codes map[string]int64, samples map[string]string) OpResult {
	at := func(q float64) time.Duration { return time.Duration(h.ValueAtQuantile(q)) * time.Microsecond }
	o := OpResult{Op: op, Count: h.TotalCount(), P50: at(50), P90: at(90), P95: at(95), P99: at(99), P999: at(99.9),
		Max: time.Duration(h.Max()) * time.Microsecond}
	if len(codes) > 0 {
		o.Codes, o.Samples = map[string]int64{}, map[string]string{}
		for code, n := range codes {
			o.Codes[code] = n
			o.Samples[code] = samples[code]
			o.Errors += n
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	o.P50ms, o.P90ms, o.P95ms, o.P99ms, o.P999ms, o.MaxMs = ms(o.P50), ms(o.P90), ms(o.P95), ms(o.P99), ms(o.P999), ms(o.Max)
	return o
}

// startProgress prints a line a second to w until the returned function is called.
func startProgress(w io.Writer, start time.Time, rec *recorder, sent, inFlight *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastSent int64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			rec.mu.Lock()
			p99 := time.Duration(rec.interval.ValueAtQuantile(99)) * time.Microsecond
			n, errs := rec.interval.TotalCount(), rec.intErrs
			rec.interval.Reset()
			rec.intErrs = 0
			rec.mu.Unlock()
			s := sent.Load()
			fmt.Fprintf(w, "[%4.0fs] sent %d (+%d), done %d/s, errors %d, p99 %s, in flight %d\n",
				time.Since(start).Seconds(), s, s-lastSent, n, errs, p99.Round(10*time.Microsecond), inFlight.Load())
			lastSent = s
		}
	})
	return func() { close(done); wg.Wait() }
}

// WriteText prints the result as a table.
func (r *Result) WriteText(w io.Writer, target string) {
	ramp := ""
	if r.RateTo > 0 {
		ramp = fmt.Sprintf(" ramped to %.0f/s", r.RateTo)
	}
	fmt.Fprintf(w, "target %s, mix %s\n", target, r.Mix)
	fmt.Fprintf(w, "open loop at %.0f/s%s for %.1fs: %d sent, %.0f done/s, %d errors (latency counts from each request's due time; sender at most %s behind)\n\n",
		r.Rate, ramp, r.ElapsedSec, r.Sent, r.Throughput, r.Errors, r.MaxLateness.Round(time.Microsecond))
	fmt.Fprintf(w, "%-14s %9s %7s %9s %9s %9s %9s %9s %9s\n", "op", "count", "errors", "p50", "p90", "p95", "p99", "p99.9", "max")
	for _, o := range r.Ops {
		fmt.Fprintf(w, "%-14s %9d %7d %9s %9s %9s %9s %9s %9s\n", o.Op, o.Count, o.Errors, ms(o.P50), ms(o.P90), ms(o.P95), ms(o.P99), ms(o.P999), ms(o.Max))
	}
	if r.Errors > 0 {
		fmt.Fprintln(w, "\nerrors:")
		all := r.Op(OpAll)
		codes := make([]string, 0, len(all.Codes))
		for c := range all.Codes {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(w, "  %-40s %d  (first: %s)\n", c, all.Codes[c], all.Samples[c])
		}
	}
}

// sample is an error's message, cut to a line's length.
func sample(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "..."
	}
	return msg
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
