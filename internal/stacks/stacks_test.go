package stacks

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdjust(t *testing.T) {
	const start = 32 << 10
	for _, tc := range []struct {
		name   string
		factor float64
		now    uint64
		want   float64
	}{
		{"smaller: half as many again", 2, 16 << 10, 3},
		{"smaller: at most maxFactor", 30, 16 << 10, maxFactor},
		{"as wanted: as before", 2, start, 2},
		{"larger: a quarter fewer", 2, 64 << 10, 1.5},
		{"larger: at least minFactor", minFactor, 64 << 10, minFactor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, adjust(tc.factor, tc.now, start), 1e-9)
		})
	}
}

func TestHolders(t *testing.T) {
	assert.Equal(t, 80, holders(2, 40), "factor per other goroutine")
	assert.Equal(t, 3, holders(0.1, 21), "rounded up")
	assert.Equal(t, 2, holders(2, 0), "at least for one other")
	assert.Equal(t, MaxHeld, holders(2, 1000), "at most MaxHeld")
}

func TestHoldRejectsSizesItCannotHold(t *testing.T) {
	for _, size := range []uint64{0, 2 << 10, 48 << 10, 256 << 10} {
		assert.ErrorIs(t, Hold(context.Background(), size), ErrSize, "%d", size)
	}
}

// The test's process starts goroutines small (it has a few shallow ones);
// Hold raises the runtime's own choice to the size asked, and once it ends
// the runtime's choice falls back.
func TestHoldRaisesTheRuntimesStartingSize(t *testing.T) {
	const start = 64 << 10
	eventually(t, "under 64 KiB before Hold", func() bool { return StartingSize() > 0 && StartingSize() < start })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Hold(ctx, start) }()
	eventually(t, "at 64 KiB with Hold", func() bool { return StartingSize() == start })
	assert.Positive(t, Held())

	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Zero(t, Held())
	eventually(t, "under 64 KiB after Hold", func() bool { return StartingSize() < start })
}

func TestAdaptive(t *testing.T) {
	for godebug, want := range map[string]bool{
		"":                                true,
		"adaptivestackstart=1":            true,
		"adaptivestackstart=0":            false,
		"gctrace=1, adaptivestackstart=0": false,
		"adaptivestackstart=0,adaptivestackstart=1": true,
	} {
		assert.Equal(t, want, adaptive(godebug), "%q", godebug)
	}
}

// With the runtime's adaptive starting size off, Hold has nothing to raise
// and says so rather than park goroutines for nothing.
func TestHoldRefusesWhenTheRuntimeDoesNotAdapt(t *testing.T) {
	t.Setenv("GODEBUG", "adaptivestackstart=0")
	assert.ErrorIs(t, Hold(context.Background(), DefaultStart), ErrUnsupported)
}

// eventually collects until cond holds, or fails after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s (held %d, starting size %d)", what, Held(), StartingSize())
		}
		runtime.GC()
		time.Sleep(2 * checkEvery)
	}
}

// Hold holds in proportion to the process's other goroutines: more while a
// load's goroutines are there, fewer once they are gone.
func TestHoldFollowsTheOtherGoroutines(t *testing.T) {
	const start = 64 << 10
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Hold(ctx, start) }()
	defer func() {
		cancel()
		<-done
	}()
	eventually(t, "at 64 KiB", func() bool { return StartingSize() == start })
	before := Held()

	stop := make(chan struct{})
	for range 100 {
		go func() { <-stop }()
	}
	eventually(t, "holding more beside 100 more goroutines", func() bool { return Held() > before+50 })
	during := Held()
	eventually(t, "at 64 KiB with them", func() bool { return StartingSize() == start })

	close(stop)
	eventually(t, "holding fewer once they are gone", func() bool { return Held() < during-50 })
	eventually(t, "at 64 KiB after them", func() bool { return StartingSize() == start })
}
