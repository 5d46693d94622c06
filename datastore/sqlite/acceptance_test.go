package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/test"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// newTester builds datastores for SpiceDB's acceptance suite, one file each.
// The suite's transactions are many and small; synchronous=NORMAL keeps the
// suite fast (durability is proved by TestDurabilityKill9 with the default).
func newTester() test.DatastoreTester {
	return test.DatastoreTesterFunc(func(tb testing.TB, rp test.RevisionParameters, watchBufferLength uint16) (datastore.Datastore, error) {
		path := filepath.Join(tb.TempDir(), "spicedb.sqlite")
		ds, err := sqlite.New(tb.Context(), path,
			sqlite.WithRevisionQuantization(rp.Quantization),
			sqlite.WithGCWindow(time.Duration(rp.GCRetentionWindow)),
			sqlite.WithGCInterval(time.Duration(rp.GCRunInterval)),
			sqlite.WithWatchBufferLength(watchBufferLength),
			sqlite.WithSynchronous(sqlite.SynchronousNormal),
			sqlite.WithBusyTimeout(2*time.Second),
		)
		if err != nil {
			return nil, err
		}
		tb.Cleanup(func() { _ = ds.Close() })
		return ds, nil
	})
}

// TestAcceptance runs SpiceDB's datastore acceptance suite
// (github.com/authzed/spicedb/pkg/datastore/test).
//
// Excepted category, and why it cannot apply:
//   - Migration: SpiceDB's MigrationTest migrates an engine registered in
//     SpiceDB's global engine registries (migration.RegisterMigratableEngine,
//     dsconfig.BuilderForEngine) step by step through a database URI. This
//     datastore is not one of SpiceDB's engines: it is handed to the server
//     with server.WithDatastore and migrates its own file inside New
//     (a versioned schema_migrations table); TestMigrations covers that.
func TestAcceptance(t *testing.T) {
	tester := test.NewTesterFactory(sqlite.ErrBusy).NewTester(newTester())
	test.AllWithExceptions(t, tester, test.WithCategories(test.MigrationCategory))
}
