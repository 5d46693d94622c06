package client_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestInviteLifecycle(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()

	inv, err := c.CreateInvite(ctx, "acme", "alice", client.RoleReadonly, time.Hour)
	require.NoError(t, err)
	assert.Len(t, inv.ID, 32)
	assert.NotEmpty(t, inv.Revision)
	assert.WithinDuration(t, time.Now().Add(time.Hour), inv.ExpiresAt, time.Minute)

	got, err := c.GetInvite(ctx, inv.ID)
	require.NoError(t, err)
	assert.Equal(t, "acme", got.Org)
	assert.Equal(t, "alice", got.Inviter)
	assert.Equal(t, client.RoleReadonly, got.Role)
	assert.True(t, allowed(t, c, client.User("carol"), client.PermAcceptAsReadonly, client.Invite(inv.ID)))
	assert.False(t, allowed(t, c, client.User("carol"), client.PermAcceptAsUser, client.Invite(inv.ID)))

	member, rev, err := c.AcceptInvite(ctx, inv.ID, "carol")
	require.NoError(t, err)
	assert.NotEmpty(t, rev)
	assert.Equal(t, client.Member{UserID: "carol", Role: client.RoleReadonly}, member)
	assert.True(t, allowed(t, c, client.User("carol"), client.PermViewDataset, client.Organization("acme")))
	assert.False(t, allowed(t, c, client.User("carol"), client.PermConnectDataset, client.Organization("acme")))

	used, err := c.GetInvite(ctx, inv.ID)
	require.NoError(t, err)
	assert.Equal(t, "carol", used.AcceptedBy)
	assert.False(t, allowed(t, c, client.User("dave"), client.PermAcceptAsReadonly, client.Invite(inv.ID)))
	_, _, err = c.AcceptInvite(ctx, inv.ID, "dave")
	require.ErrorIs(t, err, client.ErrConflict, "a used invite")
}

func TestInviteRefusals(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()

	_, err := c.CreateInvite(ctx, "acme", "bob", client.RoleUser, time.Hour)
	require.ErrorIs(t, err, client.ErrNotFound, "bob is not in acme")
	_, err = c.CreateInvite(ctx, "acme", "alice", client.RoleSupport, time.Hour)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = c.CreateInvite(ctx, "acme", "alice", client.RoleUser, 0)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = c.CreateInvite(ctx, "acme", "alice", client.RoleUser, 91*24*time.Hour)
	require.ErrorIs(t, err, client.ErrInvalidArgument)

	_, _, err = c.AcceptInvite(ctx, "0123456789abcdef0123456789abcdef", "carol")
	require.ErrorIs(t, err, client.ErrNotFound)

	inv, err := c.CreateInvite(ctx, "acme", "alice", client.RoleUser, time.Hour)
	require.NoError(t, err)
	_, _, err = c.AcceptInvite(ctx, inv.ID, "rita")
	require.ErrorIs(t, err, client.ErrAlreadyExists, "rita is a member already")
	role, err := c.RoleOf(ctx, "acme", "rita")
	require.NoError(t, err)
	assert.Equal(t, client.RoleReadonly, role, "and stays what she was")
	_, err = c.GetInvite(ctx, inv.ID)
	require.NoError(t, err, "the invite is not consumed")

	_, err = c.RevokeInvite(ctx, inv.ID)
	require.NoError(t, err)
	_, _, err = c.AcceptInvite(ctx, inv.ID, "carol")
	require.ErrorIs(t, err, client.ErrNotFound, "a revoked invite")
	_, err = c.RevokeInvite(ctx, inv.ID)
	require.ErrorIs(t, err, client.ErrNotFound)
}

func TestInviteDiesWithItsInvitersRight(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.AddMember(ctx, "acme", "ursula", client.RoleUser)
	require.NoError(t, err)
	inv, err := c.CreateInvite(ctx, "acme", "ursula", client.RoleUser, time.Hour)
	require.NoError(t, err)
	_, err = c.ChangeRole(ctx, "acme", "ursula", client.RoleReadonly)
	require.NoError(t, err)

	_, _, err = c.AcceptInvite(ctx, inv.ID, "carol")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.RoleOf(ctx, "acme", "carol")
	require.ErrorIs(t, err, client.ErrNotFound)
}

func TestExpiredInviteCannotBeAccepted(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	inv, err := c.CreateInvite(ctx, "acme", "alice", client.RoleUser, time.Second)
	require.NoError(t, err)
	// Expiry is SpiceDB's clock; wait for it rather than assume a duration.
	require.Eventually(t, func() bool {
		_, err := c.GetInvite(ctx, inv.ID)
		return err != nil
	}, 10*time.Second, 100*time.Millisecond)

	_, _, err = c.AcceptInvite(ctx, inv.ID, "carol")
	require.ErrorIs(t, err, client.ErrNotFound)
	assert.False(t, allowed(t, c, client.User("carol"), client.PermAcceptAsUser, client.Invite(inv.ID)))
	_, err = c.RoleOf(ctx, "acme", "carol")
	require.ErrorIs(t, err, client.ErrNotFound)
}

// TestConcurrentAcceptsExactlyOneWins: 20 goroutines accept one invite at
// once; exactly one membership results and every other call conflicts.
func TestConcurrentAcceptsExactlyOneWins(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	inv, err := c.CreateInvite(ctx, "acme", "alice", client.RoleUser, time.Hour)
	require.NoError(t, err)

	const n = 20
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, errs[i] = c.AcceptInvite(ctx, inv.ID, fmt.Sprintf("candidate%d", i))
		}()
	}
	close(start)
	wg.Wait()

	winners := 0
	for i, err := range errs {
		if err == nil {
			winners++
			continue
		}
		assert.ErrorIs(t, err, client.ErrConflict, "candidate%d", i)
	}
	require.Equal(t, 1, winners)

	members, err := c.ListMembers(ctx, "acme")
	require.NoError(t, err)
	joined := 0
	for _, m := range members {
		if len(m.UserID) > 9 && m.UserID[:9] == "candidate" {
			joined++
			assert.Equal(t, client.RoleUser, m.Role)
		}
	}
	assert.Equal(t, 1, joined, "exactly one membership")
	assert.False(t, allowed(t, c, client.User("late"), client.PermAcceptAsUser, client.Invite(inv.ID)), "the invite is gone")
}
