package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// capturedQuery is one distinct SQL text a datastore ran for one step (the
// same text in two steps is captured twice), with the arguments of its
// first run.
type capturedQuery struct {
	sql  string
	args []any
	from string // what issued it
}

type queryCapture struct {
	mu      sync.Mutex
	current string
	seen    map[string]capturedQuery
}

func (c *queryCapture) observe(query string, args []any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := c.current + "\x00" + query
	if _, ok := c.seen[key]; !ok {
		c.seen[key] = capturedQuery{sql: query, args: append([]any(nil), args...), from: c.current}
	}
}

func (c *queryCapture) during(what string, f func()) {
	c.mu.Lock()
	c.current = what
	c.mu.Unlock()
	f()
}

// TestQueryPlansUseIndexes runs the questions of Spicegate's hot paths (a
// dataset check, an organization check, a bulk check of 100 datasets,
// LookupResources and LookupSubjects) through a real SpiceDB on the SQLite
// datastore, plus the datastore's relationship read shapes directly, records
// every SQL statement they issue, and runs EXPLAIN QUERY PLAN on each: none
// may scan the relationships table (or one of its indexes) from end to end,
// and the lookups' sorted reverse reads must not sort (the subject index
// order is their sort order).
func TestQueryPlansUseIndexes(t *testing.T) {
	ds := newDatastore(t, syncNormal()...)
	capture := &queryCapture{seen: map[string]capturedQuery{}}
	sqlite.ObserveQueries(ds, capture.observe)

	conn := startServer(t, ds)
	writeSchema(t, conn)
	shape := platformShape{orgs: 10, members: 10, datasets: 50}
	shape.load(t, conn)

	ctx := context.Background()
	perms := v1.NewPermissionsServiceClient(conn)
	full := &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	user := &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: userID(3, 1)}}

	capture.during("CheckPermission dataset#view", func() {
		resp, err := perms.CheckPermission(ctx, &v1.CheckPermissionRequest{Consistency: full,
			Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: datasetID(3, 7)}, Permission: "view", Subject: user})
		require.NoError(t, err)
		require.Equal(t, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, resp.GetPermissionship())
	})
	capture.during("CheckPermission organization#deploy", func() {
		_, err := perms.CheckPermission(ctx, &v1.CheckPermissionRequest{Consistency: full,
			Resource: &v1.ObjectReference{ObjectType: "organization", ObjectId: orgID(3)}, Permission: "deploy", Subject: user})
		require.NoError(t, err)
	})
	capture.during("CheckBulkPermissions 100 datasets", func() {
		var items []*v1.CheckBulkPermissionsRequestItem
		for d := range 100 {
			items = append(items, &v1.CheckBulkPermissionsRequestItem{
				Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: datasetID(d%shape.orgs, d)}, Permission: "view", Subject: user})
		}
		_, err := perms.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Consistency: full, Items: items})
		require.NoError(t, err)
	})
	capture.during("LookupResources dataset#view", func() {
		stream, err := perms.LookupResources(ctx, &v1.LookupResourcesRequest{Consistency: full, ResourceObjectType: "dataset", Permission: "view", Subject: user})
		require.NoError(t, err)
		n := 0
		for {
			_, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			n++
		}
		require.Equal(t, shape.datasets, n)
	})
	capture.during("LookupSubjects dataset#view", func() {
		stream, err := perms.LookupSubjects(ctx, &v1.LookupSubjectsRequest{Consistency: full,
			Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: datasetID(3, 7)}, Permission: "view", SubjectObjectType: "user"})
		require.NoError(t, err)
		for {
			_, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
		}
	})

	// The datastore's read shapes, directly.
	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	reader := ds.SnapshotReader(head.Revision)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = datasetID(i%shape.orgs, i)
	}
	cursor := options.ToCursor(tuple.MustParse("dataset:ds1-1#organization@organization:org1"))
	userSel := datastore.SubjectsSelector{OptionalSubjectType: "user", OptionalSubjectIds: []string{userID(1, 1)}}
	shapes := map[string]func() (datastore.RelationshipIterator, error){
		"resource IDs and relation": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "dataset", OptionalResourceIds: ids, OptionalResourceRelation: "organization"})
		},
		"resource IDs, any relation": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "dataset", OptionalResourceIds: ids[:3]})
		},
		"resource ID prefix": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "dataset", OptionalResourceIDPrefix: "ds1-"})
		},
		"resource IDs and subject": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "organization", OptionalResourceIds: []string{orgID(1)},
				OptionalResourceRelation: "user", OptionalSubjectsSelectors: []datastore.SubjectsSelector{userSel}})
		},
		"one resource, any relation, subject": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "organization", OptionalResourceIds: []string{orgID(1)},
				OptionalSubjectsSelectors: []datastore.SubjectsSelector{userSel}})
		},
		"resource type and subject": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "organization",
				OptionalSubjectsSelectors: []datastore.SubjectsSelector{userSel}})
		},
		"sorted by resource after a cursor, limited": func() (datastore.RelationshipIterator, error) {
			return reader.QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "dataset"},
				options.WithSort(options.ByResource), options.WithAfter(cursor), options.WithLimit(ptr(uint64(100))))
		},
		"reverse: subject IDs and resource relation": func() (datastore.RelationshipIterator, error) {
			return reader.ReverseQueryRelationships(ctx, datastore.SubjectsFilter{SubjectType: "organization", OptionalSubjectIds: []string{orgID(1), orgID(2)},
				RelationFilter: datastore.SubjectRelationFilter{}.WithEllipsisRelation()},
				options.WithResRelation(&options.ResourceRelation{Namespace: "dataset", Relation: "organization"}),
				options.WithSortForReverse(options.BySubject), options.WithAfterForReverse(cursor))
		},
		"reverse: subject, any resource": func() (datastore.RelationshipIterator, error) {
			return reader.ReverseQueryRelationships(ctx, datastore.SubjectsFilter{SubjectType: "user", OptionalSubjectIds: []string{userID(1, 1)}})
		},
	}
	names := make([]string, 0, len(shapes))
	for name := range shapes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		capture.during("datastore read: "+name, func() {
			it, err := shapes[name]()
			require.NoError(t, err)
			for _, err := range it {
				require.NoError(t, err)
			}
		})
	}
	sqlite.ObserveQueries(ds, nil)

	db, err := sql.Open("sqlite", "file:"+ds.Path()+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()

	froms := map[string]bool{}
	checked := 0
	for _, q := range capture.seen {
		if !strings.Contains(q.sql, "FROM relationships") {
			continue
		}
		plan := explain(t, db, q)
		t.Logf("%s:\n  %s\n  plan: %s", q.from, q.sql, strings.Join(plan, " | "))
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN relationships") {
				t.Errorf("%s scans the relationships table: %s\n  SQL: %s", q.from, step, q.sql)
			}
		}
		// An organization's rows are its members: finding one member's
		// roles must seek each relation with the member's key, not read
		// the whole membership under the organization's ID.
		if q.from == "datastore read: one resource, any relation, subject" &&
			!slices.Contains(plan, "SEARCH relationships USING PRIMARY KEY (namespace=? AND object_id=? AND relation=? AND subject_namespace=? AND subject_object_id=?)") {
			t.Errorf("%s does not seek the member's key under each relation: %s\n  SQL: %s", q.from, strings.Join(plan, " | "), q.sql)
		}
		if strings.HasPrefix(q.from, "LookupResources") && strings.Contains(q.sql, "INDEXED BY") {
			for _, step := range plan {
				if strings.Contains(step, "TEMP B-TREE") {
					t.Errorf("%s sorts its reverse read: %s\n  SQL: %s", q.from, step, q.sql)
				}
			}
		}
		froms[q.from] = true
		checked++
	}
	for _, what := range []string{"datastore read: one resource, any relation, subject", "CheckPermission dataset#view", "CheckBulkPermissions 100 datasets", "LookupResources dataset#view", "LookupSubjects dataset#view"} {
		require.True(t, froms[what], "no relationship query recorded for %s", what)
	}
	t.Logf("%d relationship queries explained", checked)
}

func explain(t *testing.T, db *sql.DB, q capturedQuery) []string {
	t.Helper()
	plan, err := sqlite.QueryPlan(db, q.sql, q.args...)
	require.NoError(t, err, q.sql)
	return plan
}

func ptr[T any](v T) *T { return &v }
