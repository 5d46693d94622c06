package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

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

	// The removal fences the member's role first (see ChangeRole): its
	// changes are the fence's touch, then the role's and the fence's
	// deletions, together.
	changes := spicedbtest.Changes(t, c, start, 4)
	add, fence := changes[0], changes[1]
	assert.True(t, strings.HasPrefix(fence.Relationship, "membership:acme|rita#role_change@role_change:"), fence.Relationship)
	assert.Equal(t, "user:support", fence.Actor)
	var remove client.Change
	for _, ch := range changes[2:] {
		assert.Equal(t, "delete", ch.Operation)
		assert.Equal(t, "user:support", ch.Actor)
		if ch.Relationship == "organization:acme#readonly@user:rita" {
			remove = ch
		}
	}
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

	// Resuming after the first write yields the others, and nothing again.
	resumed := spicedbtest.Changes(t, c, add.Revision, 3)
	assert.ElementsMatch(t, changes[1:], resumed)
}
