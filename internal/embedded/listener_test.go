package embedded_test

import (
	"context"
	"net"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/internal/embedded"
)

const testSchema = "definition user {}\n\ndefinition doc {\n\trelation viewer: user\n\tpermission view = viewer\n}"

func startTCP(t *testing.T, maxConns int) (*embedded.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", GRPCListener: l, MaxConns: maxConns})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	require.Equal(t, l.Addr().String(), srv.Addr())
	return srv, srv.Addr()
}

func tcpClient(t *testing.T, addr string) v1.SchemaServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken("k"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return v1.NewSchemaServiceClient(conn)
}

func readSchema(c v1.SchemaServiceClient, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := c.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	return resp.GetSchemaText(), err
}

// The in-memory connection of the process and TCP connections of other
// processes reach one server: what one writes, the other reads.
func TestTCPAndMemoryReachTheSameServer(t *testing.T) {
	srv, addr := startTCP(t, 0)
	conn, err := srv.Conn()
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool {
		_, err := v1.NewSchemaServiceClient(conn).WriteSchema(t.Context(), &v1.WriteSchemaRequest{Schema: testSchema})
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)

	got, err := readSchema(tcpClient(t, addr), 10*time.Second)
	require.NoError(t, err)
	assert.Contains(t, got, "permission view = viewer")

	// The key is SpiceDB's, checked as before: the pipe adds no way in
	// (SpiceDB answers a wrong key PermissionDenied).
	bad, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken("wrong"))
	require.NoError(t, err)
	defer bad.Close()
	_, err = v1.NewSchemaServiceClient(bad).ReadSchema(t.Context(), &v1.ReadSchemaRequest{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
}

// Beyond MaxConns a connection waits until one closes.
func TestMaxConnsQueuesTheRest(t *testing.T) {
	_, addr := startTCP(t, 1)
	held, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	// The held connection has been accepted once the listener is full: a
	// gRPC client now waits.
	c := tcpClient(t, addr)
	_, err = readSchema(c, 500*time.Millisecond)
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "a connection beyond the cap was served: %v", err)

	require.NoError(t, held.Close())
	require.Eventually(t, func() bool {
		_, err := readSchema(c, 2*time.Second)
		return status.Code(err) == codes.NotFound // served: no schema written
	}, 20*time.Second, 50*time.Millisecond)
}

// Stop ends TCP connections and frees the port.
func TestStopEndsTCPConnections(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", GRPCListener: l})
	require.NoError(t, err)
	c := tcpClient(t, addr)
	require.Eventually(t, func() bool {
		_, err := readSchema(c, 2*time.Second)
		return status.Code(err) == codes.NotFound
	}, 20*time.Second, 50*time.Millisecond)

	require.NoError(t, srv.Stop())
	_, err = readSchema(c, 2*time.Second)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	again, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the port is still held")
	_ = again.Close()
}

// A listener handed over is closed when Start fails.
func TestStartClosesTheListenerOnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, err = embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", GRPCListener: l, Engine: "nosuch"})
	require.ErrorContains(t, err, "nosuch")
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed)
}
