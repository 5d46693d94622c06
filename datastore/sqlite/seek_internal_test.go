package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	"github.com/authzed/spicedb/pkg/tuple"
)

// TestSeeks lists which reads run without an interrupt on their context:
// those SQLite reaches by seeking (see seeks). The reads of a check, a
// bulk check and a lookup are; the shapes an attacker's review found to
// scan (the read of subject sets, a subject's reads in resource order) are
// not; a check with a wildcard seeks its two subjects (subjectSelectors).
func TestSeeks(t *testing.T) {
	user := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: []string{"alice"}}
	ellipsis := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: []string{"alice"},
		RelationFilter: datastore.SubjectRelationFilter{}.WithEllipsisRelation()}
	wildcard := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: []string{"*"},
		RelationFilter: datastore.SubjectRelationFilter{}.WithEllipsisRelation()}
	subjectSets := datastore.SubjectsSelector{RelationFilter: datastore.SubjectRelationFilter{}.WithOnlyNonEllipsisRelations()}
	docs := datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"a", "b"}, OptionalResourceRelation: "viewer"}
	with := func(f datastore.RelationshipsFilter, sels ...datastore.SubjectsSelector) datastore.RelationshipsFilter {
		f.OptionalSubjectsSelectors = sels
		return f
	}
	for name, tc := range map[string]struct {
		filter datastore.RelationshipsFilter
		order  options.SortOrder
		seeks  bool
	}{
		"a tupleset read (arrow)":          {docs, options.Unsorted, true},
		"a check's direct subject":         {with(docs, ellipsis), options.Unsorted, true},
		"the same, in resource order":      {with(docs, ellipsis), options.ByResource, true},
		"a lookup's reverse read":          {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceRelation: "viewer", OptionalSubjectsSelectors: []datastore.SubjectsSelector{ellipsis}}, options.BySubject, true},
		"a check with a wildcard":          {with(docs, ellipsis, wildcard), options.Unsorted, true},
		"subjects of two types":            {with(docs, ellipsis, datastore.SubjectsSelector{OptionalSubjectType: "team", OptionalSubjectIds: []string{"x"}}), options.Unsorted, false},
		"a check's subject sets":           {with(docs, subjectSets), options.Unsorted, false},
		"resources without their relation": {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"a"}}, options.Unsorted, false},
		"resources in subject order":       {with(docs, ellipsis), options.BySubject, false},
		"a caveat filter": {func() datastore.RelationshipsFilter {
			f := docs
			f.OptionalCaveatNameFilter = datastore.WithCaveatName("c")
			return f
		}(), options.Unsorted, false},
		"a subject, any subject relation":    {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalSubjectsSelectors: []datastore.SubjectsSelector{user}}, options.ChooseEfficient, false},
		"a subject in resource order":        {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceRelation: "viewer", OptionalSubjectsSelectors: []datastore.SubjectsSelector{ellipsis}}, options.ByResource, false},
		"a resource relation without a type": {datastore.RelationshipsFilter{OptionalResourceRelation: "viewer", OptionalSubjectsSelectors: []datastore.SubjectsSelector{ellipsis}}, options.BySubject, false},
		"a resource type":                    {datastore.RelationshipsFilter{OptionalResourceType: "doc"}, options.Unsorted, false},
		"an ID prefix":                       {datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIDPrefix: "a"}, options.Unsorted, false},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.seeks, seeks(tc.filter, tc.order))
		})
	}
}

// TestSeeksSeek explains every read shape seeks admits, among generated
// combinations of filters and orders, on a file with data: SQLite's plan
// must search (never scan), never sort, and reach the subject's columns of
// the key when the read names subjects.
func TestSeeksSeek(t *testing.T) {
	d, rev := newSeekTestDatastore(t, 20)
	selectors := [][]datastore.SubjectsSelector{nil}
	for _, rf := range []datastore.SubjectRelationFilter{{}, datastore.SubjectRelationFilter{}.WithEllipsisRelation(),
		datastore.SubjectRelationFilter{}.WithNonEllipsisRelation("member"), datastore.SubjectRelationFilter{}.WithEllipsisRelation().WithNonEllipsisRelation("member"),
		datastore.SubjectRelationFilter{}.WithOnlyNonEllipsisRelations()} {
		for _, ids := range [][]string{nil, {"alice"}, {"alice", "bob", "carol"}} {
			sel := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: ids, RelationFilter: rf}
			wild := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: []string{"*"}, RelationFilter: datastore.SubjectRelationFilter{}.WithEllipsisRelation()}
			selectors = append(selectors, []datastore.SubjectsSelector{sel}, []datastore.SubjectsSelector{sel, sel}, []datastore.SubjectsSelector{sel, wild})
		}
	}
	explained := 0
	for _, typ := range []string{"", "doc"} {
		for _, ids := range [][]string{nil, {"001"}, {"001", "002", "003"}} {
			for _, rel := range []string{"", "viewer"} {
				for _, sels := range selectors {
					for _, order := range []options.SortOrder{options.ChooseEfficient, options.Unsorted, options.ByResource, options.BySubject} {
						filter := datastore.RelationshipsFilter{OptionalResourceType: typ, OptionalResourceIds: ids,
							OptionalResourceRelation: rel, OptionalSubjectsSelectors: sels}
						if !seeks(filter, order) {
							continue
						}
						query, args, err := buildRelQuery(rev.(revision), time.Now(), filter, order, nil, nil, nil, false)
						require.NoError(t, err)
						plan := explainPlan(t, d, query, args)
						for _, step := range plan {
							require.False(t, strings.HasPrefix(step, "SCAN"), "%+v %v scans: %v\n%s", filter, order, plan, query)
							require.NotContains(t, step, "TEMP B-TREE", "%+v %v sorts: %v\n%s", filter, order, plan, query)
						}
						joined := strings.Join(plan, " | ")
						if len(sels) > 0 {
							require.Contains(t, joined, "subject_object_id=", "%+v %v does not seek its subject: %v", filter, order, plan)
						}
						explained++
					}
				}
			}
		}
	}
	require.Greater(t, explained, 20)
	t.Logf("%d seek shapes explained", explained)
}

func explainPlan(t *testing.T, d *Datastore, query string, args []any) []string {
	t.Helper()
	plan, err := QueryPlan(d.readDB, query, args...)
	require.NoError(t, err, query)
	return plan
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
		"seek":     {OptionalResourceType: "doc", OptionalResourceIds: ids, OptionalResourceRelation: "viewer"},
		"not seek": {OptionalResourceType: "doc"},
	} {
		t.Run(name, func(t *testing.T) {
			query, args, err := buildRelQuery(rev.(revision), time.Now(), filter, options.ByResource, nil, nil, nil, false)
			require.NoError(t, err)
			r := d.SnapshotReader(rev).(*reader)

			// The whole read first: the filter matches the 50 rows.
			scanned := 0
			require.NoError(t, r.run(context.Background(), seeks(filter, options.ByResource), func(*sql.Rows) error { scanned++; return nil }, query, args...))
			require.Equal(t, 50, scanned)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			scanned = 0
			err = r.run(ctx, seeks(filter, options.ByResource), func(*sql.Rows) error {
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
