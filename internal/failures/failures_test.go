package failures_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/internal/failures"
)

// The README prints the table as it is in code.
func TestREADMEPrintsTheTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	assert.Contains(t, string(readme), failures.Markdown(), "README's failure table is out of date; paste:\n%s", failures.Markdown())
}
