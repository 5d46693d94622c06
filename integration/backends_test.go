//go:build integration

package integration

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// deployment is a running Spicegate on one backend: the SpiceDB gRPC API
// that Go clients use, and Spicegate's HTTP API.
type deployment struct {
	grpcAddr  string // SpiceDB's gRPC API (Spicegate's embedded one, or node 1)
	readAddr  string // where reads go: node 2 of a cluster, else grpcAddr
	key       string
	httpAddr  string
	token     string
	spicegate *process
	// restartSpicegate starts Spicegate again (same ports, same database).
	restartSpicegate func()
	// spicedb is the (first) separate SpiceDB process, if any.
	spicedb        *process
	restartSpiceDB func()
	// peer is node 2 of a dispatch cluster (node 1 dispatches to it), if any.
	peer        *process
	restartPeer func()
}

const (
	testKey   = "integration-key"
	testToken = "integration-token"
)

// embeddedOnPostgres is backend 1: `spicegate serve` with its embedded
// SpiceDB on PostgreSQL.
func embeddedOnPostgres(t *testing.T) *deployment {
	t.Helper()
	return embeddedOnPostgresURI(t, freshDatabase(t))
}

// embeddedOnPostgresPrepared is backend 6: embeddedOnPostgres with pgx's
// cache of prepared statements (default_query_exec_mode=cache_statement in
// the URI, which SpiceDB leaves as given instead of its own "exec"): the
// setting the README's PostgreSQL section offers for a dedicated database.
func embeddedOnPostgresPrepared(t *testing.T) *deployment {
	t.Helper()
	u, err := url.Parse(freshDatabase(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("default_query_exec_mode", "cache_statement")
	u.RawQuery = q.Encode()
	return embeddedOnPostgresURI(t, u.String())
}

func embeddedOnPostgresURI(t *testing.T, db string) *deployment {
	t.Helper()
	spicegate, _ := build(t)
	migrate := start(t, "spicegate migrate", spicegate, nil, "migrate", "--datastore-conn-uri", db)
	<-migrate.done
	if migrate.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("spicegate migrate failed:\n%s", migrate.output())
	}
	d := &deployment{grpcAddr: freeAddr(t), key: testKey, httpAddr: freeAddr(t), token: testToken}
	d.readAddr = d.grpcAddr
	d.restartSpicegate = func() {
		d.spicegate = start(t, "spicegate serve (embedded, postgres)", spicegate, nil, "serve",
			"--datastore-engine", "postgres", "--datastore-conn-uri", db, "--no-seed",
			"--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr, "--preshared-key", d.key, "--http-token", d.token)
		waitHTTP(t, d.spicegate, d.httpAddr)
	}
	d.restartSpicegate()
	return d
}

// embeddedOnFile is backend 4: `spicegate serve` on its default engine,
// a SQLite file.
func embeddedOnFile(t *testing.T) *deployment {
	t.Helper()
	return embeddedOn(t, "sqlite", "--datastore-engine", "sqlite", "--datastore-path", filepath.Join(t.TempDir(), "spicegate.db"))
}

// embeddedInMemory is backend 5: `spicegate serve` on the memory datastore.
func embeddedInMemory(t *testing.T) *deployment {
	t.Helper()
	return embeddedOn(t, "memory", "--datastore-engine", "memory")
}

func embeddedOn(t *testing.T, name string, args ...string) *deployment {
	t.Helper()
	spicegate, _ := build(t)
	d := &deployment{grpcAddr: freeAddr(t), key: testKey, httpAddr: freeAddr(t), token: testToken}
	d.readAddr = d.grpcAddr
	d.restartSpicegate = func() {
		d.spicegate = start(t, "spicegate serve (embedded, "+name+")", spicegate, nil, append([]string{"serve", "--no-seed",
			"--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr, "--preshared-key", d.key, "--http-token", d.token}, args...)...)
		waitHTTP(t, d.spicegate, d.httpAddr)
	}
	d.restartSpicegate()
	return d
}

// spicedbNode runs `spicedb serve` on PostgreSQL; with upstream set it
// joins a dispatch cluster.
func spicedbNode(t *testing.T, name, db, grpcAddr, dispatchAddr, upstream string) func() *process {
	_, spicedb := build(t)
	args := []string{"serve", "--grpc-preshared-key", testKey, "--grpc-addr", grpcAddr,
		"--datastore-engine", "postgres", "--datastore-conn-uri", db,
		"--http-enabled=false", "--metrics-enabled=false", "--telemetry-endpoint=", "--skip-release-check",
		"--log-level", "warn"}
	if upstream != "" {
		args = append(args, "--dispatch-cluster-enabled", "--dispatch-cluster-addr", dispatchAddr, "--dispatch-upstream-addr", upstream)
	}
	return func() *process {
		p := start(t, name, spicedb, nil, args...)
		waitGRPC(t, p, grpcAddr, testKey, false)
		return p
	}
}

func migrateSpiceDB(t *testing.T, db string) {
	t.Helper()
	_, spicedb := build(t)
	m := start(t, "spicedb datastore migrate", spicedb, nil, "datastore", "migrate", "head",
		"--datastore-engine", "postgres", "--datastore-conn-uri", db, "--skip-release-check")
	<-m.done
	if m.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("spicedb datastore migrate failed:\n%s", m.output())
	}
}

// inFront starts Spicegate in front of the SpiceDB at endpoint.
func inFront(t *testing.T, d *deployment, endpoint string) {
	spicegate, _ := build(t)
	d.restartSpicegate = func() {
		d.spicegate = start(t, "spicegate serve (in front)", spicegate, nil, "serve",
			"--spicedb-endpoint", endpoint, "--preshared-key", d.key, "--spicedb-insecure",
			"--http-addr", d.httpAddr, "--http-token", d.token)
		waitHTTP(t, d.spicegate, d.httpAddr)
	}
	d.restartSpicegate()
}

// externalSpiceDB is backend 2: a separate `spicedb serve` on PostgreSQL,
// with Spicegate in front of it.
func externalSpiceDB(t *testing.T) *deployment {
	t.Helper()
	db := freshDatabase(t)
	migrateSpiceDB(t, db)
	d := &deployment{grpcAddr: freeAddr(t), key: testKey, httpAddr: freeAddr(t), token: testToken}
	d.readAddr = d.grpcAddr
	run := spicedbNode(t, "spicedb", db, d.grpcAddr, "", "")
	d.restartSpiceDB = func() { d.spicedb = run() }
	d.restartSpiceDB()
	inFront(t, d, d.grpcAddr)
	return d
}

// dispatchCluster is backend 3: two `spicedb serve` nodes sharing one
// PostgreSQL, each dispatching to the other, Spicegate in front of node 1,
// and reads through node 2.
func dispatchCluster(t *testing.T) *deployment {
	t.Helper()
	db := freshDatabase(t)
	migrateSpiceDB(t, db)
	grpc1, grpc2, dispatch1, dispatch2 := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	d := &deployment{grpcAddr: grpc1, readAddr: grpc2, key: testKey, httpAddr: freeAddr(t), token: testToken}
	run1 := spicedbNode(t, "spicedb node 1", db, grpc1, dispatch1, dispatch2)
	run2 := spicedbNode(t, "spicedb node 2", db, grpc2, dispatch2, dispatch1)
	d.restartSpiceDB = func() { d.spicedb = run1() }
	d.restartPeer = func() { d.peer = run2() }
	d.restartSpiceDB()
	d.restartPeer()
	inFront(t, d, grpc1)
	return d
}

// backends are the configurations the suite runs on.
var backends = []struct {
	name  string
	start func(*testing.T) *deployment
}{
	{"embedded-postgres", embeddedOnPostgres},
	{"external-spicedb", externalSpiceDB},
	{"dispatch-cluster", dispatchCluster},
	{"embedded-sqlite", embeddedOnFile},
	{"embedded-memory", embeddedInMemory},
	{"embedded-postgres-prepared", embeddedOnPostgresPrepared},
}
