package client

import (
	"errors"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func requirementOf(c *v1.Consistency) string {
	switch r := c.GetRequirement().(type) {
	case *v1.Consistency_MinimizeLatency:
		return "minimize"
	case *v1.Consistency_FullyConsistent:
		return "full"
	case *v1.Consistency_AtLeastAsFresh:
		return "atleast:" + r.AtLeastAsFresh.GetToken()
	case *v1.Consistency_AtExactSnapshot:
		return "exact:" + r.AtExactSnapshot.GetToken()
	}
	return "?"
}

func TestDefaultConsistencyTracksOwnWrites(t *testing.T) {
	var tr revisionTracker
	assert.Equal(t, "minimize", requirementOf(tr.defaultConsistency()), "nothing written yet")

	tr.begin()("r1")
	assert.Equal(t, "atleast:r1", requirementOf(tr.defaultConsistency()))
	tr.begin()("") // a failed write changes nothing
	assert.Equal(t, "atleast:r1", requirementOf(tr.defaultConsistency()))

	// Two overlapping writes: which revision is newer is unknown.
	endA, endB := tr.begin(), tr.begin()
	endB("rB")
	endA("rA")
	assert.Equal(t, "full", requirementOf(tr.defaultConsistency()))

	// A write alone afterwards is newer than everything before it.
	tr.begin()("r3")
	assert.Equal(t, "atleast:r3", requirementOf(tr.defaultConsistency()))
	assert.Equal(t, Revision("r3"), tr.Newest())

	assert.Equal(t, "exact:x", requirementOf(AtExactSnapshot("x").proto(&tr)))
	assert.Equal(t, "full", requirementOf(FullyConsistent().proto(&tr)))
	assert.Equal(t, "minimize", requirementOf(MinimizeLatency().proto(&tr)))
	assert.Equal(t, "atleast:y", requirementOf(AtLeastAsFresh("y").proto(&tr)))
}

func TestTranslateInOnePlace(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.InvalidArgument, ErrInvalidArgument},
		{codes.FailedPrecondition, ErrInvalidArgument},
		{codes.NotFound, ErrNotFound},
		{codes.AlreadyExists, ErrAlreadyExists},
		{codes.Aborted, ErrConflict},
		{codes.PermissionDenied, ErrUnauthenticated},
		{codes.Unauthenticated, ErrUnauthenticated},
		{codes.Unavailable, ErrUnavailable},
		{codes.DeadlineExceeded, ErrUnavailable},
		{codes.ResourceExhausted, ErrUnavailable},
		{codes.Internal, ErrInternal},
		{codes.Unknown, ErrInternal},
	}
	for _, tc := range tests {
		err := translate("Op", status.Error(tc.code, "secret detail"))
		assert.ErrorIs(t, err, tc.want, tc.code.String())
		assert.Equal(t, tc.code, status.Code(err), "the gRPC status stays in the chain")
		var e *Error
		assert.True(t, errors.As(err, &e))
		assert.Equal(t, "Op", e.Op)
	}
	assert.NoError(t, translate("Op", nil))
	arg := argErr("x", "y", "z")
	assert.Same(t, arg, translate("Op", arg), "argument errors pass through")
}

func TestRetryDelayIsBoundedWithJitter(t *testing.T) {
	p := retryPolicy{attempts: 10, base: 10 * time.Millisecond, max: 80 * time.Millisecond}
	for n := 1; n <= 40; n++ {
		d := p.delay(n)
		assert.Greater(t, d, time.Duration(0))
		assert.LessOrEqual(t, d, 80*time.Millisecond)
		assert.LessOrEqual(t, d, p.base<<min(n-1, 10))
	}
	assert.True(t, retryable(status.Error(codes.Unavailable, "")))
	assert.True(t, retryable(status.Error(codes.DeadlineExceeded, "")))
	assert.False(t, retryable(status.Error(codes.FailedPrecondition, "")))
	assert.False(t, retryable(errors.New("plain")))
}

func TestNewSecretIDIsLongAndFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := newSecretID()
		assert.NoError(t, err)
		assert.Len(t, id, 32) // 128 bits
		assert.False(t, seen[id])
		seen[id] = true
		assert.NoError(t, validateID("id", id))
	}
}
