package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spicegate/spicegate/internal/validation"
)

// errValidationFailed is returned (and exits 1) after the failures were printed.
var errValidationFailed = errors.New("validation failed")

func registerValidateCmd(root *cobra.Command) {
	var failOnWarn, requireCoverage bool
	c := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate schema files, zed validation files and lookup files",
		Long: `Validate runs each file with SpiceDB's own development engine, in process:

  *.zed            a schema: compiled, and its warnings reported;
  zed YAML files   schema (or schemaFile), relationships, assertions and
                   expected relations (validation), as ` + "`zed validate`" + ` runs them;
  lookup files     YAML with a top-level validationFile: the full answers of
                   LookupResources and LookupSubjects against that file's data.

Every failure is printed as file:line:column with the failing assertion. The
exit status is 1 when anything failed (or warned, with --fail-on-warn, or left
a permission unasserted, with --coverage).`,
		Example: `  spicegate validate schema/*.yaml
  spicegate validate --fail-on-warn --coverage schema/*.yaml schema/lookups/*.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sources := make([]validation.Source, 0, len(args))
			for _, arg := range args {
				abs, err := filepath.Abs(arg)
				if err != nil {
					return err
				}
				// Rooted at / so that a file may refer to any other
				// (validationFile: ../resources.yaml).
				sources = append(sources, validation.Source{
					Dir:     os.DirFS("/"),
					Name:    strings.TrimPrefix(filepath.ToSlash(abs), "/"),
					Display: filepath.ToSlash(arg),
				})
			}
			report, err := validation.Run(cmd.Context(), sources...)
			if err != nil {
				return err
			}
			if !printReport(cmd.OutOrStdout(), report, failOnWarn, requireCoverage) {
				return errValidationFailed
			}
			return nil
		},
	}
	c.Flags().BoolVar(&failOnWarn, "fail-on-warn", false, "fail when SpiceDB reports a schema warning")
	c.Flags().BoolVar(&requireCoverage, "coverage", false, "fail unless every permission is asserted both true and false")
	root.AddCommand(c)
}

// printReport writes the report and says whether it passed.
func printReport(w io.Writer, r *validation.Report, failOnWarn, requireCoverage bool) bool {
	for _, p := range r.Failures {
		fmt.Fprintln(w, p)
	}
	for _, p := range r.Warnings {
		fmt.Fprintln(w, p)
	}
	uncovered := r.Coverage.Uncovered()
	if requireCoverage {
		for _, u := range uncovered {
			fmt.Fprintln(w, "coverage:", u)
		}
	}
	ok := r.OK(failOnWarn) && (!requireCoverage || len(uncovered) == 0)
	status := "ok"
	if !ok {
		status = "FAILED"
	}
	line := fmt.Sprintf("%s: %s, %s, %s", status, count(r.Files, "file"), count(len(r.Failures), "failure"), count(len(r.Warnings), "warning"))
	// Coverage means something once a file asserts anything, or when asked for.
	asserted := slices.ContainsFunc(r.Coverage.Permissions(), func(p validation.PermissionCoverage) bool { return p.True+p.False > 0 })
	if requireCoverage || asserted {
		line += "; coverage: " + r.Coverage.String()
	}
	fmt.Fprintln(w, line)
	return ok
}

// count is "1 file", "2 files", "0 files".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
