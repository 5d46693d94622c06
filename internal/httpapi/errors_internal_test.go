package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
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
	assert.Equal(t, http.StatusInternalServerError, e.status, "Spicegate's own SpiceDB credentials are a server problem")
}
