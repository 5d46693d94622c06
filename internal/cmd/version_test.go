package cmd

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionNamesTheSpiceDBCompiledIn(t *testing.T) {
	out, err := execute(t, "version")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.True(t, strings.HasPrefix(lines[0], "spicegate "), out)
	assert.Equal(t, "SpiceDB v1.56.2", lines[1], "the pinned SpiceDB, from the build information")
	assert.Contains(t, lines[2], "go1.")
}
