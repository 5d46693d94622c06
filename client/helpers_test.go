package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// newClient starts a fresh SpiceDB with the schema and returns a client on it.
func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	return spicedbtest.Start(t).Client(t, opts...)
}

// startServer starts a fresh SpiceDB with the schema.
func startServer(t *testing.T) *spicedbtest.Server {
	t.Helper()
	return spicedbtest.Start(t)
}

// seedOrgs creates acme (alice: User, rita: Read-only, support) and
// globex (bob: User, support).
func seedOrgs(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := t.Context()
	_, err := c.CreateOrganization(ctx, "acme", "alice")
	require.NoError(t, err)
	_, err = c.AddMember(ctx, "acme", "rita", client.RoleReadonly)
	require.NoError(t, err)
	_, err = c.CreateOrganization(ctx, "globex", "bob")
	require.NoError(t, err)
}

// allowed checks and fails the test on error.
func allowed(t *testing.T, c *client.Client, subject client.Subject, permission string, resource client.Object) bool {
	t.Helper()
	d, err := c.Check(t.Context(), subject, permission, resource, client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err, "check %s#%s@%s", resource, permission, subject)
	return d.Allowed()
}
