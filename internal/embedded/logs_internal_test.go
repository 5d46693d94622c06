package embedded

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/authzed/spicedb/pkg/cmd/server"
	"github.com/authzed/spicedb/pkg/cmd/util"
)

// withoutRequestLogs takes SpiceDB's request-log middlewares out of both
// chains: a middleware placed after one of them completes a server
// without the option and is refused with it, the name gone.
func TestWithoutRequestLogsTakesThemOutOfBothChains(t *testing.T) {
	base := []server.ConfigOption{
		server.WithPresharedSecureKey("k"),
		server.WithGRPCServer(util.GRPCServerConfig{Enabled: true, Network: util.BufferedNetwork}),
		server.WithHTTPGateway(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithMetricsAPI(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithDispatchServer(util.GRPCServerConfig{Enabled: false}),
		server.WithSilentlyDisableTelemetry(true),
	}
	after := func(name string, unary bool) server.ConfigOption {
		if unary {
			return server.WithUnaryMiddlewareModification(server.MiddlewareModification[grpc.UnaryServerInterceptor]{
				DependencyMiddlewareName: name, Operation: server.OperationAppend,
				Middlewares: []server.ReferenceableMiddleware[grpc.UnaryServerInterceptor]{{Name: "probe", Middleware: func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
					return h(ctx, req)
				}}},
			})
		}
		return server.WithStreamingMiddlewareModification(server.MiddlewareModification[grpc.StreamServerInterceptor]{
			DependencyMiddlewareName: name, Operation: server.OperationAppend,
			Middlewares: []server.ReferenceableMiddleware[grpc.StreamServerInterceptor]{{Name: "probe", Middleware: func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				return h(srv, ss)
			}}},
		})
	}
	// SpiceDB's names, listed here rather than taken from logs.go.
	for _, name := range []string{"log", "grpclog-debug", "grpclog"} {
		for _, unary := range []bool{true, false} {
			with := append(append(append([]server.ConfigOption{}, base...), withoutRequestLogs()...), after(name, unary))
			_, err := server.NewConfigWithOptionsAndDefaults(with...).Complete(t.Context())
			require.Error(t, err, "%s (unary %v) still in the chain", name, unary)
			assert.Contains(t, err.Error(), "referenced dependency does not exist on chain: "+name)

			without := append(append([]server.ConfigOption{}, base...), after(name, unary))
			_, err = server.NewConfigWithOptionsAndDefaults(without...).Complete(t.Context())
			require.NoError(t, err, "SpiceDB's chain has %s (unary %v)", name, unary)
		}
	}
}
