package sqlite_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

func namespace(name string, relations ...string) *core.NamespaceDefinition {
	def := &core.NamespaceDefinition{Name: name}
	for _, r := range relations {
		def.Relation = append(def.Relation, &core.Relation{Name: r})
	}
	return def
}

func relationsOf(def *core.NamespaceDefinition) []string {
	var out []string
	for _, r := range def.GetRelation() {
		out = append(out, r.GetName())
	}
	return out
}

// TestDefinitionsCacheFollowsSchemaChanges reads namespace and caveat
// definitions around writes of relationships (which leave the definitions
// cached: no SQL reads them again) and writes, deletions and a rolled-back
// write of definitions: every read, at the head, at an older revision and
// inside the writing transaction, sees exactly the definitions live at its
// revision, with the revision that wrote them.
func TestDefinitionsCacheFollowsSchemaChanges(t *testing.T) {
	ctx := context.Background()
	ds := newDatastore(t, syncNormal()...)
	var defReads atomic.Int32
	sqlite.ObserveQueries(ds, func(query string, _ []any) {
		if strings.Contains(query, "FROM namespaces") || strings.Contains(query, "FROM caveats") {
			defReads.Add(1)
		}
	})
	writeDefs := func(f func(context.Context, datastore.ReadWriteTransaction) error) datastore.Revision {
		t.Helper()
		rev, err := ds.ReadWriteTx(ctx, f)
		require.NoError(t, err)
		return rev
	}
	readNS := func(rev datastore.Revision, name string) ([]string, datastore.Revision) {
		t.Helper()
		def, written, err := ds.SnapshotReader(rev).LegacyReadNamespaceByName(ctx, name)
		if errors.As(err, &datastore.NamespaceNotFoundError{}) {
			return nil, datastore.NoRevision
		}
		require.NoError(t, err)
		return relationsOf(def), written
	}

	r1 := writeDefs(func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		return rwt.LegacyWriteNamespaces(ctx, namespace("doc", "viewer"), namespace("folder", "owner"), namespace("user"))
	})
	r2 := writeRels(t, ds, "doc:a#viewer@user:alice")
	rels, written := readNS(r2, "doc")
	require.Equal(t, []string{"viewer"}, rels)
	require.True(t, written.Equal(r1))

	// Relationship writes leave the definitions cached: reads at the new
	// revisions, and inside a transaction that writes relationships, make
	// no SQL read of them.
	before := defReads.Load()
	r3 := writeRels(t, ds, "doc:b#viewer@user:bob")
	rels, written = readNS(r3, "doc")
	require.Equal(t, []string{"viewer"}, rels)
	require.True(t, written.Equal(r1))
	all, err := ds.SnapshotReader(r3).LegacyLookupNamespacesWithNames(ctx, []string{"folder", "user", "missing"})
	require.NoError(t, err)
	require.Len(t, all, 2)
	writeDefs(func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		def, _, err := rwt.LegacyReadNamespaceByName(ctx, "folder")
		require.NoError(t, err)
		require.Equal(t, []string{"owner"}, relationsOf(def))
		return nil
	})
	require.Equal(t, before, defReads.Load(), "definitions read from the file again")

	// A write of a definition: the transaction reads its own write; after
	// it, the head sees the new definition and an older revision the old.
	r4 := writeDefs(func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		if err := rwt.LegacyWriteNamespaces(ctx, namespace("doc", "viewer", "editor")); err != nil {
			return err
		}
		def, _, err := rwt.LegacyReadNamespaceByName(ctx, "doc")
		require.NoError(t, err)
		require.Equal(t, []string{"viewer", "editor"}, relationsOf(def))
		return nil
	})
	rels, written = readNS(r4, "doc")
	require.Equal(t, []string{"viewer", "editor"}, rels)
	require.True(t, written.Equal(r4))
	rels, written = readNS(r3, "doc")
	require.Equal(t, []string{"viewer"}, rels)
	require.True(t, written.Equal(r1))

	// A deletion.
	r5 := writeDefs(func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		return rwt.LegacyDeleteNamespaces(ctx, []string{"folder"}, datastore.DeleteNamespacesOnly)
	})
	rels, _ = readNS(r5, "folder")
	require.Nil(t, rels)
	rels, _ = readNS(r4, "folder")
	require.Equal(t, []string{"owner"}, rels)
	list, err := ds.SnapshotReader(r5).LegacyListAllNamespaces(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)

	// A write of a definition that rolls back changes nothing.
	_, err = ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		if err := rwt.LegacyWriteNamespaces(ctx, namespace("doc", "nothing")); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	require.Error(t, err)
	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	rels, written = readNS(head.Revision, "doc")
	require.Equal(t, []string{"viewer", "editor"}, rels)
	require.True(t, written.Equal(r4))

	// Caveats, the same way.
	r6 := writeDefs(func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		return rwt.LegacyWriteCaveats(ctx, []*core.CaveatDefinition{{Name: "weekday", SerializedExpression: []byte("a")}})
	})
	cav, written, err := ds.SnapshotReader(r6).LegacyReadCaveatByName(ctx, "weekday")
	require.NoError(t, err)
	require.Equal(t, []byte("a"), cav.GetSerializedExpression())
	require.True(t, written.Equal(r6))
	r7 := writeDefs(func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
		return rwt.LegacyDeleteCaveats(ctx, []string{"weekday"})
	})
	_, _, err = ds.SnapshotReader(r7).LegacyReadCaveatByName(ctx, "weekday")
	require.ErrorAs(t, err, &datastore.CaveatNameNotFoundError{})
	_, _, err = ds.SnapshotReader(r6).LegacyReadCaveatByName(ctx, "weekday")
	require.NoError(t, err)
}
