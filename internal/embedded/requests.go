package embedded

import (
	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"

	"github.com/authzed/spicedb/pkg/cmd/server"

	"github.com/spicegate/spicegate/internal/procs"
)

// The processor controller (package procs) runs the process on one
// processor while its requests come one at a time. The embedded server
// reports the requests other processes make through gRPC's transport:
// unary calls in capture (direct.go), streams in reportStreams.

// parallelMethods run parts of themselves in parallel: reported as such.
var parallelMethods = map[string]bool{
	v1.PermissionsService_CheckBulkPermissions_FullMethodName: true,
	v1.PermissionsService_LookupResources_FullMethodName:      true,
	v1.PermissionsService_LookupSubjects_FullMethodName:       true,
}

// reportStart reports the start of a call of method.
func reportStart(method string) {
	if parallelMethods[method] {
		procs.ParallelRequestStarted()
	} else {
		procs.RequestStarted()
	}
}

// reportStreams places, before SpiceDB's first streaming middleware, one
// that reports every stream but a Watch (which stays open, and would make
// every other request look concurrent).
func reportStreams() server.ConfigOption {
	return server.WithStreamingMiddlewareModification(server.MiddlewareModification[grpc.StreamServerInterceptor]{
		DependencyMiddlewareName: server.DefaultMiddlewareRequestID,
		Operation:                server.OperationPrepend,
		Middlewares: []server.ReferenceableMiddleware[grpc.StreamServerInterceptor]{
			{Name: "spicegate-report-streams", Middleware: reportStream},
		},
	})
}

func reportStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod == v1.WatchService_Watch_FullMethodName {
		return handler(srv, ss)
	}
	reportStart(info.FullMethod)
	defer procs.RequestEnded()
	return handler(srv, ss)
}
