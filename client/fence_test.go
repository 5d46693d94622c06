package client_test

import (
	"cmp"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// fenceOf is the fence of role change `change` of user in org, as a role
// change writes it, expiring in an hour (an interrupted change's).
func fenceOf(org, user, change string) *v1.Relationship {
	m := client.Membership(org, user)
	return &v1.Relationship{Resource: &v1.ObjectReference{ObjectType: m.Type, ObjectId: m.ID}, Relation: client.RelRoleChange,
		Subject:           &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: client.TypeRoleChange, ObjectId: change}},
		OptionalExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}
}

// fencesOf lists the fences on user's membership of org.
func fencesOf(t *testing.T, s *spicedbtest.Server, org, user string) []string {
	t.Helper()
	prefix := client.Membership(org, user).String() + "#" + client.RelRoleChange + "@"
	var out []string
	for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// rank orders roles as the schema grants them: none < readonly < user < support.
func rank(role string) int {
	return map[string]int{"": 0, client.RelReadonly: 1, client.RelUser: 2, client.RelSupport: 3}[role]
}

// heldRoles returns the roles held in org by user and by each token: each
// subject's roles, "" for none, and fails the test on two.
func heldRoles(t *testing.T, s *spicedbtest.Server, org, user string, tokens []string) (owner string, ofToken map[string]string) {
	t.Helper()
	held := map[string][]string{}
	for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
		resource, subject, ok := strings.Cut(r, "@")
		relation, isOrg := strings.CutPrefix(resource, "organization:"+org+"#")
		if !ok || !isOrg || relation == client.RelAPIToken {
			continue
		}
		held[subject] = append(held[subject], relation)
	}
	one := func(subject string) string {
		roles := held[subject]
		require.LessOrEqual(t, len(roles), 1, "%s holds one role at most: %v", subject, roles)
		if len(roles) == 0 {
			return ""
		}
		return roles[0]
	}
	ofToken = map[string]string{}
	for _, tok := range tokens {
		ofToken[tok] = one("api_token:" + tok)
	}
	return one("user:" + user), ofToken
}

func createTokens(t *testing.T, c *client.Client, org, owner string, n int) []string {
	t.Helper()
	var toks []string
	for range n {
		tok, _, err := c.CreateAPIToken(t.Context(), org, owner)
		require.NoError(t, err)
		toks = append(toks, tok)
	}
	return toks
}

// A role change moves a member's tokens in several writes when they do not
// fit in one; before every one of them, no token holds a role above its
// owner's (promotions move the owner first, demotions and removals the
// tokens first), and after the change every token holds the owner's role.
func TestTokensNeverOutrankTheirOwnerAtAnyStep(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	toks := createTokens(t, c, "acme", "rita", 5)
	client.SetMaxWriteSize(c, 7) // two tokens' moves per write
	steps := 0
	client.BeforeFencedWrite(c, func(int) {
		steps++
		owner, ofToken := heldRoles(t, s, "acme", "rita", toks)
		for tok, role := range ofToken {
			assert.LessOrEqual(t, rank(role), rank(owner), "token %s holds %q while its owner holds %q", tok, role, owner)
		}
	})
	support := c.As(client.User("support"))
	ctx := t.Context()
	for _, to := range []client.Role{client.RoleUser, client.RoleReadonly, client.RoleUser} {
		steps = 0
		_, err := support.ChangeRole(ctx, "acme", "rita", to)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, steps, 4, "the owner and several writes of tokens")
		owner, ofToken := heldRoles(t, s, "acme", "rita", toks)
		assert.Equal(t, string(to), owner)
		for tok, role := range ofToken {
			assert.Equal(t, string(to), role, "token %s moved with its owner", tok)
		}
		assert.Empty(t, fencesOf(t, s, "acme", "rita"))
	}
	_, err := support.RemoveMember(ctx, "acme", "rita")
	require.NoError(t, err)
	owner, ofToken := heldRoles(t, s, "acme", "rita", toks)
	assert.Empty(t, owner)
	for tok, role := range ofToken {
		assert.Empty(t, role, "token %s", tok)
	}
	listed, err := c.ListAPITokens(ctx, "acme", "rita")
	require.NoError(t, err)
	assert.Empty(t, listed, "the removal deleted the tokens")
}

// A member with more tokens than one write moves (about 330) is promoted,
// demoted and removed like any other: the attacker's way of making oneself
// irremovable is closed.
func TestAMemberWithHundredsOfTokensCanBeDemotedAndRemoved(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	toks := createTokens(t, c, "acme", "alice", 700) // three writes of tokens each way
	support := c.As(client.User("support"))
	ctx := t.Context()
	_, err := support.ChangeRole(ctx, "acme", "alice", client.RoleReadonly)
	require.NoError(t, err)
	owner, ofToken := heldRoles(t, s, "acme", "alice", toks)
	assert.Equal(t, client.RelReadonly, owner)
	for tok, role := range ofToken {
		require.Equal(t, client.RelReadonly, role, "token %s", tok)
	}
	_, err = support.RemoveMember(ctx, "acme", "alice")
	require.NoError(t, err)
	for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
		require.NotContains(t, r, "alice", "nothing of alice's membership is left")
	}
}

// A role change cut off behind its fence: token creation refuses (rather
// than pick a role that may be about to change), and the next role change
// takes the fence over and takes it down.
func TestAnInterruptedRoleChangeBlocksTokensUntilTheNextOne(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	tok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	rawTouch(t, s, fenceOf("acme", "rita", "interrupted"))
	_, _, err = c.CreateAPIToken(ctx, "acme", "rita")
	require.ErrorIs(t, err, client.ErrConflict)

	_, err = c.As(client.User("support")).ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.NoError(t, err)
	assert.True(t, allowed(t, c, client.APIToken(tok), client.PermDeploy, client.Organization("acme")), "the token moved with its owner")
	assert.Empty(t, fencesOf(t, s, "acme", "rita"))
	promoted, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err, "the fence is down")
	assert.True(t, allowed(t, c, client.APIToken(promoted), client.PermDeploy, client.Organization("acme")))
}

// Deleting a token never waits for a role change, even an interrupted one.
func TestATokenDeletionNeverWaitsForARoleChange(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	tok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	rawTouch(t, s, fenceOf("acme", "rita", "interrupted"))
	_, err = c.DeleteAPIToken(ctx, tok)
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.APIToken(tok), client.PermMember, client.Organization("acme")))
}

// A member who deletes its own tokens while support demotes or removes it
// (the attacker's way of making the change fail, round after round) is
// demoted or removed all the same: the steps that take roles away require
// nothing of the tokens, and the grants go on without a deleted one.
func TestDeletingOnesTokensDoesNotStopOnesDemotionOrRemoval(t *testing.T) {
	for _, to := range []client.Role{client.RoleReadonly, ""} {
		t.Run("to "+cmp.Or(string(to), "removal"), func(t *testing.T) {
			s := startServer(t)
			c := s.Client(t)
			seedOrgs(t, c)
			ctx := t.Context()
			toks := createTokens(t, c, "acme", "alice", 12)
			client.SetMaxWriteSize(c, 7) // a few tokens per write: many writes to interfere with
			alice := s.Client(t).As(client.User("alice"))
			deleted := 0
			client.BeforeFencedWrite(c, func(int) {
				if deleted < len(toks)-2 {
					_, err := alice.DeleteAPIToken(ctx, toks[deleted])
					require.NoError(t, err)
					deleted++
				}
			})
			support := c.As(client.User("support"))
			if to == "" {
				_, err := support.RemoveMember(ctx, "acme", "alice")
				require.NoError(t, err)
				for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
					assert.NotContains(t, r, "alice", "nothing of alice's membership is left")
				}
				return
			}
			_, err := support.ChangeRole(ctx, "acme", "alice", to)
			require.NoError(t, err)
			assert.Positive(t, deleted)
			owner, ofToken := heldRoles(t, s, "acme", "alice", toks)
			assert.Equal(t, string(to), owner)
			for i, tok := range toks {
				want := string(to)
				if i < deleted {
					want = "" // deleted: no role back
				}
				assert.Equal(t, want, ofToken[tok], "token %d", i)
			}
		})
	}
}

// An index entry whose token no longer exists (a deletion cut off
// half-way, a relationship deleted by hand) never gives that token a role:
// role changes move only tokens that exist, and drop the stale entry.
func TestAStaleTokenIndexGivesNoRole(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	m := client.Membership("acme", "rita")
	rawTouch(t, s, &v1.Relationship{Resource: &v1.ObjectReference{ObjectType: m.Type, ObjectId: m.ID}, Relation: client.RelAPIToken,
		Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: client.TypeAPIToken, ObjectId: "ghost"}}})
	_, err := c.As(client.User("support")).ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.NoError(t, err)
	for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
		assert.NotContains(t, r, "ghost")
	}
}

// A role change that stalls behind its fence until the fence is gone (it
// expired), while a token is created and another change raises its own
// fence, writes nothing when it resumes: its writes require its own fence,
// not any fence of the member.
func TestAStalledRoleChangeWritesNothingOnceItsFenceIsGone(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	old, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.NoError(t, err)
	other := s.Client(t)
	var late string
	var before []string
	client.BeforeFencedWrite(c, func(step int) {
		if step != 0 {
			return
		}
		rawDelete(t, s, &v1.RelationshipFilter{ResourceType: client.TypeMembership, OptionalResourceId: client.Membership("acme", "alice").ID})
		late, _, err = other.CreateAPIToken(ctx, "acme", "alice")
		require.NoError(t, err, "no fence: tokens are created again")
		rawTouch(t, s, fenceOf("acme", "alice", "another-change"))
		before = spicedbtest.Relationships(t, s.Conn(t))
	})
	_, err = c.As(client.User("support")).ChangeRole(ctx, "acme", "alice", client.RoleReadonly)
	require.ErrorIs(t, err, client.ErrConflict)
	assert.Equal(t, before, spicedbtest.Relationships(t, s.Conn(t)), "the stalled change wrote nothing")
	owner, ofToken := heldRoles(t, s, "acme", "alice", []string{old, late})
	assert.Equal(t, client.RelUser, owner)
	assert.Equal(t, map[string]string{old: client.RelUser, late: client.RelUser}, ofToken)
}

// A token deleted while its owner's role changes stays deleted, and the
// change moves the others: each write that grants a role requires the
// tokens it grants to exist, and is made again without one that went.
func TestATokenDeletedDuringARoleChangeStaysDeleted(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	toks := createTokens(t, c, "acme", "rita", 2)
	deleted := false
	client.BeforeFencedWrite(c, func(step int) {
		if step == 1 && !deleted { // after the owner's promotion, before the tokens'
			_, err := s.Client(t).DeleteAPIToken(ctx, toks[0])
			require.NoError(t, err)
			deleted = true
		}
	})
	_, err := c.As(client.User("support")).ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.NoError(t, err)
	for _, r := range spicedbtest.Relationships(t, s.Conn(t)) {
		assert.NotContains(t, r, toks[0])
	}
	owner, ofToken := heldRoles(t, s, "acme", "rita", toks)
	assert.Equal(t, client.RelUser, owner)
	assert.Equal(t, client.RelUser, ofToken[toks[1]], "the other token moved with its owner")
	assert.Empty(t, fencesOf(t, s, "acme", "rita"))
}

// A role change that fails behind its fence (here: the role changed behind
// its back) takes its fence down: the member's token creations go on.
func TestAFailedRoleChangeTakesItsFenceDown(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	client.BeforeFencedWrite(c, func(step int) {
		if step == 0 {
			rawDelete(t, s, roleFilter("acme", client.RelReadonly, "rita"))
			rawTouch(t, s, orgRel("acme", client.RelUser, "rita"))
		}
	})
	_, err := c.As(client.User("support")).ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.ErrorIs(t, err, client.ErrConflict)
	assert.Empty(t, fencesOf(t, s, "acme", "rita"))
	_, _, err = s.Client(t).CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err, "no fence left behind")
}

// Membership names each member's bookkeeping object: readable where it can
// be, a digest where "|" or the length would make it ambiguous, and never
// the same object for two memberships.
func TestMembershipIDsAreUnambiguous(t *testing.T) {
	long := strings.Repeat("x", 600)
	pairs := [][2]string{{"acme", "alice"}, {"acme|x", "y"}, {"acme", "x|y"}, {"acme|x|y", ""}, {long, long}, {long, long + "z"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		m := client.Membership(p[0], p[1])
		require.Equal(t, client.TypeMembership, m.Type)
		require.NoError(t, client.ValidateID("membership", m.ID))
		if prev, dup := seen[m.ID]; dup {
			t.Fatalf("%v and %v share %s", prev, p, m.ID)
		}
		seen[m.ID] = p
	}
	assert.Equal(t, "acme|alice", client.Membership("acme", "alice").ID)
	assert.NotContains(t, client.Membership("acme|x", "y").ID, "|", "a digest never looks like a readable name")
}

// RepairTokens gives nothing back in an organization being deleted (its
// platform listing gone, its tokens' roles next): the deletion owns it.
func TestRepairLeavesAnOrganizationBeingDeletedAlone(t *testing.T) {
	s := startServer(t)
	c := s.Client(t)
	seedOrgs(t, c)
	ctx := t.Context()
	tok, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.NoError(t, err)
	acme := client.Organization("acme").Subject()
	rawDelete(t, s, &v1.RelationshipFilter{ResourceType: client.TypePlatform, OptionalResourceId: client.PlatformID,
		OptionalRelation: client.RelOrganization, OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: acme.Type, OptionalSubjectId: acme.ID}})
	rawDelete(t, s, tokenRoleFilter("acme", client.RelUser, tok))
	n, err := c.RepairTokens(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.False(t, allowed(t, c, client.APIToken(tok), client.PermMember, client.Organization("acme")))
}
