package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// countingStreams counts the streaming calls made per method.
type countingStreams struct{ lookups atomic.Int64 }

func (cs *countingStreams) interceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if strings.HasSuffix(method, "/LookupResources") {
		cs.lookups.Add(1)
	}
	return streamer(ctx, desc, cc, method, opts...)
}

func TestLookupResourcesPages(t *testing.T) {
	srv := spicedbtest.Start(t)
	var counter countingStreams
	c, err := client.NewFromConn(srv.Conn(t, grpc.WithChainStreamInterceptor(counter.interceptor)), client.WithPageSize(10))
	require.NoError(t, err)
	seedOrgs(t, c)
	ctx := t.Context()
	const n = 95
	want := make([]client.Object, 0, n)
	for i := range n {
		id := fmt.Sprintf("d%03d", i)
		_, err := c.RegisterDataset(ctx, "acme", id, "alice")
		require.NoError(t, err)
		want = append(want, client.Dataset(id))
	}
	_, err = c.RegisterDataset(ctx, "globex", "g1", "bob")
	require.NoError(t, err)

	var got []client.Object
	for obj, err := range c.LookupResources(ctx, client.User("rita"), client.PermView, client.TypeDataset) {
		require.NoError(t, err)
		got = append(got, obj)
	}
	assert.ElementsMatch(t, want, got, "every acme dataset once, no globex one")
	assert.Equal(t, int64(10), counter.lookups.Load(), "95 results in pages of 10")

	// Stopping early stops paging.
	counter.lookups.Store(0)
	taken := 0
	for _, err := range c.LookupResources(ctx, client.User("rita"), client.PermView, client.TypeDataset) {
		require.NoError(t, err)
		taken++
		if taken == 15 {
			break
		}
	}
	assert.Equal(t, 15, taken)
	assert.Equal(t, int64(2), counter.lookups.Load())

	// A token sees what its owner sees; a Read-only owner deletes nothing.
	tok, _, err := c.CreateAPIToken(ctx, "acme", "rita")
	require.NoError(t, err)
	count := 0
	for _, err := range c.LookupResources(ctx, client.APIToken(tok), client.PermView, client.TypeDataset) {
		require.NoError(t, err)
		count++
	}
	assert.Equal(t, n, count)
	for _, err := range c.LookupResources(ctx, client.User("rita"), client.PermDelete, client.TypeDataset) {
		require.NoError(t, err)
		t.Fatal("rita may delete nothing")
	}
}

func TestLookupSubjects(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	_, err := c.AddMember(ctx, "acme", "ursula", client.RoleUser)
	require.NoError(t, err)

	collect := func(resource client.Object, permission, subjectType string) []string {
		var out []string
		for s, err := range c.LookupSubjects(ctx, resource, permission, subjectType) {
			require.NoError(t, err)
			out = append(out, s.String())
		}
		return out
	}
	assert.ElementsMatch(t, []string{"user:alice", "user:ursula", "user:support"},
		collect(client.Organization("acme"), client.PermInviteMember, client.TypeUser))
	assert.ElementsMatch(t, []string{"user:support"},
		collect(client.Organization("acme"), client.PermRemoveMember, client.TypeUser))

	_, err = c.RegisterPrivateLLM(ctx, "acme", "ft")
	require.NoError(t, err)
	assert.Equal(t, []string{"organization:acme#member"}, collect(client.LLM("ft"), client.PermPrompt, "organization#member"))

	_, err = c.RegisterSharedLLM(ctx, "shared")
	require.NoError(t, err)
	assert.Contains(t, collect(client.LLM("shared"), client.PermPrompt, client.TypeUser), "user:*")

	for _, err := range c.LookupSubjects(ctx, client.LLM("ft"), client.PermPrompt, "Bad#type") {
		require.ErrorIs(t, err, client.ErrInvalidArgument)
	}
}

func TestLookupRejectsBadInput(t *testing.T) {
	c := newClient(t)
	for _, err := range c.LookupResources(t.Context(), client.User(""), client.PermView, client.TypeDataset) {
		require.ErrorIs(t, err, client.ErrInvalidArgument)
	}
	for _, err := range c.LookupResources(t.Context(), client.User("a"), client.PermView, "Dataset") {
		require.ErrorIs(t, err, client.ErrInvalidArgument)
	}
}

func TestLookupResourcesPageAcrossRequests(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	for i := range 25 {
		_, err := c.RegisterDataset(ctx, "acme", fmt.Sprintf("d%02d", i), "alice")
		require.NoError(t, err)
	}
	var got []client.Object
	cursor, pages := "", 0
	for {
		page, next, err := c.LookupResourcesPage(ctx, client.User("rita"), client.PermView, client.TypeDataset, cursor, 10)
		require.NoError(t, err)
		got = append(got, page...)
		pages++
		// A write between pages changes the client's default consistency;
		// the cursor keeps the first page's.
		_, err = c.RegisterDeployment(ctx, "acme", fmt.Sprintf("dep%d", pages))
		require.NoError(t, err)
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, 3, pages)
	assert.Len(t, got, 25)

	_, _, err := c.LookupResourcesPage(ctx, client.User("rita"), client.PermView, client.TypeDataset, "garbage", 10)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, _, err = c.LookupResourcesPage(ctx, client.User("rita"), client.PermView, client.TypeDataset, "", 0)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}

func TestLookupSubjectsPageAcrossRequests(t *testing.T) {
	c := newClient(t)
	seedOrgs(t, c)
	ctx := t.Context()
	for i := range 11 {
		_, err := c.AddMember(ctx, "acme", fmt.Sprintf("m%02d", i), client.RoleReadonly)
		require.NoError(t, err)
	}
	var got []string
	cursor, pages := "", 0
	for {
		page, next, err := c.LookupSubjectsPage(ctx, client.Organization("acme"), client.PermViewMembers, client.TypeUser, cursor, 5)
		require.NoError(t, err)
		for _, s := range page {
			got = append(got, s.ID)
		}
		pages++
		if pages == 1 {
			// Joins after the first page are not in this listing: it reads one snapshot.
			_, err = c.AddMember(ctx, "acme", "late", client.RoleReadonly)
			require.NoError(t, err)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	// alice, rita, support and m00..m10: 14, sorted, in pages of 5.
	assert.Equal(t, 3, pages)
	assert.Len(t, got, 14)
	assert.IsNonDecreasing(t, got)
	assert.NotContains(t, got, "late")
}
