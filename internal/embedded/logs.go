package embedded

import (
	"google.golang.org/grpc"

	"github.com/authzed/spicedb/pkg/cmd/server"
)

// requestLogMiddlewares name SpiceDB's middlewares that log each request:
// one puts a logger tagged with the request's ID in its context, two log
// the finished call (health checks at debug level, the rest by status).
//
// Embedded, SpiceDB logs through its global zerolog logger, which nothing
// sets in this process: it stays the no-op logger SpiceDB starts with, so
// these log nothing. They still build every entry's fields (the method,
// the peer, the start time formatted as text, the duration) before the
// logger drops it: 4% of the server's CPU on a dataset `view` check over
// TCP (BENCHMARKS.md, "SpiceDB's request logs"). Spicegate logs requests
// through its own HTTP API and metrics; SpiceDB's request ID middleware,
// which answers with the ID, stays.
var requestLogMiddlewares = []string{
	server.DefaultMiddlewareLog,
	server.DefaultMiddlewareGRPCLog + "-debug",
	server.DefaultMiddlewareGRPCLog,
}

// withoutRequestLogs removes requestLogMiddlewares from SpiceDB's unary
// and streaming middleware chains.
func withoutRequestLogs() []server.ConfigOption {
	var opts []server.ConfigOption
	for _, name := range requestLogMiddlewares {
		opts = append(opts,
			server.WithUnaryMiddlewareModification(server.MiddlewareModification[grpc.UnaryServerInterceptor]{
				DependencyMiddlewareName: name,
				Operation:                server.OperationReplace, // with nothing
			}),
			server.WithStreamingMiddlewareModification(server.MiddlewareModification[grpc.StreamServerInterceptor]{
				DependencyMiddlewareName: name,
				Operation:                server.OperationReplace,
			}))
	}
	return opts
}
