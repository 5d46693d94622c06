package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envPrefix prefixes the environment variable of every flag:
// --datastore-engine is also SPICEGATE_DATASTORE_ENGINE.
const envPrefix = "SPICEGATE_"

// envName is the environment variable of a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag the command line left unset from its
// environment variable. A flag given on the command line wins.
func bindEnv(cmd *cobra.Command) error {
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || firstErr != nil {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
			if err := sv.Replace(strings.Split(v, ",")); err != nil {
				firstErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
			f.Changed = true
			return
		}
		if err := f.Value.Set(v); err != nil {
			firstErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			return
		}
		f.Changed = true
	})
	return firstErr
}
