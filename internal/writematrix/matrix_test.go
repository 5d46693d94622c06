package writematrix_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/cmd"
	"github.com/spicegate/spicegate/internal/httpapi"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// ---- The README's tables: the single source of the expected outcomes.

// roleMatrix is the Roles & Permissions matrix: permission -> role -> holds.
type roleMatrix map[string]map[string]bool

var matrixRow = regexp.MustCompile("^\\| `([a-z_]+)`(?: \\(added\\))? \\| [^|]+ \\| (yes|no) \\| (yes|no) \\| (yes|no) \\|$")

func readme(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	return strings.Split(string(data), "\n")
}

func readMatrix(t *testing.T) roleMatrix {
	t.Helper()
	m := roleMatrix{}
	for _, line := range readme(t) {
		if g := matrixRow.FindStringSubmatch(line); g != nil {
			m[g[1]] = map[string]bool{"user": g[2] == "yes", "readonly": g[3] == "yes", "support": g[4] == "yes"}
		}
	}
	require.GreaterOrEqual(t, len(m), 18, "the README's matrix")
	return m
}

// writeRow is a row of "Who may write what".
type writeRow struct {
	write, http, cli, goMethod string
	rule                       rule
}

// rule is the "needs" column, parsed.
type rule struct {
	anyUser    bool   // any user, for itself
	systemOnly bool   // no user or token, only the system
	perm       string // the organization permission it needs (on its own resource, for own/other rules)
	otherPerm  string // the permission on another's resource ("" unless own/other)
	forItself  bool   // made for a person, who must be the actor
	noSystem   bool   // the system may not make it
}

var (
	writeTableRow = regexp.MustCompile("^\\| ([^|]+) \\| `([A-Z]+ [^`]+)`[^|]* \\| `([^`]+)`[^|]* \\| `([A-Za-z]+)` \\| ([^|]+) \\|$")
	backticked    = regexp.MustCompile("`([a-z_]+)`")
)

func parseRule(t *testing.T, needs string) rule {
	t.Helper()
	perms := backticked.FindAllStringSubmatch(needs, -1)
	r := rule{forItself: strings.Contains(needs, "for itself"), noSystem: strings.Contains(needs, "no system write")}
	switch {
	case strings.HasPrefix(needs, "any user"):
		r.anyUser = true
	case needs == "system only":
		r.systemOnly = true
	case len(perms) == 2 && strings.Contains(needs, "on its own") && strings.Contains(needs, "on another's"):
		r.perm, r.otherPerm = perms[0][1], perms[1][1]
	case len(perms) == 1:
		r.perm = perms[0][1]
	default:
		t.Fatalf("the README's write table has a rule the test cannot read: %q", needs)
	}
	return r
}

func readWrites(t *testing.T) []writeRow {
	t.Helper()
	var rows []writeRow
	for _, line := range readme(t) {
		if g := writeTableRow.FindStringSubmatch(line); g != nil {
			rows = append(rows, writeRow{write: g[1], http: g[2], cli: g[3], goMethod: g[4], rule: parseRule(t, strings.TrimSpace(g[5]))})
		}
	}
	require.GreaterOrEqual(t, len(rows), 20, "the README's write table")
	return rows
}

// ---- The kinds of actor.

// kind is a kind of actor. role is the role its principal holds in the
// fixture's organization ("" for none); principal is the user it stands
// for when that user belongs to the organization.
type kind struct {
	name      string
	actor     func(f *fixture) string // "" for no actor
	none      bool                    // no actor at all
	system    bool
	forged    bool
	user      bool // a user (not a token)
	role      string
	principal string
}

var kinds = []kind{
	{name: "User", actor: func(*fixture) string { return "user:alice" }, user: true, role: "user", principal: "alice"},
	{name: "User's token", actor: func(f *fixture) string { return "api_token:" + f.token("alice") }, role: "user", principal: "alice"},
	{name: "Read-only", actor: func(*fixture) string { return "user:rita" }, user: true, role: "readonly", principal: "rita"},
	{name: "Read-only's token", actor: func(f *fixture) string { return "api_token:" + f.token("rita") }, role: "readonly", principal: "rita"},
	{name: "support", actor: func(*fixture) string { return "user:support" }, user: true, role: "support", principal: "support"},
	{name: "support's token", actor: func(f *fixture) string { return "api_token:" + f.token("support") }, role: "support", principal: "support"},
	{name: "other organization's User", actor: func(*fixture) string { return "user:bob" }, user: true},
	{name: "other organization's token", actor: func(f *fixture) string { return "api_token:" + f.token("bob") }},
	{name: "removed member's token", actor: func(f *fixture) string { return "api_token:" + f.token("ex") }},
	{name: "unknown user", actor: func(*fixture) string { return "user:mallory" }, user: true},
	{name: "unknown token", actor: func(*fixture) string { return "api_token:0123456789abcdef0123456789abcdef" }},
	{name: "no actor", actor: func(*fixture) string { return "" }, none: true},
	{name: "forged actor", actor: func(*fixture) string { return "user:support (forged)" }, forged: true},
	{name: "system", actor: func(*fixture) string { return "" }, system: true},
}

// variant is what a cell writes: for the actor itself or for someone
// else, on its own resource or on another's.
type variant struct {
	name  string
	other bool
}

var (
	itself  = variant{name: "for itself"}
	another = variant{name: "for someone else", other: true}
	own     = variant{name: "on its own"}
	others  = variant{name: "on another's", other: true}
)

func (r rule) variants(k kind) []variant {
	switch {
	case r.otherPerm != "" && k.principal != "":
		return []variant{own, others}
	case r.otherPerm != "":
		return []variant{others}
	case (r.forItself || r.anyUser) && !k.system:
		return []variant{itself, another}
	}
	return []variant{itself}
}

type outcome string

const (
	allowed  outcome = "allowed"
	denied   outcome = "denied"
	invalid  outcome = "invalid argument"
	conflict outcome = "already exists"
)

// expect computes a cell's outcome from the rule and the matrix.
func expect(m roleMatrix, r rule, k kind, v variant, write string) outcome {
	holds := func(perm string) bool {
		row, ok := m[perm]
		if !ok {
			panic("the README's write table names a permission its matrix lacks: " + perm)
		}
		return k.role != "" && row[k.role]
	}
	switch {
	case k.forged:
		return invalid
	case k.system:
		if r.noSystem {
			return invalid
		}
		return allowed
	case k.none:
		return invalid
	case r.systemOnly:
		return denied
	case r.anyUser:
		if !k.user || v.other {
			return denied
		}
		// The support account is listed in every organization already:
		// it joins none, and founds none as its first User.
		if write == "accept an invite" && k.principal == "support" {
			return conflict
		}
		if strings.HasPrefix(write, "create an organization") && k.principal == "support" {
			return invalid
		}
		return allowed
	case v.other && r.forItself:
		return denied
	case r.otherPerm != "" && !v.other:
		if holds(r.perm) || holds(r.otherPerm) {
			return allowed
		}
		return denied
	case r.otherPerm != "":
		if holds(r.otherPerm) {
			return allowed
		}
		return denied
	case holds(r.perm):
		return allowed
	}
	return denied
}

// ---- The fixture: the same organization, members, tokens and artifacts
// for every cell, written in one call (IDs carry a suffix of their own).

type fixture struct {
	n string
}

var fixtures atomic.Int64

func (f *fixture) id(name string) string { return name + "-" + f.n }
func (f *fixture) org() string           { return f.id("o") }
func (f *fixture) token(user string) string {
	return f.id("tok-" + user)
}

// secondToken is a token of user the cells delete (the actors keep theirs).
func (f *fixture) secondToken(user string) string { return f.id("tok2-" + user) }

func ref(typ, id string) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: typ, ObjectId: id}
}

func subj(typ, id, rel string) *v1.SubjectReference {
	return &v1.SubjectReference{Object: ref(typ, id), OptionalRelation: rel}
}

// write writes the fixture: organizations o (alice User, rita Read-only,
// target Read-only, support), p (bob) and q (ivan, the inviter of the
// invite cells accept), tokens, one of each artifact, invites, and the
// token of ex, a member whose removal was interrupted (the token is left,
// the membership is gone: the worst case).
func newFixture(t *testing.T, conn v1.PermissionsServiceClient) *fixture {
	t.Helper()
	f := &fixture{n: fmt.Sprint(fixtures.Add(1))}
	o, p, q := f.org(), f.id("p"), f.id("q")
	var rels []*v1.Relationship
	add := func(typ, id, rel string, s *v1.SubjectReference) *v1.Relationship {
		r := &v1.Relationship{Resource: ref(typ, id), Relation: rel, Subject: s}
		rels = append(rels, r)
		return r
	}
	user := func(id string) *v1.SubjectReference { return subj(client.TypeUser, id, "") }
	org := func(id string) *v1.SubjectReference { return subj(client.TypeOrganization, id, "") }
	for orgID, members := range map[string][][2]string{
		o: {{"user", "alice"}, {"readonly", "rita"}, {"readonly", "target"}, {"support", "support"}},
		p: {{"user", "bob"}, {"support", "support"}},
		q: {{"user", "ivan"}, {"support", "support"}},
	} {
		add(client.TypePlatform, client.PlatformID, client.RelOrganization, org(orgID))
		for _, m := range members {
			add(client.TypeOrganization, orgID, m[0], user(m[1]))
		}
	}
	// A token holds its owner's role, as the facade writes it; "ex" left
	// the organization (its token holds nothing).
	token := func(id, orgID, owner, role string) {
		tok := subj(client.TypeAPIToken, id, "")
		add(client.TypeAPIToken, id, client.RelOrganization, org(orgID))
		add(client.TypeAPIToken, id, client.RelOwner, user(owner))
		add(client.TypeOrganization, orgID, client.RelAPIToken, tok)
		add(client.TypeUser, owner, client.RelAPIToken, tok)
		add(client.TypeMembership, client.Membership(orgID, owner).ID, client.RelAPIToken, tok)
		if role != "" {
			add(client.TypeOrganization, orgID, role, tok)
		}
	}
	roleIn := map[string]string{"alice": "user", "rita": "readonly", "support": "support"}
	for _, u := range []string{"alice", "rita", "support"} {
		token(f.token(u), o, u, roleIn[u])
		token(f.secondToken(u), o, u, roleIn[u])
		add(client.TypeDataset, f.id("ds-"+u), client.RelOrganization, org(o))
		add(client.TypeDataset, f.id("ds-"+u), client.RelOwner, user(u))
	}
	token(f.token("bob"), p, "bob", "user")
	token(f.token("ex"), o, "ex", "")
	add(client.TypeAdapterRepository, f.id("repo"), client.RelOrganization, org(o))
	add(client.TypeAdapterRepository, f.id("repo"), client.RelOwner, user("alice"))
	add(client.TypeTrainingJob, f.id("job"), client.RelOrganization, org(o))
	add(client.TypeTrainingJob, f.id("job"), client.RelCreator, user("alice"))
	add(client.TypeDeployment, f.id("dep"), client.RelOrganization, org(o))
	add(client.TypeLLM, f.id("private"), client.RelOrganization, org(o))
	add(client.TypeLLM, f.id("private"), client.RelPrompter, subj(client.TypeOrganization, o, client.PermMember))
	add(client.TypeLLM, f.id("shared"), client.RelPrompter, subj(client.TypeUser, "*", ""))
	add(client.TypeLLM, f.id("shared"), client.RelPrompter, subj(client.TypePlatform, client.PlatformID, client.PermMember))
	expires := timestamppb.New(time.Now().Add(time.Hour))
	for _, inv := range [][3]string{{f.id("inv-o"), o, "alice"}, {f.id("inv-q"), q, "ivan"}} {
		key := client.Invite(inv[0]).ID // SpiceDB holds the link secret's hash
		add(client.TypeInvite, key, client.RelOrganization, org(inv[1])).OptionalExpiresAt = expires
		add(client.TypeInvite, key, client.RelInviter, user(inv[2])).OptionalExpiresAt = expires
		add(client.TypeInvite, key, client.RelGrantsReadonly, subj(client.TypeUser, "*", "")).OptionalExpiresAt = expires
	}
	updates := make([]*v1.RelationshipUpdate, len(rels))
	for i, r := range rels {
		updates[i] = &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: r}
	}
	_, err := conn.WriteRelationships(t.Context(), &v1.WriteRelationshipsRequest{Updates: updates})
	require.NoError(t, err)
	return f
}

// ---- What each write does, through each entry point.

// person is who a write is made for: the actor itself (""), someone
// else, or, for the system (which must name someone), target (a member of
// the organization).
func person(k kind, v variant) string {
	switch {
	case k.system:
		return "target"
	case v.other:
		return "someone-else"
	}
	return ""
}

// newcomer is who joins or founds an organization: the actor itself (""),
// someone else, or, for the system, a new user.
func newcomer(k kind, v variant) string {
	if k.system {
		return "newbie"
	}
	return person(k, v)
}

// ownerOf picks the owner of the resource a cell acts on: the actor's
// principal (own), or another member (another's).
func ownerOf(k kind, v variant) string {
	if !v.other && k.principal != "" {
		return k.principal
	}
	if k.principal == "alice" {
		return "rita"
	}
	return "alice"
}

// call is one write, as an HTTP request, a CLI command line and a Go call.
type call struct {
	http func(f *fixture, k kind, v variant) (method, path, body string)
	cli  func(f *fixture, k kind, v variant) []string
	goFn func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error
}

func jsonBody(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			parts = append(parts, fmt.Sprintf("%q:%q", kv[i], kv[i+1]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func flag(name, value string) []string {
	if value == "" {
		return nil
	}
	return []string{name, value}
}

func only[T any](_ T, err error) error { return err }

func two[T, U any](_ T, _ U, err error) error { return err }

var calls = map[string]call{
	"create an organization (sign up)": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "POST", "/v1/organizations", jsonBody("id", f.id("new"), "first_user", newcomer(k, v))
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return append([]string{"org", "create", f.id("new")}, flag("--first-user", newcomer(k, v))...)
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return only(a.CreateOrganization(ctx, f.id("new"), newcomer(k, v)))
		},
	},
	"delete an organization": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/organizations/" + f.org(), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"org", "delete", f.org()} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.DeleteOrganization(ctx, f.org()))
		},
	},
	"add a member without an invite": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/members", jsonBody("user", "newbie", "role", "readonly")
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"member", "add", f.org(), "newbie", "readonly"}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.AddMember(ctx, f.org(), "newbie", client.RoleReadonly))
		},
	},
	"change a member's role": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "PUT", "/v1/organizations/" + f.org() + "/members/target", jsonBody("role", "user")
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"member", "set-role", f.org(), "target", "user"}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.ChangeRole(ctx, f.org(), "target", client.RoleUser))
		},
	},
	"remove a member (and their tokens and invites)": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/organizations/" + f.org() + "/members/target", ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"member", "remove", f.org(), "target"} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.RemoveMember(ctx, f.org(), "target"))
		},
	},
	"invite someone": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/invites", `{"role":"readonly","ttl_seconds":3600}`
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"invite", "create", f.org(), "readonly", "--ttl", "1h"}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.CreateInvite(ctx, f.org(), client.RoleReadonly, time.Hour))
		},
	},
	"accept an invite": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "POST", "/v1/invites/" + f.id("inv-q") + "/accept", jsonBody("user", newcomer(k, v))
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return append([]string{"invite", "accept", f.id("inv-q")}, flag("--user", newcomer(k, v))...)
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return two(a.AcceptInvite(ctx, f.id("inv-q"), newcomer(k, v)))
		},
	},
	"revoke an invite": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/invites/" + f.id("inv-o"), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"invite", "revoke", f.id("inv-o")} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.RevokeInvite(ctx, f.id("inv-o")))
		},
	},
	"connect a dataset": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/datasets", jsonBody("id", f.id("new"), "owner", person(k, v))
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return append([]string{"dataset", "connect", f.org(), f.id("new")}, flag("--owner", person(k, v))...)
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return only(a.RegisterDataset(ctx, f.org(), f.id("new"), person(k, v)))
		},
	},
	"delete a dataset": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "DELETE", "/v1/datasets/" + f.id("ds-"+ownerOf(k, v)), ""
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return []string{"dataset", "delete", f.id("ds-" + ownerOf(k, v))}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return only(a.DeleteDataset(ctx, f.id("ds-"+ownerOf(k, v))))
		},
	},
	"create an adapter repository": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/adapter-repositories", jsonBody("id", f.id("new"), "owner", person(k, v))
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return append([]string{"adapter-repository", "create", f.org(), f.id("new")}, flag("--owner", person(k, v))...)
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return only(a.RegisterAdapterRepository(ctx, f.org(), f.id("new"), person(k, v)))
		},
	},
	"delete an adapter repository": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/adapter-repositories/" + f.id("repo"), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"adapter-repository", "delete", f.id("repo")}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.DeleteAdapterRepository(ctx, f.id("repo")))
		},
	},
	"start a training job": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/training-jobs", jsonBody("id", f.id("new"), "repository", f.id("repo"), "creator", person(k, v))
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return append([]string{"training-job", "start", f.org(), f.id("new"), "--repository", f.id("repo")}, flag("--creator", person(k, v))...)
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return only(a.RegisterTrainingJob(ctx, f.org(), f.id("new"), f.id("repo"), person(k, v)))
		},
	},
	"cancel a training job": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/training-jobs/" + f.id("job"), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"training-job", "cancel", f.id("job")} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.DeleteTrainingJob(ctx, f.id("job")))
		},
	},
	"create a deployment": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/deployments", jsonBody("id", f.id("new"))
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"deployment", "create", f.org(), f.id("new")}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.RegisterDeployment(ctx, f.org(), f.id("new")))
		},
	},
	"delete a deployment": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/deployments/" + f.id("dep"), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"deployment", "delete", f.id("dep")} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.DeleteDeployment(ctx, f.id("dep")))
		},
	},
	"create an API token": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "POST", "/v1/organizations/" + f.org() + "/api-tokens", jsonBody("owner", person(k, v))
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return append([]string{"token", "create", f.org()}, flag("--owner", person(k, v))...)
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return two(a.CreateAPIToken(ctx, f.org(), person(k, v)))
		},
	},
	"delete an API token": {
		http: func(f *fixture, k kind, v variant) (string, string, string) {
			return "DELETE", "/v1/api-tokens/" + f.secondToken(ownerOf(k, v)), ""
		},
		cli: func(f *fixture, k kind, v variant) []string {
			return []string{"token", "delete", f.secondToken(ownerOf(k, v))}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, k kind, v variant) error {
			return only(a.DeleteAPIToken(ctx, f.secondToken(ownerOf(k, v))))
		},
	},
	"register a private LLM": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "POST", "/v1/llms", jsonBody("id", f.id("new"), "organization", f.org())
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"llm", "register", f.id("new"), "--organization", f.org()}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.RegisterPrivateLLM(ctx, f.org(), f.id("new")))
		},
	},
	"delete a private LLM": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/llms/" + f.id("private"), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"llm", "delete", f.id("private")} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.DeleteLLM(ctx, f.id("private")))
		},
	},
	"register a shared LLM": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "POST", "/v1/llms", `{"id":"` + f.id("new") + `","shared":true}`
		},
		cli: func(f *fixture, _ kind, _ variant) []string {
			return []string{"llm", "register", f.id("new"), "--shared"}
		},
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.RegisterSharedLLM(ctx, f.id("new")))
		},
	},
	"delete a shared LLM": {
		http: func(f *fixture, _ kind, _ variant) (string, string, string) {
			return "DELETE", "/v1/llms/" + f.id("shared"), ""
		},
		cli: func(f *fixture, _ kind, _ variant) []string { return []string{"llm", "delete", f.id("shared")} },
		goFn: func(ctx context.Context, a *client.Actor, f *fixture, _ kind, _ variant) error {
			return only(a.DeleteLLM(ctx, f.id("shared")))
		},
	},
}

// ---- The entry points.

const (
	actToken   = "matrix-act-token-0123456789"
	adminToken = "matrix-admin-token-0123456789"
)

type env struct {
	srv     *spicedbtest.Server
	conn    v1.PermissionsServiceClient
	client  *client.Client
	httpURL string
}

func classify(err error) outcome {
	switch {
	case err == nil:
		return allowed
	case errors.Is(err, client.ErrPermissionDenied):
		return denied
	case errors.Is(err, client.ErrInvalidArgument), errors.Is(err, cmd.ErrUsage):
		return invalid
	case errors.Is(err, client.ErrAlreadyExists):
		return conflict
	}
	return outcome("unexpected error: " + err.Error())
}

type entryPoint struct {
	name string
	run  func(t *testing.T, e *env, c call, f *fixture, k kind, v variant) outcome
}

var entryPoints = []entryPoint{
	{"HTTP", func(t *testing.T, e *env, c call, f *fixture, k kind, v variant) outcome {
		method, path, body := c.http(f, k, v)
		req, err := http.NewRequestWithContext(t.Context(), method, e.httpURL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		// Services act for users with an act token; only an admin token may
		// act as the support account (or write as the system).
		req.Header.Set("Authorization", "Bearer "+actToken)
		if k.system || k.principal == "support" {
			req.Header.Set("Authorization", "Bearer "+adminToken)
		}
		if a := k.actor(f); a != "" {
			req.Header.Set(httpapi.ActorHeader, a)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		switch {
		case resp.StatusCode < 300:
			return allowed
		case resp.StatusCode == http.StatusForbidden && strings.Contains(string(raw), `"permission_denied"`):
			return denied
		case resp.StatusCode == http.StatusBadRequest && strings.Contains(string(raw), `"invalid_argument"`):
			return invalid
		case resp.StatusCode == http.StatusConflict && strings.Contains(string(raw), `"already_exists"`):
			return conflict
		}
		return outcome(fmt.Sprintf("unexpected answer %d %s", resp.StatusCode, raw))
	}},
	{"CLI", func(t *testing.T, e *env, c call, f *fixture, k kind, v variant) outcome {
		args := append(c.cli(f, k, v), "--spicedb-endpoint", e.srv.Addr, "--preshared-key", e.srv.Key)
		if k.system {
			args = append(args, "--system")
		} else if a := k.actor(f); a != "" {
			args = append(args, "--as", a)
		}
		root := cmd.NewRootCommand()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		return classify(root.ExecuteContext(t.Context()))
	}},
	{"Go", func(t *testing.T, e *env, c call, f *fixture, k kind, v variant) outcome {
		a := e.client.System()
		if !k.system {
			sub, _ := client.ParseSubject(k.actor(f))
			if k.forged {
				sub = client.Subject{Object: client.Object{Type: client.TypeUser, ID: "support (forged)"}}
			}
			a = e.client.As(sub)
		}
		return classify(c.goFn(t.Context(), a, f, k, v))
	}},
}

// TestEveryWriteForEveryActor runs the README's write table through every
// entry point for every kind of actor.
func TestEveryWriteForEveryActor(t *testing.T) {
	m := readMatrix(t)
	rows := readWrites(t)

	// The table is complete: every write route of the API is in it, and
	// every row has its three entry points here.
	api := httpapi.New(httpapi.Config{Client: spicedbtest.Start(t).Client(t)})
	var documented []string
	for _, r := range rows {
		documented = append(documented, strings.Fields(r.http)[0]+" "+strings.Fields(r.http)[1])
		require.Contains(t, calls, r.write, "the test knows how to make %q", r.write)
	}
	for _, route := range api.Routes() {
		if route.Scope == httpapi.ScopeAct {
			assert.Contains(t, documented, route.Method+" "+route.Path, "the README's write table lists every write route")
		}
	}

	for _, row := range rows {
		t.Run(row.write, func(t *testing.T) {
			t.Parallel()
			runRow(t, newEnv(t), newEnv(t), m, row)
		})
	}
}

// newEnv starts a SpiceDB and the HTTP API over it.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := spicedbtest.StartTCP(t)
	c := srv.Client(t)
	h := httptest.NewServer(httpapi.New(httpapi.Config{Client: c, Tokens: []httpapi.Token{
		{Secret: actToken, Scope: httpapi.ScopeAct}, {Secret: adminToken, Scope: httpapi.ScopeAdmin},
	}}).Handler())
	t.Cleanup(h.Close)
	return &env{srv: srv, conn: v1.NewPermissionsServiceClient(srv.Conn(t)), client: c, httpURL: h.URL}
}

// runRow runs every cell of a row. Refused cells run on one SpiceDB and
// share one fixture, which must stay exactly as it was; allowed cells run
// on another, each on a fresh fixture. Each cell compares every
// relationship of its SpiceDB after it with the state before it.
func runRow(t *testing.T, refusals, allowances *env, m roleMatrix, row writeRow) {
	call := calls[row.write]
	shared := newFixture(t, refusals.conn)
	state := map[*env][]string{refusals: spicedbtest.Relationships(t, refusals.srv.Conn(t))}
	cells := 0
	for _, ep := range entryPoints {
		for _, k := range kinds {
			for _, v := range row.rule.variants(k) {
				want := expect(m, row.rule, k, v, row.write)
				name := fmt.Sprintf("%s: %s / %s / %s", row.write, ep.name, k.name, v.name)
				cells++
				e, f := refusals, shared
				if want == allowed {
					e, f = allowances, newFixture(t, allowances.conn)
					state[e] = spicedbtest.Relationships(t, e.srv.Conn(t))
				}
				got := ep.run(t, e, call, f, k, v)
				after := spicedbtest.Relationships(t, e.srv.Conn(t))
				assert.Equal(t, want, got, name)
				added, removed := diff(state[e], after)
				state[e] = after
				if want == allowed {
					assert.NotEmpty(t, append(added, removed...), "%s: an allowed write writes", name)
				} else {
					assert.Empty(t, added, "%s: a refused write writes nothing", name)
					assert.Empty(t, removed, "%s: a refused write deletes nothing", name)
				}
			}
		}
	}
	assert.GreaterOrEqual(t, cells, len(entryPoints)*len(kinds))
}

// diff returns what after holds and before does not, and the reverse
// (both sorted).
func diff(before, after []string) (added, removed []string) {
	in := func(list []string, s string) bool {
		_, found := slices.BinarySearch(list, s)
		return found
	}
	for _, r := range after {
		if !in(before, r) {
			added = append(added, r)
		}
	}
	for _, r := range before {
		if !in(after, r) {
			removed = append(removed, r)
		}
	}
	return added, removed
}
