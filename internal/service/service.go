// Package service assembles `spicegate serve`: SpiceDB (embedded in the
// process, or an external cluster), the schema, the seed, the Go client,
// and the HTTP API, with readiness and a graceful stop.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/embedded"
	"github.com/spicegate/spicegate/internal/httpapi"
	"github.com/spicegate/spicegate/internal/stacks"
	"github.com/spicegate/spicegate/seed"
)

// Config is everything `spicegate serve` can be told.
type Config struct {
	// GRPCAddr is where the embedded SpiceDB serves its v1 gRPC API to
	// other processes (the HTTP API reaches it in memory).
	GRPCAddr string
	// GRPCMaxConns caps the TCP connections to the gRPC API held at once
	// (embedded.DefaultMaxConns when 0).
	GRPCMaxConns int
	// HTTPAddr is where the HTTP/JSON API listens.
	HTTPAddr string
	// PresharedKey protects SpiceDB's gRPC API (embedded mode).
	PresharedKey string
	// DatastoreEngine is sqlite, postgres, memory or memdb (embedded mode;
	// see the engines of package embedded).
	DatastoreEngine string
	// DatastorePath is the SQLite file (sqlite; DefaultDatastorePath when empty).
	DatastorePath string
	// DatastoreURI is the PostgreSQL connection URI.
	DatastoreURI string
	// DatastoreGCWindow is how long old revisions are kept (exact
	// snapshots, Watch resumption); 0 is the engine's default: 24 hours on
	// sqlite and postgres, MemoryGCWindow on memory.
	DatastoreGCWindow time.Duration
	// DispatchCache bounds the embedded SpiceDB's check-result cache
	// (e.g. "128MiB" or "5%"); empty is embedded.DefaultDispatchCache.
	DispatchCache string
	// RevisionQuantization is the window to which reads at minimize_latency
	// round their revision (embedded mode): they share cached results, and
	// may miss writes up to that old. 0 is
	// embedded.DefaultRevisionQuantization (5 s), a negative value none.
	RevisionQuantization time.Duration
	// PostgresReadConns and PostgresWriteConns size the embedded SpiceDB's
	// PostgreSQL connection pools (postgres only; 0: SpiceDB's 20 and 10).
	// Each node holds both, open: several nodes on one PostgreSQL must fit
	// its max_connections together.
	PostgresReadConns, PostgresWriteConns int
	// Migrate runs SpiceDB's datastore migrations at start (postgres).
	Migrate bool
	// SpiceDBEndpoint, when set, puts Spicegate in front of an external
	// SpiceDB instead of embedding one.
	SpiceDBEndpoint string
	// SpiceDBKey is the external SpiceDB's preshared key.
	SpiceDBKey string
	// SpiceDBInsecure connects to the external SpiceDB in plaintext.
	SpiceDBInsecure bool
	// HTTPTokens are the bearer tokens services use on the HTTP API, each
	// "SCOPE:SECRET" with SCOPE check, act or admin (a bare secret is an
	// admin token); see httpapi.ParseToken.
	HTTPTokens []string
	// Seed is "demo" (the embedded demo seed), a seed file, or "" for none.
	// It is loaded only into an empty store, unless SeedNonEmpty.
	Seed string
	// SeedNonEmpty loads the seed into a store that holds data too. The
	// seed only adds (TOUCH): it restores what it lists, which may undo
	// what users deleted, and deletes nothing.
	SeedNonEmpty bool
	// SupportUser is the vendor support account every organization lists
	// ("support" when empty); seeds must name the same one.
	SupportUser string
	// AllowSchemaRemovals lets start-up apply a schema that removes
	// definitions, relations or permissions.
	AllowSchemaRemovals bool
	// ShutdownTimeout bounds the drain of in-flight requests.
	ShutdownTimeout time.Duration
	// HTTPRequestTimeout bounds each HTTP request, its SpiceDB calls
	// included (httpapi.DefaultRequestTimeout when 0).
	HTTPRequestTimeout time.Duration
	// HTTPMaxInFlight caps the HTTP requests served at once; more are
	// answered 503 with Retry-After (httpapi.DefaultMaxInFlight when 0).
	HTTPMaxInFlight int
}

// Validate checks the configuration and names the setting that is wrong.
func (c Config) Validate() error {
	if c.HTTPAddr == "" {
		return errors.New("http-addr is required")
	}
	tokens, err := httpapi.ParseTokens(c.HTTPTokens)
	if err != nil {
		return err
	}
	for i, t := range tokens {
		if t.Weak() && !onLoopback(c.HTTPAddr) {
			return fmt.Errorf("http-token #%d: a secret of fewer than %d characters is guessable; it is accepted only while http-addr is a loopback address", i+1, httpapi.MinSecretLength)
		}
	}
	if c.SpiceDBEndpoint != "" {
		if c.SpiceDBKey == "" {
			return errors.New("preshared-key (the external SpiceDB's) is required with spicedb-endpoint")
		}
		return nil
	}
	switch c.DatastoreEngine {
	case embedded.EngineSQLite, embedded.EngineMemory, embedded.EngineMemDB:
	case embedded.EnginePostgres:
		if c.DatastoreURI == "" {
			return errors.New("datastore-conn-uri is required with datastore-engine postgres")
		}
	default:
		return fmt.Errorf("datastore-engine must be %s, %s, %s or %s, not %q", embedded.EngineSQLite, embedded.EnginePostgres, embedded.EngineMemory, embedded.EngineMemDB, c.DatastoreEngine)
	}
	if c.DatastoreGCWindow < 0 {
		return errors.New("datastore-gc-window must not be negative")
	}
	if c.PostgresReadConns < 0 || c.PostgresWriteConns < 0 {
		return errors.New("datastore-conn-pool-read-max-open and datastore-conn-pool-write-max-open must not be negative")
	}
	if (c.PostgresReadConns > 0 || c.PostgresWriteConns > 0) && c.DatastoreEngine != embedded.EnginePostgres {
		return fmt.Errorf("datastore-conn-pool-read-max-open and datastore-conn-pool-write-max-open size PostgreSQL's pools: they need datastore-engine postgres, not %q", c.DatastoreEngine)
	}
	if c.PostgresWriteConns == 1 {
		// SpiceDB's garbage collector holds one write connection: with one,
		// the schema write at start waits for ever.
		return errors.New("datastore-conn-pool-write-max-open must be 0 (SpiceDB's 10) or at least 2: SpiceDB's garbage collector holds one write connection")
	}
	if q, window := embedded.QuantizationInEffect(c.RevisionQuantization), c.gcWindow(); q > 0 && q >= window {
		return fmt.Errorf("datastore-revision-quantization-interval (%s) must be shorter than datastore-gc-window (%s): reads at a quantized revision would find it collected", q, window)
	}
	if c.GRPCAddr == "" {
		return errors.New("grpc-addr is required")
	}
	if c.PresharedKey == "" {
		return errors.New("preshared-key is required")
	}
	return nil
}

// gcWindow is the revision window in effect.
func (c Config) gcWindow() time.Duration {
	switch {
	case c.DatastoreGCWindow > 0:
		return c.DatastoreGCWindow
	case c.DatastoreEngine == embedded.EngineMemory:
		return MemoryGCWindow
	}
	return embedded.DefaultGCWindow
}

// MemoryGCWindow is the memory datastore's default revision window: its
// throwaway file keeps every revision of the window, and a demo needs
// minutes of them, not SpiceDB's 24 hours.
const MemoryGCWindow = 10 * time.Minute

// DefaultDatastorePath is where the sqlite datastore keeps its file when
// no path is given: $XDG_DATA_HOME/spicegate/spicegate.db, or
// ~/.local/share/spicegate/spicegate.db.
func DefaultDatastorePath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("datastore-path: no home directory to keep the data in (%w); give --datastore-path", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "spicegate", "spicegate.db"), nil
}

// datastorePath is the file to use, its folder created.
func datastorePath(given string) (string, error) {
	path := given
	if path == "" {
		var err error
		if path, err = DefaultDatastorePath(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("datastore-path: %w", err)
	}
	return path, nil
}

func (c Config) supportUser() string {
	if c.SupportUser == "" {
		return "support"
	}
	return c.SupportUser
}

// onLoopback reports whether addr ("host:port") listens on this machine only.
func onLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Service is a running Spicegate.
type Service struct {
	cfg      Config
	log      *slog.Logger
	spicedb  *embedded.Server
	conn     *grpc.ClientConn
	client   *client.Client
	http     *http.Server
	listener net.Listener
	served   chan error

	stopOnce sync.Once
	stopErr  error
}

// Start brings everything up and returns once the HTTP API listens.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, served: make(chan error, 1)}
	// The ports first: a taken port fails at once, before SpiceDB starts
	// and the seed loads.
	if s.listener, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http-addr: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.listener.Close()
			s.stopBackends()
		}
	}()
	var grpcListener net.Listener
	if cfg.SpiceDBEndpoint == "" {
		// Bound now, handed to the embedded SpiceDB later (which then owns it).
		if grpcListener, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return nil, fmt.Errorf("grpc-addr: %w", err)
		}
		defer func() {
			if err != nil && s.spicedb == nil {
				_ = grpcListener.Close()
			}
		}()
	}

	if cfg.SpiceDBEndpoint != "" {
		opts := []client.Option{client.WithPresharedKey(cfg.SpiceDBKey), client.WithLogger(log), client.WithSupportUser(cfg.supportUser())}
		if cfg.SpiceDBInsecure {
			opts = append(opts, client.WithInsecure())
		}
		if s.client, err = client.New(cfg.SpiceDBEndpoint, opts...); err != nil {
			return nil, err
		}
		log.Info("using an external SpiceDB", "endpoint", cfg.SpiceDBEndpoint)
	} else {
		if cfg.Migrate && cfg.DatastoreEngine == embedded.EnginePostgres {
			if err := embedded.Migrate(ctx, cfg.DatastoreURI); err != nil {
				return nil, fmt.Errorf("datastore migration: %w", err)
			}
			log.Info("datastore migrated to head")
		}
		ecfg := embedded.Config{
			Engine: cfg.DatastoreEngine, ConnURI: cfg.DatastoreURI, GRPCListener: grpcListener, PresharedKey: cfg.PresharedKey,
			GCWindow: cfg.DatastoreGCWindow, DispatchCache: cfg.DispatchCache, MaxConns: cfg.GRPCMaxConns, Logger: log,
			RevisionQuantization: cfg.RevisionQuantization,
			PostgresReadConns:    cfg.PostgresReadConns, PostgresWriteConns: cfg.PostgresWriteConns,
		}
		switch cfg.DatastoreEngine {
		case embedded.EngineSQLite:
			if ecfg.Path, err = datastorePath(cfg.DatastorePath); err != nil {
				return nil, err
			}
			log.Info("datastore file", "path", ecfg.Path)
		case embedded.EnginePostgres:
			if !strings.Contains(cfg.DatastoreURI, "default_query_exec_mode") {
				log.Info("PostgreSQL in SpiceDB's default query mode (every query parsed and planned again); " +
					"without a transaction-mode pooler, default_query_exec_mode=cache_statement in the URI prepares them: README, On PostgreSQL")
			}
		case embedded.EngineMemory:
			if ecfg.GCWindow == 0 {
				ecfg.GCWindow = MemoryGCWindow
			}
		}
		// SpiceDB outlives ctx: Stop stops it once the HTTP API has
		// drained its requests, which need it.
		s.spicedb, err = embedded.Start(context.WithoutCancel(ctx), ecfg)
		if err != nil {
			return nil, err
		}
		if s.conn, err = s.spicedb.Conn(); err != nil {
			return nil, err
		}
		if s.client, err = client.NewFromConn(s.conn, client.WithLogger(log), client.WithSupportUser(cfg.supportUser())); err != nil {
			return nil, err
		}
		log.Info("embedded SpiceDB serving its gRPC API", "addr", s.spicedb.Addr(), "datastore", cfg.DatastoreEngine)
		switch cfg.DatastoreEngine {
		case embedded.EngineMemory:
			log.Warn("the memory datastore keeps nothing: every relationship is lost when spicegate stops; the default (sqlite) keeps them in a file")
		case embedded.EngineMemDB:
			log.Warn("memdb is SpiceDB's own memory datastore, for comparisons: a check scans every relationship of its type, and every write stays in memory until spicegate stops (SpiceDB v1.56.2 frees no revision)")
		}
	}

	if err := s.waitForSpiceDB(ctx); err != nil {
		return nil, err
	}
	if err := s.applySchema(ctx); err != nil {
		return nil, err
	}
	if err := s.loadSeed(ctx); err != nil {
		return nil, err
	}

	// Spicegate's own metrics; /metrics serves them with the process's
	// default registry: the Go runtime's and process's collectors and the
	// embedded SpiceDB's metrics (gRPC calls, dispatch, the datastore)
	// register there.
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spicegate_goroutine_stack_holders",
			Help: "Goroutines parked to keep new goroutines' starting stack at --goroutine-stack-start (counted in go_goroutines too).",
		}, func() float64 { return float64(stacks.Held()) }))
	tokens, err := httpapi.ParseTokens(cfg.HTTPTokens)
	if err != nil {
		return nil, err
	}
	for i, t := range tokens {
		if t.Weak() {
			log.Warn("an HTTP token is short enough to guess: use at least 16 random characters", "token", i+1, "scope", t.Scope.String())
		}
	}
	api := httpapi.New(httpapi.Config{Client: s.client, Tokens: tokens, Logger: log, Registry: registry,
		Gatherer:       prometheus.Gatherers{registry, withoutFamilies{prometheus.DefaultGatherer, undisclosedMetrics}},
		RequestTimeout: cfg.HTTPRequestTimeout, MaxInFlight: cfg.HTTPMaxInFlight})
	s.http = newHTTPServer(api.Handler(), cfg.HTTPRequestTimeout)
	s.http.RegisterOnShutdown(api.StopStreams)
	go func() { s.served <- s.http.Serve(s.listener) }()
	log.Info("HTTP API listening", "addr", s.listener.Addr().String())
	return s, nil
}

// HTTPAddr is the address the HTTP API listens on.
func (s *Service) HTTPAddr() string { return s.listener.Addr().String() }

// Client is the service's client of SpiceDB.
func (s *Service) Client() *client.Client { return s.client }

// waitForSpiceDB polls until SpiceDB answers (with or without a schema).
func (s *Service) waitForSpiceDB(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := s.client.Ready(ctx)
		if err == nil || errors.Is(err, client.ErrNotFound) {
			return nil
		}
		if errors.Is(err, client.ErrUnauthenticated) {
			return fmt.Errorf("SpiceDB refused the preshared key: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("SpiceDB did not answer: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Service) applySchema(ctx context.Context) error {
	changes, rev, err := s.client.ApplySchema(ctx, s.cfg.AllowSchemaRemovals)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if rev == "" {
		s.log.Info("schema is up to date")
		return nil
	}
	s.log.Info("schema written", "changes", len(changes), "revision", string(rev))
	return nil
}

func (s *Service) loadSeed(ctx context.Context) error {
	var data []byte
	switch s.cfg.Seed {
	case "":
		return nil
	case "demo":
		data = seed.Demo()
	default:
		var err error
		if data, err = os.ReadFile(s.cfg.Seed); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	parsed, err := seed.ParseBytes(data)
	if err != nil {
		return err
	}
	if parsed.SupportUser != s.client.SupportUser() {
		return fmt.Errorf("seed: its support account is %q but this service's is %q (--support-user)", parsed.SupportUser, s.client.SupportUser())
	}
	empty, err := s.client.Empty(ctx)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if !empty && !s.cfg.SeedNonEmpty {
		// A seed must never undo what users did: a restart on a datastore
		// that keeps its data would bring back what they deleted.
		s.log.Info("the store holds data: the seed is not loaded (--seed-non-empty loads it anyway)", "seed", s.cfg.Seed)
		return nil
	}
	rev, err := seed.Load(ctx, v1.NewPermissionsServiceClient(s.client.Conn()), parsed, nil)
	if err != nil {
		return err
	}
	s.client.Observe(client.Revision(rev)) // reads through the API see the seed
	if !empty {
		// The seed may have changed the role of members who created API
		// tokens through the API since: the tokens follow their owners.
		n, err := s.client.RepairTokens(ctx)
		if err != nil {
			return fmt.Errorf("seed: bringing API tokens in line with their owners: %w", err)
		}
		s.log.Info("API tokens brought in line with their owners' roles", "tokens", n)
	}
	s.log.Info("seed loaded", "seed", s.cfg.Seed, "organizations", len(parsed.Organizations), "revision", rev)
	if s.cfg.Seed == "demo" {
		s.log.Warn("the demo seed's organizations, users and API token IDs are public knowledge: keep real data out of this store, or start it with --no-seed")
	}
	return nil
}

// Wait blocks until the HTTP server fails or ctx ends, then stops.
func (s *Service) Wait(ctx context.Context) error {
	select {
	case err := <-s.served:
		s.stopBackends()
		return err
	case <-ctx.Done():
		return s.Stop()
	}
}

// Stop drains in-flight HTTP requests (up to ShutdownTimeout), then stops
// SpiceDB. Later calls wait for the first and return its error.
func (s *Service) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Service) stop() error {
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.log.Info("stopping: draining in-flight requests", "timeout", timeout)
	err := s.http.Shutdown(ctx)
	if serveErr := <-s.served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	s.stopBackends()
	s.log.Info("stopped")
	return err
}

func (s *Service) stopBackends() {
	if s.client != nil {
		_ = s.client.Close()
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if s.spicedb != nil {
		if err := s.spicedb.Stop(); err != nil {
			s.log.Error("stopping SpiceDB", "error", err)
		}
	}
}

// newHTTPServer bounds every phase of a connection, so that a client that
// stalls (sends headers and never the body, never reads the answer, or
// idles on a keep-alive connection) is shed instead of holding its
// connection and descriptor forever. Audit streams lift their own write
// deadline.
func newHTTPServer(h http.Handler, requestTimeout time.Duration) *http.Server {
	if requestTimeout <= 0 {
		requestTimeout = httpapi.DefaultRequestTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       requestTimeout + 5*time.Second, // headers and body (1 MiB at most)
		WriteTimeout:      requestTimeout + 5*time.Second, // the work and the answer
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// undisclosedMetrics are left out of the unauthenticated /metrics, which
// discloses no connection details: SpiceDB's environment, with the host's
// name and the datastore's ID.
var undisclosedMetrics = map[string]bool{"spicedb_environment_info": true}

// withoutFamilies gathers what g does but the metric families named.
type withoutFamilies struct {
	g     prometheus.Gatherer
	names map[string]bool
}

func (w withoutFamilies) Gather() ([]*dto.MetricFamily, error) {
	families, err := w.g.Gather()
	return slices.DeleteFunc(families, func(f *dto.MetricFamily) bool { return w.names[f.GetName()] }), err
}
