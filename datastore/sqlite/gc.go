package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/authzed/spicedb/pkg/datastore"
)

// gcBatch is how many rows one garbage collection transaction deletes: small
// enough that writers waiting for the write lock are not held up for long.
const gcBatch = 1000

// gcLoop runs the garbage collector every GC interval until ctx ends.
func (d *Datastore) gcLoop(ctx context.Context) {
	defer close(d.gcDone)
	ticker := time.NewTicker(d.cfg.gcInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := d.RunGarbageCollection(ctx); err != nil && ctx.Err() == nil {
			d.cfg.logger.Warn("sqlite datastore: garbage collection failed", "path", d.path, "error", err)
		}
	}
}

// RunGarbageCollection collects garbage once, now: it deletes the row
// versions that no revision inside the GC window can see, relationships that
// expired more than a GC window ago, and the transactions and watch history
// older than the window. The background collector calls it every GC interval.
func (d *Datastore) RunGarbageCollection(ctx context.Context) error {
	if d.closed.Load() {
		return ErrClosed
	}
	return datastore.RunGarbageCollection(ctx, d, d.cfg.gcWindow)
}

// BuildGarbageCollector implements datastore.GarbageCollectableDatastore.
func (d *Datastore) BuildGarbageCollector(_ context.Context) (datastore.GarbageCollector, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	return &collector{d: d}, nil
}

// HasGCRun reports whether a garbage collection completed since the last
// ResetGCCompleted.
func (d *Datastore) HasGCRun() bool { return d.gcRan.Load() }

// MarkGCCompleted records that a garbage collection completed.
func (d *Datastore) MarkGCCompleted() { d.gcRan.Store(true) }

// ResetGCCompleted forgets that a garbage collection completed.
func (d *Datastore) ResetGCCompleted() { d.gcRan.Store(false) }

type collector struct {
	d      *Datastore
	locked bool
}

var _ datastore.GarbageCollector = (*collector)(nil)

// LockForGCRun makes sure one collection runs at a time.
func (c *collector) LockForGCRun(_ context.Context) (bool, error) {
	c.locked = c.d.gcMu.TryLock()
	return c.locked, nil
}

// UnlockAfterGCRun releases LockForGCRun's lock.
func (c *collector) UnlockAfterGCRun() error {
	if c.locked {
		c.locked = false
		c.d.gcMu.Unlock()
	}
	return nil
}

// Now is the clock of the GC window (the process's: the writer is here).
func (c *collector) Now(_ context.Context) (time.Time, error) { return time.Now(), nil }

// Close releases nothing: the collector holds no resources.
func (c *collector) Close() {}

// TxIDBefore returns the newest revision committed before t.
func (c *collector) TxIDBefore(ctx context.Context, t time.Time) (datastore.Revision, error) {
	var id int64
	err := c.d.readDB.QueryRowContext(ctx, `SELECT id FROM transactions WHERE timestamp < ? ORDER BY timestamp DESC LIMIT 1`, t.UnixNano()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return datastore.NoRevision, nil
	}
	if err != nil {
		return datastore.NoRevision, fmt.Errorf("find GC watermark: %w", err)
	}
	return revision(id), nil
}

// DeleteBeforeTx deletes what no revision at or after watermark can see:
// row versions deleted at or before it, the transactions before it (the
// watermark's own row stays, so the oldest readable revision stays known),
// and the watch history up to it.
func (c *collector) DeleteBeforeTx(ctx context.Context, watermark datastore.Revision) (datastore.DeletionCounts, error) {
	var counts datastore.DeletionCounts
	w, ok := watermark.(revision)
	if !ok {
		return counts, nil // nothing is old enough
	}
	var err error
	counts.Relationships, err = c.batchDelete(ctx,
		`SELECT namespace, object_id, relation, subject_namespace, subject_object_id, subject_relation, deleted_txn
		 FROM relationships WHERE deleted_txn <= ? AND deleted_txn < 9223372036854775807 LIMIT ?`,
		`DELETE FROM relationships WHERE namespace = ? AND object_id = ? AND relation = ? AND subject_namespace = ?
		 AND subject_object_id = ? AND subject_relation = ? AND deleted_txn = ?`, int64(w))
	if err != nil {
		return counts, err
	}
	var n int64
	for _, table := range []string{"namespaces", "caveats", "counters", "stored_schema"} {
		if n, err = c.deleteWhere(ctx, `DELETE FROM `+table+` WHERE deleted_txn <= ? AND deleted_txn < 9223372036854775807`, int64(w)); err != nil {
			return counts, err
		}
		if table == "namespaces" {
			counts.Namespaces = n
		}
	}
	if _, err = c.rangeDelete(ctx, `DELETE FROM changelog WHERE txn >= ? AND txn < ?`, `SELECT MIN(txn) FROM changelog`, int64(w)+1); err != nil {
		return counts, err
	}
	counts.Transactions, err = c.rangeDelete(ctx, `DELETE FROM transactions WHERE id >= ? AND id < ?`, `SELECT MIN(id) FROM transactions`, int64(w))
	return counts, err
}

// DeleteExpiredRels deletes relationships that expired more than a GC window
// ago (reads stopped returning them when they expired).
func (c *collector) DeleteExpiredRels(ctx context.Context) (int64, error) {
	cutoff := time.Now().Add(-c.d.cfg.gcWindow).UnixMicro()
	return c.batchDelete(ctx,
		`SELECT namespace, object_id, relation, subject_namespace, subject_object_id, subject_relation, deleted_txn
		 FROM relationships WHERE expiration IS NOT NULL AND expiration < ? LIMIT ?`,
		`DELETE FROM relationships WHERE namespace = ? AND object_id = ? AND relation = ? AND subject_namespace = ?
		 AND subject_object_id = ? AND subject_relation = ? AND deleted_txn = ?`, cutoff)
}

// batchDelete deletes, gcBatch rows per write transaction, the relationship
// rows that selectSQL finds (by their primary key). Live rows it deletes come
// off the relationship count.
func (c *collector) batchDelete(ctx context.Context, selectSQL, deleteSQL string, arg any) (int64, error) {
	var total int64
	for {
		n, err := c.inWriteTx(ctx, func(ctx context.Context) (int64, error) {
			var keys [][]any
			err := func() error {
				rows, err := c.d.writeConn.QueryContext(ctx, selectSQL, arg, gcBatch)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var ns, oid, rel, sns, soid, srel string
					var deleted int64
					if err := rows.Scan(&ns, &oid, &rel, &sns, &soid, &srel, &deleted); err != nil {
						return err
					}
					keys = append(keys, []any{ns, oid, rel, sns, soid, srel, deleted})
				}
				return rows.Err()
			}()
			if err != nil {
				return 0, err
			}
			var live int64
			for _, key := range keys {
				if _, err := c.d.exec(ctx, deleteSQL, key...); err != nil {
					return 0, err
				}
				if key[6].(int64) == liveTxn {
					live++
				}
			}
			if live > 0 {
				if _, err := c.d.exec(ctx, `UPDATE metadata SET value = CAST(value AS INTEGER) - ? WHERE key = 'relationship_count'`, live); err != nil {
					return 0, err
				}
			}
			return int64(len(keys)), nil
		})
		total += n
		if err != nil || n < gcBatch {
			return total, err
		}
	}
}

// rangeDelete deletes, in write transactions of gcBatch keys each, the rows
// whose integer key is below end.
func (c *collector) rangeDelete(ctx context.Context, deleteSQL, minSQL string, end int64) (int64, error) {
	var total int64
	for {
		var lo sql.NullInt64
		if err := c.d.readDB.QueryRowContext(ctx, minSQL).Scan(&lo); err != nil {
			return total, err
		}
		if !lo.Valid || lo.Int64 >= end {
			return total, nil
		}
		hi := min(lo.Int64+gcBatch, end)
		n, err := c.deleteWhere(ctx, deleteSQL, lo.Int64, hi)
		total += n
		if err != nil {
			return total, err
		}
	}
}

func (c *collector) deleteWhere(ctx context.Context, query string, args ...any) (int64, error) {
	return c.inWriteTx(ctx, func(ctx context.Context) (int64, error) {
		res, err := c.d.exec(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
}

// inWriteTx runs fn in a write transaction of its own (no new revision: the
// collector only deletes what no revision can see).
func (c *collector) inWriteTx(ctx context.Context, fn func(ctx context.Context) (int64, error)) (int64, error) {
	if err := c.d.acquireWrite(ctx); err != nil {
		return 0, err
	}
	defer c.d.releaseWrite()
	if err := c.d.beginWrite(ctx); err != nil {
		return 0, err
	}
	n, err := fn(ctx)
	if err != nil {
		_, _ = c.d.writeConn.ExecContext(context.Background(), `ROLLBACK`)
		return 0, err
	}
	if err := c.d.commitWrite(ctx); err != nil {
		_, _ = c.d.writeConn.ExecContext(context.Background(), `ROLLBACK`)
		return 0, err
	}
	return n, nil
}
