package embedded_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/internal/embedded"
)

// writeSchema writes testSchema through the in-memory connection, once the
// server accepts calls.
func writeSchema(t testing.TB, srv *embedded.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := srv.Conn()
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.Eventually(t, func() bool {
		_, err := v1.NewSchemaServiceClient(conn).WriteSchema(t.Context(), &v1.WriteSchemaRequest{Schema: testSchema})
		return err == nil
	}, 20*time.Second, 20*time.Millisecond)
	return conn
}

func touch(t testing.TB, conn *grpc.ClientConn, op v1.RelationshipUpdate_Operation, doc string) *v1.ZedToken {
	t.Helper()
	resp, err := v1.NewPermissionsServiceClient(conn).WriteRelationships(t.Context(), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{{Operation: op, Relationship: &v1.Relationship{
			Resource: &v1.ObjectReference{ObjectType: "doc", ObjectId: doc}, Relation: "viewer",
			Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
		}}},
	})
	require.NoError(t, err)
	return resp.GetWrittenAt()
}

func memoryDirs(t *testing.T, tmp string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(tmp, "spicegate-memory-*"))
	require.NoError(t, err)
	return dirs
}

// The memory engine is the SQLite datastore on a throwaway file in the
// temporary directory, removed by Stop.
func TestMemoryEngineLeavesNothingBehind(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", Engine: embedded.EngineMemory})
	require.NoError(t, err)
	require.NotNil(t, srv.Datastore(), "the memory engine runs on the SQLite datastore")
	dirs := memoryDirs(t, tmp)
	require.Len(t, dirs, 1)
	assert.Equal(t, filepath.Join(dirs[0], "spicegate.db"), srv.Datastore().Path())

	touch(t, writeSchema(t, srv), v1.RelationshipUpdate_OPERATION_TOUCH, "d1")
	require.NoError(t, srv.Stop())
	assert.Empty(t, memoryDirs(t, tmp), "Stop left the throwaway file")

	// A Start that fails after the file was opened removes it too.
	_, err = embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", Engine: embedded.EngineMemory, GRPCAddr: "127.0.0.1:-1"})
	require.Error(t, err)
	assert.Empty(t, memoryDirs(t, tmp), "a failed Start left the throwaway file")

	// Another start begins empty: nothing is kept.
	again, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = again.Stop() })
	_, err = v1.NewSchemaServiceClient(writeSchemaless(t, again)).ReadSchema(t.Context(), &v1.ReadSchemaRequest{})
	assert.Equal(t, codes.NotFound, status.Code(err), "a new memory server found a schema: %v", err)
}

// writeSchemaless returns a connection once the server answers, without
// writing anything.
func writeSchemaless(t *testing.T, srv *embedded.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := srv.Conn()
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.Eventually(t, func() bool {
		_, err := v1.NewSchemaServiceClient(conn).ReadSchema(t.Context(), &v1.ReadSchemaRequest{})
		return status.Code(err) != codes.Unavailable
	}, 20*time.Second, 20*time.Millisecond)
	return conn
}

// The memory engine drops revisions older than its window when it collects
// garbage, so a steady write load does not accumulate them (SpiceDB's own
// memory datastore, memdb, keeps every one until the process ends).
func TestMemoryEngineCollectsOldRevisions(t *testing.T) {
	const window = 6 * time.Second // the shortest above the 5 s revision quantization
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", GCWindow: window})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	conn := writeSchema(t, srv)
	first := touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, "d1")
	for range 20 {
		touch(t, conn, v1.RelationshipUpdate_OPERATION_DELETE, "d1")
		touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, "d1")
	}
	readAt := func(token *v1.ZedToken) error {
		st, err := v1.NewPermissionsServiceClient(conn).ReadRelationships(t.Context(), &v1.ReadRelationshipsRequest{
			Consistency:        &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: token}},
			RelationshipFilter: &v1.RelationshipFilter{ResourceType: "doc"},
		})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	require.NoError(t, readAt(first), "the first revision is inside the window")

	// The file holds every version of d1 (one live, 20 deleted) and every
	// transaction until the garbage collector runs past the window.
	db, err := sql.Open("sqlite", srv.Datastore().Path())
	require.NoError(t, err)
	defer db.Close()
	count := func(table string) (n int) {
		require.NoError(t, db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n))
		return n
	}
	require.Equal(t, 21, count("relationships"))
	transactions := count("transactions")
	require.GreaterOrEqual(t, transactions, 41)

	time.Sleep(window + 500*time.Millisecond)
	touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, "d2") // a head inside the window
	require.NoError(t, srv.Datastore().RunGarbageCollection(t.Context()))
	assert.Equal(t, 2, count("relationships"), "the deleted versions of d1 were not collected")
	assert.Less(t, count("transactions"), 5, "old transactions were not collected (%d before)", transactions)
	err = readAt(first)
	assert.Equal(t, codes.OutOfRange, status.Code(err), "a collected revision was readable: %v", err)
	assert.Contains(t, status.Convert(err).Message(), "expired")
}

// memdb is SpiceDB's own memory datastore, still available for comparisons.
func TestMemDBEngineIsSpiceDBs(t *testing.T) {
	srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", Engine: embedded.EngineMemDB})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	assert.Nil(t, srv.Datastore(), "memdb is not the SQLite datastore")
	touch(t, writeSchema(t, srv), v1.RelationshipUpdate_OPERATION_TOUCH, "d1")
}

// RevisionQuantization reaches the datastore of every engine: with none, a
// minimize_latency check right after a write sees it; with a window,
// writes after the first of an interval stay unseen by such checks until
// the next interval (past the store's first interval, in which both engines
// advertise the newest revision).
func TestRevisionQuantizationReachesTheDatastore(t *testing.T) {
	for _, engine := range []string{embedded.EngineMemory, embedded.EngineMemDB} {
		for _, tc := range []struct {
			name         string
			quantization time.Duration
			allSeen      bool
		}{{"none", -1, true}, {"500ms", 500 * time.Millisecond, false}} {
			t.Run(engine+"/"+tc.name, func(t *testing.T) {
				srv, err := embedded.Start(t.Context(), embedded.Config{PresharedKey: "k", Engine: engine, RevisionQuantization: tc.quantization})
				require.NoError(t, err)
				t.Cleanup(func() { _ = srv.Stop() })
				conn := writeSchema(t, srv)
				perms := v1.NewPermissionsServiceClient(conn)
				time.Sleep(tc.quantization + 100*time.Millisecond) // past the store's first interval
				seen := 0
				const writes = 10
				for i := range writes {
					doc := fmt.Sprintf("d%d", i)
					touch(t, conn, v1.RelationshipUpdate_OPERATION_TOUCH, doc)
					resp, err := perms.CheckPermission(t.Context(), &v1.CheckPermissionRequest{
						Consistency: &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}},
						Resource:    &v1.ObjectReference{ObjectType: "doc", ObjectId: doc}, Permission: "view",
						Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
					})
					require.NoError(t, err)
					if resp.GetPermissionship() == v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
						seen++
					}
				}
				if tc.allSeen {
					assert.Equal(t, writes, seen, "without quantization every check reads the newest revision")
				} else {
					assert.Less(t, seen, writes, "with quantization, checks read an interval's first revision")
				}
			})
		}
	}
}
