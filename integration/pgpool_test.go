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
// bound what one node holds of PostgreSQL's connections. (Exactly 3 + 2 at
// once is not asserted: the pools fill in the background, a CI run once saw
// them short of it for 30 s, and a sixth connection shows at times.)
func TestPostgresPoolSizesAreWhatTheNodeHolds(t *testing.T) {
	spicegate, _ := build(t)
	uri := freshDatabase(t)
	name := uri[strings.LastIndex(uri, "/")+1:]
	if q := strings.Index(name, "?"); q >= 0 {
		name = name[:q]
	}
	// Migrated first, as the README does: a migration's own connection is
	// not the node's.
	migrate := start(t, "spicegate migrate", spicegate, []string{"SPICEGATE_DATASTORE_CONN_URI=" + uri}, "migrate")
	<-migrate.done
	require.Zero(t, migrate.cmd.ProcessState.ExitCode(), "spicegate migrate failed:\n%s", migrate.output())
	httpAddr := freeAddr(t)
	p := start(t, "spicegate serve (postgres, pools of 3 and 2)", spicegate, nil, "serve", "--datastore-engine", "postgres",
		"--datastore-conn-uri", uri, "--no-seed", "--grpc-addr", freeAddr(t), "--http-addr", httpAddr,
		"--preshared-key", testKey, "--http-token", testToken,
		"--datastore-conn-pool-read-max-open", "3", "--datastore-conn-pool-write-max-open", "2")
	waitHTTP(t, p, httpAddr)

	conn, err := pgx.Connect(t.Context(), adminURI())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	// The pools open their connections in the background: sample for a
	// while. At SpiceDB's defaults (20 + 10, kept open) the node holds 30.
	most := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var held int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&held))
		most = max(most, held)
	}
	t.Logf("most connections held at once: %d", most)
	require.Positive(t, most, "the node holds no connection")
	// 3 + 2, and at times one more for a moment at start (seen: 6 in some
	// runs, 5 in others; not yet traced to its owner). The defaults give 30.
	require.LessOrEqual(t, most, 3+2+1, "connections to the node's database: the pools of 3 and 2 (+1 at start)")
}
