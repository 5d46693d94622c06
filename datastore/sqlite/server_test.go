package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	datastorecfg "github.com/authzed/spicedb/pkg/cmd/datastore"
	"github.com/authzed/spicedb/pkg/cmd/server"
	"github.com/authzed/spicedb/pkg/cmd/util"
	"github.com/authzed/spicedb/pkg/datastore"

	"github.com/spicegate/spicegate/datastore/sqlite"
	"github.com/spicegate/spicegate/schema"
)

const testKey = "sqlite-datastore-test-key"

// startServer runs a real SpiceDB (as Spicegate embeds it: in-memory
// network, preshared key, relationship expiration) on ds, or on SpiceDB's
// memory datastore when ds is nil, stopped when the test ends, and returns
// a client connection.
func startServer(tb testing.TB, ds datastore.Datastore) *grpc.ClientConn {
	tb.Helper()
	conn, stop := startServerNoCleanup(tb, ds)
	tb.Cleanup(stop)
	return conn
}

// startServerNoCleanup is startServer whose caller stops the server.
func startServerNoCleanup(tb testing.TB, ds datastore.Datastore) (*grpc.ClientConn, func()) {
	tb.Helper()
	opts := serverOptions()
	if ds != nil {
		opts = append(opts, server.WithDatastore(ds))
	} else {
		cfg := datastorecfg.DefaultDatastoreConfig()
		cfg.Engine = "memory"
		opts = append(opts, server.WithDatastoreConfig(*cfg))
	}
	return startServerWithOptions(tb, opts)
}

// serverOptions are how the tests run SpiceDB: on an in-memory network,
// as Spicegate embeds it.
func serverOptions() []server.ConfigOption {
	return []server.ConfigOption{
		server.WithGRPCServer(util.GRPCServerConfig{Enabled: true, Network: util.BufferedNetwork}),
		server.WithPresharedSecureKey(testKey),
		server.WithHTTPGateway(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithMetricsAPI(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithDispatchServer(util.GRPCServerConfig{Enabled: false}),
		server.WithSilentlyDisableTelemetry(true),
		server.WithEnableRelationshipExpiration(true),
	}
}

// startServerWithConfigNoCleanup starts a server on a datastore SpiceDB
// builds from cfg (the PostgreSQL one, for the benchmarks).
func startServerWithConfigNoCleanup(tb testing.TB, cfg *datastorecfg.Config) (*grpc.ClientConn, func()) {
	tb.Helper()
	return startServerWithOptions(tb, append(serverOptions(), server.WithDatastoreConfig(*cfg)))
}

func startServerWithOptions(tb testing.TB, opts []server.ConfigOption) (*grpc.ClientConn, func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runnable, err := server.NewConfigWithOptionsAndDefaults(opts...).Complete(ctx)
	require.NoError(tb, err)
	done := make(chan error, 1)
	go func() { done <- runnable.Run(ctx) }()
	conn, err := runnable.NewClient(
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(testKey),
	)
	require.NoError(tb, err)
	return conn, func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			tb.Logf("SpiceDB stopped: %v", err)
		}
	}
}

// writeSchema writes Spicegate's schema, retrying while the server starts.
func writeSchema(tb testing.TB, conn grpc.ClientConnInterface) *v1.ZedToken {
	tb.Helper()
	var token *v1.ZedToken
	require.Eventually(tb, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := v1.NewSchemaServiceClient(conn).WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema.Text()})
		if err != nil {
			return false
		}
		token = resp.GetWrittenAt()
		return true
	}, 30*time.Second, 20*time.Millisecond)
	return token
}

// newDatastore opens a datastore on a fresh file, closed when the test ends.
func newDatastore(tb testing.TB, opts ...sqlite.Option) *sqlite.Datastore {
	tb.Helper()
	ds, err := sqlite.New(context.Background(), filepath.Join(tb.TempDir(), "spicedb.sqlite"), opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = ds.Close() })
	return ds
}

// syncNormal are the options of tests that do not test durability: commits
// skip fsync (a crash of the machine could lose the last ones; a crash of
// the process cannot).
func syncNormal() []sqlite.Option {
	return []sqlite.Option{sqlite.WithSynchronous(sqlite.SynchronousNormal)}
}
