// Package embedded runs a real SpiceDB server inside the Spicegate process
// (github.com/authzed/spicedb/pkg/cmd/server), on a SQLite file (the
// project's datastore/sqlite), on a throwaway SQLite file, on PostgreSQL or
// on SpiceDB's own memory datastore, listening in memory, for the process's
// own calls, and on TCP for others. The process's own unary calls skip
// gRPC's transport once SpiceDB has served their method (direct.go).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	datastorecfg "github.com/authzed/spicedb/pkg/cmd/datastore"
	"github.com/authzed/spicedb/pkg/cmd/server"
	"github.com/authzed/spicedb/pkg/cmd/util"
	"github.com/authzed/spicedb/pkg/datastore/migration"
	"github.com/authzed/spicedb/pkg/migrate"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// Datastore engines the embedded server supports.
const (
	// EngineSQLite keeps the data in one durable file: the default of serve.
	EngineSQLite = sqlite.Engine
	// EngineMemory keeps nothing: the SQLite datastore on a throwaway file
	// in a private temporary directory, removed by Stop, with commits not
	// synced to disk. It has the file's indexes and its garbage collection
	// of old revisions, so it stays fast with data and levels off under a
	// steady write load, which SpiceDB's memory datastore does not.
	EngineMemory = "memory"
	// EngineMemDB is SpiceDB's own memory datastore, kept to compare with
	// SpiceDB as shipped: it looks relationships up by (type, relation)
	// only, so a check slows down with every object of a type, and in
	// SpiceDB v1.56.2 it never frees a revision (its GC window only
	// refuses old revisions), so its heap grows with every write.
	EngineMemDB    = "memdb"
	EnginePostgres = "postgres" // SpiceDB's PostgreSQL datastore, shared by several nodes
)

// Config says how to run the embedded SpiceDB.
type Config struct {
	// Engine is EngineSQLite, EngineMemory (the default when empty, for
	// tests), EngineMemDB or EnginePostgres.
	Engine string
	// Path is the SQLite file (EngineSQLite only).
	Path string
	// ConnURI is the PostgreSQL connection URI (EnginePostgres only).
	ConnURI string
	// GCWindow is how long the datastore keeps old revisions (readable at
	// an exact snapshot, resumable by Watch); 0 keeps the engine's default
	// (24 hours). EngineMemDB refuses older revisions but frees none.
	GCWindow time.Duration
	// GRPCAddr is the TCP address of SpiceDB's gRPC API (e.g. 127.0.0.1:50051)
	// for other processes; empty (and no GRPCListener) serves it only in
	// memory, through Conn. Conn never goes through TCP.
	GRPCAddr string
	// GRPCListener, when set, is the TCP listener of the gRPC API, bound by
	// the caller (who learns at once whether the port is free); the server
	// takes it over and closes it (on error too). It takes precedence over
	// GRPCAddr.
	GRPCListener net.Listener
	// MaxConns caps the TCP connections to the gRPC API held at once
	// (DefaultMaxConns when 0); more wait in the listen queue.
	MaxConns int
	// PresharedKey authenticates API calls; required.
	PresharedKey string
	// Logger receives the SQLite datastore's warnings (a failed garbage
	// collection, a write connection recovered); nil discards them.
	Logger *slog.Logger
	// DispatchCache bounds SpiceDB's cache of check results ("64MiB",
	// "5%" of the memory); empty is DefaultDispatchCache. SpiceDB's own
	// default, 30% of the machine's memory, suits a dedicated SpiceDB
	// server, not one process among others.
	DispatchCache string
	// RevisionQuantization is the window to which reads at
	// minimize_latency round their revision down, so that they share
	// SpiceDB's cached results (and may miss writes up to that old): 0 is
	// DefaultRevisionQuantization, a negative value none (every such read
	// at the newest revision).
	RevisionQuantization time.Duration
	// PostgresReadConns and PostgresWriteConns size SpiceDB's PostgreSQL
	// connection pools, each kept open at its size (EnginePostgres only);
	// 0 is SpiceDB's default, 20 and 10.
	PostgresReadConns, PostgresWriteConns int
}

// DefaultRevisionQuantization is SpiceDB's default quantization window,
// which every engine of the embedded SpiceDB keeps.
const DefaultRevisionQuantization = 5 * time.Second

// DefaultGCWindow is the revision window of every engine but EngineMemory's
// when Config.GCWindow is 0 (SpiceDB's, and the SQLite datastore's).
const DefaultGCWindow = sqlite.DefaultGCWindow

// QuantizationInEffect is the quantization window that a
// Config.RevisionQuantization of d gives: DefaultRevisionQuantization for
// 0, none (0) for a negative d.
func QuantizationInEffect(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultRevisionQuantization
	case d < 0:
		return 0
	}
	return d
}

// StreamWorkers is how many goroutines of the embedded SpiceDB serve gRPC
// calls one after another (more calls at once get goroutines of their own).
const StreamWorkers = 16

// DefaultDispatchCache is the embedded SpiceDB's check-result cache bound.
const DefaultDispatchCache = "128MiB"

// Server is a running SpiceDB. Stop it with Stop.
type Server struct {
	runnable server.RunnableServer
	file     *sqlite.Datastore // the SQLite datastore, which the server does not close
	tempDir  string            // EngineMemory's directory, removed after the file is closed
	tcp      *forwarder        // the gRPC API on TCP, or nil
	direct   *directCalls      // the process's own unary calls, without gRPC's transport
	key      string
	cancel   context.CancelFunc // the direct calls, then SpiceDB
	unwatch  func() bool        // no longer stop when Start's ctx ends
	done     chan error
}

// Start configures SpiceDB and runs it in the background until ctx ends or
// Stop is called.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.GRPCListener != nil {
		defer func() {
			if err != nil {
				_ = cfg.GRPCListener.Close()
			}
		}()
	}
	if cfg.PresharedKey == "" {
		return nil, errors.New("embedded SpiceDB: a preshared key is required")
	}
	reportSpiceDBVersion()
	ds := datastorecfg.DefaultDatastoreConfig()
	if cfg.GCWindow > 0 {
		ds.GCWindow = cfg.GCWindow
	}
	quantization := QuantizationInEffect(cfg.RevisionQuantization)
	ds.RevisionQuantization = quantization
	if cfg.PostgresReadConns > 0 {
		ds.ReadConnPool.MaxOpenConns, ds.ReadConnPool.MinOpenConns = cfg.PostgresReadConns, cfg.PostgresReadConns
	}
	if cfg.PostgresWriteConns > 0 {
		ds.WriteConnPool.MaxOpenConns, ds.WriteConnPool.MinOpenConns = cfg.PostgresWriteConns, cfg.PostgresWriteConns
	}
	var opts []server.ConfigOption
	var file *sqlite.Datastore
	var tempDir string
	// closeFile releases the SQLite datastore (and EngineMemory's directory)
	// when Start fails after opening it.
	closeFile := func() {
		if file != nil {
			_ = file.Close()
		}
		if tempDir != "" {
			_ = os.RemoveAll(tempDir)
		}
	}
	openFile := func(path string, extra ...sqlite.Option) error {
		sopts := append([]sqlite.Option{sqlite.WithRevisionQuantization(quantization)}, extra...)
		if cfg.Logger != nil {
			sopts = append(sopts, sqlite.WithLogger(cfg.Logger))
		}
		if cfg.GCWindow > 0 {
			sopts = append(sopts, sqlite.WithGCWindow(cfg.GCWindow))
			// Collect at least twice a window, so that a short window
			// bounds what the file holds to about one and a half windows.
			if half := cfg.GCWindow / 2; half < sqlite.DefaultGCInterval {
				sopts = append(sopts, sqlite.WithGCInterval(half))
			}
		}
		if file, err = sqlite.New(ctx, path, sopts...); err != nil {
			return fmt.Errorf("embedded SpiceDB: %w", err)
		}
		ds.Engine = EngineSQLite
		opts = append(opts, server.WithDatastore(file))
		return nil
	}
	switch cfg.Engine {
	case "", EngineMemory:
		if tempDir, err = os.MkdirTemp("", "spicegate-memory-"); err != nil {
			return nil, fmt.Errorf("embedded SpiceDB: memory datastore: %w", err)
		}
		// Nothing outlives the process, so no commit needs to reach the disk.
		if err := openFile(filepath.Join(tempDir, "spicegate.db"), sqlite.WithSynchronous(sqlite.SynchronousNormal)); err != nil {
			closeFile()
			return nil, err
		}
	case EngineMemDB:
		ds.Engine = datastorecfg.MemoryEngine
	case EnginePostgres:
		if cfg.ConnURI == "" {
			return nil, errors.New("embedded SpiceDB: the postgres engine needs a connection URI")
		}
		ds.Engine = EnginePostgres
		ds.URI = cfg.ConnURI
	case EngineSQLite:
		if cfg.Path == "" {
			return nil, errors.New("embedded SpiceDB: the sqlite engine needs a file path")
		}
		if err := openFile(cfg.Path); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("embedded SpiceDB: unknown datastore engine %q (want %s, %s, %s or %s)", cfg.Engine, EngineSQLite, EnginePostgres, EngineMemory, EngineMemDB)
	}

	// SpiceDB listens in memory; other processes reach it through a TCP
	// listener piped into that memory (listener.go).
	tcp := cfg.GRPCListener
	if tcp == nil && cfg.GRPCAddr != "" {
		if tcp, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			closeFile()
			return nil, fmt.Errorf("embedded SpiceDB: grpc address: %w", err)
		}
	}
	grpcCfg := util.GRPCServerConfig{Enabled: true, Network: util.BufferedNetwork, MaxConnAge: 30 * time.Second,
		// Goroutines that serve streams one after another keep their grown
		// stacks: a new goroutine per call grows its stack through
		// SpiceDB's deep call chains every time (BENCHMARKS.md).
		MaxWorkers: StreamWorkers}

	dispatchCache := cfg.DispatchCache
	if dispatchCache == "" {
		dispatchCache = DefaultDispatchCache
	}
	direct := &directCalls{key: cfg.PresharedKey}
	// SpiceDB stops when ctx ends or Stop is called, in either case after
	// the direct calls in flight (stopSpiceDB): its own context must not
	// end with ctx before they are done.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	cancel := func() {
		direct.stop()
		cancelRun()
	}
	stopWithCtx := context.AfterFunc(ctx, cancel)
	// CompleteForTesting is Complete that also hands over the in-memory
	// listener, the one way to pipe TCP connections into it (the name
	// aside, it is exported API of the pinned SpiceDB).
	runnable, listeners, err := server.NewConfigWithOptionsAndDefaults(append(append(opts,
		server.WithDatastoreConfig(*ds),
		server.WithGRPCServer(grpcCfg),
		server.WithPresharedSecureKey(cfg.PresharedKey),
		server.WithHTTPGateway(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithMetricsAPI(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithDispatchServer(util.GRPCServerConfig{Enabled: false}),
		server.WithDispatchCacheConfig(server.CacheConfig{Name: "dispatch", Enabled: true, Metrics: true, MaxCost: dispatchCache}),
		// Unused without a dispatch cluster, but sized all the same.
		server.WithClusterDispatchCacheConfig(server.CacheConfig{Name: "cluster_dispatch", Enabled: true, Metrics: true, MaxCost: "16MiB"}),
		server.WithSilentlyDisableTelemetry(true),
		server.WithEnableRelationshipExpiration(true),
		direct.middleware(),
		reportStreams(),
	), withoutRequestLogs()...)...).CompleteForTesting(runCtx)
	if err != nil {
		stopWithCtx()
		cancelRun()
		closeFile()
		if tcp != nil && cfg.GRPCListener == nil {
			_ = tcp.Close()
		}
		return nil, fmt.Errorf("embedded SpiceDB: %w", err)
	}
	s := &Server{runnable: runnable, direct: direct, key: cfg.PresharedKey, cancel: cancel, unwatch: stopWithCtx, done: make(chan error, 1), file: file, tempDir: tempDir}
	go func() { s.done <- runnable.Run(runCtx) }()
	if tcp != nil {
		s.tcp = newForwarder(tcp, listeners.GRPC, cfg.MaxConns)
		go s.tcp.serve()
	}
	return s, nil
}

// Conn returns a new client connection to the server, authenticated with
// its preshared key. The caller closes it. A unary call whose method the
// server has served once skips gRPC's transport (direct.go): it runs
// SpiceDB's middleware chain and method in the caller's goroutine, after
// the interceptors opts add.
func (s *Server) Conn(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return s.conn(append(opts, grpc.WithChainUnaryInterceptor(s.direct.invoke))...)
}

// TransportConn is Conn with every call through gRPC's in-memory
// transport, for comparisons.
func (s *Server) TransportConn(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return s.conn(opts...)
}

func (s *Server) conn(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(s.key),
	}
	return s.runnable.NewClient(append(base, opts...)...)
}

// Addr is the TCP address of the gRPC API, or "" when it is served only
// in memory.
func (s *Server) Addr() string {
	if s.tcp == nil {
		return ""
	}
	return s.tcp.tcp.Addr().String()
}

// Stop shuts the server down and waits for it to finish: no new TCP
// connection is accepted, SpiceDB stops gracefully (its own grace period),
// then the TCP connections left are closed.
func (s *Server) Stop() error {
	var err error
	if s.tcp != nil {
		err = s.tcp.stopAccepting()
	}
	s.unwatch()
	s.cancel()
	if runErr := <-s.done; runErr != nil && !errors.Is(runErr, context.Canceled) {
		err = errors.Join(err, runErr)
	}
	if s.tcp != nil {
		s.tcp.closeAll()
	}
	if s.file != nil {
		err = errors.Join(err, s.file.Close())
	}
	if s.tempDir != "" {
		err = errors.Join(err, os.RemoveAll(s.tempDir))
	}
	return err
}

// Datastore returns the SQLite datastore the server runs on (EngineSQLite
// or EngineMemory), or nil on another engine.
func (s *Server) Datastore() *sqlite.Datastore { return s.file }

// Migrate runs SpiceDB's datastore migrations on PostgreSQL up to the
// newest ("head"), as `spicedb datastore migrate head` does. It is safe to
// run again: applied migrations are skipped.
func Migrate(ctx context.Context, connURI string) error {
	if connURI == "" {
		return errors.New("migrate: a PostgreSQL connection URI is required")
	}
	return migration.Run(ctx, &migration.Config{
		DatastoreEngine: EnginePostgres,
		DatastoreURI:    connURI,
		Timeout:         time.Hour,
		BatchSize:       1000,
	}, migrate.Head)
}
