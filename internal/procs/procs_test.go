package procs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/internal/procs"
)

// iv is the interval of the controller tests: Window and Hold are five.
const iv = 20 * time.Millisecond

var testConfig = procs.Config{Interval: iv, Window: 5 * iv, Hold: 5 * iv, Up: 0.6, Down: 0.3, TryBelow: 1, MaxBackoff: 40 * iv}

// step is one interval: the cores the process used, the requests started
// and how many of them overlapped another, the sampled waits of QueueWait
// and of MaxWait, then the decision expected after it (true: one
// processor).
type step struct {
	cores               float64
	started, overlapped int
	queued, stalled     int
	one                 bool
}

func cpu(cores float64) time.Duration { return time.Duration(cores * float64(iv)) }

func (s step) sample() procs.Sample {
	return procs.Sample{Used: cpu(s.cores), Elapsed: iv, Started: s.started, Overlapped: s.overlapped, Queued: s.queued, Stalled: s.stalled}
}

func run(t *testing.T, c *procs.Controller, steps []step) {
	t.Helper()
	for i, s := range steps {
		require.Equal(t, s.one, c.Observe(s.sample()), "after step %d: %+v", i+1, s)
		require.Equal(t, s.one, c.One())
	}
}

// repeat is n copies of s.
func repeat(n int, s step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// then is steps, then more.
func then(steps []step, more ...step) []step { return append(append([]step(nil), steps...), more...) }

func TestControllerDecisions(t *testing.T) {
	sequential := step{cores: 0.9, started: 30}
	concurrent := step{cores: 0.7, started: 30, overlapped: 20}
	// five intervals of one request at a time: one processor
	try := then(repeat(4, sequential), step{cores: 0.9, started: 30, one: true})
	// five quiet intervals: one processor
	quiet := then(repeat(4, step{cores: 0.1}), step{cores: 0.1, one: true})
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"starts on every processor and stays while busy with overlapping requests", repeat(20, concurrent)},
		{"one processor after Hold under Down, requests or not", quiet},
		{"a window above Down restarts the quiet hold", // the window holds the busy interval until the eighth
			then([]step{{cores: 0.1}, {cores: 0.1}, {cores: 1.2, started: 10, overlapped: 5}}, then(repeat(8, step{cores: 0.1}), step{cores: 0.1, one: true})...)},
		{"requests one at a time under TryBelow for Hold: one processor", try},
		{"up to MaxOverlap of overlapping requests still count as one at a time",
			then(repeat(4, step{cores: 0.9, started: 40, overlapped: 2}), step{cores: 0.9, started: 40, overlapped: 2, one: true})},
		{"requests one at a time above TryBelow keep every processor", repeat(20, step{cores: 1.1, started: 30})},
		{"without requests reported, only a quiet process goes to one processor", repeat(20, step{cores: 0.9})},
		{"on one processor, requests one at a time keep one whatever the CPU", then(try, repeat(20, step{cores: 0.97, started: 30, one: true})...)},
		{"on one processor, overlapping requests above Up give every processor", then(try, concurrent)},
		{"on one processor, overlapping requests up to Up keep one",
			then(quiet, repeat(20, step{cores: 0.6, started: 30, overlapped: 30, one: true})...)},
		{"on one processor, CPU above Up without requests reported gives every processor",
			then(quiet, step{cores: 0.5, one: true}, step{cores: 0.9})},
		{"on one processor, up to MaxQueued waits per Window keep one",
			then(try, step{cores: 0.9, started: 30, queued: 1, one: true}, step{cores: 0.9, started: 30, queued: 1, one: true},
				step{cores: 0.9, started: 30, one: true}, step{cores: 0.9, started: 30, one: true}, step{cores: 0.9, started: 30, one: true},
				step{cores: 0.9, started: 30, one: true}, step{cores: 0.9, started: 30, queued: 2, one: true})},
		{"on one processor, more than MaxQueued waits per Window give every processor, at any CPU",
			then(quiet, step{cores: 0.1, queued: 2, one: true}, step{cores: 0.1, queued: 1})},
		{"on one processor, two stalls in one interval give every processor at once",
			then(quiet, step{cores: 0.05, stalled: 1, one: true}, step{cores: 0.05, stalled: 2})},
		{"on every processor, waits do not decide", then(repeat(4, step{cores: 0.1, queued: 9, stalled: 9}), step{cores: 0.1, queued: 9, stalled: 9, one: true})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := procs.NewController(testConfig)
			assert.False(t, c.One(), "a controller starts on every processor")
			run(t, c, tc.steps)
		})
	}
}

// One processor for requests one at a time that queues within Hold waits
// Hold before the next try, then twice as long each time (up to
// MaxBackoff); a try that queues after Hold halves the wait, one that
// overlapping requests end leaves it as it is, and a quiet process goes to
// one processor whatever the wait.
func TestTriesThatQueueBackOff(t *testing.T) {
	c := procs.NewController(testConfig)
	sequential := step{cores: 0.9, started: 30}
	queue := procs.Sample{Used: cpu(0.9), Elapsed: iv, Started: 30, Queued: 3}
	concurrent := procs.Sample{Used: cpu(0.9), Elapsed: iv, Started: 30, Overlapped: 30}
	intervalsUntilTry := func() int {
		t.Helper()
		n := 1
		for !c.Observe(sequential.sample()) {
			n++
			require.Less(t, n, 1000, "no further try")
		}
		return n
	}
	intervalsBetweenTries := func(end procs.Sample) int {
		t.Helper()
		require.True(t, c.One(), "on a try")
		require.False(t, c.Observe(end), "the try ends")
		return intervalsUntilTry()
	}
	run(t, c, then(repeat(4, sequential), step{cores: 0.9, started: 30, one: true}))
	// Hold (5 intervals) on every processor, and the backoff: 5, 10, 20,
	// then MaxBackoff (40), counted from the queue.
	for i, want := range []int{5, 10, 20, 40, 40} {
		assert.Equal(t, want, intervalsBetweenTries(queue), "after queue %d", i+1)
	}
	assert.Equal(t, 40, intervalsBetweenTries(concurrent), "overlapping requests: the backoff as it was")
	run(t, c, repeat(5, step{cores: 0.9, started: 30, one: true}))
	assert.Equal(t, 20, intervalsBetweenTries(queue), "a try that held for Hold, then queued: half")
	run(t, c, repeat(5, step{cores: 0.9, started: 30, one: true}))
	assert.Equal(t, 10, intervalsBetweenTries(queue), "and half again")
	require.True(t, c.One())
	require.False(t, c.Observe(queue))
	run(t, c, then(repeat(4, step{cores: 0.1}), step{cores: 0.1, one: true}))
}

func TestControllerCountsTheElapsedTime(t *testing.T) {
	// A late tick covers more wall time: the CPU is divided by it, and it
	// counts in full toward Hold.
	c := procs.NewController(procs.Config{Hold: time.Second})
	assert.True(t, c.Observe(procs.Sample{Used: 250 * time.Millisecond, Elapsed: 2 * time.Second}), "0.125 cores for 2 s: one processor")
	assert.True(t, c.Observe(procs.Sample{Queued: 9, Stalled: 9}), "no elapsed time changes nothing")
	assert.False(t, c.Observe(procs.Sample{Used: 700 * time.Millisecond, Elapsed: time.Second}), "0.7 cores, no requests reported: every processor")
}

func TestADownNotBelowUpIsHalfOfUp(t *testing.T) {
	// Down 0.8 above Up 0.4 would let a load of 0.5 cores switch to one
	// processor after every Hold and back at the next interval.
	c := procs.NewController(procs.Config{Up: 0.4, Down: 0.8, Hold: time.Second})
	assert.False(t, c.Observe(procs.Sample{Used: 300 * time.Millisecond, Elapsed: time.Second}), "0.3 cores: above Down, now 0.2")
	assert.True(t, c.Observe(procs.Sample{Used: 100 * time.Millisecond, Elapsed: time.Second}), "0.1 cores for Hold: one processor")
}

func TestConfigDefaults(t *testing.T) {
	c := procs.NewController(procs.Config{})
	iv := procs.DefaultInterval
	at := func(cores float64) time.Duration { return time.Duration(cores * float64(iv)) }
	n := int(procs.DefaultHold / iv)
	overlap := int(procs.DefaultMaxOverlap * 100) // of 100 requests
	for i := 1; i < n; i++ {
		require.False(t, c.Observe(procs.Sample{Used: at(procs.DefaultTryBelow - 0.01), Elapsed: iv, Started: 100, Overlapped: overlap}), "interval %d of %d", i, n)
	}
	assert.True(t, c.Observe(procs.Sample{Used: at(procs.DefaultTryBelow - 0.01), Elapsed: iv, Started: 100, Overlapped: overlap}),
		"one processor after DefaultHold of requests one at a time under DefaultTryBelow")
	// DefaultWindow is five intervals: DefaultMaxQueued waits in it keep
	// one processor, one more does not.
	for range procs.DefaultMaxQueued {
		require.True(t, c.Observe(procs.Sample{Used: at(0.9), Elapsed: iv, Started: 100, Queued: 1}))
	}
	for range int(procs.DefaultWindow/iv) - procs.DefaultMaxQueued - 1 {
		require.True(t, c.Observe(procs.Sample{Used: at(0.9), Elapsed: iv, Started: 100}))
	}
	assert.False(t, c.Observe(procs.Sample{Used: at(0.9), Elapsed: iv, Started: 100, Queued: 1}),
		"DefaultMaxQueued+1 waits within DefaultWindow: every processor")
	// Overlapping requests: above DefaultUp over the window.
	c = procs.NewController(procs.Config{})
	for range int(procs.DefaultHold/iv) - 1 {
		require.False(t, c.Observe(procs.Sample{Elapsed: iv}))
	}
	require.True(t, c.Observe(procs.Sample{Elapsed: iv}), "quiet for DefaultHold")
	for range 4 {
		require.True(t, c.Observe(procs.Sample{Used: at(procs.DefaultUp), Elapsed: iv, Started: 10, Overlapped: 10}))
	}
	assert.True(t, c.Observe(procs.Sample{Used: at(procs.DefaultUp), Elapsed: iv, Started: 10, Overlapped: 10}), "exactly DefaultUp keeps one")
	assert.False(t, c.Observe(procs.Sample{Used: at(procs.DefaultUp + 0.1), Elapsed: iv, Started: 10, Overlapped: 10}), "above: every processor")
}

// The requests the servers report: one at a time do not overlap; a second
// while one is in flight does.
func TestRequestsOverlap(t *testing.T) {
	before := procs.Requests()
	procs.RequestStarted()
	procs.RequestEnded()
	procs.RequestStarted()
	procs.RequestStarted()
	procs.RequestEnded()
	procs.RequestEnded()
	after := procs.Requests()
	assert.Equal(t, int64(3), after.Started-before.Started)
	assert.Equal(t, int64(1), after.Overlapped-before.Overlapped, "the third started while the second was in flight")
}

// defaultProcessors sets the runtime's default count (what Run gives back,
// whatever -cpu or GOMAXPROCS set for the test) and returns it, skipping
// the test where it is one: Run does not adapt then. The test's end
// restores the count it began with.
func defaultProcessors(t *testing.T) int {
	t.Helper()
	original := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(original) })
	runtime.SetDefaultGOMAXPROCS()
	all := runtime.GOMAXPROCS(0)
	if all < 2 {
		t.Skipf("the runtime's default is %d processor here: nothing to adapt", all)
	}
	return all
}

// TestRunFollowsTheProcessLoad runs the controller on this process's real
// CPU time and scheduler: spinning goroutines give it every processor, quiet
// takes it to one, and the end of Run gives the runtime its default back.
func TestRunFollowsTheProcessLoad(t *testing.T) {
	all := defaultProcessors(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- procs.Run(ctx, procs.Config{Hold: 200 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	stop := make(chan struct{})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		cancel()
		err := <-done
		if errors.Is(err, procs.ErrUnsupported) {
			t.Skip("no CPU time on this platform")
		}
		require.NoError(t, err)
		assert.Equal(t, all, runtime.GOMAXPROCS(0), "Run's end restores the default")
	}()

	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 1 }, 10*time.Second, 5*time.Millisecond,
		"a quiet process runs on one processor")
	assert.ErrorIs(t, procs.Run(ctx, procs.Config{}, slog.New(slog.DiscardHandler)), procs.ErrRunning)

	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1_000_000; i++ {
					_ = i * i
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == all }, 10*time.Second, 5*time.Millisecond,
		"a busy process gets every processor")
	close(stop)
	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 1 }, 10*time.Second, 5*time.Millisecond,
		"and one again once quiet")
}

// TestRunReadsRequestsAndWaits runs the controller on this process's real
// requests and scheduler: a busy process whose requests come one at a
// time runs on one processor, and goroutines queueing behind it (which
// report no requests) give it every processor back.
func TestRunReadsRequestsAndWaits(t *testing.T) {
	all := defaultProcessors(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- procs.Run(ctx, procs.Config{Hold: 200 * time.Millisecond}, slog.New(slog.DiscardHandler))
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		wg.Wait()
		cancel()
		if err := <-done; errors.Is(err, procs.ErrUnsupported) {
			t.Skip("no CPU time or scheduling latencies on this platform")
		} else {
			require.NoError(t, err)
		}
	}()
	spin := func() {
		for end := time.Now().Add(time.Millisecond); time.Now().Before(end); {
		}
	}
	// repeat runs work in a goroutine of its own until the test ends.
	repeat := func(work func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					work()
				}
			}
		}()
	}
	repeat(func() { // one client's requests, back to back: about one core
		procs.RequestStarted()
		spin()
		procs.RequestEnded()
		time.Sleep(50 * time.Microsecond)
	})
	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 1 }, 10*time.Second, 5*time.Millisecond,
		"requests one at a time: one processor, at about a core")
	for range 2 {
		repeat(spin) // work beside the requests, not reported: it queues
	}
	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == all }, 10*time.Second, 5*time.Millisecond,
		"goroutines waiting for the processor: every processor")
}

// Something else setting GOMAXPROCS ends the adaptation, and its count
// stays; a change the runtime's default explains (a new CPU quota) does not.
func TestRunStopsWhenSomethingElseSetsTheCount(t *testing.T) {
	all := defaultProcessors(t)
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- procs.Run(t.Context(), procs.Config{Hold: time.Hour}, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	time.Sleep(10 * procs.DefaultInterval) // Run has read the count it starts from
	other := all + 1
	runtime.GOMAXPROCS(other)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run went on adapting")
	}
	assert.Equal(t, other, runtime.GOMAXPROCS(0), "the count something else set")
	assert.Contains(t, logs.String(), "no longer adapting")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
