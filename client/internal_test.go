package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
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
	// SpiceDB answers a lost database connection with Unknown, as it
	// answers its bugs: the driver's words make it unavailability.
	lost := status.Error(codes.Unknown, "unable to query relationships: read tcp 127.0.0.1:5432: i/o timeout")
	assert.ErrorIs(t, translate("Op", lost), ErrUnavailable)
	assert.ErrorIs(t, translate("Op", status.Error(codes.Internal, "failed to connect to `host=127.0.0.1`")), ErrUnavailable)
	assert.ErrorIs(t, translate("Op", status.Error(codes.Unknown, "unexpected nil")), ErrInternal)

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
	// A datastore connection lost under SpiceDB (what a PostgreSQL read
	// that timed out during a restart answered) is retried; a bug is not.
	assert.True(t, retryable(status.Error(codes.Unknown, "error performing check: unable to query relationships: rows err: timeout: read tcp 127.0.0.1:56628->127.0.0.1:5432: i/o timeout")))
	assert.True(t, retryable(status.Error(codes.Internal, "failed to connect to `host=127.0.0.1`: connection refused")))
	assert.False(t, retryable(status.Error(codes.Unknown, "nil pointer dereference")))
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

// TestGrammarMatchesSpiceDBsRegexps: the hand-written validators accept
// exactly what SpiceDB's regular expressions accept.
// SpiceDB's grammar, as its API's validation rules write it.
var (
	typeRE     = regexp.MustCompile(`^([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]$`)
	relationRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,62}[a-z0-9]$`)
	idRE       = regexp.MustCompile(`^[a-zA-Z0-9/_|\-=+]+$`)
)

func TestGrammarMatchesSpiceDBsRegexps(t *testing.T) {

	cases := []string{"", "a", "ab", "abc", "a_c", "ab_", "_bc", "1bc", "abc/def", "abc/", "/abc", "ab/cde", "abc//def",
		"abc/de_f/ghi", "Abc", "aBc", "ab-c", "a*c", "user", "organization", "api_token", "x_x",
		strings.Repeat("a", 62), strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("a", 63) + "/abc", strings.Repeat("a", 64) + "/abc"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abz09_/A-|=+* "
	for range 20000 {
		b := make([]byte, rng.IntN(70))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		assert.Equal(t, typeRE.MatchString(s), validType(s), "type %q", s)
		assert.Equal(t, relationRE.MatchString(s), validRelation(s), "relation %q", s)
		assert.Equal(t, idRE.MatchString(s), validIDChars(s), "id %q", s)
	}
}

func TestCallerEndedTellsTheCallersDeadlineFromAFailure(t *testing.T) {
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	// gRPC may report the deadline before ctx.Err() does; simulate with a
	// context whose deadline passed but that is not yet marked done.
	assert.True(t, callerEnded(past, status.Error(codes.DeadlineExceeded, "")))
	assert.False(t, callerEnded(context.Background(), status.Error(codes.DeadlineExceeded, "server timeout")))
	assert.False(t, callerEnded(context.Background(), status.Error(codes.Unavailable, "")))
	live, cancelLive := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLive()
	assert.False(t, callerEnded(live, status.Error(codes.DeadlineExceeded, "")), "the caller's deadline is far")
}
