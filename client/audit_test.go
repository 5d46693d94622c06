package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

// collect reads changes from a watch until n arrived (or 20 s passed).
func collect(t *testing.T, c *client.Client, after client.Revision, n int) []client.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out []client.Change
	for ch, err := range c.Watch(ctx, after) {
		require.NoError(t, err)
		out = append(out, ch)
		if len(out) == n {
			break
		}
	}
	require.Len(t, out, n, "changes arrived")
	return out
}

func TestWatchReportsChangesWithActorAndResumes(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	start, err := c.CreateOrganization(ctx, "acme", "alice")
	require.NoError(t, err)

	audited := client.WithAudit(ctx, client.Audit{Actor: "user:alice", RequestID: "req-42"})
	before := time.Now().Add(-time.Second)
	_, err = c.AddMember(audited, "acme", "rita", client.RoleReadonly)
	require.NoError(t, err)
	_, err = c.As(client.User("support")).RemoveMember(ctx, "acme", "rita")
	require.NoError(t, err)

	changes := collect(t, c, start, 2)
	add, remove := changes[0], changes[1]
	assert.Equal(t, "touch", add.Operation, "SpiceDB's Watch reports a create as a touch")
	assert.Equal(t, "organization:acme#readonly@user:rita", add.Relationship)
	assert.Equal(t, "user:alice", add.Actor)
	assert.Equal(t, "req-42", add.RequestID)
	assert.WithinRange(t, add.Time, before, time.Now().Add(time.Second))
	assert.NotEmpty(t, add.Revision)

	assert.Equal(t, "delete", remove.Operation)
	assert.Equal(t, "organization:acme#readonly@user:rita", remove.Relationship)
	assert.Equal(t, "user:support", remove.Actor, "an Actor's writes carry the actor")
	assert.NotEqual(t, add.Revision, remove.Revision)

	// Resuming after the first write yields the second, and nothing again.
	resumed := collect(t, c, add.Revision, 1)
	assert.Equal(t, remove, resumed[0])
}
