//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// TestSuite runs one scenario on every backend, through the Go client and
// through the HTTP API.
func TestSuite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			d := b.start(t)
			for _, drv := range []struct {
				name string
				new  func(*testing.T, *deployment) driver
			}{
				{"go-client", newGoDriver},
				{"http-api", newHTTPDriver},
			} {
				t.Run(drv.name, func(t *testing.T) {
					scenario(t, drv.new(t, d), strings.ReplaceAll(drv.name, "-", "")+"_")
				})
			}
		})
	}
}

// scenario exercises membership and roles, invites, every resource type,
// checks, bulk checks, lookups with paging, token subjects and
// organization deletion; every read passes the revision of the write it
// must see (read-your-writes).
func scenario(t *testing.T, drv driver, p string) {
	org, other := p+"acme", p+"globex"
	alice, rita, bob, carol := p+"alice", p+"rita", p+"bob", p+"carol"
	u := func(id string) string { return "user:" + id }
	orgRef := "organization:" + org

	// Membership and roles.
	drv.createOrg(org, alice)
	rev := drv.addMember(org, rita, "readonly")
	drv.createOrg(other, bob)
	assert.True(t, drv.check(u(alice), "deploy", orgRef, rev))
	assert.False(t, drv.check(u(rita), "deploy", orgRef, rev))
	assert.True(t, drv.check(u(rita), "view_deployment", orgRef, rev))
	assert.False(t, drv.check(u(bob), "view_dataset", orgRef, rev))
	assert.True(t, drv.check(u("support"), "delete_account", orgRef, rev))

	_, code := drv.changeRole(u(alice), org, rita, "user")
	assert.Equal(t, "permission_denied", code, "role changes are support's")
	rev, code = drv.changeRole(u("support"), org, rita, "user")
	require.Empty(t, code)
	assert.True(t, drv.check(u(rita), "deploy", orgRef, rev))
	rev, code = drv.changeRole(u("support"), org, rita, "readonly")
	require.Empty(t, code)
	assert.False(t, drv.check(u(rita), "deploy", orgRef, rev))

	// Invites: created by who may invite, accepted exactly once.
	_, code = drv.createInvite(u(rita), org, "user")
	assert.Equal(t, "permission_denied", code)
	id, code := drv.createInvite(u(alice), org, "readonly")
	require.Empty(t, code)
	rev, code = drv.acceptInvite(id, carol)
	require.Empty(t, code)
	assert.True(t, drv.check(u(carol), "view_dataset", orgRef, rev))
	assert.False(t, drv.check(u(carol), "connect_dataset", orgRef, rev))
	_, code = drv.acceptInvite(id, p+"dave")
	assert.Equal(t, "conflict", code)

	// Every resource type.
	rev = drv.registerDataset(org, p+"reviews", alice)
	ds := "dataset:" + p + "reviews"
	assert.True(t, drv.check(u(rita), "view", ds, rev))
	assert.False(t, drv.check(u(rita), "delete", ds, rev))
	assert.True(t, drv.check(u(alice), "delete", ds, rev))
	assert.False(t, drv.check(u(bob), "view", ds, rev))
	drv.registerAdapterRepository(org, p+"bot", alice)
	rev = drv.registerTrainingJob(org, p+"run1", p+"bot", alice)
	assert.True(t, drv.check(u(rita), "view", "training_job:"+p+"run1", rev))
	assert.False(t, drv.check(u(rita), "cancel", "training_job:"+p+"run1", rev))
	assert.False(t, drv.check(u(rita), "fine_tune", "adapter_repository:"+p+"bot", rev))
	rev = drv.registerDeployment(org, p+"llama")
	assert.True(t, drv.check(u(rita), "prompt", "deployment:"+p+"llama", rev))
	assert.False(t, drv.check(u(rita), "update", "deployment:"+p+"llama", rev))
	drv.registerSharedLLM(p + "shared")
	rev = drv.registerPrivateLLM(org, p+"private")
	assert.True(t, drv.check(u(p+"anyone"), "prompt", "llm:"+p+"shared", rev))
	assert.True(t, drv.check(u(rita), "prompt", "llm:"+p+"private", rev))
	assert.False(t, drv.check(u(bob), "prompt", "llm:"+p+"private", rev))

	// API tokens act as their owner.
	tok, rev := drv.createToken(org, rita)
	token := "api_token:" + tok
	assert.True(t, drv.check(token, "view_dataset", orgRef, rev))
	assert.False(t, drv.check(token, "connect_dataset", orgRef, rev))
	assert.True(t, drv.check(token, "prompt", "llm:"+p+"shared", rev))
	assert.False(t, drv.check(token, "view_dataset", "organization:"+other, rev))

	// Bulk checks, in order.
	assert.Equal(t, []bool{true, false, true, false, true}, drv.checkMany([][3]string{
		{u(alice), "deploy", orgRef}, {u(rita), "deploy", orgRef}, {token, "view", ds},
		{u(bob), "view", ds}, {u("support"), "remove_member", orgRef},
	}, rev))

	// Lookups, paged.
	for i := range 5 {
		rev = drv.registerDataset(org, fmt.Sprintf("%sd%d", p, i), alice)
	}
	datasets := drv.lookupResources(u(rita), "view", "dataset", rev)
	assert.Len(t, datasets, 6)
	assert.Contains(t, datasets, ds)
	assert.ElementsMatch(t, datasets, drv.lookupResources(token, "view", "dataset", rev))
	assert.ElementsMatch(t, []string{u(alice), u("support")}, drv.lookupSubjects(orgRef, "invite_member", "user", rev))
	rev = drv.deleteDataset(p + "d0")
	assert.Len(t, drv.lookupResources(u(rita), "view", "dataset", rev), 5)

	// Deleting a token denies it; removing a member removes their rights.
	_, code = drv.deleteToken(u(alice), tok)
	assert.Equal(t, "permission_denied", code, "not alice's token")
	rev, code = drv.deleteToken(u(rita), tok)
	require.Empty(t, code)
	assert.False(t, drv.check(token, "view_dataset", orgRef, rev))
	_, code = drv.removeMember(u(alice), org, carol)
	assert.Equal(t, "permission_denied", code)
	rev, code = drv.removeMember(u("support"), org, carol)
	require.Empty(t, code)
	assert.False(t, drv.check(u(carol), "member", orgRef, rev))

	// Deleting the organization (support only) removes everything of it.
	_, code = drv.deleteOrg(u(alice), org)
	assert.Equal(t, "permission_denied", code)
	rev, code = drv.deleteOrg(u("support"), org)
	require.Empty(t, code)
	assert.False(t, drv.check(u(alice), "member", orgRef, rev))
	assert.False(t, drv.check(u(rita), "prompt", "llm:"+p+"private", rev))
	for _, d := range drv.lookupResources(u("support"), "view", "dataset", rev) {
		assert.False(t, strings.HasPrefix(d, "dataset:"+p+"d") || d == ds, "left behind: %s", d)
	}
	assert.True(t, drv.check(u(bob), "deploy", "organization:"+other, rev), "the other organization is untouched")
}

// TestDurability: a write Spicegate acknowledged survives kill -9 of
// Spicegate, and of the SpiceDB node, and a restart on the same database.
func TestDurability(t *testing.T) {
	t.Run("embedded-postgres/kill-spicegate", func(t *testing.T) {
		d := embeddedOnPostgres(t)
		h := newHTTPDriver(t, d)
		rev := h.createOrg("durable", "dora")
		d.spicegate.kill()
		d.restartSpicegate()
		assert.True(t, newHTTPDriver(t, d).check("user:dora", "deploy", "organization:durable", rev))
	})
	t.Run("external-spicedb/kill-spicedb-and-spicegate", func(t *testing.T) {
		d := externalSpiceDB(t)
		rev := newHTTPDriver(t, d).createOrg("durable", "dora")
		d.spicedb.kill()
		d.spicegate.kill()
		d.restartSpiceDB()
		d.restartSpicegate()
		assert.True(t, newHTTPDriver(t, d).check("user:dora", "deploy", "organization:durable", rev))
		assert.True(t, newGoDriver(t, d).check("user:dora", "deploy", "organization:durable", rev))
	})
}

// TestKill9UnderWriteLoad: Spicegate killed with SIGKILL while clients
// write as fast as they can, three times over: every write it
// acknowledged is there after the restart, on the file and on PostgreSQL.
func TestKill9UnderWriteLoad(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(*testing.T) *deployment
	}{{"embedded-sqlite", embeddedOnFile}, {"embedded-postgres", embeddedOnPostgres}} {
		t.Run(b.name, func(t *testing.T) {
			d := b.start(t)
			newHTTPDriver(t, d).createOrg("durable", "dora")
			var acked []string
			for round := range 3 {
				var mu sync.Mutex
				ctx, stop := context.WithCancel(t.Context())
				var wg sync.WaitGroup
				for w := range 4 {
					wg.Go(func() {
						for i := 0; ctx.Err() == nil; i++ {
							id := fmt.Sprintf("r%d-w%d-%d", round, w, i)
							body := strings.NewReader(`{"id":"` + id + `","owner":"dora"}`)
							req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.httpAddr+"/v1/organizations/durable/datasets", body)
							if err != nil {
								return
							}
							req.Header.Set("Authorization", "Bearer "+d.token)
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								return // killed: this one was never acknowledged
							}
							resp.Body.Close()
							if resp.StatusCode == http.StatusCreated {
								mu.Lock()
								acked = append(acked, id)
								mu.Unlock()
							}
						}
					})
				}
				time.Sleep(time.Duration(700+300*round) * time.Millisecond)
				d.spicegate.kill()
				stop()
				wg.Wait()
				d.restartSpicegate()
			}
			require.NotEmpty(t, acked)
			g := newGoDriver(t, d).(*goDriver)
			var items []client.CheckItem
			for _, id := range acked {
				items = append(items, client.CheckItem{Subject: client.User("dora"), Permission: client.PermDelete, Resource: client.Dataset(id)})
			}
			results, err := g.reader.CheckMany(t.Context(), items, client.WithConsistency(client.FullyConsistent()))
			require.NoError(t, err)
			for i, r := range results {
				require.NoError(t, r.Err)
				assert.True(t, r.Allowed(), "acknowledged write %s survived kill -9", acked[i])
			}
			t.Logf("%d acknowledged writes, all present after 3 kill -9", len(acked))
		})
	}
}

// TestClusterReadsThroughTheOtherNode: a relationship written through node
// 1 is read through node 2 with the write's revision.
func TestClusterReadsThroughTheOtherNode(t *testing.T) {
	d := dispatchCluster(t)
	require.NotEqual(t, d.grpcAddr, d.readAddr)
	g := newGoDriver(t, d).(*goDriver)
	rev := g.createOrg("acme", "alice")
	rev2 := g.addMember("acme", "rita", "readonly")
	assert.True(t, g.check("user:alice", "deploy", "organization:acme", rev), "read on node 2")
	assert.True(t, g.check("user:rita", "view_dataset", "organization:acme", rev2), "read on node 2")
	assert.False(t, g.check("user:rita", "deploy", "organization:acme", rev2), "read on node 2")
	resp, err := http.Get("http://" + d.httpAddr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestConcurrentAcceptOnPostgres: of 20 concurrent accepts of one invite,
// exactly one wins on PostgreSQL too (SpiceDB's write preconditions).
func TestConcurrentAcceptOnPostgres(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			d := b.start(t)
			g := newGoDriver(t, d).(*goDriver)
			g.createOrg("acme", "alice")
			id, code := g.createInvite("user:alice", "acme", "user")
			require.Empty(t, code)
			codes := make([]string, 20)
			var wg sync.WaitGroup
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, codes[i] = g.acceptInvite(id, fmt.Sprintf("candidate%d", i))
				}()
			}
			wg.Wait()
			wins := 0
			for i, c := range codes {
				if c == "" {
					wins++
					continue
				}
				assert.Equal(t, "conflict", c, "candidate%d", i)
			}
			assert.Equal(t, 1, wins)
			members, err := g.write.ListMembers(t.Context(), "acme", client.WithConsistency(client.FullyConsistent()))
			require.NoError(t, err)
			assert.Len(t, members, 3, "alice, support and the one winner")
		})
	}
}

// TestAuditStreamOnPostgres: the audit stream reports HTTP writes with
// their actor, and resumes after a revision across a kill -9 and restart
// of Spicegate, without losing or repeating changes.
func TestAuditStreamOnPostgres(t *testing.T) {
	d := embeddedOnPostgres(t)
	h := newHTTPDriver(t, d)
	start := h.createOrg("acme", "alice")
	h.addMember("acme", "rita", "readonly")
	_, code := h.changeRole("user:support", "acme", "rita", "user")
	require.Empty(t, code)

	watch := func(after client.Revision, n int) []client.Change {
		c, err := client.New(d.grpcAddr, client.WithInsecure(), client.WithPresharedKey(d.key))
		require.NoError(t, err)
		defer c.Close()
		return spicedbtest.Changes(t, c, after, n)
	}
	// The role change is a fence (membership#role_change), then one write
	// of three changes: delete readonly, touch user, take the fence down.
	changes := watch(client.Revision(start), 5)
	assert.Equal(t, "organization:acme#readonly@user:rita", changes[0].Relationship)
	assert.Equal(t, client.SystemActor, changes[0].Actor, "an admin token's write without an actor")
	assert.NotEmpty(t, changes[0].RequestID, "the HTTP API records a request ID")
	fence := changes[1].Relationship
	assert.True(t, strings.HasPrefix(changes[1].Operation+" "+fence, "touch membership:acme|rita#role_change@role_change:"), fence)
	var roleChange []string
	for _, ch := range changes[1:] {
		assert.Equal(t, "user:support", ch.Actor)
		if ch != changes[1] {
			assert.Equal(t, changes[2].Revision, ch.Revision, "one write, one revision")
			roleChange = append(roleChange, ch.Operation+" "+ch.Relationship)
		}
	}
	assert.ElementsMatch(t, []string{"delete organization:acme#readonly@user:rita", "touch organization:acme#user@user:rita",
		"delete " + fence}, roleChange)

	d.spicegate.kill()
	d.restartSpicegate()
	resumed := watch(changes[0].Revision, 4)
	assert.ElementsMatch(t, changes[1:], resumed, "resumed after the first write: the rest, once")
}

// TestTokenRemovalRaceOnPostgres: token creations racing the removal of
// their owner leave no token that acts, on PostgreSQL's serializable
// transactions too.
func TestTokenRemovalRaceOnPostgres(t *testing.T) {
	d := embeddedOnPostgres(t)
	g := newGoDriver(t, d).(*goDriver)
	g.createOrg("acme", "alice")
	created := spicedbtest.TokenRemovalRace(t, g.write, "acme", 3, 200)
	t.Logf("%d token creations won their race against the removal (and were deleted with it)", created)
}
