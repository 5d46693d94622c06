package cmd

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

// serve runs the collector at defaultGCPercent unless the operator set
// GOGC, whose value the runtime already applied and serve leaves alone.
func TestServeTunesTheCollectorUnlessGOGCIsSet(t *testing.T) {
	original := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(original) })

	percent, fromEnv := tuneGC(func(string) string { return "" })
	assert.Equal(t, defaultGCPercent, percent)
	assert.False(t, fromEnv)
	assert.Equal(t, defaultGCPercent, debug.SetGCPercent(50), "the runtime's target")

	// The runtime applied GOGC=50 at start (here: the line above).
	percent, fromEnv = tuneGC(func(k string) string { return map[string]string{"GOGC": "50"}[k] })
	assert.Equal(t, 50, percent)
	assert.True(t, fromEnv)
	assert.Equal(t, 50, debug.SetGCPercent(100), "left as GOGC set it")
}
