package client_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// rawDelete deletes relationships behind the client's back, the way an
// interrupted clean-up (a crash between two writes) leaves them.
func rawDelete(t *testing.T, s *spicedbtest.Server, f *v1.RelationshipFilter) {
	t.Helper()
	_, err := v1.NewPermissionsServiceClient(s.Conn(t)).DeleteRelationships(t.Context(), &v1.DeleteRelationshipsRequest{RelationshipFilter: f})
	require.NoError(t, err)
}

// rawTouch writes a relationship behind the client's back.
func rawTouch(t *testing.T, s *spicedbtest.Server, r *v1.Relationship) {
	t.Helper()
	_, err := v1.NewPermissionsServiceClient(s.Conn(t)).WriteRelationships(t.Context(), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: r}}})
	require.NoError(t, err)
}

// orgRel is organization:org#relation@user:user.
func orgRel(org, relation, user string) *v1.Relationship {
	return &v1.Relationship{Resource: &v1.ObjectReference{ObjectType: client.TypeOrganization, ObjectId: org}, Relation: relation,
		Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: client.TypeUser, ObjectId: user}}}
}

func roleFilter(org, role, user string) *v1.RelationshipFilter {
	return &v1.RelationshipFilter{ResourceType: client.TypeOrganization, OptionalResourceId: org, OptionalRelation: role,
		OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: client.TypeUser, OptionalSubjectId: user}}
}

func tokenRoleFilter(org, role, token string) *v1.RelationshipFilter {
	return &v1.RelationshipFilter{ResourceType: client.TypeOrganization, OptionalResourceId: org, OptionalRelation: role,
		OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: client.TypeAPIToken, OptionalSubjectId: token}}
}

// interruptedRemoval leaves org as a removal cut off after its first
// write would: the roles of user and of its tokens are gone (they go in
// one write), the tokens themselves and the invites remain.
func interruptedRemoval(t *testing.T, s *spicedbtest.Server, org, role, user string, tokens ...string) {
	t.Helper()
	rawDelete(t, s, roleFilter(org, role, user))
	for _, tok := range tokens {
		rawDelete(t, s, tokenRoleFilter(org, role, tok))
	}
}

// The attack of issue #8: a Read-only member's token minted a token for
// support, then deleted the organization with it.
func TestTokenCannotMintATokenForAnyoneButItsOwner(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	ritaTok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	viaToken := c.As(client.APIToken(ritaTok))

	_, _, err = viaToken.CreateAPIToken(ctx, "acme", "support")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "owner", ce.Arg, "the error names the argument")
	_, _, err = c.As(client.User("rita")).CreateAPIToken(ctx, "acme", "alice")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	tokens, err := c.ListAPITokens(ctx, "acme", "support", client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.Empty(t, tokens, "nothing was written")

	// A token mints tokens for its owner, which act exactly as the owner.
	minted, _, err := viaToken.CreateAPIToken(ctx, "acme", "")
	require.NoError(t, err)
	info, err := c.APIToken(ctx, minted)
	require.NoError(t, err)
	assert.Equal(t, client.APITokenInfo{ID: minted, Org: "acme", Owner: "rita"}, info)
	assert.True(t, allowed(t, c, client.APIToken(minted), client.PermViewDataset, client.Organization("acme")))
	for _, perm := range []string{client.PermDeploy, client.PermDeleteAccount, client.PermRemoveMember, client.PermDeleteAPIToken} {
		assert.False(t, allowed(t, c, client.APIToken(minted), perm, client.Organization("acme")), perm)
	}
	_, err = c.As(client.APIToken(minted)).DeleteOrganization(ctx, "acme")
	require.ErrorIs(t, err, client.ErrPermissionDenied)

	// A token acts in its own organization only: no sign-ups, no joining.
	_, err = viaToken.CreateOrganization(ctx, "rita-co", "")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, _, err = viaToken.CreateAPIToken(ctx, "globex", "")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	inv, err := c.As(client.User("bob")).CreateInvite(ctx, "globex", client.RoleUser, time.Hour)
	require.NoError(t, err)
	_, _, err = viaToken.AcceptInvite(ctx, inv.ID, "")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, _, err = c.As(client.User("rita")).AcceptInvite(ctx, inv.ID, "mallory")
	require.ErrorIs(t, err, client.ErrPermissionDenied, "a user accepts for itself only")
	m, _, err := c.As(client.User("rita")).AcceptInvite(ctx, inv.ID, "")
	require.NoError(t, err)
	assert.Equal(t, client.Member{UserID: "rita", Role: client.RoleUser}, m)
}

// A token holds its owner's role: token creations racing a demotion end
// with every surviving token Read-only, like its owner, never User.
func TestTokensCreatedDuringADemotionNeverOutrankTheOwner(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	support := c.As(client.User("support"))
	for round := range 3 {
		owner := fmt.Sprintf("demoted-%d", round)
		_, err := c.AddMember(ctx, "acme", owner, client.RoleUser)
		require.NoError(t, err)
		ids := make(chan string, 100)
		var failures atomic.Int64
		var lastErr atomic.Value
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				id, _, err := c.As(client.User(owner)).CreateAPIToken(ctx, "acme", "")
				if err == nil {
					ids <- id
					return
				}
				failures.Add(1)
				lastErr.Store(err.Error())
			})
		}
		wg.Go(func() {
			_, err := support.ChangeRole(ctx, "acme", owner, client.RoleReadonly)
			assert.NoError(t, err, "the demotion")
		})
		wg.Wait()
		close(ids)
		role, err := c.RoleOf(ctx, "acme", owner, client.WithConsistency(client.FullyConsistent()))
		require.NoError(t, err)
		require.Equal(t, client.RoleReadonly, role)
		n := 0
		for id := range ids {
			n++
			tok := client.APIToken(id)
			assert.True(t, allowed(t, c, tok, client.PermViewDataset, client.Organization("acme")), "token %s of a Read-only member views", id)
			assert.False(t, allowed(t, c, tok, client.PermDeploy, client.Organization("acme")), "token %s outranks its Read-only owner", id)
		}
		t.Logf("round %d: %d tokens created around the demotion, %d refused (%v)", round, n, failures.Load(), lastErr.Load())
	}
}

// 100 concurrent role changes of one member (some to User, some to
// Read-only), with its tokens: the member ends with exactly one role, and
// every token with that same role.
func TestConcurrentRoleChangesEndWithOneRoleForOwnerAndTokens(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	support := c.As(client.User("support"))
	var toks []string
	for range 3 {
		tok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
		require.NoError(t, err)
		toks = append(toks, tok)
	}
	var wg sync.WaitGroup
	var won atomic.Int64
	for i := range 100 {
		role := client.RoleUser
		if i%2 == 1 {
			role = client.RoleReadonly
		}
		wg.Go(func() {
			_, err := support.ChangeRole(ctx, "acme", "rita", role)
			if err == nil {
				won.Add(1)
				return
			}
			assert.ErrorIs(t, err, client.ErrConflict, "a change that loses the race says so")
		})
	}
	wg.Wait()
	require.Positive(t, won.Load())
	roles := spicedbtest.Relationships(t, s.Conn(t))
	var held []string
	for _, r := range roles {
		if strings.HasPrefix(r, "organization:acme#") && (strings.HasSuffix(r, "@user:rita") || slices.ContainsFunc(toks, func(tok string) bool { return strings.HasSuffix(r, "@api_token:"+tok) })) &&
			!strings.HasPrefix(r, "organization:acme#api_token@") {
			held = append(held, r)
		}
	}
	role, err := c.RoleOf(ctx, "acme", "rita", client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	want := []string{"organization:acme#" + string(role) + "@user:rita"}
	for _, tok := range toks {
		want = append(want, "organization:acme#"+string(role)+"@api_token:"+tok)
	}
	assert.ElementsMatch(t, want, held, "one role for rita and the same for each of her tokens, and no fence left")
	t.Logf("%d of 100 changes won; rita ends %s", won.Load(), role)
}

func TestTokensCreatedDuringARemovalNeverAct(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	created := spicedbtest.TokenRemovalRace(t, c, "acme", 3, 200)
	t.Logf("%d token creations won their race against the removal (and were deleted with it)", created)
}

// A removal interrupted after its first write (the roles, the owner's and
// its tokens' together) leaves tokens that act for nothing; coming back
// must not revive them.
func TestComingBackDoesNotReviveWhatARemovalLeftBehind(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	tok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	_, err = c.AddMember(ctx, "acme", "ursula", client.RoleUser)
	require.NoError(t, err)
	inv, err := c.CreateInvite(ctx, "acme", "ursula", client.RoleReadonly, time.Hour)
	require.NoError(t, err)

	interruptedRemoval(t, s, "acme", client.RelReadonly, "rita", tok)
	interruptedRemoval(t, s, "acme", client.RelUser, "ursula")
	assert.False(t, allowed(t, c, client.APIToken(tok), client.PermMember, client.Organization("acme")), "the token acts for nothing at once")

	_, err = c.AddMember(ctx, "acme", "rita", client.RoleUser)
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.APIToken(tok), client.PermMember, client.Organization("acme")), "and does not come back with its owner")
	_, err = c.APIToken(ctx, tok)
	require.ErrorIs(t, err, client.ErrNotFound)

	invite, err := c.CreateInvite(ctx, "acme", "alice", client.RoleUser, time.Hour)
	require.NoError(t, err)
	_, _, err = c.AcceptInvite(ctx, invite.ID, "ursula")
	require.NoError(t, err)
	_, _, err = c.AcceptInvite(ctx, inv.ID, "carol")
	require.ErrorIs(t, err, client.ErrNotFound, "ursula's old invite stays dead")
}

// A removal cut off after its first write is finished by retrying it.
func TestARetriedRemovalFinishesAnInterruptedOne(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	tok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	inv, err := c.CreateInvite(ctx, "acme", "alice", client.RoleReadonly, time.Hour)
	require.NoError(t, err)
	interruptedRemoval(t, s, "acme", client.RelReadonly, "rita", tok)
	interruptedRemoval(t, s, "acme", client.RelUser, "alice")

	for _, who := range []string{"rita", "alice"} {
		_, err = c.As(client.User("support")).RemoveMember(ctx, "acme", who)
		require.ErrorIs(t, err, client.ErrNotFound, "%s is no member any more", who)
	}
	_, err = c.APIToken(ctx, tok, client.WithConsistency(client.FullyConsistent()))
	require.ErrorIs(t, err, client.ErrNotFound, "the retry deleted the token the removal left behind")
	_, err = c.GetInvite(ctx, inv.ID)
	require.ErrorIs(t, err, client.ErrNotFound, "and the invite")
}

func TestInvitesDieWithTheInvitersRoleAndStayDead(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	support := c.As(client.User("support"))
	_, err := c.AddMember(ctx, "acme", "ursula", client.RoleUser)
	require.NoError(t, err)

	// Demoted, then promoted again: the invite is gone for good.
	inv, err := c.As(client.User("ursula")).CreateInvite(ctx, "acme", client.RoleUser, time.Hour)
	require.NoError(t, err)
	_, err = support.ChangeRole(ctx, "acme", "ursula", client.RoleReadonly)
	require.NoError(t, err)
	_, err = c.GetInvite(ctx, inv.ID)
	require.ErrorIs(t, err, client.ErrNotFound, "a demotion deletes the inviter's invites")
	_, err = support.ChangeRole(ctx, "acme", "ursula", client.RoleUser)
	require.NoError(t, err)
	_, _, err = c.AcceptInvite(ctx, inv.ID, "carol")
	require.ErrorIs(t, err, client.ErrNotFound)

	// A demotion whose clean-up never ran: the promotion clears it first.
	inv, err = c.As(client.User("ursula")).CreateInvite(ctx, "acme", client.RoleUser, time.Hour)
	require.NoError(t, err)
	rawDelete(t, s, roleFilter("acme", client.RelUser, "ursula"))
	rawTouch(t, s, orgRel("acme", client.RelReadonly, "ursula"))
	_, err = support.ChangeRole(ctx, "acme", "ursula", client.RoleUser)
	require.NoError(t, err)
	_, _, err = c.AcceptInvite(ctx, inv.ID, "carol")
	require.ErrorIs(t, err, client.ErrNotFound)

	// A Read-only member may not invite, even through the system path.
	_, err = c.CreateInvite(ctx, "acme", "rita", client.RoleUser, time.Hour)
	require.ErrorIs(t, err, client.ErrPermissionDenied)

	// A live invite of a User survives a no-op role change.
	inv, err = c.As(client.User("alice")).CreateInvite(ctx, "acme", client.RoleReadonly, time.Hour)
	require.NoError(t, err)
	_, err = support.ChangeRole(ctx, "acme", "alice", client.RoleUser)
	require.NoError(t, err)
	_, err = c.GetInvite(ctx, inv.ID)
	require.NoError(t, err)
}

func TestAnAcceptedInviteCanBeRevoked(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	alice := c.As(client.User("alice"))
	inv, err := alice.CreateInvite(ctx, "acme", client.RoleReadonly, time.Hour)
	require.NoError(t, err)
	_, _, err = c.As(client.User("dave")).AcceptInvite(ctx, inv.ID, "")
	require.NoError(t, err)

	used, err := c.GetInvite(ctx, inv.ID)
	require.NoError(t, err)
	assert.Equal(t, "dave", used.AcceptedBy)
	assert.Equal(t, "acme", used.Org)
	_, err = c.As(client.User("rita")).RevokeInvite(ctx, inv.ID)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = alice.RevokeInvite(ctx, inv.ID)
	require.NoError(t, err)
	_, err = c.GetInvite(ctx, inv.ID)
	require.ErrorIs(t, err, client.ErrNotFound)
	role, err := c.RoleOf(ctx, "acme", "dave")
	require.NoError(t, err)
	assert.Equal(t, client.RoleReadonly, role, "revoking a used invite does not remove the member")
}

func TestAuditRecordsOnlyTheVerifiedActor(t *testing.T) {
	c := newClient(t)
	start, err := c.CreateOrganization(t.Context(), "acme", "alice")
	require.NoError(t, err)
	_, err = c.AddMember(t.Context(), "acme", "rita", client.RoleReadonly)
	require.NoError(t, err)
	claimed := client.WithAudit(t.Context(), client.Audit{Actor: "user:support (forged)", RequestID: "r1"})

	_, err = c.As(client.User("rita")).RegisterDataset(claimed, "acme", "denied", "")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = c.As(client.User("alice")).RegisterDataset(claimed, "acme", "d1", "")
	require.NoError(t, err)
	_, err = c.System().RegisterSharedLLM(claimed, "llama")
	require.NoError(t, err)

	changes := spicedbtest.Changes(t, c, start, 5) // rita's membership, d1's two relationships, the LLM's two
	for _, ch := range changes[1:] {
		assert.NotContains(t, ch.Actor, "forged", ch.Relationship)
	}
	assert.Equal(t, "user:alice", changes[1].Actor)
	assert.Equal(t, "r1", changes[1].RequestID)
	assert.Equal(t, client.SystemActor, changes[4].Actor)
}

// DeleteOrganization first fences the organization off: from then on no
// write into it succeeds, so nothing is left behind by a write racing it.
func TestNothingEntersAnOrganizationBeingDeleted(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	acme := client.Organization("acme").Subject()
	rawDelete(t, s, &v1.RelationshipFilter{ResourceType: client.TypePlatform, OptionalResourceId: client.PlatformID,
		OptionalRelation: client.RelOrganization, OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: acme.Type, OptionalSubjectId: acme.ID}})
	before := spicedbtest.Relationships(t, s.Conn(t))

	_, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.RegisterDataset(ctx, "acme", "d", "alice")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.CreateInvite(ctx, "acme", "alice", client.RoleUser, time.Hour)
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.AddMember(ctx, "acme", "carol", client.RoleUser)
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.RegisterPrivateLLM(ctx, "acme", "l")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.ErrorIs(t, err, client.ErrNotFound)
	assert.Equal(t, before, spicedbtest.Relationships(t, s.Conn(t)), "nothing was written")

	// Support finishes the deletion, and it leaves nothing of acme.
	_, err = c.As(client.User("support")).DeleteOrganization(ctx, "acme")
	require.NoError(t, err)
	for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
		assert.NotContains(t, r, "acme", "left behind")
	}
}

// revokeBeforeWrites makes the first write the client sends after arm()
// find the world changed: revoke runs (on another connection) between the
// Actor's check and its write.
type revokeBeforeWrites struct {
	armed  atomic.Bool
	revoke func()
}

func (r *revokeBeforeWrites) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method == "/authzed.api.v1.PermissionsService/WriteRelationships" || method == "/authzed.api.v1.PermissionsService/DeleteRelationships" {
		if r.armed.CompareAndSwap(true, false) {
			r.revoke()
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// A right revoked between the Actor's check and its write refuses the
// write: the actor's standing is a precondition of what it writes.
func TestARightRevokedBeforeTheWriteRefusesIt(t *testing.T) {
	s := startServer(t)
	hook := &revokeBeforeWrites{}
	c, err := client.NewFromConn(s.Conn(t, grpc.WithChainUnaryInterceptor(hook.unary)))
	require.NoError(t, err)
	c.Observe(s.SchemaRevision)
	seedOrgs(t, c)
	ctx := t.Context()
	tok, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.NoError(t, err)
	tok2, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.NoError(t, err)

	cases := []struct {
		name   string
		revoke func()
		write  func() error
	}{
		{"the token is deleted while it mints another",
			func() {
				_, err := s.Client(t).DeleteAPIToken(ctx, tok)
				require.NoError(t, err)
			},
			func() error { return two(c.As(client.APIToken(tok)).CreateAPIToken(ctx, "acme", "")) }},
		{"the token's own role is taken while it deploys (its owner's demotion, tokens first)",
			func() { rawDelete(t, s, tokenRoleFilter("acme", client.RelUser, tok2)) },
			func() error { return only(c.As(client.APIToken(tok2)).RegisterDeployment(ctx, "acme", "late")) }},
		{"the actor is demoted while it deploys",
			func() {
				_, err := s.Client(t).ChangeRole(ctx, "acme", "alice", client.RoleReadonly)
				require.NoError(t, err)
			},
			func() error { return only(c.As(client.User("alice")).RegisterDeployment(ctx, "acme", "late")) }},
		{"the dataset moves to another organization while it is deleted",
			func() {
				other := s.Client(t)
				_, err := other.DeleteDataset(ctx, "moving")
				require.NoError(t, err)
				_, err = other.RegisterDataset(ctx, "globex", "moving", "bob")
				require.NoError(t, err)
			},
			func() error { return only(c.As(client.User("support")).DeleteDataset(ctx, "moving")) }},
	}
	_, err = c.RegisterDataset(ctx, "acme", "moving", "rita")
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hook.revoke = tc.revoke
			hook.armed.Store(true)
			before := spicedbtest.Relationships(t, s.Conn(t))
			err := tc.write()
			require.ErrorIs(t, err, client.ErrPermissionDenied)
			require.False(t, hook.armed.Load(), "the revocation ran between the check and the write")
			after := spicedbtest.Relationships(t, s.Conn(t))
			// Only the revocation changed anything.
			for _, r := range after {
				assert.NotContains(t, r, "late", "no deployment was written")
			}
			assert.NotEqual(t, before, after, "the revocation itself wrote")
		})
	}
	assert.True(t, allowed(t, c, client.User("bob"), client.PermDelete, client.Dataset("moving")), "globex's dataset of the same ID is untouched")
}

func only[T any](_ T, err error) error { return err }

func two[T, U any](_ T, _ U, err error) error { return err }
