package cmd

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's table of serve's flags lists every flag serve has (but the
// deprecated ones), with its environment variable, and no flag it lacks.
func TestREADMEListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `--([a-z0-9-]+)` \\| `([A-Z0-9_]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = m[2]
	}
	require.NotEmpty(t, documented, "the README's table of serve's flags")

	root := &cobra.Command{Use: "spicegate"}
	registerServeCmd(root)
	serve, _, err := root.Find([]string{"serve"})
	require.NoError(t, err)
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Deprecated != "" || f.Hidden {
			return
		}
		env := "SPICEGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		assert.Equal(t, env, documented[f.Name], "README's row of --%s", f.Name)
		delete(documented, f.Name)
	})
	assert.Empty(t, documented, "the README documents flags serve does not have")
}

// A negative quantization window is refused before anything starts.
func TestServeRefusesANegativeQuantization(t *testing.T) {
	root := &cobra.Command{Use: "spicegate", SilenceUsage: true, SilenceErrors: true}
	registerServeCmd(root)
	root.SetArgs([]string{"serve", "--datastore-revision-quantization-interval", "-1s"})
	assert.ErrorContains(t, root.ExecuteContext(t.Context()), "datastore-revision-quantization-interval must not be negative")
}
