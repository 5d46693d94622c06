package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	"github.com/authzed/spicedb/pkg/tuple"
)

// TestSeeks lists which reads run without an interrupt on their context:
// those that name their resources or their subjects by type and IDs.
func TestSeeks(t *testing.T) {
	user := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: []string{"alice"}}
	for name, tc := range map[string]struct {
		filter datastore.RelationshipsFilter
		seeks  bool
	}{
		"resources by type and IDs": {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"a", "b"}}, true},
		"and relation and subject": {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"a"},
			OptionalResourceRelation: "viewer", OptionalSubjectsSelectors: []datastore.SubjectsSelector{user}}, true},
		"subjects by type and IDs": {datastore.RelationshipsFilter{OptionalResourceType: "doc",
			OptionalSubjectsSelectors: []datastore.SubjectsSelector{user}}, true},
		"a resource type":            {datastore.RelationshipsFilter{OptionalResourceType: "doc"}, false},
		"a type and relation":        {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceRelation: "viewer"}, false},
		"an ID prefix":               {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIDPrefix: "a"}, false},
		"IDs without a type":         {datastore.RelationshipsFilter{OptionalResourceIds: []string{"a"}}, false},
		"subjects by type only":      {datastore.RelationshipsFilter{OptionalSubjectsSelectors: []datastore.SubjectsSelector{{OptionalSubjectType: "user"}}}, false},
		"two subject selectors":      {datastore.RelationshipsFilter{OptionalSubjectsSelectors: []datastore.SubjectsSelector{user, user}}, false},
		"a caveat name, no resource": {datastore.RelationshipsFilter{OptionalCaveatNameFilter: datastore.WithCaveatName("c")}, false},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.seeks, seeks(tc.filter))
		})
	}
}

func newSeekTestDatastore(t *testing.T, docs int) (*Datastore, datastore.Revision) {
	t.Helper()
	ctx := context.Background()
	d, err := New(ctx, filepath.Join(t.TempDir(), "seek.sqlite"), WithMaxReadConnections(2))
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	rev, err := d.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		var updates []tuple.RelationshipUpdate
		for i := range docs {
			updates = append(updates, tuple.Touch(tuple.MustParse(fmt.Sprintf("doc:%03d#viewer@user:alice", i))))
		}
		return rwt.WriteRelationships(ctx, updates)
	})
	require.NoError(t, err)
	return d, rev
}

// TestAReadStopsBetweenRowsWhenItsContextEnds: a seek runs without
// SQLite's interrupt, and every read (seek or not) checks its context
// between two rows: the rows after the end are not read.
func TestAReadStopsBetweenRowsWhenItsContextEnds(t *testing.T) {
	d, rev := newSeekTestDatastore(t, 50)
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("%03d", i)
	}
	for name, filter := range map[string]datastore.RelationshipsFilter{
		"seek":     {OptionalResourceType: "doc", OptionalResourceIds: ids},
		"not seek": {OptionalResourceType: "doc"},
	} {
		t.Run(name, func(t *testing.T) {
			query, args, err := buildRelQuery(rev.(revision), time.Now(), filter, options.ByResource, nil, nil, nil, false)
			require.NoError(t, err)
			r := d.SnapshotReader(rev).(*reader)

			// The whole read first: the filter matches the 50 rows.
			scanned := 0
			require.NoError(t, r.run(context.Background(), seeks(filter), func(*sql.Rows) error { scanned++; return nil }, query, args...))
			require.Equal(t, 50, scanned)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			scanned = 0
			err = r.run(ctx, seeks(filter), func(*sql.Rows) error {
				scanned++
				if scanned == 3 {
					cancel()
				}
				return nil
			}, query, args...)
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, 3, scanned, "rows were read after the context ended")
		})
	}
}

// TestAReadWaitingForAConnectionGivesUp: a read that finds every read
// connection taken waits under its context (a seek's query itself runs
// without it), and a read whose context has ended does not start.
func TestAReadWaitingForAConnectionGivesUp(t *testing.T) {
	d, rev := newSeekTestDatastore(t, 3)
	seek := datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"001"}}
	read := func(ctx context.Context) (int, error) {
		it, err := d.SnapshotReader(rev).QueryRelationships(ctx, seek)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, err := range it {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := read(ended)
	require.ErrorIs(t, err, context.Canceled)

	// Both places of the pool of two taken, as by two long reads.
	for range 2 {
		require.NoError(t, d.acquireRead(context.Background()))
	}
	ctx, cancelWait := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelWait()
	_, err = read(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// A place freed: the next read runs, and the one before left nothing
	// taken behind it.
	d.releaseRead()
	n, err := read(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	d.releaseRead()
	require.Empty(t, d.readSlots, "a read kept its place")
}
