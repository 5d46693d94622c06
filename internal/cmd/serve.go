package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/spicegate/spicegate/internal/embedded"
	"github.com/spicegate/spicegate/internal/httpapi"
	"github.com/spicegate/spicegate/internal/procs"
	"github.com/spicegate/spicegate/internal/service"
	"github.com/spicegate/spicegate/internal/stacks"
)

// defaultGCPercent is serve's garbage collector target when GOGC is not
// set: a collection starts when the heap has grown 200% over what the last
// one left live (Go's default is 100). Under a load of uncached checks a
// SpiceDB check allocates about 58 KB, so Go's default collects two or
// three times a second and each collection's assists land in the
// requests' tail. At 800 checks/s the median p99 of six runs was 20.4 ms
// with Go's default, 11.9 ms with 200 and 9.7 ms with 400, for about 150,
// 178 and 230 MiB resident at 235,000 relationships (BENCHMARKS.md): 200
// takes most of the gain for half the memory.
const defaultGCPercent = 200

// tuneGC sets the collector's target to defaultGCPercent unless the
// operator set GOGC, and returns the target in effect and whether it came
// from GOGC (GOGC=off is -1).
func tuneGC(getenv func(string) string) (percent int, fromEnv bool) {
	if getenv("GOGC") != "" {
		percent = debug.SetGCPercent(-1) // read the runtime's, then put it back
		debug.SetGCPercent(percent)
		return percent, true
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent, false
}

// noTraces gives OpenTelemetry's global tracer provider a no-op one.
// Spicegate exports no traces, but the embedded SpiceDB and gRPC start
// spans on the global provider, per call and per dispatch, and until a
// provider is set it builds a placeholder span for each, in case one comes
// later: 5-7% of the bytes a dataset `view` check allocated
// (BENCHMARKS.md, "SpiceDB's request logs and spans"). Should serve ever
// export traces, its provider goes here instead: the global provider hands
// the tracers taken before (SpiceDB's, at package init) to the first
// provider set, and only to it.
func noTraces() { otel.SetTracerProvider(noop.NewTracerProvider()) }

// adaptProcs starts, unless turned off or GOMAXPROCS is set, the
// controller that runs the process on one processor while it is lightly
// loaded (package procs: why, and the measurements behind its bounds). It
// stops when ctx ends; the returned channel closes then (nil when it did
// not start).
func adaptProcs(ctx context.Context, on bool, getenv func(string) string, log *slog.Logger) (done <-chan struct{}) {
	switch {
	case !on:
		log.Info("processors", "gomaxprocs", runtime.GOMAXPROCS(0), "adaptive", false)
		return nil
	case getenv("GOMAXPROCS") != "":
		log.Info("processors", "gomaxprocs", runtime.GOMAXPROCS(0), "adaptive", false, "from_env", true)
		return nil
	}
	log.Info("processors", "gomaxprocs", runtime.GOMAXPROCS(0), "adaptive", true,
		"one_below_cores", procs.DefaultDown, "all_above_cores_with_overlapping_requests", procs.DefaultUp)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := procs.Run(ctx, procs.Config{}, log); err != nil {
			log.Warn("processors: not adapting", "error", err)
		}
	}()
	return ended
}

// holdStacks parses --goroutine-stack-start and, unless it is 0, makes new
// goroutines start with that much stack until ctx ends (package stacks:
// why, and the measurements). The returned channel closes when it stops
// (nil when it did not start).
func holdStacks(ctx context.Context, flag string, external bool, log *slog.Logger) (done <-chan struct{}, err error) {
	size, err := humanize.ParseBytes(flag)
	if err != nil {
		return nil, fmt.Errorf("goroutine-stack-start: %w", err)
	}
	if size != 0 && stacks.CheckSize(size) != nil {
		return nil, fmt.Errorf("goroutine-stack-start must be 0 or a power of two from %s to %s, not %q",
			humanize.IBytes(stacks.MinStart), humanize.IBytes(stacks.MaxStart), flag)
	}
	switch {
	case size == 0:
		log.Info("goroutine stacks", "start", "the runtime's")
		return nil, nil
	case external:
		// The deep goroutines are an embedded SpiceDB's dispatches.
		log.Info("goroutine stacks", "start", "the runtime's", "reason", "no embedded SpiceDB")
		return nil, nil
	}
	log.Info("goroutine stacks", "start", humanize.IBytes(size))
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := stacks.Hold(ctx, size); err != nil && !errors.Is(err, ctx.Err()) {
			log.Warn("goroutine stacks: not held", "error", err)
		}
	}()
	return ended, nil
}

func registerServeCmd(root *cobra.Command) {
	cfg := service.Config{}
	var noSeed, adaptiveProcs bool
	var stackStart string
	var quantization time.Duration
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization service: SpiceDB's gRPC API and Spicegate's HTTP API",
		Long: `Serve runs Spicegate. By default it embeds SpiceDB in the process on a SQLite
file (nothing to install; the path is printed at start), writes the schema, loads
the demo seed into an empty store, and serves SpiceDB's v1 gRPC API (for zed and
any SpiceDB client) and the HTTP/JSON API.

With --datastore-engine postgres the embedded SpiceDB keeps its data in PostgreSQL
(run 'spicegate migrate' first), for several Spicegate or SpiceDB nodes on one
datastore; with --spicedb-endpoint Spicegate runs in front of an external SpiceDB
cluster instead. --datastore-engine memory keeps nothing (tests, throwaway demos:
a throwaway SQLite file, removed at exit); memdb is SpiceDB's own memory
datastore, for comparisons only (unindexed, and it never frees a revision).

Every flag is also an environment variable: --http-addr is SPICEGATE_HTTP_ADDR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quantization < 0 {
				return errors.New("datastore-revision-quantization-interval must not be negative (0: none)")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			gc, fromEnv := tuneGC(os.Getenv)
			log.Info("garbage collector", "gogc", gc, "from_env", fromEnv)
			noTraces()
			if _, err := holdStacks(cmd.Context(), stackStart, cfg.SpiceDBEndpoint != "", log); err != nil {
				return err
			}
			adaptProcs(cmd.Context(), adaptiveProcs, os.Getenv, log)
			if noSeed {
				cfg.Seed = ""
			}
			if cfg.RevisionQuantization = quantization; quantization == 0 {
				cfg.RevisionQuantization = -1 // the flag's 0, as SpiceDB's: none
			}
			if cfg.SpiceDBEndpoint != "" && !cmd.Flags().Changed("seed") {
				cfg.Seed = "" // never seed a shared cluster unasked
			}
			generatedKey, generatedToken := false, false
			if cfg.SpiceDBEndpoint != "" && cfg.SpiceDBKey == "" {
				// One name for SpiceDB's key, as in every other command.
				cfg.SpiceDBKey = cfg.PresharedKey
			}
			if cfg.SpiceDBEndpoint == "" && cfg.PresharedKey == "" {
				cfg.PresharedKey, generatedKey = randomSecret(), true
			}
			if len(cfg.HTTPTokens) == 0 {
				cfg.HTTPTokens, generatedToken = []string{randomSecret()}, true
			}
			svc, err := service.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			printWelcome(cmd.OutOrStdout(), cfg, svc.HTTPAddr(), generatedKey, generatedToken)
			return svc.Wait(cmd.Context())
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", defaultGRPCAddr, "address of the embedded SpiceDB's gRPC API")
	f.IntVar(&cfg.GRPCMaxConns, "grpc-max-conns", embedded.DefaultMaxConns, "TCP connections to the gRPC API held at once; more wait until one closes")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the HTTP/JSON API")
	f.StringVar(&cfg.PresharedKey, "preshared-key", "", "preshared key of SpiceDB's gRPC API: the embedded one's (generated and printed once when empty), or the external one's with --spicedb-endpoint")
	f.StringVar(&cfg.DatastoreEngine, "datastore-engine", "sqlite", "datastore of the embedded SpiceDB: sqlite (one file, durable), postgres (shared by several nodes), memory (tests and throwaway demos: nothing is kept) or memdb (SpiceDB's own memory datastore, for comparisons)")
	f.StringVar(&cfg.DatastorePath, "datastore-path", "", "the sqlite datastore's file (default $XDG_DATA_HOME/spicegate/spicegate.db, or ~/.local/share/spicegate/spicegate.db)")
	f.StringVar(&cfg.DispatchCache, "dispatch-cache", embedded.DefaultDispatchCache, "bound of the embedded SpiceDB's check-result cache, e.g. 256MiB or 5% of the memory (SpiceDB's own default, 30%, suits a dedicated server)")
	f.DurationVar(&cfg.DatastoreGCWindow, "datastore-gc-window", 0, "how long old revisions are kept, for exact snapshots and resuming the audit stream (default 24h; 10m on memory)")
	f.StringVar(&cfg.DatastoreURI, "datastore-conn-uri", "", "PostgreSQL connection URI, e.g. postgres://spicegate:secret@127.0.0.1:5432/spicegate")
	f.IntVar(&cfg.PostgresReadConns, "datastore-conn-pool-read-max-open", 0, "PostgreSQL connections for reads, kept open (postgres; default SpiceDB's 20)")
	f.IntVar(&cfg.PostgresWriteConns, "datastore-conn-pool-write-max-open", 0, "PostgreSQL connections for writes, kept open, at least 2: SpiceDB's garbage collector holds one (postgres; default SpiceDB's 10)")
	f.DurationVar(&quantization, "datastore-revision-quantization-interval", embedded.DefaultRevisionQuantization, "window to which minimize_latency reads round their revision, to share cached results: they may miss writes up to that old; 0: none (embedded SpiceDB)")
	f.BoolVar(&cfg.Migrate, "datastore-migrate", false, "run SpiceDB's datastore migrations (postgres) before starting")
	f.StringVar(&cfg.SpiceDBEndpoint, "spicedb-endpoint", "", "host:port of an external SpiceDB to use instead of the embedded one")
	f.StringVar(&cfg.SpiceDBKey, "spicedb-key", "", "the external SpiceDB's preshared key")
	_ = f.MarkDeprecated("spicedb-key", "use --preshared-key, the key's name in every command")
	f.BoolVar(&cfg.SpiceDBInsecure, "spicedb-insecure", false, "connect to the external SpiceDB in plaintext (loopback or a trusted network only)")
	f.StringSliceVar(&cfg.HTTPTokens, "http-token", nil, "service tokens of the HTTP API as SCOPE:SECRET, SCOPE one of check (reads), act (writes for a verified actor), admin (also system writes and the audit stream); a bare SECRET is admin; repeat or comma-separate for several (an admin token is generated and printed once when empty)")
	f.StringVar(&cfg.Seed, "seed", "demo", `seed to load at start into an empty store: "demo", a seed file, or "" for none`)
	f.BoolVar(&noSeed, "no-seed", false, "load no seed")
	f.BoolVar(&adaptiveProcs, "adaptive-procs", true, "run Go's scheduler on one processor while the process uses under 0.3 of a core, or its requests come one at a time (about 20% less CPU per request, and less wait for each), on all of them once overlapping requests use more than 0.6 or goroutines queue for the processor; false, or a GOMAXPROCS environment variable: a fixed count")
	f.StringVar(&stackStart, "goroutine-stack-start", humanize.IBytes(stacks.DefaultStart), "stack new goroutines start with, held by parking a few goroutines that deep (Go starts them with the average in use, which idle goroutines keep small, so each of SpiceDB's dispatch goroutines grows its stack: 10-30% of a dataset check's wait); 0, or with --spicedb-endpoint: the runtime's own")
	f.BoolVar(&cfg.SeedNonEmpty, "seed-non-empty", false, "load the seed even into a store that holds data (it restores what it lists, undoing deletions of those relationships)")
	f.StringVar(&cfg.SupportUser, "support-user", "support", "the vendor support account every organization lists (and the only one who may act as it is an admin token)")
	f.BoolVar(&cfg.AllowSchemaRemovals, "allow-schema-removals", false, "apply a schema that removes definitions, relations or permissions")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGINT/SIGTERM waits for in-flight requests")
	f.DurationVar(&cfg.HTTPRequestTimeout, "http-request-timeout", httpapi.DefaultRequestTimeout, "deadline of each HTTP request, SpiceDB's calls included (answered 504 past it)")
	f.IntVar(&cfg.HTTPMaxInFlight, "http-max-in-flight", httpapi.DefaultMaxInFlight, "HTTP requests served at once; beyond, 503 with Retry-After at once")
	root.AddCommand(c)
}

func randomSecret() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// printWelcome prints, once, what to paste to use the service. Secrets are
// printed only when they were generated here (nobody else knows them);
// configured ones are never echoed.
func printWelcome(w io.Writer, cfg service.Config, httpAddr string, generatedKey, generatedToken bool) {
	key, token := "<your preshared key>", "<your HTTP token>"
	if generatedKey {
		key = cfg.PresharedKey
	}
	if generatedToken {
		token = cfg.HTTPTokens[0]
	}
	fmt.Fprintf(w, "\nSpicegate is ready.\n\n")
	if cfg.SpiceDBEndpoint == "" {
		fmt.Fprintf(w, "SpiceDB gRPC API on %s (zed):\n", cfg.GRPCAddr)
		fmt.Fprintf(w, "  zed context set local %s %s --insecure\n", cfg.GRPCAddr, key)
		fmt.Fprintf(w, "  zed permission check organization:acme deploy user:alice\n")
		fmt.Fprintf(w, "and Spicegate's operator commands (spicegate members, check, ...):\n")
		fmt.Fprintf(w, "  export SPICEGATE_PRESHARED_KEY=%s\n", key)
		endpoint := ""
		if cfg.GRPCAddr != defaultGRPCAddr {
			endpoint = " --spicedb-endpoint " + cfg.GRPCAddr
		}
		fmt.Fprintf(w, "  spicegate members acme%s\n\n", endpoint)
	}
	fmt.Fprintf(w, "HTTP API on %s:\n", httpAddr)
	fmt.Fprintf(w, "  export SPICEGATE_TOKEN=%s\n", token)
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $SPICEGATE_TOKEN\" http://%s/v1/check \\\n", httpAddr)
	fmt.Fprintf(w, "    -d '{\"subject\":\"user:alice\",\"permission\":\"deploy\",\"resource\":\"organization:acme\"}'\n\n")
	switch {
	case generatedKey && generatedToken:
		fmt.Fprintf(w, "The key and the (admin) token above were generated for this run and are not shown\n")
		fmt.Fprintf(w, "again; set SPICEGATE_PRESHARED_KEY and SPICEGATE_HTTP_TOKEN to choose your own.\n\n")
	case generatedKey:
		fmt.Fprintf(w, "The key above was generated for this run and is not shown again; set\n")
		fmt.Fprintf(w, "SPICEGATE_PRESHARED_KEY to choose your own.\n\n")
	case generatedToken:
		fmt.Fprintf(w, "The (admin) token above was generated for this run and is not shown again; set\n")
		fmt.Fprintf(w, "SPICEGATE_HTTP_TOKEN to choose your own.\n\n")
	}
}
