package embedded_test

import (
	"errors"
	"io"
	"testing"

	"github.com/authzed/authzed-go/pkg/responsemeta"
	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Without SpiceDB's request-log middlewares (logs.go; that they are gone:
// TestWithoutRequestLogsTakesThemOutOfBothChains) the chains still answer,
// unary calls and streams alike, and SpiceDB's request ID middleware, which
// stays, still reports the caller's request ID.
func TestCallsKeepTheirRequestIDWithoutRequestLogs(t *testing.T) {
	_, _, _, viaGRPC := bothConns(t, "doc0")
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "req-42")

	var trailer metadata.MD
	got, err := viaGRPC.CheckPermission(ctx, checkReq("doc0", "alice"), grpc.Trailer(&trailer))
	require.NoError(t, err)
	assert.Equal(t, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, got.GetPermissionship())
	assert.Equal(t, []string{"req-42"}, trailer.Get(string(responsemeta.RequestID)))

	stream, err := viaGRPC.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "doc"},
	})
	require.NoError(t, err)
	var n int
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, []string{"req-42"}, stream.Trailer().Get(string(responsemeta.RequestID)))
}
