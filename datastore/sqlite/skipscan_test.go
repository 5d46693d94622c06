package sqlite_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	"github.com/authzed/spicedb/pkg/tuple"
)

// bySubject is the read that seeks each relation of one resource in turn
// (skipScanRelations): one resource, any relation, subjects by type and ID.
func bySubject(resource string, subjectType string, ids ...string) datastore.RelationshipsFilter {
	return datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{resource},
		OptionalSubjectsSelectors: []datastore.SubjectsSelector{{OptionalSubjectType: subjectType, OptionalSubjectIds: ids}}}
}

func collect(t *testing.T, it datastore.RelationshipIterator, err error) []string {
	t.Helper()
	require.NoError(t, err)
	var out []string
	for rel, err := range it {
		require.NoError(t, err)
		out = append(out, tuple.MustString(rel))
	}
	slices.Sort(out)
	return out
}

// TestOneResourceBySubjectReadsEveryRelation reads "what does this subject
// hold on this resource" from a resource with many rows under several
// relations, at two revisions, sorted and paged, and deletes by the same
// filter: the answers are exactly the live rows of that subject, whatever
// relation, subject relation, dead version or neighbouring resource sits
// beside them.
func TestOneResourceBySubjectReadsEveryRelation(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, syncNormal()...)
	rels := []string{
		"doc:a#editor@user:alice", "doc:a#owner@user:alice", "doc:a#viewer@user:alice",
		"doc:a#viewer@user:bob", "doc:a#viewer@group:eng#member", "doc:a#parent@folder:f",
		"doc:aa#viewer@user:alice", "doc:b#owner@user:alice", "folder:f#viewer@user:alice",
	}
	for i := range 300 { // a large resource: its other rows must not be what the read walks
		rels = append(rels, fmt.Sprintf("doc:a#viewer@user:u%03d", i))
	}
	r1 := writeRels(t, ds, rels...)
	r2, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		return rwt.WriteRelationships(ctx, []tuple.RelationshipUpdate{
			tuple.Delete(tuple.MustParse("doc:a#editor@user:alice")),
			tuple.Touch(tuple.MustParse("doc:a#admin@user:alice")),
			tuple.Touch(tuple.MustParse("doc:a#viewer@group:eng")),
		})
	})
	require.NoError(t, err)

	read := func(rev datastore.Revision, f datastore.RelationshipsFilter, opts ...options.QueryOptionsOption) []string {
		it, err := ds.SnapshotReader(rev).QueryRelationships(ctx, f, opts...)
		return collect(t, it, err)
	}
	require.Equal(t, []string{"doc:a#editor@user:alice", "doc:a#owner@user:alice", "doc:a#viewer@user:alice"},
		read(r1, bySubject("a", "user", "alice")))
	require.Equal(t, []string{"doc:a#admin@user:alice", "doc:a#owner@user:alice", "doc:a#viewer@user:alice"},
		read(r2, bySubject("a", "user", "alice")))
	require.Equal(t, []string{"doc:a#admin@user:alice", "doc:a#owner@user:alice", "doc:a#viewer@user:alice", "doc:a#viewer@user:bob", "doc:a#viewer@user:u007"},
		read(r2, bySubject("a", "user", "alice", "bob", "u007")))
	require.Equal(t, []string{"doc:a#viewer@group:eng", "doc:a#viewer@group:eng#member"}, read(r2, bySubject("a", "group", "eng")))
	require.Empty(t, read(r2, bySubject("a", "user", "carol")))
	require.Empty(t, read(r2, bySubject("nothing", "user", "alice")))

	// Paged one at a time with a cursor, in resource order.
	var paged []string
	var after options.Cursor
	for range 10 {
		opts := []options.QueryOptionsOption{options.WithSort(options.ByResource), options.WithLimit(ptr(uint64(1)))}
		if after != nil {
			opts = append(opts, options.WithAfter(after))
		}
		it, err := ds.SnapshotReader(r2).QueryRelationships(ctx, bySubject("a", "user", "alice"), opts...)
		require.NoError(t, err)
		var page []tuple.Relationship
		for rel, err := range it {
			require.NoError(t, err)
			page = append(page, rel)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, tuple.MustString(page[0]))
		after = options.ToCursor(page[0])
	}
	require.Equal(t, []string{"doc:a#admin@user:alice", "doc:a#owner@user:alice", "doc:a#viewer@user:alice"}, paged)

	// Deleting by the same filter deletes exactly those rows.
	r3, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		n, _, err := rwt.DeleteRelationships(ctx, &v1.RelationshipFilter{ResourceType: "doc", OptionalResourceId: "a",
			OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: "alice"}})
		require.EqualValues(t, 3, n)
		return err
	})
	require.NoError(t, err)
	require.Empty(t, read(r3, bySubject("a", "user", "alice")))
	require.Equal(t, []string{"doc:aa#viewer@user:alice", "doc:b#owner@user:alice"},
		read(r3, datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalSubjectsSelectors: []datastore.SubjectsSelector{
			{OptionalSubjectType: "user", OptionalSubjectIds: []string{"alice"}}}}))
	require.Len(t, read(r3, datastore.RelationshipsFilter{OptionalResourceType: "doc", OptionalResourceIds: []string{"a"}}), 300+4)
}

// TestLimitedReadsStopAtTheLimit reads and deletes with limits that are not
// powers of two (the SQL's LIMIT is rounded up to one, and the reader stops
// at the limit itself): exactly the limit's first rows come back, in order,
// and a limited delete deletes exactly that many.
func TestLimitedReadsStopAtTheLimit(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, syncNormal()...)
	var rels []string
	for i := range 10 {
		rels = append(rels, fmt.Sprintf("doc:d#viewer@user:u%02d", i))
	}
	rev := writeRels(t, ds, rels...)
	for _, limit := range []uint64{1, 3, 5, 7, 10, 11, 1000} {
		it, err := ds.SnapshotReader(rev).QueryRelationships(ctx, datastore.RelationshipsFilter{OptionalResourceType: "doc"},
			options.WithSort(options.ByResource), options.WithLimit(ptr(limit)))
		got := collect(t, it, err)
		require.Equal(t, rels[:min(limit, 10)], got, "limit %d", limit)
	}

	var deleted uint64
	var reached bool
	_, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		var err error
		deleted, reached, err = rwt.DeleteRelationships(ctx, &v1.RelationshipFilter{ResourceType: "doc"}, options.WithDeleteLimit(ptr(uint64(3))))
		return err
	})
	require.NoError(t, err)
	require.EqualValues(t, 3, deleted)
	require.True(t, reached)
	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	require.Len(t, readRels(t, ds, head.Revision), 7)
}
