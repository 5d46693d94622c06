package client_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

func TestDeleteOrganizationRemovesEverythingOfIt(t *testing.T) {
	srv := spicedbtest.Start(t)
	c := srv.Client(t)
	conn := srv.Conn(t)
	ctx := t.Context()

	// Two organizations with one of everything each; alice is in both.
	for _, org := range []string{"acme", "globex"} {
		owner := map[string]string{"acme": "alice", "globex": "bob"}[org]
		_, err := c.CreateOrganization(ctx, org, owner)
		require.NoError(t, err)
		_, err = c.AddMember(ctx, org, org+"_ro", client.RoleReadonly)
		require.NoError(t, err)
		_, err = c.RegisterDataset(ctx, org, org+"_data", owner)
		require.NoError(t, err)
		_, err = c.RegisterAdapterRepository(ctx, org, org+"_repo", owner)
		require.NoError(t, err)
		_, err = c.RegisterTrainingJob(ctx, org, org+"_job", org+"_repo", owner)
		require.NoError(t, err)
		_, err = c.RegisterDeployment(ctx, org, org+"_deploy")
		require.NoError(t, err)
		_, _, err = c.CreateAPIToken(ctx, org, owner)
		require.NoError(t, err)
		_, err = c.CreateInvite(ctx, org, owner, client.RoleUser, time.Hour)
		require.NoError(t, err)
		_, err = c.RegisterPrivateLLM(ctx, org, org+"_llm")
		require.NoError(t, err)
	}
	_, err := c.AddMember(ctx, "globex", "alice", client.RoleUser)
	require.NoError(t, err)
	aliceGlobexTok, _, err := c.CreateAPIToken(ctx, "globex", "alice")
	require.NoError(t, err)
	_, err = c.RegisterSharedLLM(ctx, "shared")
	require.NoError(t, err)
	// Bookkeeping: support's token, a member whose membership object is a
	// digest (its ID has a "|") with a token, an interrupted role change's fence.
	_, _, err = c.CreateAPIToken(ctx, "acme", "support")
	require.NoError(t, err)
	_, err = c.AddMember(ctx, "acme", "pipe|user", client.RoleUser)
	require.NoError(t, err)
	_, _, err = c.CreateAPIToken(ctx, "acme", "pipe|user")
	require.NoError(t, err)
	digest := client.Membership("acme", "pipe|user").String()
	rawTouch(t, srv, fenceOf("acme", "acme_ro", "interrupted"))

	before := spicedbtest.Relationships(t, conn)
	require.True(t, slices.ContainsFunc(before, func(r string) bool { return strings.HasPrefix(r, digest+"#") }))
	rev, err := c.DeleteOrganization(ctx, "acme")
	require.NoError(t, err)
	assert.NotEmpty(t, rev)

	after := spicedbtest.Relationships(t, conn)
	for _, r := range after {
		assert.NotContains(t, r, "acme", "left behind: %s", r)
		assert.False(t, strings.HasPrefix(r, digest+"#"), "left behind: %s", r)
	}
	// Everything else is untouched: globex's relationships and the shared LLM.
	var others []string
	for _, r := range before {
		if !strings.Contains(r, "acme") && !ofAcmeArtifact(r, before) && !strings.HasPrefix(r, digest+"#") {
			others = append(others, r)
		}
	}
	assert.ElementsMatch(t, others, after)
	assert.True(t, allowed(t, c, client.APIToken(aliceGlobexTok), client.PermDeploy, client.Organization("globex")))
	assert.False(t, allowed(t, c, client.User("alice"), client.PermMember, client.Organization("acme")))

	_, err = c.DeleteOrganization(ctx, "acme")
	require.ErrorIs(t, err, client.ErrNotFound, "nothing left to delete")
}

// ofAcmeArtifact reports whether r is a relationship of one of acme's
// artifacts (as resource, or as subject: a token index user:X#api_token@api_token:T),
// whose ID does not say so but whose organization relationship does.
func ofAcmeArtifact(r string, all []string) bool {
	resource, _, _ := strings.Cut(r, "#")
	_, subject, _ := strings.Cut(r, "@")
	if strings.HasPrefix(resource, client.TypePlatform+":") {
		return false // the platform lists organizations; it is nobody's artifact
	}
	for _, other := range all {
		if other == resource+"#organization@organization:acme" || other == subject+"#organization@organization:acme" {
			return true
		}
	}
	return false
}

// TestDeleteLargeOrganization deletes an organization of 100,000 datasets
// (and the other organization's data stays).
func TestDeleteLargeOrganization(t *testing.T) {
	if testing.Short() {
		t.Skip("large: run without -short")
	}
	srv := spicedbtest.Start(t)
	c := srv.Client(t)
	conn := srv.Conn(t)
	perms := v1.NewPermissionsServiceClient(conn)
	ctx := t.Context()
	seedOrgs(t, c)
	_, err := c.RegisterDataset(ctx, "globex", "globex_data", "bob")
	require.NoError(t, err)

	// 100,000 datasets: more than one write, read and delete page of each
	// kind. Under -race a tenth (still many pages: the page logic is the
	// same), since the detector makes it take minutes.
	n := 100_000
	if raceEnabled {
		n = 10_000
	}
	stream, err := perms.ImportBulkRelationships(ctx)
	require.NoError(t, err)
	batch := make([]*v1.Relationship, 0, 2000)
	for i := range n {
		d := &v1.ObjectReference{ObjectType: client.TypeDataset, ObjectId: fmt.Sprintf("d%06d", i)}
		batch = append(batch,
			&v1.Relationship{Resource: d, Relation: client.RelOrganization, Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: client.TypeOrganization, ObjectId: "acme"}}},
			&v1.Relationship{Resource: d, Relation: client.RelOwner, Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: client.TypeUser, ObjectId: "alice"}}},
		)
		if len(batch) == cap(batch) {
			require.NoError(t, stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: batch}))
			batch = batch[:0]
		}
	}
	resp, err := stream.CloseAndRecv()
	require.NoError(t, err)
	require.EqualValues(t, 2*n, resp.GetNumLoaded())

	_, err = c.DeleteOrganization(ctx, "acme")
	require.NoError(t, err)

	left := spicedbtest.Relationships(t, conn)
	for _, r := range left {
		require.NotContains(t, r, "acme")
		require.False(t, strings.HasPrefix(r, "dataset:d"), "left behind: %s", r)
	}
	assert.Contains(t, left, "dataset:globex_data#organization@organization:globex")
	assert.True(t, allowed(t, c, client.User("bob"), client.PermView, client.Dataset("globex_data")))
}

// DeleteOrganization concurrent with writes into the organization (and
// the same writes into another) leaves nothing of the organization, and no
// orphan anywhere: every artifact left has its organization.
func TestDeleteOrganizationConcurrentWithWritesLeavesNoOrphan(t *testing.T) {
	srv := spicedbtest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	for _, org := range []string{"acme", "globex"} {
		_, err := c.CreateOrganization(ctx, org, org+"-owner")
		require.NoError(t, err)
		for i := range 20 {
			_, err := c.RegisterDataset(ctx, org, fmt.Sprintf("%s-d%d", org, i), org+"-owner")
			require.NoError(t, err)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			<-start
			for i := range 15 {
				org := []string{"acme", "globex"}[i%2]
				id := fmt.Sprintf("%s-w%d-%d", org, w, i)
				// Errors are expected for acme once its deletion began.
				_, _ = c.RegisterDataset(ctx, org, id, org+"-owner")
				_, _, _ = c.CreateAPIToken(ctx, org, org+"-owner")
				_, _ = c.AddMember(ctx, org, id+"-member", client.RoleReadonly)
				_, _ = c.CreateInvite(ctx, org, org+"-owner", client.RoleReadonly, time.Hour)
				_, _ = c.RegisterDeployment(ctx, org, id+"-deploy")
			}
		})
	}
	close(start)
	time.Sleep(20 * time.Millisecond) // let the writers get going
	_, err := c.As(client.User("support")).DeleteOrganization(ctx, "acme")
	require.NoError(t, err)
	wg.Wait()

	rels := spicedbtest.Relationships(t, srv.Conn(t))
	hasOrg := map[string]bool{}
	for _, r := range rels {
		assert.NotContains(t, r, "acme", "left behind: %s", r)
		if res, subj, _ := strings.Cut(r, "#organization@"); subj != "" {
			hasOrg[res] = true
		}
	}
	for _, r := range rels {
		res, rest, _ := strings.Cut(r, "#")
		typ, _, _ := strings.Cut(res, ":")
		if slices.Contains([]string{client.TypeDataset, client.TypeAPIToken, client.TypeDeployment, client.TypeInvite}, typ) && !strings.HasPrefix(rest, "organization@") {
			assert.True(t, hasOrg[res], "orphan: %s has no organization", r)
		}
	}
	assert.True(t, slices.ContainsFunc(rels, func(r string) bool { return strings.HasPrefix(r, "dataset:globex-w") }), "globex's writes went on")
}
