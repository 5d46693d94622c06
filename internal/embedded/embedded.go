// Package embedded runs a real SpiceDB server inside the Spicegate process
// (github.com/authzed/spicedb/pkg/cmd/server), on a SQLite file (the
// project's datastore/sqlite), on PostgreSQL or on the memory datastore,
// listening on TCP or on an in-memory buffer (for tests).
package embedded

import (
	"context"
	"errors"
	"fmt"
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
	EngineSQLite   = sqlite.Engine // one file: the default
	EngineMemory   = "memory"
	EnginePostgres = "postgres"
)

// Config says how to run the embedded SpiceDB.
type Config struct {
	// Engine is EngineSQLite, EngineMemory (the default when empty, for
	// tests) or EnginePostgres.
	Engine string
	// Path is the SQLite file (EngineSQLite only).
	Path string
	// ConnURI is the PostgreSQL connection URI (EnginePostgres only).
	ConnURI string
	// GCWindow is how long the datastore keeps old revisions (readable at
	// an exact snapshot, resumable by Watch); 0 keeps the engine's default
	// (24 hours). On the memory datastore every revision in the window is
	// held in memory.
	GCWindow time.Duration
	// GRPCAddr is the TCP address of SpiceDB's gRPC API (e.g. 127.0.0.1:50051);
	// empty serves it on an in-memory buffer, reachable only through Conn.
	GRPCAddr string
	// PresharedKey authenticates API calls; required.
	PresharedKey string
	// DispatchCache bounds SpiceDB's cache of check results ("64MiB",
	// "5%" of the memory); empty is DefaultDispatchCache. SpiceDB's own
	// default, 30% of the machine's memory, suits a dedicated SpiceDB
	// server, not one process among others.
	DispatchCache string
}

// DefaultDispatchCache is the embedded SpiceDB's check-result cache bound.
const DefaultDispatchCache = "128MiB"

// Server is a running SpiceDB. Stop it with Stop.
type Server struct {
	runnable server.RunnableServer
	file     *sqlite.Datastore // the SQLite datastore, which the server does not close
	key      string
	cancel   context.CancelFunc
	done     chan error
}

// Start configures SpiceDB and runs it in the background until ctx ends or
// Stop is called.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.PresharedKey == "" {
		return nil, errors.New("embedded SpiceDB: a preshared key is required")
	}
	reportSpiceDBVersion()
	ds := datastorecfg.DefaultDatastoreConfig()
	if cfg.GCWindow > 0 {
		ds.GCWindow = cfg.GCWindow
	}
	var opts []server.ConfigOption
	var file *sqlite.Datastore
	switch cfg.Engine {
	case "", EngineMemory:
		ds.Engine = EngineMemory
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
		var sopts []sqlite.Option
		if cfg.GCWindow > 0 {
			sopts = append(sopts, sqlite.WithGCWindow(cfg.GCWindow))
		}
		var err error
		if file, err = sqlite.New(ctx, cfg.Path, sopts...); err != nil {
			return nil, fmt.Errorf("embedded SpiceDB: %w", err)
		}
		ds.Engine = EngineSQLite
		opts = append(opts, server.WithDatastore(file))
	default:
		return nil, fmt.Errorf("embedded SpiceDB: unknown datastore engine %q (want %s, %s or %s)", cfg.Engine, EngineSQLite, EnginePostgres, EngineMemory)
	}

	grpcCfg := util.GRPCServerConfig{Enabled: true, Network: util.BufferedNetwork}
	if cfg.GRPCAddr != "" {
		grpcCfg = util.GRPCServerConfig{Enabled: true, Network: "tcp", Address: cfg.GRPCAddr, MaxConnAge: 30 * time.Second}
	}

	dispatchCache := cfg.DispatchCache
	if dispatchCache == "" {
		dispatchCache = DefaultDispatchCache
	}
	runCtx, cancel := context.WithCancel(ctx)
	runnable, err := server.NewConfigWithOptionsAndDefaults(append(opts,
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
	)...).Complete(runCtx)
	if err != nil {
		cancel()
		if file != nil {
			_ = file.Close()
		}
		return nil, fmt.Errorf("embedded SpiceDB: %w", err)
	}
	s := &Server{runnable: runnable, key: cfg.PresharedKey, cancel: cancel, done: make(chan error, 1), file: file}
	go func() { s.done <- runnable.Run(runCtx) }()
	return s, nil
}

// Conn returns a new client connection to the server, authenticated with
// its preshared key. The caller closes it.
func (s *Server) Conn(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(s.key),
	}
	return s.runnable.NewClient(append(base, opts...)...)
}

// Stop shuts the server down and waits for it to finish.
func (s *Server) Stop() error {
	s.cancel()
	err := <-s.done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if s.file != nil {
		err = errors.Join(err, s.file.Close())
	}
	return err
}

// Datastore returns the SQLite datastore the server runs on, or nil on
// another engine.
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
