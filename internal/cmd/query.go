package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/spicegate/spicegate/client"
)

// output is how an operator command prints: text for people, json for scripts.
type output struct{ format string }

func (o *output) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "text or json")
}

func (o *output) validate() error {
	if o.format != "text" && o.format != "json" {
		return fmt.Errorf("--output must be text or json, not %q", o.format)
	}
	return nil
}

func (o *output) json() bool { return o.format == "json" }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Operator reads are fully consistent: they are rare, and a person asking
// wants the truth as of now.
var operatorRead = client.WithConsistency(client.FullyConsistent())

func registerQueryCmds(root *cobra.Command) {
	registerCheckCmd(root)
	registerMembersCmd(root)
	registerWhoCanCmd(root)
	registerCanCmd(root)
}

func registerCheckCmd(root *cobra.Command) {
	var conn connFlags
	var out output
	var explain, errorOnDenied bool
	c := &cobra.Command{
		Use:   "check SUBJECT PERMISSION RESOURCE",
		Short: "Decide whether a subject holds a permission on a resource",
		Example: `  spicegate check user:alice deploy organization:acme
  spicegate check api_token:acme-rita-notebook delete dataset:acme-support-tickets --explain`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			subject, err := client.ParseSubject(args[0])
			if err != nil {
				return err
			}
			resource, err := client.ParseObject(args[2])
			if err != nil {
				return err
			}
			c, err := conn.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			var d client.Decision
			var trace *client.Trace
			if explain {
				d, trace, err = c.Explain(cmd.Context(), subject, args[1], resource, operatorRead)
			} else {
				d, err = c.Check(cmd.Context(), subject, args[1], resource, operatorRead)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.json() {
				err = writeJSON(w, map[string]any{"allowed": d.Allowed(), "permissionship": d.Permissionship.String(), "revision": d.Revision})
			} else {
				fmt.Fprintf(w, "%s: %s %s %s\n", d.Permissionship, subject, args[1], resource)
				if trace != nil {
					fmt.Fprintln(w, "\nwhy:")
					err = trace.Write(w)
				}
			}
			if err == nil && errorOnDenied && !d.Allowed() {
				return fmt.Errorf("%w: %s %s %s is %s", ErrNoPermission, subject, args[1], resource, d.Permissionship)
			}
			return err
		},
	}
	conn.register(c)
	out.register(c)
	c.Flags().BoolVar(&explain, "explain", false, "print the path that granted or denied it (SpiceDB's check trace)")
	c.Flags().BoolVar(&errorOnDenied, "error-on-no-permission", false, "exit with status 3 unless the answer is allowed (without it, a denied answer exits 0: the check itself worked)")
	root.AddCommand(c)
}

func registerMembersCmd(root *cobra.Command) {
	var conn connFlags
	var out output
	c := &cobra.Command{
		Use:     "members ORG",
		Short:   "List an organization's members and their roles",
		Example: "  spicegate members acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := conn.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			members, err := c.ListMembers(cmd.Context(), args[0], operatorRead)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.json() {
				type member struct {
					User string `json:"user"`
					Role string `json:"role"`
				}
				list := make([]member, len(members))
				for i, m := range members {
					list[i] = member{m.UserID, string(m.Role)}
				}
				return writeJSON(w, list)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tROLE")
			for _, m := range members {
				fmt.Fprintf(tw, "%s\t%s\n", m.UserID, m.Role)
			}
			return tw.Flush()
		},
	}
	conn.register(c)
	out.register(c)
	root.AddCommand(c)
}

func registerWhoCanCmd(root *cobra.Command) {
	var conn connFlags
	var out output
	var subjectType string
	c := &cobra.Command{
		Use:   "whocan PERMISSION RESOURCE",
		Short: "List the subjects that hold a permission on a resource",
		Example: `  spicegate whocan delete dataset:acme-support-tickets
  spicegate whocan view_dataset organization:acme --subject-type api_token`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			resource, err := client.ParseObject(args[1])
			if err != nil {
				return err
			}
			c, err := conn.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			return printStream(cmd.OutOrStdout(), out, func(yield func(string) error) error {
				for s, err := range c.LookupSubjects(cmd.Context(), resource, args[0], subjectType, operatorRead) {
					if err != nil {
						return err
					}
					if err := yield(s.String()); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	conn.register(c)
	out.register(c)
	c.Flags().StringVar(&subjectType, "subject-type", client.TypeUser, "type of the subjects to list (type or type#relation)")
	root.AddCommand(c)
}

func registerCanCmd(root *cobra.Command) {
	var conn connFlags
	var out output
	c := &cobra.Command{
		Use:     "can SUBJECT PERMISSION RESOURCE-TYPE",
		Short:   "List the resources of a type on which a subject holds a permission",
		Example: "  spicegate can user:rita view dataset",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			subject, err := client.ParseSubject(args[0])
			if err != nil {
				return err
			}
			c, err := conn.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			return printStream(cmd.OutOrStdout(), out, func(yield func(string) error) error {
				for o, err := range c.LookupResources(cmd.Context(), subject, args[1], args[2], operatorRead) {
					if err != nil {
						return err
					}
					if err := yield(o.String()); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	conn.register(c)
	out.register(c)
	root.AddCommand(c)
}

// printStream prints results as they come (one per line), or as one JSON
// array of strings, written element by element so nothing is held.
func printStream(w io.Writer, out output, each func(yield func(string) error) error) error {
	if !out.json() {
		return each(func(s string) error {
			_, err := fmt.Fprintln(w, s)
			return err
		})
	}
	first := true
	if _, err := fmt.Fprint(w, "["); err != nil {
		return err
	}
	err := each(func(s string) error {
		b, _ := json.Marshal(s)
		sep := ","
		if first {
			sep, first = "", false
		}
		_, err := fmt.Fprintf(w, "%s\n  %s", sep, b)
		return err
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "\n]")
	return err
}
