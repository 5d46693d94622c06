package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/spicegate/spicegate/internal/embedded"
)

// buildVersion is what this binary knows of its own version: the module
// version (a tag when built from one, "(devel)" from a checkout) and the
// commit it was built from.
type buildVersion struct {
	Spicegate string `json:"spicegate"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	SpiceDB   string `json:"spicedb"`
	Go        string `json:"go"`
}

func currentVersion() buildVersion {
	v := buildVersion{Spicegate: "(unknown)", SpiceDB: embedded.SpiceDBVersion(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Spicegate = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

func registerVersionCmd(root *cobra.Command) {
	var out output
	c := &cobra.Command{
		Use:   "version",
		Short: "Print Spicegate's version and commit, and the SpiceDB version compiled in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			v := currentVersion()
			w := cmd.OutOrStdout()
			if out.json() {
				return writeJSON(w, v)
			}
			commit := ""
			if v.Commit != "" {
				commit = " commit " + v.Commit
				if v.Modified {
					commit += " (modified)"
				}
			}
			fmt.Fprintf(w, "spicegate %s%s\nSpiceDB %s\n%s\n", v.Spicegate, commit, v.SpiceDB, v.Go)
			return nil
		},
	}
	out.register(c)
	root.AddCommand(c)
}
