package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/tuple"
)

// querier runs the SQL of a reader: on the read pool for snapshot readers,
// inside the write transaction for ReadWriteTransaction. A seek is a read
// SQLite reaches by seeking to its rows (see seeks).
type querier interface {
	query(ctx context.Context, seek bool, query string, args ...any) (*sql.Rows, func(), error)
}

// poolQuerier runs queries on the read pool with cached prepared statements.
type poolQuerier struct{ d *Datastore }

// query runs query on a read connection; the caller closes the rows, then
// calls the returned function.
//
// A seek runs without its context: when a statement's context can end,
// the driver watches it from a goroutine of its own for the statement's
// first step, and database/sql watches it from another for the rows' life.
// Two goroutines per read, four reads per dataset check, each waking the
// other processor: 12% of the server's CPU per check, and 4-7% of a
// sequential check's latency (BENCHMARKS.md). A seek reaches its first row
// by seeking, so the interrupt had little to stop; the end of ctx is still
// honoured before the read (acquireRead) and between its rows (reader.run).
// Other reads, whose first step may scan or sort, keep the interrupt.
func (p poolQuerier) query(ctx context.Context, seek bool, query string, args ...any) (*sql.Rows, func(), error) {
	p.d.observed(query, args)
	if err := p.d.acquireRead(ctx); err != nil {
		return nil, nil, err
	}
	stmt, closeStmt, err := p.d.readStmts.get(ctx, query)
	if err != nil {
		p.d.releaseRead()
		return nil, nil, err
	}
	qctx := ctx
	if seek {
		qctx = context.WithoutCancel(ctx)
	}
	rows, err := stmt.QueryContext(qctx, args...)
	if err != nil {
		closeStmt()
		p.d.releaseRead()
		return nil, nil, err
	}
	return rows, func() {
		closeStmt()
		p.d.releaseRead()
	}, nil
}

// reader reads the datastore as of one revision.
type reader struct {
	d     *Datastore
	rev   revision
	q     querier
	err   error
	begin func(context.Context) error // a write transaction starts here
	// defsWritten is set in a write transaction once it wrote a
	// definition: its reads of definitions then skip the cache.
	defsWritten *bool
}

// ready is called before a reader builds a query: a write transaction
// starts (and learns its revision) at its first read.
func (r *reader) ready(ctx context.Context) error {
	if r.err != nil {
		return r.err
	}
	if r.d.closed.Load() {
		return ErrClosed
	}
	if r.begin != nil {
		return r.begin(ctx)
	}
	return nil
}

var _ datastore.Reader = (*reader)(nil)

// SnapshotReader returns a reader of the datastore as of revision r: it sees
// exactly the relationships and schema that were live at r. A revision newer
// than the head (a ZedToken of this datastore's future: one written after
// the backup this file was restored from) cannot be read: its reads fail
// with datastore.InvalidRevisionError (CouldNotDetermineRevision) rather
// than answer with older data.
func (d *Datastore) SnapshotReader(r datastore.Revision) datastore.Reader {
	if d.closed.Load() {
		return &reader{d: d, err: ErrClosed}
	}
	rev, err := toRevision(r)
	if err != nil {
		return &reader{d: d, err: err}
	}
	if rev > d.head.Load().rev {
		return &reader{d: d, err: datastore.NewInvalidRevisionErr(r, datastore.CouldNotDetermineRevision)}
	}
	return &reader{d: d, rev: rev, q: poolQuerier{d}}
}

// queryAll runs query and hands every row to scan, then closes the rows:
// results are read completely before they are returned, so a caller never
// holds a connection while it works on them. A read stops with ctx's error
// when ctx ends between two rows.
func (r *reader) queryAll(ctx context.Context, scan func(*sql.Rows) error, query string, args ...any) error {
	return r.run(ctx, false, scan, query, args...)
}

// run is queryAll for a seek (seek true: see poolQuerier.query) or not.
func (r *reader) run(ctx context.Context, seek bool, scan func(*sql.Rows) error, query string, args ...any) error {
	if r.err != nil {
		return r.err
	}
	if r.d.closed.Load() {
		return ErrClosed
	}
	rows, release, err := r.q.query(ctx, seek, query, args...)
	if err != nil {
		if r.d.closed.Load() {
			// Close ran while the read waited for a connection.
			return ErrClosed
		}
		return ctxErr(ctx, err)
	}
	defer release()
	defer rows.Close()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if err := scan(rows); err != nil {
			if errors.Is(err, errEnoughRows) {
				return nil
			}
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return ctxErr(ctx, classify(err))
	}
	return nil
}

// errEnoughRows, returned by a scan function, ends queryAll's read early
// and successfully: the caller has the rows it asked for.
var errEnoughRows = errors.New("enough rows")

// readRelationships runs a relationship read and returns its rows, at most
// limit of them (nil: all); seek says whether the read is one (see seeks).
func (r *reader) readRelationships(ctx context.Context, seek bool, query string, args []any, limit *uint64) (datastore.RelationshipIterator, error) {
	var rels []tuple.Relationship
	var row relRow
	dest := row.dest()
	err := r.run(ctx, seek, func(rows *sql.Rows) error {
		if limit != nil && uint64(len(rels)) >= *limit {
			return errEnoughRows
		}
		row.caveatContext, row.integrityHash = nil, nil
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		rel, err := row.relationship()
		if err != nil {
			return err
		}
		rels = append(rels, rel)
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read relationships: %w", err)
	}
	return func(yield func(tuple.Relationship, error) bool) {
		for _, rel := range rels {
			if !yield(rel, nil) {
				return
			}
		}
	}, nil
}

// QueryRelationships reads the relationships matching filter, from the
// resource side (the primary key), or from the subject index when the
// filter names subjects but no resources.
func (r *reader) QueryRelationships(ctx context.Context, filter datastore.RelationshipsFilter, opts ...options.QueryOptionsOption) (datastore.RelationshipIterator, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	o := options.NewQueryOptionsWithOptions(opts...)
	query, args, err := buildRelQuery(r.rev, time.Now(), filter, o.Sort, o.After, o.BeforeOrEqual, o.Limit, o.SkipExpiration)
	if err != nil {
		return nil, err
	}
	return r.readRelationships(ctx, seeks(filter, o.Sort), query, args, o.Limit)
}

// ReverseQueryRelationships reads the relationships of the subjects matching
// subjectsFilter, from the subject index.
func (r *reader) ReverseQueryRelationships(ctx context.Context, subjectsFilter datastore.SubjectsFilter, opts ...options.ReverseQueryOptionsOption) (datastore.RelationshipIterator, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	o := options.NewReverseQueryOptionsWithOptions(opts...)
	filter := datastore.RelationshipsFilter{
		OptionalSubjectsSelectors: []datastore.SubjectsSelector{subjectsFilter.AsSelector()},
	}
	if o.ResRelation != nil {
		filter.OptionalResourceType = o.ResRelation.Namespace
		filter.OptionalResourceRelation = o.ResRelation.Relation
	}
	query, args, err := buildRelQuery(r.rev, time.Now(), filter, o.SortForReverse, o.AfterForReverse, nil, o.LimitForReverse, o.SkipExpirationForReverse)
	if err != nil {
		return nil, err
	}
	return r.readRelationships(ctx, seeks(filter, o.SortForReverse), query, args, o.LimitForReverse)
}

// definition rows of the namespaces and caveats tables; ns or caveat is
// set once decoded (rows from the definitions cache).
type defRow struct {
	name    string
	data    []byte
	created int64
	ns      *core.NamespaceDefinition
	caveat  *core.CaveatDefinition
}

// readDefinitions reads the live rows of table (namespaces or caveats)
// named in names (every row for nil), from the definitions cache when the
// read may use it (see defCache): a read at or after the last write to the
// definitions, outside a transaction that wrote some itself. A miss loads
// the whole table, which holds one row per definition of the schema.
func (r *reader) readDefinitions(ctx context.Context, table string, names []string) ([]defRow, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	if names != nil && len(names) == 0 {
		return nil, nil
	}
	if r.defsWritten != nil && *r.defsWritten {
		return r.queryDefinitions(ctx, table, names)
	}
	if rows, ok := r.d.defs.get(table, r.rev, names); ok {
		return rows, nil
	}
	gen := r.d.defs.generation()
	if r.rev < gen {
		return r.queryDefinitions(ctx, table, names)
	}
	all, err := r.queryDefinitions(ctx, table, nil)
	if err != nil {
		return nil, err
	}
	if err := decodeDefinitions(table, all); err != nil {
		// One row that does not decode fails only the reads that name
		// it, as without the cache.
		return r.queryDefinitions(ctx, table, names)
	}
	r.d.defs.put(table, gen, all)
	return pickDefinitions(all, names), nil
}

// pickDefinitions returns the rows named in names (all of them for nil).
func pickDefinitions(rows []defRow, names []string) []defRow {
	if names == nil {
		return rows
	}
	var out []defRow
	for _, row := range rows {
		if slices.Contains(names, row.name) {
			out = append(out, row)
		}
	}
	return out
}

func (r *reader) queryDefinitions(ctx context.Context, table string, names []string) ([]defRow, error) {
	query := `SELECT name, definition, created_txn FROM ` + table + ` WHERE created_txn <= ? AND deleted_txn > ?`
	args := []any{int64(r.rev), int64(r.rev)}
	if names != nil {
		q := &relQuery{}
		query += " AND " + q.in("name", names)
		args = append(args, q.args...)
	}
	query += " ORDER BY name"
	var out []defRow
	err := r.queryAll(ctx, func(rows *sql.Rows) error {
		var row defRow
		if err := rows.Scan(&row.name, &row.data, &row.created); err != nil {
			return err
		}
		out = append(out, row)
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	return out, nil
}

func unmarshalNamespaces(rows []defRow) ([]datastore.RevisionedNamespace, error) {
	if err := decodeDefinitions("namespaces", rows); err != nil {
		return nil, err
	}
	out := make([]datastore.RevisionedNamespace, 0, len(rows))
	for _, row := range rows {
		out = append(out, datastore.RevisionedNamespace{Definition: row.ns, LastWrittenRevision: revision(row.created)})
	}
	return out, nil
}

func unmarshalCaveats(rows []defRow) ([]datastore.RevisionedCaveat, error) {
	if err := decodeDefinitions("caveats", rows); err != nil {
		return nil, err
	}
	out := make([]datastore.RevisionedCaveat, 0, len(rows))
	for _, row := range rows {
		out = append(out, datastore.RevisionedCaveat{Definition: row.caveat, LastWrittenRevision: revision(row.created)})
	}
	return out, nil
}

// LegacyReadNamespaceByName reads a namespace (object) definition.
func (r *reader) LegacyReadNamespaceByName(ctx context.Context, name string) (*core.NamespaceDefinition, datastore.Revision, error) {
	rows, err := r.readDefinitions(ctx, "namespaces", []string{name})
	if err != nil {
		return nil, datastore.NoRevision, err
	}
	if len(rows) == 0 {
		return nil, datastore.NoRevision, datastore.NewNamespaceNotFoundErr(name)
	}
	defs, err := unmarshalNamespaces(rows)
	if err != nil {
		return nil, datastore.NoRevision, err
	}
	return defs[0].Definition, defs[0].LastWrittenRevision, nil
}

// LegacyListAllNamespaces lists every namespace definition.
func (r *reader) LegacyListAllNamespaces(ctx context.Context) ([]datastore.RevisionedNamespace, error) {
	rows, err := r.readDefinitions(ctx, "namespaces", nil)
	if err != nil {
		return nil, err
	}
	return unmarshalNamespaces(rows)
}

// LegacyLookupNamespacesWithNames reads the named namespace definitions
// that exist.
func (r *reader) LegacyLookupNamespacesWithNames(ctx context.Context, names []string) ([]datastore.RevisionedNamespace, error) {
	rows, err := r.readDefinitions(ctx, "namespaces", nonNil(names))
	if err != nil {
		return nil, err
	}
	return unmarshalNamespaces(rows)
}

// LegacyReadCaveatByName reads a caveat definition.
func (r *reader) LegacyReadCaveatByName(ctx context.Context, name string) (*core.CaveatDefinition, datastore.Revision, error) {
	rows, err := r.readDefinitions(ctx, "caveats", []string{name})
	if err != nil {
		return nil, datastore.NoRevision, err
	}
	if len(rows) == 0 {
		return nil, datastore.NoRevision, datastore.NewCaveatNameNotFoundErr(name)
	}
	defs, err := unmarshalCaveats(rows)
	if err != nil {
		return nil, datastore.NoRevision, err
	}
	return defs[0].Definition, defs[0].LastWrittenRevision, nil
}

// LegacyListAllCaveats lists every caveat definition.
func (r *reader) LegacyListAllCaveats(ctx context.Context) ([]datastore.RevisionedCaveat, error) {
	rows, err := r.readDefinitions(ctx, "caveats", nil)
	if err != nil {
		return nil, err
	}
	return unmarshalCaveats(rows)
}

// LegacyLookupCaveatsWithNames reads the named caveat definitions that exist.
func (r *reader) LegacyLookupCaveatsWithNames(ctx context.Context, names []string) ([]datastore.RevisionedCaveat, error) {
	rows, err := r.readDefinitions(ctx, "caveats", nonNil(names))
	if err != nil {
		return nil, err
	}
	return unmarshalCaveats(rows)
}

func nonNil(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// ReadStoredSchema reads the unified stored schema.
func (r *reader) ReadStoredSchema(ctx context.Context) (*datastore.ReadOnlyStoredSchema, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	var data []byte
	found := false
	err := r.queryAll(ctx, func(rows *sql.Rows) error {
		found = true
		return rows.Scan(&data)
	}, `SELECT data FROM stored_schema WHERE created_txn <= ? AND deleted_txn > ? ORDER BY created_txn DESC LIMIT 1`,
		int64(r.rev), int64(r.rev))
	if err != nil {
		return nil, fmt.Errorf("read stored schema: %w", err)
	}
	if !found {
		return nil, datastore.ErrSchemaNotFound
	}
	s := &core.StoredSchema{}
	if err := s.UnmarshalVT(data); err != nil {
		return nil, fmt.Errorf("decode stored schema: %w", err)
	}
	return datastore.NewReadOnlyStoredSchemaWithSize(s, len(data)), nil
}

type counterRow struct {
	name       string
	filter     []byte
	count      int64
	computedAt sql.NullInt64
}

func (r *reader) readCounters(ctx context.Context, name string) ([]counterRow, error) {
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	query := `SELECT name, filter, count, computed_at_txn FROM counters WHERE created_txn <= ? AND deleted_txn > ?`
	args := []any{int64(r.rev), int64(r.rev)}
	if name != "" {
		query += ` AND name = ?`
		args = append(args, name)
	}
	query += ` ORDER BY name`
	var out []counterRow
	err := r.queryAll(ctx, func(rows *sql.Rows) error {
		var c counterRow
		if err := rows.Scan(&c.name, &c.filter, &c.count, &c.computedAt); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	return out, nil
}

// LookupCounters lists the registered relationship counters.
func (r *reader) LookupCounters(ctx context.Context) ([]datastore.RelationshipCounter, error) {
	rows, err := r.readCounters(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]datastore.RelationshipCounter, 0, len(rows))
	for _, c := range rows {
		f := &core.RelationshipFilter{}
		if err := f.UnmarshalVT(c.filter); err != nil {
			return nil, fmt.Errorf("decode counter filter: %w", err)
		}
		var computed datastore.Revision = datastore.NoRevision
		if c.computedAt.Valid {
			computed = revision(c.computedAt.Int64)
		}
		out = append(out, datastore.RelationshipCounter{Name: c.name, Filter: f, Count: int(c.count), ComputedAtRevision: computed})
	}
	return out, nil
}

// CountRelationships counts, at the reader's revision, the relationships
// matching a registered counter's filter.
func (r *reader) CountRelationships(ctx context.Context, name string) (int, error) {
	rows, err := r.readCounters(ctx, name)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, datastore.NewCounterNotRegisteredErr(name)
	}
	f := &core.RelationshipFilter{}
	if err := f.UnmarshalVT(rows[0].filter); err != nil {
		return 0, fmt.Errorf("decode counter filter: %w", err)
	}
	filter, err := datastore.RelationshipsFilterFromCoreFilter(f)
	if err != nil {
		return 0, err
	}
	q := newRelQuery(r.rev)
	if err := q.resourceFilter(filter); err != nil {
		return 0, err
	}
	q.notExpired(time.Now())
	if wantsSubjectIndex(filter) {
		q.index = indexBySubject
	}
	query := "SELECT COUNT(*) FROM relationships"
	if q.index != "" {
		query += " INDEXED BY " + q.index
	}
	query += " WHERE "
	for i, w := range q.where {
		if i > 0 {
			query += " AND "
		}
		query += w
	}
	var n int
	err = r.queryAll(ctx, func(rows *sql.Rows) error { return rows.Scan(&n) }, query, q.args...)
	if err != nil {
		return 0, fmt.Errorf("count relationships: %w", err)
	}
	return n, nil
}
