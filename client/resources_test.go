package client_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestDatasets(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.RegisterDataset(ctx, "acme", "alice_data", "alice")
	require.NoError(t, err)
	_, err = c.RegisterDataset(ctx, "acme", "rita_data", "rita")
	require.NoError(t, err)
	d := client.Dataset("alice_data")

	assert.True(t, allowed(t, c, client.User("rita"), client.PermView, d))
	assert.False(t, allowed(t, c, client.User("bob"), client.PermView, d), "nobody outside the organization sees it")
	assert.True(t, allowed(t, c, client.User("alice"), client.PermDelete, d))
	assert.False(t, allowed(t, c, client.User("rita"), client.PermDelete, d))
	assert.True(t, allowed(t, c, client.User("support"), client.PermDelete, d))
	assert.False(t, allowed(t, c, client.User("rita"), client.PermDelete, client.Dataset("rita_data")), "a Read-only owner cannot delete")

	_, err = c.ChangeRole(ctx, "acme", "alice", client.RoleReadonly)
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.User("alice"), client.PermDelete, d), "an owner downgraded to Read-only loses delete")

	_, err = c.RegisterDataset(ctx, "acme", "alice_data", "alice")
	require.ErrorIs(t, err, client.ErrAlreadyExists)
	_, err = c.RegisterDataset(ctx, "acme", "x", "bob")
	require.ErrorIs(t, err, client.ErrNotFound, "the owner must be a member")
	_, err = c.RegisterDataset(ctx, "nosuchorg", "x", "alice")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.RegisterDataset(ctx, "acme", "bad id", "alice")
	var ae *client.ArgumentError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "id.id", ae.Arg)

	_, err = c.DeleteDataset(ctx, "alice_data")
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.User("support"), client.PermView, d))
	_, err = c.DeleteDataset(ctx, "alice_data")
	require.ErrorIs(t, err, client.ErrNotFound)
}

func TestAdapterRepositoriesAndTrainingJobs(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.RegisterAdapterRepository(ctx, "acme", "repo", "alice")
	require.NoError(t, err)
	_, err = c.RegisterTrainingJob(ctx, "acme", "job", "repo", "alice")
	require.NoError(t, err)
	_, err = c.RegisterTrainingJob(ctx, "globex", "job2", "repo", "bob")
	require.ErrorIs(t, err, client.ErrNotFound, "the repository is acme's")
	_, err = c.RegisterTrainingJob(ctx, "globex", "job2", "", "bob")
	require.NoError(t, err)

	r, j := client.AdapterRepository("repo"), client.TrainingJob("job")
	assert.True(t, allowed(t, c, client.User("rita"), client.PermView, r))
	assert.False(t, allowed(t, c, client.User("rita"), client.PermFineTune, r))
	assert.True(t, allowed(t, c, client.User("alice"), client.PermFineTune, r))
	assert.False(t, allowed(t, c, client.User("rita"), client.PermUpdate, r))
	assert.True(t, allowed(t, c, client.User("support"), client.PermDelete, r))
	assert.True(t, allowed(t, c, client.User("rita"), client.PermView, j))
	assert.False(t, allowed(t, c, client.User("rita"), client.PermCancel, j))
	assert.False(t, allowed(t, c, client.User("bob"), client.PermView, j))

	_, err = c.DeleteTrainingJob(ctx, "job")
	require.NoError(t, err)
	_, err = c.DeleteAdapterRepository(ctx, "repo")
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.User("alice"), client.PermView, r))
	assert.False(t, allowed(t, c, client.User("alice"), client.PermView, j))
}

func TestDeployments(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.RegisterDeployment(ctx, "acme", "llama-70b")
	require.NoError(t, err)
	d := client.Deployment("llama-70b")
	assert.True(t, allowed(t, c, client.User("rita"), client.PermView, d))
	assert.True(t, allowed(t, c, client.User("rita"), client.PermPrompt, d))
	assert.False(t, allowed(t, c, client.User("rita"), client.PermUpdate, d))
	assert.True(t, allowed(t, c, client.User("alice"), client.PermDelete, d))
	assert.False(t, allowed(t, c, client.User("bob"), client.PermPrompt, d))
	_, err = c.RegisterDeployment(ctx, "acme", "llama-70b")
	require.ErrorIs(t, err, client.ErrAlreadyExists)
	_, err = c.DeleteDeployment(ctx, "llama-70b")
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.User("alice"), client.PermView, d))
}

func TestSharedAndPrivateLLMs(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.RegisterSharedLLM(ctx, "llama-3")
	require.NoError(t, err)
	_, err = c.RegisterSharedLLM(ctx, "llama-3")
	require.NoError(t, err, "registering again is harmless")
	_, err = c.RegisterPrivateLLM(ctx, "acme", "acme-ft")
	require.NoError(t, err)
	_, err = c.RegisterPrivateLLM(ctx, "globex", "acme-ft")
	require.ErrorIs(t, err, client.ErrAlreadyExists)
	_, err = c.RegisterSharedLLM(ctx, "acme-ft")
	require.ErrorIs(t, err, client.ErrAlreadyExists, "a private LLM never becomes shared (its organization could delete it)")
	_, err = c.RegisterPrivateLLM(ctx, "acme", "llama-3")
	require.ErrorIs(t, err, client.ErrAlreadyExists)
	bobTok, _, err := c.CreateAPIToken(ctx, "globex", "bob")
	require.NoError(t, err)

	shared, private := client.LLM("llama-3"), client.LLM("acme-ft")
	assert.True(t, allowed(t, c, client.User("anyone"), client.PermPrompt, shared))
	assert.True(t, allowed(t, c, client.APIToken(bobTok), client.PermPrompt, shared))
	assert.True(t, allowed(t, c, client.User("rita"), client.PermPrompt, private))
	assert.False(t, allowed(t, c, client.User("bob"), client.PermPrompt, private))
	assert.False(t, allowed(t, c, client.APIToken(bobTok), client.PermPrompt, private))

	_, err = c.DeleteLLM(ctx, "llama-3")
	require.NoError(t, err)
	assert.False(t, allowed(t, c, client.User("anyone"), client.PermPrompt, shared))
}
