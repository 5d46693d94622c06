package embedded

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// TestPinnedSpiceDBIsGoMods keeps the fallback version equal to go.mod's.
func TestPinnedSpiceDBIsGoMods(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	f, err := modfile.Parse("go.mod", data, nil)
	require.NoError(t, err)
	found := false
	for _, r := range f.Require {
		if r.Mod.Path == SpiceDBModule {
			found = true
			assert.Equal(t, r.Mod.Version, pinnedSpiceDB)
		}
	}
	assert.True(t, found, "go.mod requires SpiceDB")
	assert.Equal(t, pinnedSpiceDB, SpiceDBVersion())
}
