// Package sqlite is a SpiceDB datastore (datastore.Datastore of
// github.com/authzed/spicedb/pkg/datastore) on a single SQLite file, for an
// embedded SpiceDB server:
//
//	ds, err := sqlite.New(ctx, "/var/lib/spicegate/spicedb.sqlite")
//	if err != nil { ... }
//	defer ds.Close()
//	srv, err := server.NewConfigWithOptionsAndDefaults(
//		server.WithDatastore(ds),
//		// ...
//	).Complete(ctx)
//
// It is durable (write-ahead log, synced at every commit by default),
// indexed for SpiceDB's access paths, and keeps MVCC history: every write
// transaction gets the next revision (a transaction ID, with its commit time
// recorded), relationship rows carry the revisions that created and deleted
// them, and a read at revision R sees exactly what was live at R. It
// supports everything SpiceDB's API relies on: quantized optimized
// revisions, ZedTokens and every consistency mode, caveats, relationship
// expiration, the legacy and the unified schema storage, Watch (relationship
// and schema changes, checkpoints, per-transaction metadata), bulk import,
// relationship counters, statistics, cursors, limited deletes, retries,
// and garbage collection within a GC window. Backup makes an online copy.
//
// The driver is modernc.org/sqlite (pure Go, no cgo). One process uses a
// file at a time: New locks FILE.lock and fails with ErrLocked, naming the
// file, if another process has it. Within the process, reads run on a pool
// of read connections and never wait for writes; writes are serialized on
// one write connection.
//
// See README.md in this directory for the design (tables, indexes, PRAGMAs,
// durability guarantees), the driver measurements and the limits.
package sqlite
