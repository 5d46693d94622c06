package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestActorNeedsThePermissionAndWritesNothingWithoutIt(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	ritaTok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	aliceTok, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.NoError(t, err)

	rita, alice, bob, support := c.As(client.User("rita")), c.As(client.User("alice")), c.As(client.User("bob")), c.As(client.User("support"))

	// Read-only may not invite; a User may, and is the inviter.
	_, err = rita.CreateInvite(ctx, "acme", client.RoleUser, time.Hour)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = bob.CreateInvite(ctx, "acme", client.RoleUser, time.Hour)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	inv, err := alice.CreateInvite(ctx, "acme", client.RoleReadonly, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "alice", inv.Inviter)
	viaToken, err := c.As(client.APIToken(aliceTok)).CreateInvite(ctx, "acme", client.RoleUser, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "alice", viaToken.Inviter, "a token invites as its owner")

	_, err = rita.RevokeInvite(ctx, inv.ID)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = c.GetInvite(ctx, inv.ID)
	require.NoError(t, err, "not revoked")
	_, err = alice.RevokeInvite(ctx, inv.ID)
	require.NoError(t, err)

	// Role changes and removals are support's.
	_, err = alice.ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = alice.RemoveMember(ctx, "acme", "rita")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	role, err := c.RoleOf(ctx, "acme", "rita")
	require.NoError(t, err)
	assert.Equal(t, client.RoleReadonly, role, "nothing written")
	_, err = support.ChangeRole(ctx, "acme", "rita", client.RoleUser)
	require.NoError(t, err)

	// Tokens: the owner deletes their own, support any, nobody else.
	_, err = alice.DeleteAPIToken(ctx, ritaTok)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = c.APIToken(ctx, ritaTok)
	require.NoError(t, err, "not deleted")
	_, err = rita.DeleteAPIToken(ctx, ritaTok)
	require.NoError(t, err)
	_, err = support.DeleteAPIToken(ctx, aliceTok)
	require.NoError(t, err)

	_, err = support.RemoveMember(ctx, "acme", "rita")
	require.NoError(t, err)

	// Deleting the account is support's alone.
	_, err = alice.DeleteOrganization(ctx, "acme")
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	assert.True(t, allowed(t, c, client.User("alice"), client.PermMember, client.Organization("acme")))
	_, err = support.DeleteOrganization(ctx, "acme")
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.User("alice"), client.PermMember, client.Organization("acme")))
}

func TestActorMustBeAUserOrToken(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	set := client.Subject{Object: client.Organization("acme"), Relation: client.PermMember}
	_, err := c.As(set).RemoveMember(t.Context(), "acme", "rita")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = c.As(client.User("")).RemoveMember(t.Context(), "acme", "rita")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}
