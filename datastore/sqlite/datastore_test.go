package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// touchRels touches rels in one write transaction.
func touchRels(ctx context.Context, ds datastore.Datastore, rels ...string) (datastore.Revision, error) {
	return ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		updates := make([]tuple.RelationshipUpdate, 0, len(rels))
		for _, r := range rels {
			updates = append(updates, tuple.Touch(tuple.MustParse(r)))
		}
		return rwt.WriteRelationships(ctx, updates)
	})
}

func writeRels(t *testing.T, ds datastore.Datastore, rels ...string) datastore.Revision {
	t.Helper()
	rev, err := touchRels(context.Background(), ds, rels...)
	require.NoError(t, err)
	return rev
}

func readRels(t *testing.T, ds datastore.Datastore, rev datastore.Revision) []string {
	t.Helper()
	it, err := ds.SnapshotReader(rev).QueryRelationships(context.Background(), datastore.RelationshipsFilter{OptionalResourceType: "doc"})
	require.NoError(t, err)
	var out []string
	for rel, err := range it {
		require.NoError(t, err)
		out = append(out, tuple.MustString(rel))
	}
	return out
}

// TestReopenKeepsEverything closes a datastore and opens its file again:
// the relationships, the head revision and the unique ID are the same.
func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "reopen.sqlite")
	ds, err := sqlite.New(ctx, path)
	require.NoError(t, err)
	rev := writeRels(t, ds, "doc:a#viewer@user:alice", "doc:b#viewer@user:bob")
	id, err := ds.UniqueID(ctx)
	require.NoError(t, err)
	require.Len(t, id, 36)
	require.NoError(t, ds.Close())
	_, err = ds.HeadRevision(ctx)
	require.ErrorIs(t, err, sqlite.ErrClosed)

	ds, err = sqlite.New(ctx, path)
	require.NoError(t, err)
	defer ds.Close()
	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	require.True(t, head.Revision.Equal(rev))
	again, err := ds.UniqueID(ctx)
	require.NoError(t, err)
	require.Equal(t, id, again)
	require.Equal(t, []string{"doc:a#viewer@user:alice", "doc:b#viewer@user:bob"}, readRels(t, ds, head.Revision))
}

// TestBackupIsConsistentAndRestorable backs a live datastore up, writes
// more, and opens the copy: it holds exactly what was committed when the
// backup ran, with the same unique ID.
func TestBackupIsConsistentAndRestorable(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, syncNormal()...)
	rev := writeRels(t, ds, "doc:a#viewer@user:alice")
	dest := filepath.Join(t.TempDir(), "backup.sqlite")
	require.NoError(t, ds.Backup(ctx, dest))
	writeRels(t, ds, "doc:b#viewer@user:bob")
	require.Error(t, ds.Backup(ctx, dest), "a backup never overwrites a file")

	restored, err := sqlite.New(ctx, dest)
	require.NoError(t, err)
	defer restored.Close()
	head, err := restored.HeadRevision(ctx)
	require.NoError(t, err)
	require.True(t, head.Revision.Equal(rev))
	require.Equal(t, []string{"doc:a#viewer@user:alice"}, readRels(t, restored, head.Revision))
	a, _ := ds.UniqueID(ctx)
	b, _ := restored.UniqueID(ctx)
	require.Equal(t, a, b)
}

// TestBackupFileFromOutside copies a file a live Datastore serves (and
// holds locked) from outside the Datastore, as `spicegate backup` does from
// another process.
func TestBackupFileFromOutside(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, syncNormal()...)
	rev := writeRels(t, ds, "doc:a#viewer@user:alice")
	dest := filepath.Join(t.TempDir(), "outside.sqlite")
	require.NoError(t, sqlite.BackupFile(ctx, ds.Path(), dest))
	st, err := os.Stat(dest)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a backup is its owner's only")
	writeRels(t, ds, "doc:b#viewer@user:bob")
	require.Error(t, sqlite.BackupFile(ctx, ds.Path(), dest), "a backup never overwrites a file")
	require.Error(t, sqlite.BackupFile(ctx, filepath.Join(t.TempDir(), "missing.sqlite"), dest+"2"))

	restored, err := sqlite.New(ctx, dest)
	require.NoError(t, err)
	defer restored.Close()
	head, err := restored.HeadRevision(ctx)
	require.NoError(t, err)
	require.True(t, head.Revision.Equal(rev))
	require.Equal(t, []string{"doc:a#viewer@user:alice"}, readRels(t, restored, head.Revision))
}

// TestMigrations checks the versioned migrations: a new file is at the
// newest version, opening it again migrates nothing, and a file written by a
// newer version is refused.
func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "migrations.sqlite")
	ds, err := sqlite.New(ctx, path)
	require.NoError(t, err)
	require.NoError(t, ds.Close())

	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var version, count int
	require.NoError(t, db.QueryRow(`SELECT MAX(version), COUNT(*) FROM schema_migrations`).Scan(&version, &count))
	require.Equal(t, 1, version)
	require.Equal(t, 1, count)

	ds, err = sqlite.New(ctx, path)
	require.NoError(t, err)
	require.NoError(t, ds.Close())
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&count))
	require.Equal(t, 1, count, "reopening must not migrate again")

	_, err = db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)`)
	require.NoError(t, err)
	_, err = sqlite.New(ctx, path)
	require.ErrorIs(t, err, sqlite.ErrNewerSchema)
}

// TestRevisions covers revision parsing and checking: revisions are
// consecutive transaction IDs, a revision newer than the head (from another
// datastore) and garbage are rejected with the right reasons, and a revision
// older than the GC window is stale.
func TestRevisions(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, append(syncNormal(), sqlite.WithGCWindow(200*time.Millisecond), sqlite.WithRevisionQuantization(0))...)
	r1 := writeRels(t, ds, "doc:a#viewer@user:alice")
	r2 := writeRels(t, ds, "doc:b#viewer@user:alice")
	n1, _ := ds.RevisionFromString(r1.String())
	require.True(t, n1.Equal(r1))
	require.True(t, r2.GreaterThan(r1))

	future, err := ds.RevisionFromString("999999")
	require.NoError(t, err)
	var invalid datastore.InvalidRevisionError
	require.ErrorAs(t, ds.CheckRevision(ctx, future), &invalid)
	require.Equal(t, datastore.CouldNotDetermineRevision, invalid.Reason())
	for _, bad := range []string{"", "x", "-1", "0", "1.5"} {
		_, err := ds.RevisionFromString(bad)
		require.Error(t, err, bad)
	}

	time.Sleep(300 * time.Millisecond)
	r3 := writeRels(t, ds, "doc:c#viewer@user:alice")
	require.NoError(t, ds.CheckRevision(ctx, r3))
	require.ErrorAs(t, ds.CheckRevision(ctx, r1), &invalid)
	require.Equal(t, datastore.RevisionStale, invalid.Reason())

	// A reader at an old revision sees exactly what was live then.
	require.Equal(t, []string{"doc:a#viewer@user:alice", "doc:b#viewer@user:alice"}, readRels(t, ds, r2))
}

// TestZedTokenFromTheFutureIsACleanError restores a backup (the same
// datastore, by its unique ID, but older) behind a SpiceDB and hands it a
// ZedToken written after the backup: SpiceDB answers a clean gRPC error
// (the revision is unknown), not Internal. A token from an unrelated
// datastore is recognized by SpiceDB itself (its ZedTokens carry the
// datastore's unique ID) and answered fully consistently.
func TestZedTokenFromTheFutureIsACleanError(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, syncNormal()...)
	conn := startServer(t, ds)
	writeSchema(t, conn)
	backup := filepath.Join(t.TempDir(), "backup.sqlite")
	require.NoError(t, ds.Backup(ctx, backup))
	var written *v1.WriteRelationshipsResponse
	for i := range 5 {
		var err error
		written, err = v1.NewPermissionsServiceClient(conn).WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{{
			Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: rel("organization", "o", "user", "user", "u"+strconv.Itoa(i)),
		}}})
		require.NoError(t, err)
	}

	restored, err := sqlite.New(ctx, backup)
	require.NoError(t, err)
	t.Cleanup(func() { _ = restored.Close() })
	restoredConn := startServer(t, restored)
	for _, c := range []*v1.Consistency{
		{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: written.GetWrittenAt()}},
		{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: written.GetWrittenAt()}},
	} {
		_, err = v1.NewPermissionsServiceClient(restoredConn).CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: c,
			Resource:    &v1.ObjectReference{ObjectType: "organization", ObjectId: "o"},
			Permission:  "view_dataset",
			Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "u0"}},
		})
		require.Error(t, err)
		code := status.Code(err)
		t.Logf("%T: %s: %v", c.GetRequirement(), code, err)
		require.NotContains(t, []codes.Code{codes.Internal, codes.Unknown}, code)
	}
}

// TestWatchDeliversTransactionMetadata watches a datastore while
// transactions with metadata commit: the metadata of each arrives with its
// revision's changes, as an audit stream needs it.
func TestWatchDeliversTransactionMetadata(t *testing.T) {
	ctx := t.Context()
	ds := newDatastore(t, syncNormal()...)
	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	changes, errs := ds.Watch(ctx, head.Revision, datastore.WatchOptions{Content: datastore.WatchRelationships | datastore.WatchCheckpoints})
	for i, actor := range []string{"user:alice", "user:bob"} {
		rev, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
			return rwt.WriteRelationships(ctx, []tuple.RelationshipUpdate{tuple.Touch(tuple.MustParse("doc:d#viewer@" + actor))})
		}, withActor(t, actor))
		require.NoError(t, err)
		for {
			select {
			case rc := <-changes:
				if rc.IsCheckpoint {
					continue
				}
				require.True(t, rc.Revision.Equal(rev), "change %d", i)
				require.Len(t, rc.Metadatas, 1)
				require.Equal(t, actor, rc.Metadatas[0].AsMap()["actor"])
				require.Len(t, rc.RelationshipChanges, 1)
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(5 * time.Second):
				t.Fatal("no change")
			}
			break
		}
	}
	// A watch from a revision newer than the head is refused.
	future, _ := ds.RevisionFromString("999999")
	_, errs = ds.Watch(ctx, future, datastore.WatchJustRelationships())
	var invalid datastore.InvalidRevisionError
	require.True(t, errors.As(<-errs, &invalid))
}

func withActor(t *testing.T, actor string) options.RWTOptionsOption {
	t.Helper()
	m, err := structpb.NewStruct(map[string]any{"actor": actor})
	require.NoError(t, err)
	return options.WithMetadata(m)
}

// TestAFreshStoreAdvertisesItsHead: within the quantization bucket it was
// created in, a store's optimized revision is its head, so that what was
// written at start-up (the schema, a seed) is visible to minimize-latency
// reads at once, as on SpiceDB's memory datastore.
func TestAFreshStoreAdvertisesItsHead(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, sqlite.WithRevisionQuantization(time.Hour))
	for _, rel := range []string{"doc:a#viewer@user:alice", "doc:b#viewer@user:bob"} {
		rev := writeRels(t, ds, rel)
		opt, err := ds.OptimizedRevision(ctx)
		require.NoError(t, err)
		require.True(t, opt.Revision.Equal(rev), "the optimized revision is the newest write")
	}
}

// A large transaction fills the writer's page cache (it may grow to 256
// MiB so that SQLite does not spill the transaction's pages); once it
// commits, the datastore gives back what is above a connection's cache
// size, instead of holding it for the life of the process (a
// million-relationship seed left `serve` at 591 MiB of RSS, 177 MiB once
// given back). Small transactions keep their cache.
func TestBulkImportGivesItsPageCacheBack(t *testing.T) {
	ds := newDatastore(t, append(syncNormal(), sqlite.WithCacheSize(2<<20))...)
	rels := make([]tuple.Relationship, 0, 60_000)
	for i := range cap(rels) {
		rels = append(rels, tuple.MustParse(fmt.Sprintf("doc:d%06d#owner@user:u%04d", i, i%500)))
	}
	var during int
	_, err := ds.ReadWriteTx(t.Context(), func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		n, err := rwt.BulkLoad(ctx, &sliceSource{rels: rels})
		if err != nil {
			return err
		}
		require.EqualValues(t, len(rels), n)
		during, err = sqlite.WriterCacheUsed(ds)
		return err
	})
	require.NoError(t, err)
	after, err := sqlite.WriterCacheUsed(ds)
	require.NoError(t, err)
	assert.Greater(t, during, 4<<20, "the import's pages are in the writer's cache while it runs")
	assert.Less(t, after, 1<<20, "and given back once it committed")

	writeRels(t, ds, "doc:small#owner@user:u0001")
	kept, err := sqlite.WriterCacheUsed(ds)
	require.NoError(t, err)
	assert.Positive(t, kept, "a small write keeps its pages cached")
	assert.Less(t, kept, 2<<20)

	head, err := ds.HeadRevision(t.Context())
	require.NoError(t, err)
	assert.Equal(t, len(rels)+1, len(readRels(t, ds, head.Revision)), "everything written is there")
}
