package cmd

import (
	"bytes"
	"context"
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
