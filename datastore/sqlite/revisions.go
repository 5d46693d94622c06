package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/authzed/spicedb/pkg/datastore"
)

// revision is a transaction ID: every write transaction gets the next one.
type revision uint64

var _ datastore.Revision = revision(0)

func toRevision(r datastore.Revision) (revision, error) {
	switch rr := r.(type) {
	case revision:
		return rr, nil
	case nil:
		return 0, datastore.NewInvalidRevisionErr(datastore.NoRevision, datastore.CouldNotDetermineRevision)
	}
	if r == datastore.NoRevision {
		return 0, datastore.NewInvalidRevisionErr(r, datastore.CouldNotDetermineRevision)
	}
	return 0, datastore.NewInvalidRevisionErr(r, datastore.CouldNotDetermineRevision)
}

func (r revision) other(rhs datastore.Revision) uint64 {
	if o, ok := rhs.(revision); ok {
		return uint64(o)
	}
	return 0 // NoRevision (and foreign revisions) sort before every revision
}

// Equal reports whether both are the same revision.
func (r revision) Equal(rhs datastore.Revision) bool { return uint64(r) == r.other(rhs) }

// GreaterThan reports whether r is newer than rhs.
func (r revision) GreaterThan(rhs datastore.Revision) bool { return uint64(r) > r.other(rhs) }

// LessThan reports whether r is older than rhs.
func (r revision) LessThan(rhs datastore.Revision) bool { return uint64(r) < r.other(rhs) }

// ByteSortable is false: decimal strings of different lengths do not sort.
func (r revision) ByteSortable() bool { return false }

// String is the decimal transaction ID, as it appears in ZedTokens.
func (r revision) String() string { return strconv.FormatUint(uint64(r), 10) }

// InexactFloat64 lets SpiceDB's metrics report the revision.
func (r revision) InexactFloat64() float64 { return float64(r) }

// RevisionFromString parses a revision serialized by String (the revision
// inside a ZedToken).
func (d *Datastore) RevisionFromString(s string) (datastore.Revision, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return datastore.NoRevision, fmt.Errorf("invalid SQLite datastore revision %q", s)
	}
	return revision(n), nil
}

// head is the newest committed revision, the schema hash visible at it,
// and its commit timestamp (Unix nanoseconds).
type head struct {
	rev        revision
	schemaHash string
	ts         int64
}

// HeadRevision returns the newest committed revision. The writer is in this
// process, so it is known without a query.
func (d *Datastore) HeadRevision(_ context.Context) (datastore.RevisionWithSchemaHash, error) {
	if d.closed.Load() {
		return datastore.RevisionWithSchemaHash{}, ErrClosed
	}
	h := d.head.Load()
	return datastore.RevisionWithSchemaHash{Revision: h.rev, SchemaHash: h.schemaHash}, nil
}

type optimizedCache struct {
	rev        revision
	schemaHash string
	validUntil time.Time
}

// OptimizedRevision returns a revision shared by every caller within a
// quantization interval, as SpiceDB's SQL datastores do: the newest revision
// committed before the interval began (or the first one committed in it).
// Reads at it are served by SpiceDB's caches for the whole interval.
func (d *Datastore) OptimizedRevision(ctx context.Context) (datastore.RevisionWithSchemaHash, error) {
	if d.closed.Load() {
		return datastore.RevisionWithSchemaHash{}, ErrClosed
	}
	q := d.cfg.quantization
	if q <= 0 {
		return d.HeadRevision(ctx)
	}
	now := time.Now()
	bucketStart := now.Truncate(q)
	if h := d.head.Load(); h.ts < bucketStart.UnixNano() {
		// Nothing was committed in this interval: the newest revision
		// committed before it is the head, known without a query (the
		// writer is in this process). The common case under a read load.
		return datastore.RevisionWithSchemaHash{Revision: h.rev, SchemaHash: h.schemaHash}, nil
	}
	d.optMu.Lock()
	defer d.optMu.Unlock()
	if c := d.optimized; c != nil && now.Before(c.validUntil) {
		return datastore.RevisionWithSchemaHash{Revision: c.rev, SchemaHash: c.schemaHash}, nil
	}
	var rev int64
	var inBucket, youngerThanBucket bool
	err := d.readDB.QueryRowContext(ctx, `SELECT COALESCE(
		(SELECT id FROM transactions WHERE timestamp >= ? ORDER BY timestamp LIMIT 1),
		(SELECT MAX(id) FROM transactions)),
		EXISTS (SELECT 1 FROM transactions WHERE timestamp >= ?),
		(SELECT MIN(timestamp) FROM transactions) > ?`, bucketStart.UnixNano(), bucketStart.UnixNano(), bucketStart.UnixNano()).Scan(&rev, &inBucket, &youngerThanBucket)
	if err != nil {
		return datastore.RevisionWithSchemaHash{}, fmt.Errorf("compute optimized revision: %w", err)
	}
	if youngerThanBucket {
		// The store was created within this bucket: rounding down lands
		// before its first revision, which would hide the schema written
		// at start-up. Advertise the head instead, as SpiceDB's memory
		// datastore does (not cached: the head moves).
		return d.HeadRevision(ctx)
	}
	// The head may have been committed after the query's snapshot; never
	// return a revision newer than what this process knows is committed.
	if h := d.head.Load(); revision(rev) > h.rev {
		rev = int64(h.rev)
	}
	hash, err := d.schemaHashAt(ctx, d.readDB, revision(rev))
	if err != nil {
		return datastore.RevisionWithSchemaHash{}, err
	}
	// The first transaction of the bucket stays the answer until the bucket
	// ends. Without one, the answer is the latest transaction only until a
	// transaction arrives in this bucket: caching it would hide that
	// transaction (a schema written at start-up, say) for up to a bucket.
	if inBucket {
		d.optimized = &optimizedCache{rev: revision(rev), schemaHash: hash, validUntil: bucketStart.Add(q)}
	}
	return datastore.RevisionWithSchemaHash{Revision: revision(rev), SchemaHash: hash}, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (d *Datastore) schemaHashAt(ctx context.Context, q queryRower, rev revision) (string, error) {
	var hash string
	err := q.QueryRowContext(ctx, `SELECT hash FROM stored_schema WHERE created_txn <= ? AND deleted_txn > ? ORDER BY created_txn DESC LIMIT 1`,
		int64(rev), int64(rev)).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read schema hash: %w", err)
	}
	return hash, nil
}

// CheckRevision reports whether a revision can be read: it must be a
// revision of this datastore (not newer than its head: a ZedToken from
// another datastore is rejected with CouldNotDetermineRevision), and not
// older than the GC window (RevisionStale). The head is always readable.
func (d *Datastore) CheckRevision(ctx context.Context, r datastore.Revision) error {
	if d.closed.Load() {
		return ErrClosed
	}
	rev, err := toRevision(r)
	if err != nil {
		return err
	}
	h := d.head.Load()
	if rev > h.rev {
		return datastore.NewInvalidRevisionErr(r, datastore.CouldNotDetermineRevision)
	}
	if rev == h.rev {
		return nil
	}
	oldest, err := d.oldestReadable(ctx)
	if err != nil {
		return err
	}
	if rev < oldest {
		return datastore.NewInvalidRevisionErr(r, datastore.RevisionStale)
	}
	return nil
}

// oldestReadable is the oldest revision inside the GC window: the first
// transaction committed within the window, or the head if none was.
func (d *Datastore) oldestReadable(ctx context.Context) (revision, error) {
	cutoff := time.Now().Add(-d.cfg.gcWindow).UnixNano()
	var id sql.NullInt64
	err := d.readDB.QueryRowContext(ctx,
		`SELECT id FROM transactions WHERE timestamp >= ? ORDER BY timestamp LIMIT 1`, cutoff).Scan(&id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("check revision: %w", err)
	}
	if !id.Valid {
		return d.head.Load().rev, nil
	}
	return revision(id.Int64), nil
}
