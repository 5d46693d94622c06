package client_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestCheckFollowsRoles(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	acme := client.Organization("acme")
	tests := []struct {
		subject    client.Subject
		permission string
		want       bool
	}{
		{client.User("alice"), client.PermDeploy, true},
		{client.User("rita"), client.PermDeploy, false},
		{client.User("rita"), client.PermViewDeployment, true},
		{client.User("support"), client.PermDeleteAccount, true},
		{client.User("alice"), client.PermDeleteAccount, false},
		{client.User("bob"), client.PermViewDataset, false},
		{client.User("nobody"), client.PermMember, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.subject, tc.permission), func(t *testing.T) {
			d, err := c.Check(t.Context(), tc.subject, tc.permission, acme)
			require.NoError(t, err)
			assert.Equal(t, tc.want, d.Allowed())
			assert.NotEmpty(t, d.Revision, "a decision carries its revision")
			if !tc.want {
				assert.Equal(t, client.Denied, d.Permissionship)
			}
		})
	}
}

func TestCheckRejectsBadInputBeforeCalling(t *testing.T) {
	c := newClient(t)
	tests := []struct {
		name       string
		subject    client.Subject
		permission string
		resource   client.Object
		arg        string
	}{
		{"bad subject type", client.Subject{Object: client.Object{Type: "User!", ID: "a"}}, "view", client.Dataset("d"), "subject.type"},
		{"empty subject id", client.User(""), "view", client.Dataset("d"), "subject.id"},
		{"bad subject relation", client.Subject{Object: client.Organization("acme"), Relation: "X"}, "view", client.Dataset("d"), "subject.relation"},
		{"bad permission", client.User("a"), "View", client.Dataset("d"), "permission"},
		{"bad resource id", client.User("a"), "view", client.Dataset("d 1"), "resource.id"},
		{"wildcard resource", client.User("a"), "view", client.Dataset("*"), "resource.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := c.Check(t.Context(), tc.subject, tc.permission, tc.resource)
			require.ErrorIs(t, err, client.ErrInvalidArgument)
			var ae *client.ArgumentError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.arg, ae.Arg)
			assert.False(t, d.Allowed())
		})
	}
}

func TestCheckUnknownPermissionIsAnErrorNotAnAllow(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	d, err := c.Check(t.Context(), client.User("alice"), "no_such_permission", client.Organization("acme"))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	assert.False(t, d.Allowed())
}

func TestAPITokenActsAsItsOwnerInItsOrganization(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.AddMember(ctx, "globex", "alice", client.RoleReadonly)
	require.NoError(t, err)
	tok, _, err := c.CreateAPIToken(ctx, "acme", "alice")
	require.NoError(t, err)
	assert.Len(t, tok, 32, "128 random bits, hex")
	token := client.APIToken(tok)

	assert.True(t, allowed(t, c, token, client.PermDeploy, client.Organization("acme")), "the owner's User rights in acme")
	assert.False(t, allowed(t, c, token, client.PermRemoveMember, client.Organization("acme")), "not more than the owner")
	assert.False(t, allowed(t, c, token, client.PermViewDataset, client.Organization("globex")), "not in another organization, even where the owner is a member")

	// The owner's role changes, the token follows.
	_, err = c.ChangeRole(ctx, "acme", "alice", client.RoleReadonly)
	require.NoError(t, err)
	assert.False(t, allowed(t, c, token, client.PermDeploy, client.Organization("acme")))
	assert.True(t, allowed(t, c, token, client.PermViewDeployment, client.Organization("acme")))

	// A deleted token is denied everywhere, shared LLMs included.
	_, err = c.RegisterSharedLLM(ctx, "llama")
	require.NoError(t, err)
	assert.True(t, allowed(t, c, token, client.PermPrompt, client.LLM("llama")))
	_, err = c.DeleteAPIToken(ctx, tok)
	require.NoError(t, err)
	assert.False(t, allowed(t, c, token, client.PermViewDeployment, client.Organization("acme")))
	assert.False(t, allowed(t, c, token, client.PermPrompt, client.LLM("llama")))
	_, err = c.DeleteAPIToken(ctx, tok)
	require.ErrorIs(t, err, client.ErrNotFound)
}

func TestCheckManyKeepsOrderAcrossChunks(t *testing.T) {
	c := newClient(t, client.WithBulkCheckChunkSize(7))
	seedOrgs(t, c)
	var items []client.CheckItem
	var want []bool
	perms := client.PermissionsOf(client.TypeOrganization)
	for i := range 25 {
		p := perms[i%len(perms)]
		for _, u := range []string{"alice", "rita"} {
			items = append(items, client.CheckItem{Subject: client.User(u), Permission: p, Resource: client.Organization("acme")})
			want = append(want, allowed(t, c, client.User(u), p, client.Organization("acme")))
		}
	}
	results, err := c.CheckMany(t.Context(), items)
	require.NoError(t, err)
	require.Len(t, results, len(items))
	for i, r := range results {
		require.NoError(t, r.Err)
		assert.Equal(t, want[i], r.Allowed(), "item %d: %s", i, items[i])
		assert.NotEmpty(t, r.Revision)
	}
}

func TestCheckManyAboveSpiceDBsPerCallLimit(t *testing.T) {
	c := newClient(t) // default chunks; SpiceDB refuses more than 10,000 items per call
	seedOrgs(t, c)
	items := make([]client.CheckItem, 10_050)
	for i := range items {
		user := "alice"
		if i%3 == 0 {
			user = "bob"
		}
		items[i] = client.CheckItem{Subject: client.User(user), Permission: client.PermFineTune, Resource: client.Organization("acme")}
	}
	results, err := c.CheckMany(t.Context(), items)
	require.NoError(t, err)
	require.Len(t, results, len(items))
	for i, r := range results {
		require.NoError(t, r.Err)
		require.Equal(t, i%3 != 0, r.Allowed(), "item %d", i)
	}
}

func TestCheckManyNamesTheBadItem(t *testing.T) {
	c := newClient(t)
	_, err := c.CheckMany(t.Context(), []client.CheckItem{
		{Subject: client.User("a"), Permission: "view", Resource: client.Dataset("d")},
		{Subject: client.User("a"), Permission: "view", Resource: client.Dataset("")},
	})
	var ae *client.ArgumentError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "items[1].resource.id", ae.Arg)
}

func TestCheckManyReportsPerItemErrors(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	results, err := c.CheckMany(t.Context(), []client.CheckItem{
		{Subject: client.User("alice"), Permission: client.PermDeploy, Resource: client.Organization("acme")},
		{Subject: client.User("alice"), Permission: "no_such_permission", Resource: client.Organization("acme")},
	})
	require.NoError(t, err)
	require.Len(t, results, 2)
	assert.True(t, results[0].Allowed())
	require.Error(t, results[1].Err)
	assert.False(t, results[1].Allowed(), "an item that failed is denied")
}

func TestPermissionsInOneRoundTrip(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	got, err := c.Permissions(t.Context(), client.User("rita"), client.Organization("acme"))
	require.NoError(t, err)
	require.Len(t, got, len(client.PermissionsOf(client.TypeOrganization)))
	var granted []string
	for p, d := range got {
		if d.Allowed() {
			granted = append(granted, p)
		}
	}
	assert.ElementsMatch(t, []string{
		client.PermReadonlyRole, client.PermMember, client.PermPromptLLM, client.PermViewDataset,
		client.PermViewTrainingJob, client.PermViewDeployment, client.PermViewMembers, client.PermCreateAPIToken,
	}, granted)

	_, err = c.Permissions(t.Context(), client.User("rita"), client.Object{Type: "widget", ID: "w"})
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}
