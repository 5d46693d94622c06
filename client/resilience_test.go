package client_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

func TestUnreachableFailsClosed(t *testing.T) {
	c, err := client.New(spicedbtest.FreeAddr(t), client.WithInsecure(), client.WithPresharedKey("k"),
		client.WithRetry(3, time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err, "connecting is lazy")
	t.Cleanup(func() { _ = c.Close() })

	d, err := c.Check(t.Context(), client.User("alice"), client.PermView, client.Dataset("d"))
	require.ErrorIs(t, err, client.ErrUnavailable)
	assert.False(t, d.Allowed())
	assert.Equal(t, client.Denied, d.Permissionship)

	results, err := c.CheckMany(t.Context(), []client.CheckItem{{Subject: client.User("a"), Permission: "view", Resource: client.Dataset("d")}})
	require.ErrorIs(t, err, client.ErrUnavailable)
	assert.Nil(t, results)

	require.ErrorIs(t, c.Ready(t.Context()), client.ErrUnavailable)
	_, err = c.AddMember(t.Context(), "acme", "bob", client.RoleUser)
	require.ErrorIs(t, err, client.ErrUnavailable)
	for _, err := range c.LookupResources(t.Context(), client.User("a"), "view", "dataset") {
		require.ErrorIs(t, err, client.ErrUnavailable)
	}
}

func TestCallsHonourTheContext(t *testing.T) {
	c, err := client.New(spicedbtest.FreeAddr(t), client.WithInsecure(), client.WithRetry(100, time.Second, time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	d, err := c.Check(ctx, client.User("alice"), client.PermView, client.Dataset("d"))
	require.ErrorIs(t, err, client.ErrUnavailable)
	assert.False(t, d.Allowed())
	assert.Error(t, ctx.Err(), "returned because the context ended, not after 100 retries")
}

func TestNewOverTCPWithPresharedKey(t *testing.T) {
	srv := spicedbtest.StartTCP(t)

	good, err := client.New(srv.Addr, client.WithInsecure(), client.WithPresharedKey(srv.Key))
	require.NoError(t, err)
	t.Cleanup(func() { _ = good.Close() })
	require.NoError(t, good.Ready(t.Context()))
	_, err = good.CreateOrganization(t.Context(), "acme", "alice")
	require.NoError(t, err)

	bad, err := client.New(srv.Addr, client.WithInsecure(), client.WithPresharedKey("wrong"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = bad.Close() })
	require.ErrorIs(t, bad.Ready(t.Context()), client.ErrUnauthenticated)
	d, err := bad.Check(t.Context(), client.User("alice"), client.PermMember, client.Organization("acme"))
	require.ErrorIs(t, err, client.ErrUnauthenticated)
	assert.False(t, d.Allowed())
}

func TestReadyNeedsASchema(t *testing.T) {
	conn := spicedbtest.StartWithoutSchema(t)
	c, err := client.NewFromConn(conn)
	require.NoError(t, err)

	// The server may still be starting (ErrUnavailable); then it has no schema.
	require.Eventually(t, func() bool {
		return errors.Is(c.Ready(t.Context()), client.ErrNotFound)
	}, 10*time.Second, 20*time.Millisecond)
	rev, err := c.WriteSchema(t.Context())
	require.NoError(t, err)
	assert.Equal(t, rev, c.LastWritten())
	require.NoError(t, c.Ready(t.Context()))
}

func TestConstructionRejectsBadOptions(t *testing.T) {
	_, err := client.New("")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.New("127.0.0.1:1", client.WithPageSize(0))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.New("127.0.0.1:1", client.WithBulkCheckChunkSize(10_001))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.New("127.0.0.1:1", client.WithRetry(0, 0, 0))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.New("127.0.0.1:1", client.WithSupportUser("bad id"))
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.NewFromConn(nil)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
}

// flaky fails the first n calls of the methods it is given with Unavailable,
// before they reach the (real) server, and counts every call.
type flaky struct {
	fail  atomic.Int64
	calls atomic.Int64
	match string
}

func (f *flaky) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if strings.HasSuffix(method, f.match) {
		f.calls.Add(1)
		if f.fail.Add(-1) >= 0 {
			return status.Error(codes.Unavailable, "injected")
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func TestReadsRetryUnavailable(t *testing.T) {
	srv := spicedbtest.Start(t)
	f := &flaky{match: "/CheckPermission"}
	c, err := client.NewFromConn(srv.Conn(t, grpc.WithChainUnaryInterceptor(f.unary)), client.WithRetry(4, time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err)
	seedOrgs(t, c)

	f.fail.Store(3)
	d, err := c.Check(t.Context(), client.User("alice"), client.PermDeploy, client.Organization("acme"))
	require.NoError(t, err)
	assert.True(t, d.Allowed())
	assert.Equal(t, int64(4), f.calls.Load())

	f.calls.Store(0)
	f.fail.Store(10)
	d, err = c.Check(t.Context(), client.User("alice"), client.PermDeploy, client.Organization("acme"))
	require.ErrorIs(t, err, client.ErrUnavailable)
	assert.False(t, d.Allowed())
	assert.Equal(t, int64(4), f.calls.Load(), "bounded")
}

func TestCreatesAreNotRetriedButTouchesAre(t *testing.T) {
	srv := spicedbtest.Start(t)
	f := &flaky{match: "/WriteRelationships"}
	c, err := client.NewFromConn(srv.Conn(t, grpc.WithChainUnaryInterceptor(f.unary)), client.WithRetry(4, time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err)
	seedOrgs(t, c)

	f.calls.Store(0)
	f.fail.Store(1)
	_, err = c.AddMember(t.Context(), "acme", "carol", client.RoleUser)
	require.ErrorIs(t, err, client.ErrUnavailable, "a create is not retried: its outcome would be ambiguous")
	assert.Equal(t, int64(1), f.calls.Load())

	f.calls.Store(0)
	f.fail.Store(1)
	_, err = c.RegisterSharedLLM(t.Context(), "llama")
	require.NoError(t, err, "a TOUCH/DELETE write is retried")
	assert.Equal(t, int64(2), f.calls.Load())
}
