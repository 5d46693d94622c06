package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spicegate/spicegate/client"
)

// writeFlags are the optional inputs of the write commands; each command
// registers the ones it takes.
type writeFlags struct {
	firstUser, user, owner, creator, repository, organization string
	ttl                                                       time.Duration
	shared                                                    bool
}

var writeFlagDefs = map[string]func(*pflag.FlagSet, *writeFlags){
	"first-user": func(f *pflag.FlagSet, w *writeFlags) {
		f.StringVar(&w.firstUser, "first-user", "", "the first User (the acting user when empty; required with --system)")
	},
	"user": func(f *pflag.FlagSet, w *writeFlags) {
		f.StringVar(&w.user, "user", "", "the user who joins (the acting user when empty; required with --system)")
	},
	"owner": func(f *pflag.FlagSet, w *writeFlags) {
		f.StringVar(&w.owner, "owner", "", "the owner (the acting user, or the acting token's owner, when empty; required with --system)")
	},
	"creator": func(f *pflag.FlagSet, w *writeFlags) {
		f.StringVar(&w.creator, "creator", "", "who starts it (the acting user when empty; required with --system)")
	},
	"repository": func(f *pflag.FlagSet, w *writeFlags) {
		f.StringVar(&w.repository, "repository", "", "the adapter repository it trains into")
	},
	"organization": func(f *pflag.FlagSet, w *writeFlags) {
		f.StringVar(&w.organization, "organization", "", "the organization of a private LLM")
	},
	"shared": func(f *pflag.FlagSet, w *writeFlags) {
		f.BoolVar(&w.shared, "shared", false, "a shared LLM of the platform (system writes only)")
	},
	"ttl": func(f *pflag.FlagSet, w *writeFlags) {
		f.DurationVar(&w.ttl, "ttl", 7*24*time.Hour, "how long the invite stays valid (at most 90 days)")
	},
}

// written is what a write command reports.
type written struct {
	Revision client.Revision `json:"revision"`
	ID       string          `json:"id,omitempty"`
	Role     client.Role     `json:"role,omitempty"`
}

func rev(r client.Revision, err error) (written, error) { return written{Revision: r}, err }

// writeOp is one write command: `spicegate NOUN VERB ARGS...`. Every one
// runs through the client's Actor, the one place that decides who may
// write what: the command only parses its input.
type writeOp struct {
	noun, verb, short string
	args              []string
	flags             []string
	run               func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error)
}

// writeOps are the CLI's writes; the same as the HTTP API's (README,
// "Who may write what").
var writeOps = []writeOp{
	{"org", "create", "Create an organization (sign up)", []string{"ORG"}, []string{"first-user"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			return rev(a.CreateOrganization(ctx, args[0], f.firstUser))
		}},
	{"org", "delete", "Delete an organization and all its artifacts", []string{"ORG"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteOrganization(ctx, args[0]))
		}},
	{"member", "add", "Add a member as user or readonly", []string{"ORG", "USER", "ROLE"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			role, err := client.ParseRole(args[2])
			if err != nil {
				return written{}, err
			}
			return rev(a.AddMember(ctx, args[0], args[1], role))
		}},
	{"member", "set-role", "Switch a member between user and readonly", []string{"ORG", "USER", "ROLE"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			role, err := client.ParseRole(args[2])
			if err != nil {
				return written{}, err
			}
			return rev(a.ChangeRole(ctx, args[0], args[1], role))
		}},
	{"member", "remove", "Remove a member, with their API tokens and invites", []string{"ORG", "USER"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.RemoveMember(ctx, args[0], args[1]))
		}},
	{"invite", "create", "Invite someone as user or readonly (prints the invite's secret ID)", []string{"ORG", "ROLE"}, []string{"ttl"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			role, err := client.ParseRole(args[1])
			if err != nil {
				return written{}, err
			}
			inv, err := a.CreateInvite(ctx, args[0], role, f.ttl)
			return written{Revision: inv.Revision, ID: inv.ID, Role: inv.Role}, err
		}},
	{"invite", "accept", "Accept an invite", []string{"ID"}, []string{"user"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			m, r, err := a.AcceptInvite(ctx, args[0], f.user)
			return written{Revision: r, Role: m.Role}, err
		}},
	{"invite", "revoke", "Revoke an invite (pending or used)", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.RevokeInvite(ctx, args[0]))
		}},
	{"dataset", "connect", "Connect a dataset", []string{"ORG", "ID"}, []string{"owner"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			return rev(a.RegisterDataset(ctx, args[0], args[1], f.owner))
		}},
	{"dataset", "delete", "Delete a dataset", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteDataset(ctx, args[0]))
		}},
	{"adapter-repository", "create", "Create an adapter repository", []string{"ORG", "ID"}, []string{"owner"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			return rev(a.RegisterAdapterRepository(ctx, args[0], args[1], f.owner))
		}},
	{"adapter-repository", "delete", "Delete an adapter repository", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteAdapterRepository(ctx, args[0]))
		}},
	{"training-job", "start", "Start a training job", []string{"ORG", "ID"}, []string{"repository", "creator"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			return rev(a.RegisterTrainingJob(ctx, args[0], args[1], f.repository, f.creator))
		}},
	{"training-job", "cancel", "Cancel (delete) a training job", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteTrainingJob(ctx, args[0]))
		}},
	{"deployment", "create", "Create a deployment", []string{"ORG", "ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.RegisterDeployment(ctx, args[0], args[1]))
		}},
	{"deployment", "delete", "Delete a deployment", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteDeployment(ctx, args[0]))
		}},
	{"token", "create", "Create an API token (prints its ID)", []string{"ORG"}, []string{"owner"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			id, r, err := a.CreateAPIToken(ctx, args[0], f.owner)
			return written{Revision: r, ID: id}, err
		}},
	{"token", "delete", "Delete an API token", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteAPIToken(ctx, args[0]))
		}},
	{"llm", "register", "Register a serverless LLM: private to --organization, or --shared", []string{"ID"}, []string{"organization", "shared"},
		func(ctx context.Context, a *client.Actor, args []string, f *writeFlags) (written, error) {
			switch {
			case f.shared && f.organization == "":
				return rev(a.RegisterSharedLLM(ctx, args[0]))
			case !f.shared && f.organization != "":
				return rev(a.RegisterPrivateLLM(ctx, f.organization, args[0]))
			}
			return written{}, fmt.Errorf("%w: give exactly one of --organization and --shared", ErrUsage)
		}},
	{"llm", "delete", "Delete a serverless LLM", []string{"ID"}, nil,
		func(ctx context.Context, a *client.Actor, args []string, _ *writeFlags) (written, error) {
			return rev(a.DeleteLLM(ctx, args[0]))
		}},
}

// ErrUsage marks a command line that is wrong in itself (flags that
// contradict each other, a missing choice), before anything is sent.
var ErrUsage = errors.New("usage")

// actorFlags say on whose behalf a write is made: --as an actor, or
// --system (no end user). One of them is required, so that acting as
// nobody in particular is always a choice someone made.
type actorFlags struct {
	as     string
	system bool
}

func (f *actorFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.as, "as", "", "act as this user or API token (user:ID or api_token:ID): its permissions decide")
	cmd.Flags().BoolVar(&f.system, "system", false, "write as the system (no end user; every permission): for provisioning")
}

func (f *actorFlags) actor(c *client.Client) (*client.Actor, error) {
	switch {
	case f.as != "" && f.system:
		return nil, fmt.Errorf("%w: give --as or --system, not both", ErrUsage)
	case f.system:
		return c.System(), nil
	case f.as == "":
		return nil, fmt.Errorf("%w: say on whose behalf: --as user:ID (or api_token:ID), or --system", ErrUsage)
	}
	sub, err := client.ParseSubject(f.as)
	if err != nil {
		return nil, fmt.Errorf("%w: --as: %w", ErrUsage, err)
	}
	return c.As(sub), nil
}

func registerWriteCmds(root *cobra.Command) {
	nouns := map[string]*cobra.Command{}
	for _, op := range writeOps {
		parent, ok := nouns[op.noun]
		if !ok {
			parent = &cobra.Command{Use: op.noun, Short: "Write " + op.noun + "s, acting as a user, an API token or the system"}
			nouns[op.noun] = parent
			root.AddCommand(parent)
		}
		parent.AddCommand(writeCmd(op))
	}
}

func writeCmd(op writeOp) *cobra.Command {
	var conn connFlags
	var out output
	var act actorFlags
	var wf writeFlags
	use := op.verb
	for _, a := range op.args {
		use += " " + a
	}
	c := &cobra.Command{
		Use:   use,
		Short: op.short,
		Args:  cobra.ExactArgs(len(op.args)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			c, err := conn.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			a, err := act.actor(c)
			if err != nil {
				return err
			}
			res, err := op.run(cmd.Context(), a, args, &wf)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.json() {
				return writeJSON(w, res)
			}
			if res.ID != "" {
				fmt.Fprintf(w, "id: %s\n", res.ID)
			}
			if res.Role != "" {
				fmt.Fprintf(w, "role: %s\n", res.Role)
			}
			fmt.Fprintf(w, "revision: %s\n", res.Revision)
			return nil
		},
	}
	conn.register(c)
	out.register(c)
	act.register(c)
	for _, name := range op.flags {
		writeFlagDefs[name](c.Flags(), &wf)
	}
	return c
}
