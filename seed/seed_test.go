package seed_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
	"github.com/spicegate/spicegate/seed"
)

func TestDemoSeedLoadsTwiceToTheSameState(t *testing.T) {
	srv := spicedbtest.Start(t)
	conn := srv.Conn(t)
	perms := v1.NewPermissionsServiceClient(conn)
	s, err := seed.ParseBytes(seed.Demo())
	require.NoError(t, err)

	var calls []int
	rev, err := seed.Load(t.Context(), perms, s, func(done, total int) { calls = append(calls, done) })
	require.NoError(t, err)
	assert.NotEmpty(t, rev)
	assert.NotEmpty(t, calls)
	first := spicedbtest.Relationships(t, conn)
	require.NotEmpty(t, first)

	_, err = seed.Load(t.Context(), perms, s, nil)
	require.NoError(t, err)
	assert.Equal(t, first, spicedbtest.Relationships(t, conn), "loading twice changes nothing")

	// The seeded data behaves as the client would have written it.
	c := srv.Client(t)
	ctx := t.Context()
	check := func(subject client.Subject, permission string, resource client.Object) bool {
		d, err := c.Check(ctx, subject, permission, resource, client.WithConsistency(client.AtLeastAsFresh(client.Revision(rev))))
		require.NoError(t, err)
		return d.Allowed()
	}
	assert.True(t, check(client.User("alice"), client.PermDeploy, client.Organization("acme")))
	assert.False(t, check(client.User("rita"), client.PermDeploy, client.Organization("acme")))
	assert.False(t, check(client.User("alice"), client.PermDeploy, client.Organization("globex")))
	assert.True(t, check(client.User("support"), client.PermDeleteAccount, client.Organization("globex")))
	assert.True(t, check(client.APIToken("acme-rita-notebook"), client.PermViewDataset, client.Organization("acme")))
	assert.True(t, check(client.APIToken("globex-bob-batch"), client.PermPrompt, client.LLM("llama-3-8b-instruct")))
	assert.False(t, check(client.APIToken("globex-bob-batch"), client.PermPrompt, client.LLM("acme-support-bot-ft")))
	assert.True(t, check(client.User("alice"), client.PermDelete, client.Dataset("acme-support-tickets")))
	members, err := c.ListMembers(ctx, "acme", client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.Equal(t, []client.Member{{UserID: "alice", Role: client.RoleUser}, {UserID: "rita", Role: client.RoleReadonly}, {UserID: "support", Role: client.RoleSupport}}, members)
	info, err := c.APIToken(ctx, "acme-alice-ci", client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.Equal(t, "alice", info.Owner)
	// The client can delete what the seed wrote, completely.
	c.Observe(client.Revision(rev))
	_, err = c.DeleteOrganization(ctx, "globex")
	require.NoError(t, err)
	for _, r := range spicedbtest.Relationships(t, conn) {
		assert.NotContains(t, r, "globex")
	}
}

func TestReloadWithAChangedRoleKeepsOneRole(t *testing.T) {
	srv := spicedbtest.Start(t)
	conn := srv.Conn(t)
	perms := v1.NewPermissionsServiceClient(conn)
	s, err := seed.ParseBytes(seed.Demo())
	require.NoError(t, err)
	_, err = seed.Load(t.Context(), perms, s, nil)
	require.NoError(t, err)
	s.Organizations[0].Members[1].Role = "user" // rita becomes a User
	_, err = seed.Load(t.Context(), perms, s, nil)
	require.NoError(t, err)
	role, err := srv.Client(t).RoleOf(t.Context(), "acme", "rita", client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.Equal(t, client.RoleUser, role)
	for _, r := range spicedbtest.Relationships(t, conn) {
		assert.NotEqual(t, "organization:acme#readonly@user:rita", r)
	}
}

func TestParseRejectsABadSeedAndNamesEveryProblem(t *testing.T) {
	bad := `
organizations:
  - id: acme
    members:
      - {user: alice, role: admin}
      - {user: rita, role: readonly}
      - {user: rita, role: readonly}
    datasets:
      - {id: d1, owner: mallory}
      - {id: d1, owner: rita}
    training_jobs:
      - {id: j1, repository: nope, creator: rita}
  - id: "bad id"
    members:
      - {user: bob, role: user}
`
	_, err := seed.Parse(strings.NewReader(bad))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`role must be user or readonly, not "admin"`,
		`user "rita" is listed twice`,
		`needs at least one member with role user`,
		`"mallory" is not a member of acme`,
		`dataset:d1 is also defined`,
		`repository "nope" is not one of acme`,
		`invalid organization ID "bad id"`,
		"(line 3)",
	} {
		assert.Contains(t, msg, want)
	}

	_, err = seed.Parse(strings.NewReader("organisations: []\n"))
	require.ErrorContains(t, err, "field organisations not found")
}

func TestGenerateIsValidDeterministicAndBulkLoads(t *testing.T) {
	g := seed.Generate(3, 4, 3500)
	require.NoError(t, g.Validate())
	again, err := yaml.Marshal(seed.Generate(3, 4, 3500))
	require.NoError(t, err)
	first, err := yaml.Marshal(g)
	require.NoError(t, err)
	assert.Equal(t, string(first), string(again))
	parsed, err := seed.ParseBytes(first)
	require.NoError(t, err, "a generated seed round-trips through the file format")
	assert.Len(t, parsed.Organizations, 3)

	srv := spicedbtest.Start(t)
	conn := srv.Conn(t)
	perms := v1.NewPermissionsServiceClient(conn)
	require.GreaterOrEqual(t, len(g.Updates()), seed.BulkThreshold, "large enough for the bulk path")
	_, err = seed.Load(t.Context(), perms, g, nil) // bulk import
	require.NoError(t, err)
	loaded := spicedbtest.Relationships(t, conn)
	_, err = seed.Load(t.Context(), perms, g, nil) // exists already: TOUCH
	require.NoError(t, err)
	assert.Equal(t, loaded, spicedbtest.Relationships(t, conn))
}

// countingImports counts the bulk import streams opened through it.
type countingImports struct {
	v1.PermissionsServiceClient
	streams int
}

func (c *countingImports) ImportBulkRelationships(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStreamingClient[v1.ImportBulkRelationshipsRequest, v1.ImportBulkRelationshipsResponse], error) {
	c.streams++
	return c.PermissionsServiceClient.ImportBulkRelationships(ctx, opts...)
}

// A seed larger than one import stream goes in several (SpiceDB ends a
// stream it has not answered within 30 s, which a million relationships
// into PostgreSQL exceed), and every relationship arrives once.
func TestBulkLoadGoesInStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large: run without -short")
	}
	g := seed.Generate(2, 4, seed.BulkStreamSize/4+100)
	want := g.Relationships()
	require.Greater(t, want, seed.BulkStreamSize)

	srv := spicedbtest.Start(t)
	conn := srv.Conn(t)
	perms := &countingImports{PermissionsServiceClient: v1.NewPermissionsServiceClient(conn)}
	last := 0
	_, err := seed.Load(t.Context(), perms, g, func(done, total int) {
		require.Equal(t, want, total)
		require.Greater(t, done, last, "progress only moves forward")
		last = done
	})
	require.NoError(t, err)
	assert.Equal(t, want, last)
	// More streams when the server is slow (each sends for 10 s at most).
	assert.GreaterOrEqual(t, perms.streams, (want+seed.BulkStreamSize-1)/seed.BulkStreamSize)
	assert.Len(t, spicedbtest.Relationships(t, conn), want)
}

// A slow server gets more, shorter streams: each sends for a bounded time
// (here so short that every stream carries one message of 1,000).
func TestSlowBulkLoadClosesStreamsEarly(t *testing.T) {
	seed.SetBulkStreamTime(t, time.Nanosecond)
	g := seed.Generate(1, 2, seed.BulkThreshold/2+100) // just past the bulk threshold
	want := g.Relationships()
	srv := spicedbtest.Start(t)
	conn := srv.Conn(t)
	perms := &countingImports{PermissionsServiceClient: v1.NewPermissionsServiceClient(conn)}
	_, err := seed.Load(t.Context(), perms, g, nil)
	require.NoError(t, err)
	assert.Equal(t, (want+999)/1000, perms.streams)
	assert.Len(t, spicedbtest.Relationships(t, conn), want)
}
