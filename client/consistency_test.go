package client_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestRevisionsAndExplicitConsistency(t *testing.T) {
	srv := startServer(t)
	writer, reader := srv.Client(t), srv.Client(t)
	ctx := t.Context()
	before, err := writer.CreateOrganization(ctx, "acme", "alice")
	require.NoError(t, err)
	after, err := writer.AddMember(ctx, "acme", "rita", client.RoleReadonly)
	require.NoError(t, err)
	require.NotEqual(t, before, after)
	rita, acme := client.User("rita"), client.Organization("acme")

	// The writer reads its own writes by default.
	d, err := writer.Check(ctx, rita, client.PermMember, acme)
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	assert.Equal(t, after, writer.LastWritten())

	// Another service, handed the revision as a string, reads at least that fresh.
	passed := client.Revision(string(after))
	d, err = reader.Check(ctx, rita, client.PermMember, acme, client.WithConsistency(client.AtLeastAsFresh(passed)))
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	d, err = reader.Check(ctx, rita, client.PermMember, acme, client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.True(t, d.Allowed())

	// An exact snapshot sees the past.
	d, err = reader.Check(ctx, rita, client.PermMember, acme, client.WithConsistency(client.AtExactSnapshot(before)))
	require.NoError(t, err)
	assert.False(t, d.Allowed(), "rita was not a member at the first revision")
	d, err = reader.Check(ctx, rita, client.PermMember, acme, client.WithConsistency(client.AtExactSnapshot(after)))
	require.NoError(t, err)
	assert.True(t, d.Allowed())

	_, err = reader.Check(ctx, rita, client.PermMember, acme, client.WithConsistency(client.AtLeastAsFresh("")))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	d, err = reader.Check(ctx, rita, client.PermMember, acme, client.WithConsistency(client.AtLeastAsFresh("not-a-zedtoken")))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	assert.False(t, d.Allowed())
}
