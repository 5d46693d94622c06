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

func TestControllerDecisions(t *testing.T) {
	const iv = 100 * time.Millisecond
	cfg := procs.Config{Interval: iv, Up: 0.6, Down: 0.3, Hold: 300 * time.Millisecond}
	// Each step: the cores the process used over one interval, then the
	// decision expected after it (true: one processor).
	type step struct {
		cores float64
		one   bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"starts on every processor and stays while busy", []step{{0.5, false}, {0.9, false}, {1.8, false}}},
		{"one processor after Hold under Down", []step{{0.1, false}, {0.0, false}, {0.29, true}, {0.2, true}}},
		{"a sample between Down and Up restarts the hold", []step{{0.1, false}, {0.1, false}, {0.4, false}, {0.1, false}, {0.1, false}, {0.1, true}}},
		{"a sample above Up restarts the hold", []step{{0.1, false}, {0.1, false}, {0.7, false}, {0.1, false}, {0.1, false}, {0.1, true}}},
		{"on one processor, between Down and Up keeps one", []step{{0, false}, {0, false}, {0, true}, {0.45, true}, {0.6, true}, {0.31, true}}},
		{"on one processor, one interval above Up gives every processor", []step{{0, false}, {0, false}, {0, true}, {0.61, false}, {0.2, false}, {0.2, false}, {0.2, true}}},
		{"a quiet process keeps one", []step{{0, false}, {0, false}, {0, true}, {0, true}, {0, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := procs.NewController(cfg)
			assert.False(t, c.One(), "a controller starts on every processor")
			for i, s := range tc.steps {
				used := time.Duration(s.cores * float64(iv))
				assert.Equal(t, s.one, c.Observe(used, iv, 0), "after step %d (%.2f cores)", i+1, s.cores)
				assert.Equal(t, s.one, c.One())
			}
		})
	}
}

func TestControllerAveragesOverTheElapsedTime(t *testing.T) {
	// A late tick covers more wall time: the CPU is divided by it, so a
	// long quiet gap with a little CPU reads as quiet, and counts in full
	// toward Hold.
	c := procs.NewController(procs.Config{Up: 0.6, Down: 0.3, Hold: time.Second})
	assert.True(t, c.Observe(250*time.Millisecond, 2*time.Second, 0), "0.125 cores for 2 s: one processor")
	assert.False(t, c.Observe(700*time.Millisecond, time.Second, 0), "0.7 cores: every processor")
	assert.False(t, c.Observe(0, 0, 0), "no elapsed time changes nothing")
}

func TestADownNotBelowUpIsHalfOfUp(t *testing.T) {
	// Down 0.8 above Up 0.4 would let a load of 0.5 cores switch to one
	// processor after every Hold and back at the next interval.
	c := procs.NewController(procs.Config{Up: 0.4, Down: 0.8, Hold: time.Second})
	assert.False(t, c.Observe(500*time.Millisecond, time.Second, 0), "0.5 cores: above Up, not calm")
	assert.False(t, c.Observe(300*time.Millisecond, time.Second, 0), "0.3 cores: above Down, now 0.2")
	assert.True(t, c.Observe(100*time.Millisecond, time.Second, 0), "0.1 cores for Hold: one processor")
}

func TestConfigDefaults(t *testing.T) {
	c := procs.NewController(procs.Config{})
	iv := procs.DefaultInterval
	n := int(procs.DefaultHold / iv)
	for i := 1; i < n; i++ {
		require.False(t, c.Observe(0, iv, 0), "interval %d of %d", i, n)
	}
	assert.True(t, c.Observe(0, iv, 0), "one processor after DefaultHold of quiet")
	// DefaultWindow is five intervals: one busy interval among quiet ones
	// is not a load; a window's worth above DefaultUp is.
	at := func(cores float64) time.Duration { return time.Duration(cores * float64(iv)) }
	assert.True(t, c.Observe(at(1), iv, 0), "one busy interval: 0.2 cores over the window")
	for range 5 {
		require.True(t, c.Observe(0, iv, 0), "quiet again")
	}
	for range 4 {
		require.True(t, c.Observe(at(procs.DefaultUp), iv, 0))
	}
	assert.True(t, c.Observe(at(procs.DefaultUp), iv, 0), "exactly DefaultUp over the window keeps one")
	assert.False(t, c.Observe(at(procs.DefaultUp+0.1), iv, 0), "above DefaultUp over the window: every processor")
}

func TestWaitsForTheProcessorGiveEveryProcessor(t *testing.T) {
	iv := 20 * time.Millisecond
	c := procs.NewController(procs.Config{Interval: iv, Hold: 3 * iv})
	for range 3 {
		c.Observe(0, iv, 5)
	}
	require.True(t, c.One(), "waits on every processor do not keep the process there")
	assert.True(t, c.Observe(0, iv, 1), "one sampled long wait is a hiccup")
	assert.False(t, c.Observe(time.Millisecond, iv, 2), "two in one interval: a queue, at 0.05 cores")
}

// TestRunFollowsTheProcessLoad runs the controller on this process's real
// CPU time and scheduler: spinning goroutines give it every processor, quiet
// takes it to one, and the end of Run gives the runtime its default back.
func TestRunFollowsTheProcessLoad(t *testing.T) {
	original := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(original) })
	runtime.SetDefaultGOMAXPROCS() // what Run gives back, whatever -cpu or GOMAXPROCS set for the test
	all := runtime.GOMAXPROCS(0)
	if all < 2 {
		t.Skipf("the runtime's default is %d processor here: nothing to adapt", all)
	}
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

// Something else setting GOMAXPROCS ends the adaptation, and its count
// stays; a change the runtime's default explains (a new CPU quota) does not.
func TestRunStopsWhenSomethingElseSetsTheCount(t *testing.T) {
	original := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(original) })
	runtime.SetDefaultGOMAXPROCS()
	all := runtime.GOMAXPROCS(0)
	if all < 2 {
		t.Skipf("the runtime's default is %d processor here: Run does not adapt", all)
	}
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
