// Package cmd builds spicegate's command tree (cobra), one register function
// per command, so that cmd/spicegate stays a few lines.
package cmd

import (
	"github.com/spf13/cobra"
)

// NewRootCommand returns the root `spicegate` command with every subcommand
// registered. Errors are returned, not printed: main prints them once.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "spicegate",
		Short:         "Relationship-based authorization for the LLM platform, on SpiceDB",
		SilenceErrors: true,
		SilenceUsage:  true,
		// Every flag is also a SPICEGATE_* environment variable.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
	}
	registerValidateCmd(root)
	registerServeCmd(root)
	registerQueryCmds(root)
	registerAdminCmds(root)
	registerHealthcheckCmd(root)
	registerAuditCmd(root)
	registerWriteCmds(root)
	registerVersionCmd(root)
	registerLoadtestCmd(root)
	return root
}
