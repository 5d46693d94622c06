package client_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestCreateOrganization(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	rev, err := c.CreateOrganization(ctx, "acme", "alice")
	require.NoError(t, err)
	assert.NotEmpty(t, rev)

	members, err := c.ListMembers(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, []client.Member{{UserID: "alice", Role: client.RoleUser}, {UserID: "support", Role: client.RoleSupport}}, members)

	_, err = c.CreateOrganization(ctx, "acme", "mallory")
	require.ErrorIs(t, err, client.ErrAlreadyExists)
	role, err := c.RoleOf(ctx, "acme", "mallory")
	require.ErrorIs(t, err, client.ErrNotFound, "a refused create writes nothing")
	assert.Empty(t, role)

	_, err = c.CreateOrganization(ctx, "initech", "support")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}

func TestAddMember(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()

	_, err := c.AddMember(ctx, "acme", "rita", client.RoleUser)
	require.ErrorIs(t, err, client.ErrAlreadyExists, "one role per user: use ChangeRole")
	_, err = c.AddMember(ctx, "nosuchorg", "carol", client.RoleUser)
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.AddMember(ctx, "acme", "carol", client.RoleSupport)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = c.AddMember(ctx, "acme", "carol", client.Role("admin"))
	require.ErrorIs(t, err, client.ErrInvalidArgument)

	_, err = c.AddMember(ctx, "acme", "carol", client.RoleUser)
	require.NoError(t, err)
	role, err := c.RoleOf(ctx, "acme", "carol")
	require.NoError(t, err)
	assert.Equal(t, client.RoleUser, role)
}

func TestChangeRoleKeepsExactlyOneRole(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	for _, role := range []client.Role{client.RoleUser, client.RoleReadonly, client.RoleReadonly, client.RoleUser} {
		_, err := c.ChangeRole(ctx, "acme", "rita", role)
		require.NoError(t, err)
		members, err := c.ListMembers(ctx, "acme")
		require.NoError(t, err)
		var ritas []client.Member
		for _, m := range members {
			if m.UserID == "rita" {
				ritas = append(ritas, m)
			}
		}
		require.Equal(t, []client.Member{{UserID: "rita", Role: role}}, ritas)
		assert.Equal(t, role == client.RoleUser, allowed(t, c, client.User("rita"), client.PermDeploy, client.Organization("acme")))
	}

	_, err := c.ChangeRole(ctx, "acme", "bob", client.RoleUser)
	require.ErrorIs(t, err, client.ErrNotFound, "bob is in globex, not acme")
	_, err = c.RoleOf(ctx, "acme", "bob")
	require.ErrorIs(t, err, client.ErrNotFound, "a refused change writes nothing")
	_, err = c.ChangeRole(ctx, "acme", "support", client.RoleReadonly)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = c.ChangeRole(ctx, "acme", "rita", client.RoleSupport)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}

func TestRemoveMemberAlsoDeletesTheirTokensThere(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.AddMember(ctx, "globex", "rita", client.RoleUser)
	require.NoError(t, err)
	acmeTok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	globexTok, _, err := c.CreateAPIToken(ctx, "globex", "rita")
	require.NoError(t, err)
	tokens, err := c.ListAPITokens(ctx, "acme", "rita")
	require.NoError(t, err)
	assert.Equal(t, []string{acmeTok}, tokens)

	_, err = c.RemoveMember(ctx, "acme", "rita")
	require.NoError(t, err)

	assert.False(t, allowed(t, c, client.User("rita"), client.PermMember, client.Organization("acme")))
	_, err = c.APIToken(ctx, acmeTok)
	require.ErrorIs(t, err, client.ErrNotFound, "the acme token is gone")
	info, err := c.APIToken(ctx, globexTok)
	require.NoError(t, err, "the globex token stays")
	assert.Equal(t, client.APITokenInfo{ID: globexTok, Org: "globex", Owner: "rita"}, info)
	assert.True(t, allowed(t, c, client.APIToken(globexTok), client.PermDeploy, client.Organization("globex")))

	_, err = c.RemoveMember(ctx, "acme", "rita")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.RemoveMember(ctx, "acme", "support")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}

func TestListMembersOfMissingOrganization(t *testing.T) {
	c := newClient(t)
	_, err := c.ListMembers(t.Context(), "nosuchorg")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.ListMembers(t.Context(), "bad id")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}

func TestSupportAccountIsConfigurable(t *testing.T) {
	c := newClient(t, client.WithSupportUser("vendor-desk"))
	_, err := c.CreateOrganization(t.Context(), "acme", "alice")
	require.NoError(t, err)
	assert.True(t, allowed(t, c, client.User("vendor-desk"), client.PermDeleteAccount, client.Organization("acme")))
	assert.False(t, allowed(t, c, client.User("support"), client.PermMember, client.Organization("acme")))
}
