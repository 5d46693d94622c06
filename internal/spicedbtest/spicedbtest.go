// Package spicedbtest starts a real SpiceDB in the test process (memory
// datastore, in-memory network) with Spicegate's schema written, for the
// tests of every package that needs one.
package spicedbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/embedded"
	"github.com/spicegate/spicegate/schema"
)

// Server is a running SpiceDB with the schema written.
type Server struct {
	*embedded.Server
	// Key is the server's preshared key.
	Key string
	// Addr is the loopback TCP address of a server started by StartTCP.
	Addr string
	// SchemaRevision is the revision the schema was written at.
	SchemaRevision client.Revision
}

// Start starts SpiceDB on the memory datastore, on an in-memory network,
// writes the schema, and stops the server when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "")
}

// StartTCP is Start with SpiceDB listening on a free loopback TCP port.
func StartTCP(t testing.TB) *Server {
	t.Helper()
	return start(t, FreeAddr(t))
}

// StartWithoutSchema starts SpiceDB (see EngineEnv) with no schema
// written, and returns an authenticated connection to it.
func StartWithoutSchema(t testing.TB) *grpc.ClientConn {
	t.Helper()
	srv, err := embedded.Start(context.Background(), config(t, randomKey(t), ""))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return connect(t, srv)
}

// FreeAddr returns a loopback address nothing listens on (yet).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// Relationships reads every relationship, fully consistent (SpiceDB's bulk
// export: one call), as sorted "resource#relation@subject" strings.
func Relationships(t testing.TB, conn grpc.ClientConnInterface) []string {
	t.Helper()
	perms := v1.NewPermissionsServiceClient(conn)
	stream, err := perms.ExportBulkRelationships(context.Background(), &v1.ExportBulkRelationshipsRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
	})
	require.NoError(t, err)
	var out []string
	for {
		batch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		for _, rel := range batch.GetRelationships() {
			s := fmt.Sprintf("%s:%s#%s@%s:%s", rel.GetResource().GetObjectType(), rel.GetResource().GetObjectId(), rel.GetRelation(),
				rel.GetSubject().GetObject().GetObjectType(), rel.GetSubject().GetObject().GetObjectId())
			if sr := rel.GetSubject().GetOptionalRelation(); sr != "" {
				s += "#" + sr
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// EngineEnv names the environment variable that picks the datastore of
// the servers these helpers start: "memory" (the default: every test
// starts from nothing), "sqlite" (a durable file in the test's temporary
// directory, the embedded default) or "memdb" (SpiceDB's own memory
// datastore), so that the suites run on each:
//
//	SPICEGATE_TEST_ENGINE=sqlite go test ./client/ ./internal/... ./seed/
const EngineEnv = "SPICEGATE_TEST_ENGINE"

// config is the embedded server's configuration of a test.
func config(t testing.TB, key, addr string) embedded.Config {
	t.Helper()
	cfg := embedded.Config{PresharedKey: key, GRPCAddr: addr}
	switch engine := os.Getenv(EngineEnv); engine {
	case "", embedded.EngineMemory:
	case embedded.EngineMemDB:
		cfg.Engine = embedded.EngineMemDB
	case embedded.EngineSQLite:
		cfg.Engine, cfg.Path = embedded.EngineSQLite, filepath.Join(t.TempDir(), "spicegate.db")
	default:
		t.Fatalf("%s=%s: want memory, sqlite or memdb", EngineEnv, engine)
	}
	return cfg
}

func start(t testing.TB, addr string) *Server {
	t.Helper()
	key := randomKey(t)
	srv, err := embedded.Start(context.Background(), config(t, key, addr))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })

	conn := connect(t, srv)
	schemas := v1.NewSchemaServiceClient(conn)
	var written string
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := schemas.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema.Text()})
		written = resp.GetWrittenAt().GetToken()
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "SpiceDB did not accept the schema")
	return &Server{Server: srv, Key: key, Addr: addr, SchemaRevision: client.Revision(written)}
}

// Conn returns a new authenticated connection, closed when the test ends.
func (s *Server) Conn(t testing.TB, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	return connect(t, s.Server, opts...)
}

// Client returns a Spicegate client over a new connection, whose default
// reads are at least as fresh as the schema.
func (s *Server) Client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.NewFromConn(s.Conn(t), opts...)
	require.NoError(t, err)
	// Its default reads see the schema: a fresh client minimizes latency,
	// and SpiceDB's cached revision may predate the schema by seconds.
	c.Observe(s.SchemaRevision)
	return c
}

func connect(t testing.TB, srv *embedded.Server, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := srv.Conn(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func randomKey(t testing.TB) string {
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// Changes follows c's audit stream after the revision after until n
// changes arrived (failing the test after 30 s), and returns them.
func Changes(t testing.TB, c *client.Client, after client.Revision, n int) []client.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []client.Change
	for ch, err := range c.Watch(ctx, after) {
		require.NoError(t, err)
		out = append(out, ch)
		if len(out) == n {
			break
		}
	}
	require.Len(t, out, n, "changes arrived")
	return out
}

// TokenRemovalRace is the scenario "API tokens created while their owner
// is removed": in each round a fresh member of org gets a token, then n
// token creations (half by the member, half by its token, both through the
// Actor) race one removal of the member by support. Afterwards, and after
// the member is added again, no token of the member may act in org. It
// returns how many creations succeeded (they raced: some must fail).
func TokenRemovalRace(t testing.TB, c *client.Client, org string, rounds, n int) int {
	t.Helper()
	ctx := context.Background()
	support := c.As(client.User("support"))
	created := 0
	for round := range rounds {
		victim := fmt.Sprintf("racer-%d-%s", round, randomKey(t)[:8])
		_, err := c.AddMember(ctx, org, victim, client.RoleUser)
		require.NoError(t, err)
		first, _, err := c.CreateAPIToken(ctx, org, victim)
		require.NoError(t, err)

		ids := make(chan string, n)
		start := make(chan struct{})
		inFlight := make(chan struct{}, 32) // concurrent, without drowning the datastore
		var wg sync.WaitGroup
		var failed sync.Map // error text -> count, for the log
		for i := range n {
			actor := client.User(victim)
			if i%2 == 1 {
				actor = client.APIToken(first)
			}
			wg.Go(func() {
				<-start
				inFlight <- struct{}{}
				defer func() { <-inFlight }()
				id, _, err := c.As(actor).CreateAPIToken(ctx, org, "")
				switch {
				case err == nil:
					ids <- id
				case errors.Is(err, client.ErrPermissionDenied), errors.Is(err, client.ErrNotFound):
					// Lost the race: refused cleanly.
				default:
					// A datastore under load may fail a call; nothing was
					// acknowledged, and the checks below still hold.
					v, _ := failed.LoadOrStore(err.Error(), new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
				}
			})
		}
		wg.Go(func() {
			<-start
			time.Sleep(time.Duration(round%3) * time.Millisecond) // vary who goes first
			var err error
			for range 3 { // a transient datastore failure is not what this tests
				if _, err = support.RemoveMember(ctx, org, victim); err == nil || errors.Is(err, client.ErrNotFound) {
					break
				}
			}
			assert.NoError(t, err, "the removal")
		})
		close(start)
		wg.Wait()
		close(ids)
		failed.Range(func(k, v any) bool {
			t.Logf("round %d: %d creations failed with: %s", round, v.(*atomic.Int64).Load(), k)
			return true
		})
		tokens := []string{first}
		for id := range ids {
			tokens = append(tokens, id)
		}
		created += len(tokens) - 1

		acts := func(when string) {
			for _, id := range tokens {
				for _, perm := range []string{client.PermMember, client.PermCreateAPIToken, client.PermDeploy} {
					d, err := c.Check(ctx, client.APIToken(id), perm, client.Organization(org), client.WithConsistency(client.FullyConsistent()))
					require.NoError(t, err)
					require.False(t, d.Allowed(), "%s: token %s of the removed member %s holds %s", when, id, victim, perm)
				}
				_, err := c.APIToken(ctx, id, client.WithConsistency(client.FullyConsistent()))
				require.ErrorIs(t, err, client.ErrNotFound, "%s: token %s was deleted", when, id)
			}
		}
		acts("after the removal")
		_, err = c.AddMember(ctx, org, victim, client.RoleUser)
		require.NoError(t, err)
		acts("after the member came back")
	}
	return created
}
