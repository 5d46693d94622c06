package procs_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
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
				assert.Equal(t, s.one, c.Observe(used, iv), "after step %d (%.2f cores)", i+1, s.cores)
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
	assert.True(t, c.Observe(250*time.Millisecond, 2*time.Second), "0.125 cores for 2 s: one processor")
	assert.False(t, c.Observe(700*time.Millisecond, time.Second), "0.7 cores: every processor")
	assert.False(t, c.Observe(0, 0), "no elapsed time changes nothing")
}

func TestADownNotBelowUpIsHalfOfUp(t *testing.T) {
	// Down 0.8 above Up 0.4 would let a load of 0.5 cores switch to one
	// processor after every Hold and back at the next interval.
	c := procs.NewController(procs.Config{Up: 0.4, Down: 0.8, Hold: time.Second})
	assert.False(t, c.Observe(500*time.Millisecond, time.Second), "0.5 cores: above Up, not calm")
	assert.False(t, c.Observe(300*time.Millisecond, time.Second), "0.3 cores: above Down, now 0.2")
	assert.True(t, c.Observe(100*time.Millisecond, time.Second), "0.1 cores for Hold: one processor")
}

func TestConfigDefaults(t *testing.T) {
	c := procs.NewController(procs.Config{})
	iv := procs.DefaultInterval
	n := int(procs.DefaultHold / iv)
	for i := 1; i < n; i++ {
		require.False(t, c.Observe(0, iv), "interval %d of %d", i, n)
	}
	assert.True(t, c.Observe(0, iv), "one processor after DefaultHold of quiet")
	assert.True(t, c.Observe(time.Duration(procs.DefaultUp*float64(iv)), iv), "exactly DefaultUp keeps one")
	assert.False(t, c.Observe(time.Duration((procs.DefaultUp+0.01)*float64(iv)), iv), "above DefaultUp: every processor")
}

// TestRunFollowsTheProcessLoad runs the controller on this process's real
// CPU time and scheduler: spinning goroutines give it every processor, quiet
// takes it to one, and the end of Run gives the runtime its default back.
func TestRunFollowsTheProcessLoad(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	if all < 2 {
		t.Skipf("the runtime's default is %d processor here: nothing to adapt", all)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- procs.Run(ctx, procs.Config{Interval: 20 * time.Millisecond, Hold: 200 * time.Millisecond},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		assert.Equal(t, all, runtime.GOMAXPROCS(0), "Run's end restores the default")
	}()

	require.Eventually(t, func() bool { return runtime.GOMAXPROCS(0) == 1 }, 10*time.Second, 5*time.Millisecond,
		"a quiet process runs on one processor")

	stop := make(chan struct{})
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
