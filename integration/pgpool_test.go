//go:build integration

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// --datastore-conn-pool-read-max-open and --datastore-conn-pool-write-max-open
// size what one node holds of PostgreSQL's connections: the pools are
// kept open at those sizes, and nothing else stays connected.
func TestPostgresPoolSizesAreWhatTheNodeHolds(t *testing.T) {
	spicegate, _ := build(t)
	uri := freshDatabase(t)
	name := uri[strings.LastIndex(uri, "/")+1:]
	if q := strings.Index(name, "?"); q >= 0 {
		name = name[:q]
	}
	httpAddr := freeAddr(t)
	p := start(t, "spicegate serve (postgres, pools of 3 and 2)", spicegate, nil, "serve", "--datastore-engine", "postgres",
		"--datastore-conn-uri", uri, "--datastore-migrate", "--no-seed", "--grpc-addr", freeAddr(t), "--http-addr", httpAddr,
		"--preshared-key", testKey, "--http-token", testToken,
		"--datastore-conn-pool-read-max-open", "3", "--datastore-conn-pool-write-max-open", "2")
	waitHTTP(t, p, httpAddr)

	conn, err := pgx.Connect(t.Context(), adminURI())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var held int
	require.Eventually(t, func() bool {
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&held))
		return held == 5
	}, 30*time.Second, 100*time.Millisecond, "connections to the node's database, want 3 + 2")
	t.Logf("connections held: %d", held)
	// And it stays so (a pool grows only to its bound).
	time.Sleep(2 * time.Second)
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&held))
	require.Equal(t, 5, held)
}
