package cmd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve adapts the processor count unless --adaptive-procs=false or the
// operator set GOMAXPROCS, and says which at start.
func TestServeAdaptsProcessorsUnlessToldNotTo(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name    string
		on      bool
		getenv  func(string) string
		adapts  bool
		logLine string
	}{
		{"default", true, noEnv, true, "adaptive=true"},
		{"--adaptive-procs=false", false, noEnv, false, "adaptive=false"},
		{"GOMAXPROCS set", true, func(k string) string { return map[string]string{"GOMAXPROCS": "2"}[k] }, false, "adaptive=false from_env=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			done := adaptProcs(ctx, tc.on, tc.getenv, slog.New(slog.NewTextHandler(&logs, nil)))
			cancel()
			assert.Contains(t, logs.String(), tc.logLine)
			if !tc.adapts {
				assert.Nil(t, done)
				return
			}
			require.NotNil(t, done)
			<-done
			assert.Equal(t, all, runtime.GOMAXPROCS(0), "the runtime's default once the controller stops")
		})
	}
}

// serve holds goroutine stacks at --goroutine-stack-start unless it is 0
// or SpiceDB is external, and refuses a size it cannot hold, naming the
// flag.
func TestServeHoldsGoroutineStacks(t *testing.T) {
	for _, tc := range []struct {
		flag     string
		external bool
		holds    bool
		err      string
		logLine  string
	}{
		{"32 KiB", false, true, "", `start="32 KiB"`},
		{"64KiB", false, true, "", `start="64 KiB"`},
		{"0", false, false, "", `start="the runtime's"`},
		{"32 KiB", true, false, "", `start="the runtime's" reason="no embedded SpiceDB"`},
		{"48KiB", false, false, "goroutine-stack-start must be 0 or a power of two from 16 KiB to 128 KiB", ""},
		{"256KiB", false, false, "goroutine-stack-start must be 0 or a power of two", ""},
		{"deep", false, false, "goroutine-stack-start: ", ""},
	} {
		t.Run(fmt.Sprintf("%s external=%v", tc.flag, tc.external), func(t *testing.T) {
			var logs bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done, err := holdStacks(ctx, tc.flag, tc.external, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				assert.Nil(t, done)
				return
			}
			require.NoError(t, err)
			assert.Contains(t, logs.String(), tc.logLine)
			if !tc.holds {
				assert.Nil(t, done)
				return
			}
			require.NotNil(t, done)
			cancel()
			<-done
			assert.NotContains(t, logs.String(), "not held")
		})
	}
}
