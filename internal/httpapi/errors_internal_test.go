package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/failures"
)

func TestServerSideFailuresAreGenericAndNeverAllow(t *testing.T) {
	cause := status.Error(codes.Internal, "pq: password authentication failed for user spicedb at 10.0.0.5")
	err := &client.Error{Op: "Check", Kind: client.ErrInternal, Err: cause}
	e := toAPIError(err)
	assert.Equal(t, http.StatusInternalServerError, e.status)
	assert.Equal(t, "internal", e.Code)
	assert.Equal(t, "internal error", e.Message, "no internals in the answer")

	e = toAPIError(&client.Error{Op: "Check", Kind: client.ErrUnavailable, Err: cause})
	assert.Equal(t, http.StatusServiceUnavailable, e.status)
	assert.NotContains(t, e.Message, "10.0.0.5")

	e = toAPIError(fmt.Errorf("wrapped: %w", &client.Error{Op: "AddMember", Kind: client.ErrConflict, Err: errors.New("x")}))
	assert.Equal(t, http.StatusConflict, e.status)
	assert.Equal(t, "conflict", e.Code)

	e = toAPIError(&client.Error{Op: "Check", Kind: client.ErrUnauthenticated, Err: cause})
	assert.Equal(t, http.StatusServiceUnavailable, e.status, "Spicegate's own SpiceDB credentials refused: the store is unavailable to it (a misconfiguration, not a bug)")
	assert.Equal(t, "the permission store is unavailable", e.Message, "no internals in the answer")
}

// The HTTP column of the failure table (internal/failures) is what the
// API answers.
func TestFailureTableHTTP(t *testing.T) {
	for _, f := range failures.Table {
		if f.HTTPOnly {
			continue
		}
		t.Run(f.What, func(t *testing.T) {
			assert.ErrorIs(t, f.Err, f.Sentinel)
			e := toAPIError(f.Err)
			assert.Equal(t, f.Status, e.status)
			assert.Equal(t, f.Code, e.Code)
		})
	}
}

// SpiceDB's words for a lost database connection are unavailability,
// even while the readiness probe still passes.
func TestALostDatastoreConnectionIsUnavailable(t *testing.T) {
	for _, msg := range []string{"error performing check: unable to query relationships: rows err: unexpected EOF",
		"unexpected consistency middleware error: unable to find revision: unexpected EOF",
		"failed to connect to `user=spicegate`: dial error: dial tcp 127.0.0.1:5432: connect: connection refused"} {
		s := &Server{cfg: Config{Ready: func(context.Context) error { return nil }}}
		e := s.apiError(context.Background(), &client.Error{Op: "Check", Kind: client.ErrInternal, Err: status.Error(codes.Unknown, msg)})
		assert.Equal(t, http.StatusServiceUnavailable, e.status, msg)
		assert.Equal(t, "unavailable", e.Code)
	}
	s := &Server{cfg: Config{Ready: func(context.Context) error { return nil }}}
	e := s.apiError(context.Background(), &client.Error{Op: "Check", Kind: client.ErrInternal, Err: status.Error(codes.Internal, "nil pointer")})
	assert.Equal(t, http.StatusInternalServerError, e.status, "a bug stays a bug")
}
