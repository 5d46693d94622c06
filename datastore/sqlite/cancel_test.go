package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// TestACanceledWriteIsAllOrNothing cancels write transactions at random
// moments of their run, the BEGIN and the COMMIT (with its sync to disk)
// included: a caller that gives up or whose deadline passes. Whatever the
// moment, the answer must be the truth: a revision, and the write is
// visible at it; or an error, and the write is nowhere, not even after
// the next commit. The next write must go through: the writer is never
// left inside a transaction nobody will end. SQLite's driver reports a
// statement as failed when the context ends while it runs, even when the
// statement completed, so a BEGIN or COMMIT must not be cancelable.
func TestACanceledWriteIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	ds, err := sqlite.New(ctx, filepath.Join(t.TempDir(), "cancel.sqlite"))
	require.NoError(t, err)
	defer ds.Close()

	write := func(ctx context.Context, rel string) (datastore.Revision, error) { return touchRels(ctx, ds, rel) }
	visible := func(rev datastore.Revision, rel string) bool {
		r := tuple.MustParse(rel)
		it, err := ds.SnapshotReader(rev).QueryRelationships(ctx, datastore.RelationshipsFilter{
			OptionalResourceType: r.Resource.ObjectType, OptionalResourceIds: []string{r.Resource.ObjectID},
		})
		require.NoError(t, err)
		for _, err := range it {
			require.NoError(t, err)
			return true
		}
		return false
	}

	// How long a write takes here (once warm), to cancel across the whole
	// of one: the delays sweep evenly from 0 to twice that.
	for i := range 20 {
		_, err := write(ctx, fmt.Sprintf("doc:warm%d#viewer@user:u", i))
		require.NoError(t, err)
	}
	start := time.Now()
	for i := range 20 {
		_, err := write(ctx, fmt.Sprintf("doc:timed%d#viewer@user:u", i))
		require.NoError(t, err)
	}
	span := 2 * time.Since(start) / 20

	failed := 0
	for i := range 500 {
		rel := fmt.Sprintf("doc:d%d#viewer@user:u", i)
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(span*time.Duration(i)/500, cancel)
		rev, err := write(cctx, rel)
		timer.Stop()
		cancel()
		if err == nil {
			require.True(t, visible(rev, rel), "write %d answered revision %v but is not visible at it", i, rev)
		} else {
			failed++
		}
		// The writer still works, and its commit makes everything
		// committed before it visible.
		next, nerr := write(ctx, fmt.Sprintf("doc:next%d#viewer@user:u", i))
		require.NoError(t, nerr, "the write after write %d (which answered %v)", i, err)
		if err != nil {
			require.False(t, visible(next, rel), "write %d answered %v but was committed", i, err)
		}
	}
	t.Logf("%d of 500 writes canceled in time to fail (span %s)", failed, span)
	require.Positive(t, failed, "no cancellation landed inside a write: the test measured nothing")
}

// TestAWriterLeftInATransactionRecovers: should any path ever leave the
// write connection inside a transaction, the next write rolls it back and
// goes through, instead of every write failing until a restart.
func TestAWriterLeftInATransactionRecovers(t *testing.T) {
	ctx := context.Background()
	ds, err := sqlite.New(ctx, filepath.Join(t.TempDir(), "stuck.sqlite"))
	require.NoError(t, err)
	defer ds.Close()
	writeRels(t, ds, "doc:a#viewer@user:alice")
	require.NoError(t, sqlite.LeaveTransactionOpen(ctx, ds))
	rev := writeRels(t, ds, "doc:b#viewer@user:bob")
	require.Equal(t, []string{"doc:a#viewer@user:alice", "doc:b#viewer@user:bob"}, readRels(t, ds, rev))
}
