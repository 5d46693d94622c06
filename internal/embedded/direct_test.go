package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/spicegate/spicegate/internal/embedded"
	"github.com/spicegate/spicegate/internal/procs"
)

func startMemory(t testing.TB) *embedded.Server {
	t.Helper()
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", Engine: embedded.EngineMemory})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// bothConns starts a server on the memory engine in which alice views docs,
// and returns its connection (direct once a method is known) with a
// client on it and one on the gRPC transport alone.
func bothConns(t testing.TB, docs ...string) (srv *embedded.Server, conn *grpc.ClientConn, direct, viaGRPC v1.PermissionsServiceClient) {
	t.Helper()
	srv = startMemory(t)
	conn = writeSchema(t, srv)
	for _, doc := range docs {
		touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, doc)
	}
	transport, err := srv.TransportConn()
	require.NoError(t, err)
	t.Cleanup(func() { _ = transport.Close() })
	return srv, conn, v1.NewPermissionsServiceClient(conn), v1.NewPermissionsServiceClient(transport)
}

func checkReq(doc, user string) *v1.CheckPermissionRequest {
	return &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		Resource:    &v1.ObjectReference{ObjectType: "doc", ObjectId: doc},
		Permission:  "view",
		Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: user}},
	}
}

// A method's first call teaches the direct path; every later call of it
// skips the transport and still gets its own request's answer, the same
// as through gRPC.
func TestDirectCallsAnswerEachRequest(t *testing.T) {
	srv, _, direct, viaGRPC := bothConns(t, "doc0", "doc2", "doc4", "doc6", "doc8") // alice views the even docs
	_, err := direct.CheckPermission(t.Context(), checkReq("doc0", "alice"))
	require.NoError(t, err)
	before := embedded.DirectCalls(srv)
	for i := range 10 {
		doc := fmt.Sprintf("doc%d", i)
		want := v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
		if i%2 == 0 {
			want = v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
		}
		got, err := direct.CheckPermission(t.Context(), checkReq(doc, "alice"))
		require.NoError(t, err)
		assert.Equal(t, want, got.GetPermissionship(), doc)
		assert.NotEmpty(t, got.GetCheckedAt().GetToken(), "the response carries its revision")
		same, err := viaGRPC.CheckPermission(t.Context(), checkReq(doc, "alice"))
		require.NoError(t, err)
		assert.Equal(t, same.GetPermissionship(), got.GetPermissionship(), doc)
	}
	assert.Equal(t, int64(10), embedded.DirectCalls(srv)-before, "every check after the first skipped the transport")
}

// Calls through gRPC's transport, other processes' requests, are reported
// to the processor controller; direct calls are not (the HTTP API that
// makes them reports its own requests).
func TestTransportCallsAreReportedAsRequests(t *testing.T) {
	_, _, direct, viaGRPC := bothConns(t, "doc0")
	_, err := direct.CheckPermission(t.Context(), checkReq("doc0", "alice")) // teaches the direct path
	require.NoError(t, err)
	before := procs.Requests()
	for range 3 {
		_, err := viaGRPC.CheckPermission(t.Context(), checkReq("doc0", "alice"))
		require.NoError(t, err)
	}
	assert.Equal(t, int64(3), procs.Requests().Started-before.Started)
	assert.Equal(t, before.Overlapped, procs.Requests().Overlapped, "one at a time")
	before = procs.Requests()
	_, err = direct.CheckPermission(t.Context(), checkReq("doc0", "alice"))
	require.NoError(t, err)
	assert.Equal(t, before, procs.Requests(), "a direct call is not reported")
}

// Through the transport, a bulk check and a lookup count as overlapping
// (they run in parallel), a read stream as a request one at a time, and a
// Watch, which stays open, not at all.
func TestParallelCallsAndStreamsAreReported(t *testing.T) {
	srv, conn, _, viaGRPC := bothConns(t, "doc0")
	transport, err := srv.TransportConn()
	require.NoError(t, err)
	t.Cleanup(func() { _ = transport.Close() })
	full := &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	alice := &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}}
	reported := func(name string, call func() error) (started, overlapped int64) {
		t.Helper()
		before := procs.Requests()
		require.NoError(t, call(), name)
		after := procs.Requests()
		return after.Started - before.Started, after.Overlapped - before.Overlapped
	}
	drain := func(recv func() error) error {
		for {
			if err := recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}

	started, overlapped := reported("bulk check", func() error {
		_, err := viaGRPC.CheckBulkPermissions(t.Context(), &v1.CheckBulkPermissionsRequest{Consistency: full,
			Items: []*v1.CheckBulkPermissionsRequestItem{{Resource: &v1.ObjectReference{ObjectType: "doc", ObjectId: "doc0"}, Permission: "view", Subject: alice}}})
		return err
	})
	assert.Equal(t, [2]int64{1, 1}, [2]int64{started, overlapped}, "a bulk check: parallel")

	started, overlapped = reported("lookup", func() error {
		stream, err := viaGRPC.LookupResources(t.Context(), &v1.LookupResourcesRequest{Consistency: full,
			ResourceObjectType: "doc", Permission: "view", Subject: alice})
		if err != nil {
			return err
		}
		return drain(func() error { _, err := stream.Recv(); return err })
	})
	assert.Equal(t, [2]int64{1, 1}, [2]int64{started, overlapped}, "a lookup: parallel")

	started, overlapped = reported("read", func() error {
		stream, err := v1.NewPermissionsServiceClient(transport).ReadRelationships(t.Context(), &v1.ReadRelationshipsRequest{Consistency: full,
			RelationshipFilter: &v1.RelationshipFilter{ResourceType: "doc"}})
		if err != nil {
			return err
		}
		return drain(func() error { _, err := stream.Recv(); return err })
	})
	assert.Equal(t, [2]int64{1, 0}, [2]int64{started, overlapped}, "a read stream: one request")

	started, _ = reported("watch", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		stream, err := v1.NewWatchServiceClient(transport).Watch(ctx, &v1.WatchRequest{OptionalObjectTypes: []string{"doc"}})
		if err != nil {
			return err
		}
		go func() { // writes (direct calls, not reported) until the Watch has seen one
			for i := 0; ctx.Err() == nil; i++ {
				_, _ = v1.NewPermissionsServiceClient(conn).WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
					Updates: []*v1.RelationshipUpdate{{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: &v1.Relationship{
						Resource: &v1.ObjectReference{ObjectType: "doc", ObjectId: fmt.Sprintf("w%d", i)}, Relation: "viewer", Subject: alice,
					}}}})
				time.Sleep(20 * time.Millisecond)
			}
		}()
		_, err = stream.Recv() // the Watch is open and serving
		return err
	})
	assert.Zero(t, started, "a Watch is not reported")
}

// The direct path runs SpiceDB's whole middleware chain: authentication,
// request validation, consistency, request IDs, and gRPC's own handling of
// a canceled call; it answers what the transport answers.
func TestDirectCallsGoThroughSpiceDBsMiddleware(t *testing.T) {
	srv, conn, direct, viaGRPC := bothConns(t, "doc1")
	_, err := direct.CheckPermission(t.Context(), checkReq("doc1", "alice"))
	require.NoError(t, err)

	bothPaths := func(t *testing.T, ctx context.Context, req *v1.CheckPermissionRequest, opts ...grpc.CallOption) (direct, transport error) {
		t.Helper()
		before := embedded.DirectCalls(srv)
		_, derr := v1.NewPermissionsServiceClient(conn).CheckPermission(ctx, proto.Clone(req).(*v1.CheckPermissionRequest), opts...)
		_, terr := viaGRPC.CheckPermission(ctx, req, opts...)
		if ctx.Err() == nil {
			assert.Equal(t, int64(1), embedded.DirectCalls(srv)-before, "the call went the direct way")
		}
		return derr, terr
	}

	t.Run("authentication", func(t *testing.T) {
		forged, err := embedded.ConnWithDirectKey(srv, "not-the-key")
		require.NoError(t, err)
		t.Cleanup(func() { _ = forged.Close() })
		_, err = v1.NewPermissionsServiceClient(forged).CheckPermission(t.Context(), checkReq("doc1", "alice"))
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), "invalid preshared key")
	})
	t.Run("validation", func(t *testing.T) {
		bad := checkReq("doc1", "alice")
		bad.Resource.ObjectId = "not a valid id!"
		derr, terr := bothPaths(t, t.Context(), bad)
		require.Error(t, terr)
		assert.Equal(t, codes.InvalidArgument, status.Code(derr), "%v", derr)
		assert.Equal(t, status.Convert(terr).Message(), status.Convert(derr).Message())
	})
	t.Run("consistency", func(t *testing.T) {
		req := checkReq("doc1", "alice")
		req.Consistency = &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: &v1.ZedToken{Token: "not-a-token"}}}
		derr, terr := bothPaths(t, t.Context(), req)
		require.Error(t, terr)
		assert.Equal(t, status.Code(terr), status.Code(derr), "%v", derr)
		assert.Equal(t, status.Convert(terr).Message(), status.Convert(derr).Message())
	})
	t.Run("unknown definition", func(t *testing.T) {
		req := checkReq("doc1", "alice")
		req.Resource.ObjectType = "folder"
		derr, terr := bothPaths(t, t.Context(), req)
		require.Error(t, terr)
		assert.Equal(t, status.Code(terr), status.Code(derr), "%v", derr)
		assert.Equal(t, status.Convert(terr).Message(), status.Convert(derr).Message())
	})
	t.Run("request id", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "rid-direct-1")
		var dtr, ttr metadata.MD
		before := embedded.DirectCalls(srv)
		_, err := direct.CheckPermission(ctx, checkReq("doc1", "alice"), grpc.Trailer(&dtr))
		require.NoError(t, err)
		_, err = viaGRPC.CheckPermission(ctx, checkReq("doc1", "alice"), grpc.Trailer(&ttr))
		require.NoError(t, err)
		assert.Equal(t, int64(1), embedded.DirectCalls(srv)-before)
		assert.Equal(t, []string{"rid-direct-1"}, dtr.Get("x-request-id"))
		assert.Equal(t, ttr, dtr, "the same trailers (request id, dispatch counts)")
	})
	t.Run("nil request", func(t *testing.T) {
		// gRPC sends a nil message empty: SpiceDB refuses it the same way.
		derr, terr := bothPaths(t, t.Context(), (*v1.CheckPermissionRequest)(nil))
		require.Error(t, terr)
		assert.Equal(t, codes.InvalidArgument, status.Code(derr), "%v", derr)
		assert.Equal(t, status.Convert(terr).Message(), status.Convert(derr).Message())
	})
	t.Run("closed connection", func(t *testing.T) {
		closed, err := srv.Conn()
		require.NoError(t, err)
		require.NoError(t, closed.Close())
		before := embedded.DirectCalls(srv)
		_, err = v1.NewPermissionsServiceClient(closed).CheckPermission(t.Context(), checkReq("doc1", "alice"))
		assert.Equal(t, codes.Canceled, status.Code(err), "%v", err)
		assert.Equal(t, before, embedded.DirectCalls(srv), "a closed connection calls nothing")
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		derr, terr := bothPaths(t, ctx, checkReq("doc1", "alice"))
		assert.Equal(t, codes.Canceled, status.Code(terr), "%v", terr)
		assert.Equal(t, codes.Canceled, status.Code(derr), "%v", derr)
	})
}

// A deadline that passes during a direct call ends it as gRPC's client
// does: DeadlineExceeded, whatever SpiceDB was doing.
func TestDirectCallsKeepTheCallersDeadline(t *testing.T) {
	srv := startMemory(t)
	conn := writeSchema(t, srv)
	touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, "doc1")
	perms := v1.NewPermissionsServiceClient(conn)
	_, err := perms.CheckPermission(t.Context(), checkReq("doc1", "alice"))
	require.NoError(t, err)
	before := embedded.DirectCalls(srv)
	expired := 0
	for i := range 200 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(20+i*10)*time.Microsecond)
		got, err := perms.CheckPermission(ctx, checkReq("doc1", "alice"))
		cancel()
		if err != nil {
			expired++
			require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
			continue
		}
		require.Equal(t, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, got.GetPermissionship())
	}
	assert.Positive(t, expired, "some deadlines passed")
	assert.Greater(t, embedded.DirectCalls(srv)-before, int64(0), "some calls went the direct way")
}

// Once Stop has begun no call is answered directly: the connection then
// fails as gRPC's in-memory connection does once the server is gone (it
// waits to reconnect until the call's deadline).
func TestStopEndsDirectCalls(t *testing.T) {
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", Engine: embedded.EngineMemory})
	require.NoError(t, err)
	conn := writeSchema(t, srv)
	touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, "doc1")
	perms := v1.NewPermissionsServiceClient(conn)
	_, err = perms.CheckPermission(t.Context(), checkReq("doc1", "alice"))
	require.NoError(t, err)
	got, err := perms.CheckPermission(t.Context(), checkReq("doc1", "alice"))
	require.NoError(t, err)
	require.Equal(t, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, got.GetPermissionship())
	require.NoError(t, srv.Stop())

	before := embedded.DirectCalls(srv)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = perms.CheckPermission(ctx, checkReq("doc1", "alice"))
	assert.Contains(t, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, status.Code(err), "%v", err)
	assert.Equal(t, before, embedded.DirectCalls(srv))
}

// BenchmarkDirectVsTransport times one check through Conn (SpiceDB's
// middleware and method called in process) against the same check through
// gRPC's in-memory transport (TransportConn), alternating in blocks, on the
// memory engine with a handful of relationships (so the check itself is
// cheap and the transport's share shows):
//
//	go test -run '^$' -bench DirectVsTransport -benchtime 20000x ./internal/embedded/
func BenchmarkDirectVsTransport(b *testing.B) {
	_, _, direct, viaGRPC := bothConns(b, "doc1")
	check := func(perms v1.PermissionsServiceClient) {
		req := checkReq("doc1", "alice")
		req.Consistency = &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
		_, err := perms.CheckPermission(b.Context(), req)
		require.NoError(b, err)
	}
	check(direct)
	check(viaGRPC)

	const block = 100
	var directTime, transportTime time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		start := time.Now()
		for range n {
			check(direct)
		}
		directTime += time.Since(start)
		start = time.Now()
		for range n {
			check(viaGRPC)
		}
		transportTime += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(directTime.Nanoseconds())/float64(b.N), "direct-ns/check")
	b.ReportMetric(float64(transportTime.Nanoseconds())/float64(b.N), "transport-ns/check")
	b.ReportMetric(float64(transportTime)/float64(directTime), "transport/direct")
}
