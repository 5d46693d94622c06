package stacks

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNext(t *testing.T) {
	const start = 32 << 10
	for _, tc := range []struct {
		name      string
		held      int
		now, want uint64
		next      int
	}{
		{"smaller: at least eight more", 0, 8 << 10, start, 8},
		{"smaller: twice as many", 40, 16 << 10, start, 80},
		{"smaller: never more than MaxHeld", 200, 16 << 10, start, MaxHeld},
		{"as wanted: as many", 40, start, start, 40},
		{"larger: a quarter fewer", 40, 64 << 10, start, 30},
		{"larger with none held: none", 0, 64 << 10, start, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.next, next(tc.held, tc.now, tc.want))
		})
	}
}

func TestHoldRejectsSizesItCannotHold(t *testing.T) {
	for _, size := range []uint64{0, 2 << 10, 48 << 10, 2 << 20} {
		assert.ErrorIs(t, Hold(context.Background(), size), ErrSize, "%d", size)
	}
}

// startsAt collects until the runtime starts goroutines at the size cond
// accepts, or fails after a while.
func startsAt(t *testing.T, what string, cond func(uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(StartingSize()) {
		if time.Now().After(deadline) {
			t.Fatalf("new goroutines start at %d bytes, not %s", StartingSize(), what)
		}
		runtime.GC()
		time.Sleep(2 * checkEvery)
	}
}

// The test's process starts goroutines small (it has a few shallow ones);
// Hold raises the runtime's own choice to the size asked, and once it ends
// the runtime's choice falls back.
func TestHoldRaisesTheRuntimesStartingSize(t *testing.T) {
	const start = 64 << 10
	startsAt(t, "under 64 KiB before Hold", func(s uint64) bool { return s > 0 && s < start })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Hold(ctx, start) }()
	startsAt(t, "64 KiB with Hold", func(s uint64) bool { return s == start })
	assert.Positive(t, Held())

	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Zero(t, Held())
	startsAt(t, "under 64 KiB after Hold", func(s uint64) bool { return s < start })
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
