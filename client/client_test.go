package client_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

func TestReady(t *testing.T) {
	c := spicedbtest.Start(t).Client(t)
	require.NoError(t, c.Ready(t.Context()))
}

func TestCheckOrgMatrixSmoke(t *testing.T) {
	c := spicedbtest.Start(t).Client(t)
	ctx := t.Context()
	_, err := c.CreateOrganization(ctx, "acme", "alice")
	require.NoError(t, err)
	d, err := c.Check(ctx, client.User("alice"), client.PermDeploy, client.Organization("acme"))
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	assert.NotEmpty(t, d.Revision)
}
