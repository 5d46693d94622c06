package embedded

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc/test/bufconn"
)

// DefaultMaxConns caps the TCP connections the gRPC API holds at once; more
// wait in the listen queue until one closes.
const DefaultMaxConns = 1024

// forwarder serves SpiceDB's gRPC API on TCP for other processes while the
// server itself listens only in memory, so that Spicegate's own HTTP API
// reaches it without the loopback TCP round trip (its write and read
// syscalls were the largest cost of an HTTP check; BENCHMARKS.md). Each
// TCP connection is piped, bytes as they are, into an in-memory connection:
// TLS, HTTP/2 and the preshared key are SpiceDB's, unchanged.
type forwarder struct {
	tcp    net.Listener
	mem    *bufconn.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newForwarder(tcp net.Listener, mem *bufconn.Listener, maxConns int) *forwarder {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	return &forwarder{tcp: netutil.LimitListener(tcp, maxConns), mem: mem, conns: map[net.Conn]struct{}{}}
}

// serve accepts until the listener closes.
func (f *forwarder) serve() {
	backoff := 5 * time.Millisecond
	for {
		c, err := f.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: wait, as net/http does.
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		f.wg.Add(1)
		go f.pipe(c)
	}
}

// track registers a connection to close at shutdown; false once closing.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *forwarder) pipe(c net.Conn) {
	defer f.wg.Done()
	if !f.track(c) {
		_ = c.Close()
		return
	}
	defer f.untrack(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	m, err := f.mem.DialContext(ctx)
	cancel()
	if err != nil {
		_ = c.Close()
		return
	}
	// Whichever side ends first ends both: a client gone frees the
	// server's stream, a server stopped closes the client's connection.
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = c.Close(); _ = m.Close() }) }
	done := make(chan struct{})
	go func() {
		copyThenClose(m, c, closeBoth)
		close(done)
	}()
	copyThenClose(c, m, closeBoth)
	<-done
}

func copyThenClose(dst io.Writer, src io.Reader, closeBoth func()) {
	_, _ = io.Copy(dst, src)
	closeBoth()
}

// stopAccepting closes the TCP listener; piped connections go on until
// SpiceDB's graceful stop ends them (or closeAll).
func (f *forwarder) stopAccepting() error { return f.tcp.Close() }

// closeAll closes every piped connection left and waits for them.
func (f *forwarder) closeAll() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
