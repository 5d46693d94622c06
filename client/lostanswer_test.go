package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// loseNextWriteAnswer returns a dial option whose interceptor, once armed,
// lets the next WriteRelationships reach SpiceDB and be applied, then
// reports Unavailable instead of its answer: the answer lost on the way
// back that a retry cannot tell from a write that never arrived.
func loseNextWriteAnswer(armed *atomic.Bool) grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && method == v1.PermissionsService_WriteRelationships_FullMethodName && armed.CompareAndSwap(true, false) {
			return status.Error(codes.Unavailable, "the answer was lost")
		}
		return err
	})
}

// A delete whose first attempt was applied but whose answer was lost is
// retried; the retry's preconditions then fail on the delete's own effect
// (the token it required is gone). That is the write having succeeded, not
// the actor having lost its right: it must not answer permission denied.
func TestARetriedDeleteWhoseAnswerWasLostSucceeds(t *testing.T) {
	s := spicedbtest.Start(t)
	var armed atomic.Bool
	conn := s.Conn(t, loseNextWriteAnswer(&armed))
	c, err := client.NewFromConn(conn, client.WithRetry(3, time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err)
	c.Observe(s.SchemaRevision)
	ctx := t.Context()
	_, err = c.CreateOrganization(ctx, "acme", "alice")
	require.NoError(t, err)
	alice := c.As(client.User("alice"))
	token, _, err := alice.CreateAPIToken(ctx, "acme", "")
	require.NoError(t, err)

	armed.Store(true)
	rev, err := alice.DeleteAPIToken(ctx, token)
	require.NoError(t, err, "the delete was applied; only its answer was lost")
	assert.False(t, armed.Load(), "the answer was not lost: the test proves nothing")
	assert.NotEmpty(t, rev)
	_, err = c.APIToken(ctx, token, client.WithConsistency(client.AtLeastAsFresh(rev)))
	assert.ErrorIs(t, err, client.ErrNotFound, "the token is gone at the returned revision")

}
