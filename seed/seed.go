// Package seed reads Spicegate's seed files and loads them into SpiceDB.
//
// A seed describes organizations with their members and artifacts, in YAML:
//
//	support_user: support            # optional; the vendor account every organization lists
//	shared_llms: [llama-3-8b]        # prompted by every user and every organization's tokens
//	organizations:
//	  - id: acme
//	    members:                     # the first User is the organization's creator
//	      - {user: alice, role: user}      # role: user | readonly
//	      - {user: rita, role: readonly}
//	    datasets:             [{id: reviews, owner: alice}]
//	    adapter_repositories: [{id: support-bot, owner: alice}]
//	    training_jobs:        [{id: sb-run-1, repository: support-bot, creator: alice}]
//	    deployments:          [llama-70b]
//	    api_tokens:           [{id: tok-alice-ci, owner: alice}]
//	    private_llms:         [acme-support-ft]
//
// Load validates the whole file before writing anything, and writes with
// TOUCH and DELETE only, so loading a seed twice changes nothing. The
// relationships are the ones the client package writes for the same
// objects (see Updates).
package seed

import (
	"bytes"
	_ "embed" // for the demo seed
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spicegate/spicegate/client"
)

//go:embed demo.yaml
var demo []byte

// Demo returns the demo seed (seed/demo.yaml): the platform's roles in action.
func Demo() []byte { return bytes.Clone(demo) }

// Seed is a parsed seed file.
type Seed struct {
	SupportUser   string         `yaml:"support_user"`
	SharedLLMs    []string       `yaml:"shared_llms"`
	Organizations []Organization `yaml:"organizations"`
}

// Organization is one organization of a seed.
type Organization struct {
	ID                  string        `yaml:"id"`
	Members             []Member      `yaml:"members"`
	Datasets            []Owned       `yaml:"datasets"`
	AdapterRepositories []Owned       `yaml:"adapter_repositories"`
	TrainingJobs        []TrainingJob `yaml:"training_jobs"`
	Deployments         []string      `yaml:"deployments"`
	APITokens           []Owned       `yaml:"api_tokens"`
	PrivateLLMs         []string      `yaml:"private_llms"`
	line                int
}

// Member is a user with a role.
type Member struct {
	User string `yaml:"user"`
	Role string `yaml:"role"`
}

// Owned is an artifact with an owner.
type Owned struct {
	ID    string `yaml:"id"`
	Owner string `yaml:"owner"`
}

// TrainingJob is a training job of a seed.
type TrainingJob struct {
	ID         string `yaml:"id"`
	Repository string `yaml:"repository"`
	Creator    string `yaml:"creator"`
}

// UnmarshalYAML records the organization's line for error messages.
func (o *Organization) UnmarshalYAML(node *yaml.Node) error {
	type plain Organization
	if err := node.Decode((*plain)(o)); err != nil {
		return err
	}
	o.line = node.Line
	return nil
}

// Parse decodes a seed strictly (an unknown key is an error) and validates it.
func Parse(r io.Reader) (*Seed, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var s Seed
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if s.SupportUser == "" {
		s.SupportUser = "support"
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParseBytes is Parse over a byte slice.
func ParseBytes(b []byte) (*Seed, error) { return Parse(bytes.NewReader(b)) }

// Validate checks every ID against SpiceDB's grammar and the seed's own
// rules: one role per member, at least one User per organization, owners
// and creators are members, IDs are unique, training jobs name a
// repository of their organization. The error lists every problem found.
func (s *Seed) Validate() error {
	var problems []string
	bad := func(where, format string, args ...any) {
		problems = append(problems, where+": "+fmt.Sprintf(format, args...))
	}
	checkID := func(where, typ, id string) {
		if _, err := client.ParseObject(typ + ":" + id); err != nil {
			bad(where, "invalid %s ID %q", typ, id)
		}
	}
	checkID("support_user", client.TypeUser, s.SupportUser)
	seen := map[string]string{} // "type:id" -> where
	unique := func(where, typ, id string) {
		checkID(where, typ, id)
		key := typ + ":" + id
		if prev, ok := seen[key]; ok {
			bad(where, "%s is also defined at %s", key, prev)
		}
		seen[key] = where
	}
	for i, id := range s.SharedLLMs {
		unique(fmt.Sprintf("shared_llms[%d]", i), client.TypeLLM, id)
	}
	for _, org := range s.Organizations {
		where := fmt.Sprintf("organizations[%s] (line %d)", org.ID, org.line)
		unique(where, client.TypeOrganization, org.ID)
		members := map[string]client.Role{}
		hasUser := false
		for _, m := range org.Members {
			checkID(where+".members", client.TypeUser, m.User)
			role, err := client.ParseRole(m.Role)
			switch {
			case err != nil || role == client.RoleSupport:
				bad(where+".members", "user %q: role must be user or readonly, not %q", m.User, m.Role)
			case m.User == s.SupportUser:
				bad(where+".members", "%q is the support account, listed in every organization already", m.User)
			}
			if _, dup := members[m.User]; dup {
				bad(where+".members", "user %q is listed twice (one role per organization)", m.User)
			}
			members[m.User] = role
			hasUser = hasUser || role == client.RoleUser
		}
		if !hasUser {
			bad(where, "needs at least one member with role user")
		}
		member := func(field, user string) {
			if _, ok := members[user]; !ok && user != s.SupportUser {
				bad(where+"."+field, "%q is not a member of %s", user, org.ID)
			}
		}
		for _, d := range org.Datasets {
			unique(where+".datasets", client.TypeDataset, d.ID)
			member("datasets", d.Owner)
		}
		repos := map[string]bool{}
		for _, r := range org.AdapterRepositories {
			unique(where+".adapter_repositories", client.TypeAdapterRepository, r.ID)
			member("adapter_repositories", r.Owner)
			repos[r.ID] = true
		}
		for _, j := range org.TrainingJobs {
			unique(where+".training_jobs", client.TypeTrainingJob, j.ID)
			member("training_jobs", j.Creator)
			if j.Repository != "" && !repos[j.Repository] {
				bad(where+".training_jobs", "job %q: repository %q is not one of %s", j.ID, j.Repository, org.ID)
			}
		}
		for _, d := range org.Deployments {
			unique(where+".deployments", client.TypeDeployment, d)
		}
		for _, tk := range org.APITokens {
			unique(where+".api_tokens", client.TypeAPIToken, tk.ID)
			member("api_tokens", tk.Owner)
		}
		for _, l := range org.PrivateLLMs {
			unique(where+".private_llms", client.TypeLLM, l)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("seed: %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}
