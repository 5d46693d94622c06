package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// writeMany writes n relationships doc:PREFIX-i#viewer@user:u in one
// transaction, each with a long ID so that they need pages.
func writeMany(ctx context.Context, ds datastore.Datastore, prefix string, n int) (datastore.Revision, error) {
	rels := make([]string, n)
	for i := range rels {
		rels[i] = fmt.Sprintf("doc:%s-%d-%064d#viewer@user:u", prefix, i, i)
	}
	return touchRels(ctx, ds, rels...)
}

// capFile caps ds's file at room pages more than it holds now (SQLite's
// max_page_count, which fails a write as a full disk does).
func capFile(t *testing.T, ds *sqlite.Datastore, room int) {
	t.Helper()
	pages, err := sqlite.PageCount(context.Background(), ds)
	require.NoError(t, err)
	require.NoError(t, sqlite.LimitPages(context.Background(), ds, pages+room))
}

// requireFull checks that err is a full disk, told as such to SpiceDB's
// clients.
func requireFull(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, sqlite.ErrFull)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "the gRPC status SpiceDB passes on: %v", err)
	require.Contains(t, err.Error(), "disk is full")
}

// TestAFullDatabaseFailsWritesCleanly caps the file (SQLite's
// max_page_count, which fails a write as a full disk does): a write that
// needs more room fails with ErrFull and applies nothing, reads go on, and
// once there is room again writes go on without a restart.
func TestAFullDatabaseFailsWritesCleanly(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t)
	kept := writeRels(t, ds, "doc:kept#viewer@user:alice")

	capFile(t, ds, 0)
	_, err := writeMany(ctx, ds, "big", 2000)
	requireFull(t, err)

	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	require.True(t, head.Revision.Equal(kept), "the failed write moved the head")
	require.Equal(t, []string{"doc:kept#viewer@user:alice"}, readRels(t, ds, head.Revision))

	require.NoError(t, sqlite.LimitPages(ctx, ds, 0))
	rev := writeRels(t, ds, "doc:after#viewer@user:bob")
	require.Equal(t, []string{"doc:after#viewer@user:bob", "doc:kept#viewer@user:alice"}, readRels(t, ds, rev),
		"nothing of the failed write, and the next one")
}

// TestAFullDiskFailsWritesCleanly puts the file on a small tmpfs and
// writes until the disk is full, as a real disk fills: the writes that
// failed left nothing, reads go on, writes go on once the disk has room
// (no restart), and the file opens again holding exactly what was
// acknowledged. Mounting needs root: the test is skipped without it,
// unless SPICEGATE_TEST_MOUNT=1 (as .ci/run sets) makes that a failure.
func TestAFullDiskFailsWritesCleanly(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("SPICEGATE_TEST_MOUNT") == "1" {
			t.Fatalf("mount a tmpfs (SPICEGATE_TEST_MOUNT=1): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (needs root; SPICEGATE_TEST_MOUNT=1 makes this a failure): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	ctx := context.Background()
	path := filepath.Join(dir, "full.sqlite")
	ds, err := sqlite.New(ctx, path)
	require.NoError(t, err)

	var acknowledged []string
	full := false
	for i := 0; i < 1000 && !full; i++ {
		prefix := fmt.Sprintf("w%d", i)
		_, err := writeMany(ctx, ds, prefix, 50)
		if err != nil {
			requireFull(t, err)
			full = true
			break
		}
		for j := range 50 {
			acknowledged = append(acknowledged, fmt.Sprintf("doc:%s-%d-%064d#viewer@user:u", prefix, j, j))
		}
	}
	require.True(t, full, "2 MiB never filled up")
	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	slices.Sort(acknowledged)
	require.Equal(t, acknowledged, readRels(t, ds, head.Revision), "reads go on, and see exactly what was acknowledged")

	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	rev := writeRels(t, ds, "doc:after#viewer@user:bob")
	acknowledged = append(acknowledged, "doc:after#viewer@user:bob")
	slices.Sort(acknowledged)
	require.Equal(t, acknowledged, readRels(t, ds, rev), "writes go on once there is room, and the failed one left nothing")
	require.NoError(t, ds.Close())

	ds, err = sqlite.New(ctx, path)
	require.NoError(t, err)
	defer ds.Close()
	head, err = ds.HeadRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, acknowledged, readRels(t, ds, head.Revision), "the file, opened again")
}

// TestAFailedStatementEndsTheTransaction: on a full disk SQLite rolls the
// whole transaction back, so a caller that ignored the error and wrote on
// would write outside any transaction, each statement applied at once
// (a relationship at a revision that never commits, a changelog row that
// later collides with the next transaction's: every write after failed).
// After a failed statement every statement and the commit fail, with the
// first error, and the file holds nothing of the transaction.
func TestAFailedStatementEndsTheTransaction(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t)
	kept := writeRels(t, ds, "doc:kept#viewer@user:alice")

	capFile(t, ds, 2)
	var full, after error
	_, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		touch := func(rel string) error {
			return rwt.WriteRelationships(ctx, []tuple.RelationshipUpdate{tuple.Touch(tuple.MustParse(rel))})
		}
		require.NoError(t, touch("doc:a#viewer@user:u"))
		for i := 0; i < 5000 && full == nil; i++ {
			full = touch(fmt.Sprintf("doc:big-%d-%0200d#viewer@user:u", i, i))
		}
		after = touch("doc:b#viewer@user:u")
		return nil // a caller that ignores both
	})
	requireFull(t, full)
	requireFull(t, after)
	requireFull(t, err)
	require.NoError(t, sqlite.LimitPages(ctx, ds, 0))

	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	require.True(t, head.Revision.Equal(kept), "the failed transaction moved the head")
	require.Equal(t, []string{"doc:kept#viewer@user:alice"}, readRels(t, ds, head.Revision))
	var rev datastore.Revision
	for i := range 3 {
		rev = writeRels(t, ds, fmt.Sprintf("doc:next%d#viewer@user:u", i))
	}
	require.Equal(t, []string{"doc:kept#viewer@user:alice", "doc:next0#viewer@user:u", "doc:next1#viewer@user:u", "doc:next2#viewer@user:u"},
		readRels(t, ds, rev), "nothing of the failed transaction, even after later commits")
	stats, err := ds.Statistics(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 4, stats.EstimatedRelationshipCount, "the relationship count")
}

// TestAFullDiskReachesSpiceDBsClients: through a real SpiceDB, a write on a
// full file answers ResourceExhausted with the cause, not Unknown.
func TestAFullDiskReachesSpiceDBsClients(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t)
	conn := startServer(t, ds)
	writeSchema(t, conn)
	capFile(t, ds, 0)
	var updates []*v1.RelationshipUpdate
	for i := range 500 {
		updates = append(updates, &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: &v1.Relationship{
			Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: fmt.Sprintf("d%d-%0100d", i, i)}, Relation: "owner",
			Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}}}})
	}
	_, err := v1.NewPermissionsServiceClient(conn).WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, err.Error(), "disk is full")

	require.NoError(t, sqlite.LimitPages(ctx, ds, 0))
	_, err = v1.NewPermissionsServiceClient(conn).WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
	require.NoError(t, err, "writes work again once there is room")
}
