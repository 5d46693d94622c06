package embedded

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/authzed/spicedb/pkg/cmd/server"

	"github.com/spicegate/spicegate/internal/procs"
)

// directCalls lets the process's own unary calls to the embedded SpiceDB
// skip gRPC's transport (HTTP/2 framing, protobuf encoding both ways and
// the hand-offs between goroutines: about a fifth of an HTTP API check,
// BENCHMARKS.md) while going through everything SpiceDB does to a call:
// its whole middleware chain (authentication with the preshared key,
// request validation, the datastore, dispatcher and consistency set-up,
// metrics) and the method itself.
//
// SpiceDB's server package does not export its services, so the way in is
// the chain itself: capture is the outermost of SpiceDB's unary
// middlewares, and the handler gRPC hands it runs the rest of the chain and
// then the method. That handler depends only on the method (gRPC builds it
// from the method's service and the chain, not from the call), so the
// first call of each method, which goes through gRPC, teaches the direct
// path that method; tests check that later calls with other requests get
// their own answers. Streaming calls always go through gRPC.
type directCalls struct {
	key      string
	handlers sync.Map // full method name -> directMethod

	// mu is held shared by each direct call in flight; stop takes it
	// exclusively, once, to wait for them, as gRPC's graceful stop waits
	// for its own calls, before the datastore closes.
	mu      sync.RWMutex
	stopped atomic.Bool

	calls atomic.Int64 // direct calls made, for tests
}

// directMethod is what capture learned of a method.
type directMethod struct {
	handler grpc.UnaryHandler
	request reflect.Type // the method's request type, as gRPC decoded it
}

// directMiddleware is the name of capture in SpiceDB's middleware chain.
const directMiddleware = "spicegate-direct-calls"

// middleware places capture before SpiceDB's first unary middleware.
func (d *directCalls) middleware() server.ConfigOption {
	return server.WithUnaryMiddlewareModification(server.MiddlewareModification[grpc.UnaryServerInterceptor]{
		DependencyMiddlewareName: server.DefaultMiddlewareRequestID,
		Operation:                server.OperationPrepend,
		Middlewares: []server.ReferenceableMiddleware[grpc.UnaryServerInterceptor]{
			{Name: directMiddleware, Middleware: d.capture},
		},
	})
}

// capture is a gRPC unary server interceptor that remembers, per method,
// the handler running the rest of SpiceDB's chain, then lets the call go on.
// It also reports the call to the processor controller (requests.go):
// unary calls through gRPC's transport are the requests of other
// processes.
func (d *directCalls) capture(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := d.handlers.Load(info.FullMethod); !ok {
		d.handlers.Store(info.FullMethod, directMethod{handler: handler, request: reflect.TypeOf(req)})
	}
	reportStart(info.FullMethod)
	defer procs.RequestEnded()
	return handler(ctx, req)
}

// stopGrace bounds how long stop waits for the direct calls in flight:
// SpiceDB's default grace period for its own calls at shutdown.
const stopGrace = 5 * time.Second

// stop turns the direct path off (later calls go through gRPC, which
// refuses them as the server stops) and waits up to stopGrace for the
// direct calls in flight.
func (d *directCalls) stop() {
	d.stopped.Store(true)
	drained := make(chan struct{})
	go func() {
		d.mu.Lock() // once every call in flight has left
		d.mu.Unlock()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(stopGrace):
	}
}

// enter admits a direct call unless stop has begun; the caller then calls
// d.mu.RUnlock when it is done.
func (d *directCalls) enter() bool {
	if d.stopped.Load() {
		return false
	}
	d.mu.RLock()
	if d.stopped.Load() { // stop began meanwhile
		d.mu.RUnlock()
		return false
	}
	return true
}

// directPeer is the peer SpiceDB sees for a direct call.
var directPeer = &peer.Peer{Addr: &net.UnixAddr{Name: "spicegate-direct", Net: "unix"}}

// invoke is a gRPC unary client interceptor, the innermost of the
// connection Conn returns: a method SpiceDB has already served once is
// called directly, anything else goes through gRPC.
func (d *directCalls) invoke(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	m, ok := d.handlers.Load(method)
	if !ok || !directOptions(opts) || reflect.TypeOf(req) != m.(directMethod).request || cc.GetState() == connectivity.Shutdown {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	in, inOK := req.(proto.Message)
	out, outOK := reply.(proto.Message)
	if !inOK || !outOK {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	if !d.enter() {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	defer d.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	d.calls.Add(1)

	// What gRPC's server would hand SpiceDB: a context of its own, ended
	// when the call ends, with the caller's deadline and cancellation but
	// none of its values; the metadata the caller sends (after the
	// preshared key, as Conn's credentials send it, and without the keys
	// gRPC reserves); a peer; and a stream for the response's headers and
	// trailers.
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if deadline, ok := ctx.Deadline(); ok {
		sctx, cancel = context.WithDeadline(sctx, deadline)
		defer cancel()
	}
	defer context.AfterFunc(ctx, cancel)()
	md := metadata.MD{"authorization": {"Bearer " + d.key}}
	if sent, ok := metadata.FromOutgoingContext(ctx); ok {
		for k, v := range sent { // a copy, with the keys in lower case
			if !reservedHeader(k) {
				md[k] = append(md[k], v...)
			}
		}
	}
	stream := &directStream{method: method}
	sctx = metadata.NewIncomingContext(sctx, md)
	sctx = peer.NewContext(sctx, directPeer)
	sctx = grpc.NewContextWithServerTransportStream(sctx, stream)

	// gRPC hands the server a decoded copy of the request (a nil message
	// arrives empty), and the caller a decoded copy of the response:
	// neither side keeps the other's.
	if in.ProtoReflect().IsValid() {
		in = proto.Clone(in)
	} else {
		in = in.ProtoReflect().Type().New().Interface()
	}
	resp, err := m.(directMethod).handler(sctx, in)
	stream.deliver(opts)
	if err != nil {
		// A call whose caller gave up ends as gRPC's client ends it,
		// whatever SpiceDB answered meanwhile (its consistency middleware
		// says Internal for a deadline that passes inside it).
		if cerr := ctx.Err(); cerr != nil {
			return status.FromContextError(cerr).Err()
		}
		if errors.Is(sctx.Err(), context.DeadlineExceeded) { // the caller's deadline, on the server's timer
			return status.FromContextError(context.DeadlineExceeded).Err()
		}
		// As gRPC's server does with an error that is not a status.
		if _, isStatus := status.FromError(err); !isStatus {
			err = status.FromContextError(err).Err()
		}
		return err
	}
	proto.Reset(out)
	if resp == nil {
		return nil // gRPC would send it as an empty message
	}
	msg, ok := resp.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "embedded SpiceDB: %s answered %T", method, resp)
	}
	if msg.ProtoReflect().IsValid() { // a typed nil is sent empty too
		proto.Merge(out, msg)
	}
	return nil
}

// directOptions reports whether a call's options allow the direct path:
// credentials of the call's own go through gRPC, which applies them.
func directOptions(opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(grpc.PerRPCCredsCallOption); ok {
			return false
		}
	}
	return true
}

// reservedHeader reports whether gRPC's transport drops a key of the
// caller's metadata rather than send it (grpc-go's isReservedHeader).
func reservedHeader(key string) bool {
	if strings.HasPrefix(key, ":") {
		return true
	}
	switch key {
	case "content-type", "user-agent", "grpc-message-type", "grpc-encoding", "grpc-message",
		"grpc-status", "grpc-timeout", "te":
		return true
	}
	return false
}

// directStream is the grpc.ServerTransportStream of a direct call: it keeps
// the headers and trailers SpiceDB sets, for the caller's grpc.Header and
// grpc.Trailer options.
type directStream struct {
	method string

	mu              sync.Mutex
	header, trailer metadata.MD
}

func (s *directStream) Method() string { return s.method }

func (s *directStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *directStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *directStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// deliver fills the call's header, trailer and peer options.
func (s *directStream) deliver(opts []grpc.CallOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = s.header.Copy()
		case grpc.TrailerCallOption:
			*o.TrailerAddr = s.trailer.Copy()
		case grpc.PeerCallOption:
			*o.PeerAddr = *directPeer
		}
	}
}
