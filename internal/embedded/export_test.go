package embedded

import "google.golang.org/grpc"

// DirectCalls is how many unary calls of the server's connections skipped
// gRPC's transport.
func DirectCalls(s *Server) int64 { return s.direct.calls.Load() }

// ConnWithDirectKey is Conn whose direct calls present key instead of the
// server's preshared key, to show that SpiceDB's authentication runs on
// the direct path.
func ConnWithDirectKey(s *Server, key string) (*grpc.ClientConn, error) {
	forged := &directCalls{key: key}
	s.direct.handlers.Range(func(method, h any) bool {
		forged.handlers.Store(method, h)
		return true
	})
	return s.conn(grpc.WithChainUnaryInterceptor(forged.invoke))
}
