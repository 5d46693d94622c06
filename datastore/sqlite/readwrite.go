package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/protobuf/proto"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/spiceerrors"
	"github.com/authzed/spicedb/pkg/tuple"
)

const (
	insertRelSQL = `INSERT INTO relationships (` + relColumns + `, created_txn, deleted_txn) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	touchRelSQL  = insertRelSQL + ` ON CONFLICT DO NOTHING`
	// The common case, with fewer values to bind: no caveat, expiration or
	// integrity.
	insertPlainRelSQL = `INSERT INTO relationships (namespace, object_id, relation, subject_namespace, subject_object_id, subject_relation, created_txn, deleted_txn) VALUES (?,?,?,?,?,?,?,9223372036854775807)`
	touchPlainRelSQL  = insertPlainRelSQL + ` ON CONFLICT DO NOTHING`
	pkWhere           = `namespace = ? AND object_id = ? AND relation = ? AND subject_namespace = ? AND subject_object_id = ? AND subject_relation = ? AND deleted_txn = 9223372036854775807`
	liveRelSQL        = `SELECT ` + relColumns + `, created_txn FROM relationships WHERE ` + pkWhere
	retireRelSQL      = `UPDATE relationships SET deleted_txn = ? WHERE ` + pkWhere
	dropRelSQL        = `DELETE FROM relationships WHERE ` + pkWhere

	bulkChunk = 8192
)

// ReadWriteTx runs fn in a write transaction and returns the revision it
// committed at. Write transactions are serialized: a transaction takes the
// write lock at its first read or write (not before, so a transaction that
// waits on another one's commit does not deadlock it) and keeps it until it
// commits. A transaction that fails with ErrBusy is retried, with backoff,
// up to the configured number of times, unless the options disable retries.
// A transaction that neither reads nor writes commits nothing and returns
// the head revision.
func (d *Datastore) ReadWriteTx(ctx context.Context, fn datastore.TxUserFunc, opts ...options.RWTOptionsOption) (datastore.Revision, error) {
	if d.closed.Load() {
		return datastore.NoRevision, ErrClosed
	}
	cfg := options.NewRWTOptionsWithOptions(opts...)
	var metadata []byte
	if cfg.Metadata != nil && len(cfg.Metadata.GetFields()) > 0 {
		var err error
		metadata, err = proto.MarshalOptions{Deterministic: true}.Marshal(cfg.Metadata)
		if err != nil {
			return datastore.NoRevision, fmt.Errorf("encode transaction metadata: %w", err)
		}
	}
	attempts := d.cfg.maxRetries + 1
	if cfg.DisableRetries {
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		rev, err := d.runTx(ctx, fn, cfg, metadata)
		if err == nil {
			return rev, nil
		}
		if attempt >= attempts || !isBusy(err) || ctx.Err() != nil {
			return datastore.NoRevision, err
		}
		backoff := time.Duration(1<<min(attempt-1, 6)) * time.Millisecond
		backoff += rand.N(backoff)
		if serr := sleepCtx(ctx, backoff); serr != nil {
			return datastore.NoRevision, err
		}
	}
}

func (d *Datastore) runTx(ctx context.Context, fn datastore.TxUserFunc, cfg *options.RWTOptions, metadata []byte) (datastore.Revision, error) {
	t := &rwt{d: d, txCtx: ctx, metadata: metadata}
	t.reader = reader{d: d, q: t, begin: t.begin, defsWritten: &t.defsWritten}
	defer t.abort()

	if cfg.SchemaHashPrecondition != "" {
		if err := t.begin(ctx); err != nil {
			return datastore.NoRevision, err
		}
		hash, err := d.schemaHashAt(ctx, d.writeConn, t.txn)
		if err != nil {
			return datastore.NoRevision, err
		}
		if hash == "" {
			return datastore.NoRevision, datastore.ErrSchemaNotFound
		}
		if hash != cfg.SchemaHashPrecondition {
			return datastore.NoRevision, datastore.ErrSchemaHashPreconditionFailed
		}
	}
	if err := fn(ctx, t); err != nil {
		return datastore.NoRevision, err
	}
	if !t.began {
		h := d.head.Load()
		return h.rev, nil
	}
	return t.commit(ctx)
}

// acquireWrite takes the write lock, waiting at most the busy timeout.
func (d *Datastore) acquireWrite(ctx context.Context) error {
	select {
	case d.writeSem <- struct{}{}:
	default:
		timer := time.NewTimer(d.cfg.busyTimeout)
		defer timer.Stop()
		select {
		case d.writeSem <- struct{}{}:
		case <-timer.C:
			return fmt.Errorf("%w: no write lock within %s", ErrBusy, d.cfg.busyTimeout)
		case <-d.closing:
			return ErrClosed
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if d.closed.Load() {
		<-d.writeSem
		return ErrClosed
	}
	return nil
}

func (d *Datastore) releaseWrite() { <-d.writeSem }

// beginWrite and commitWrite start and end a transaction of the write
// connection, and run to completion whatever ctx does once they started:
// SQLite's driver reports a statement as failed when its context ends
// while it runs, even when the statement completed, and a BEGIN believed
// failed would leave the connection inside a transaction nobody ends
// (every later BEGIN fails), a COMMIT believed failed would answer an
// error for a write that is in the file and hide it until the next commit.
// A context that ended before they start still stops them.
func (d *Datastore) beginWrite(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	_, err := d.writeConn.ExecContext(ctx, `BEGIN IMMEDIATE`)
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		// A transaction left open (by a path that did not end it) would
		// fail every write from now on. The caller holds the write lock,
		// so nothing else uses the connection: what is left is a failed
		// write's, and is rolled back.
		d.cfg.logger.Error("sqlite datastore: the write connection was left inside a transaction; rolling it back", "error", err)
		_, _ = d.writeConn.ExecContext(ctx, `ROLLBACK`)
		_, err = d.writeConn.ExecContext(ctx, `BEGIN IMMEDIATE`)
	}
	return classify(err)
}

func (d *Datastore) commitWrite(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := d.writeConn.ExecContext(context.WithoutCancel(ctx), `COMMIT`)
	return classify(err)
}

// exec runs a statement on the write connection.
func (d *Datastore) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	stmt, release, err := d.writeStmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := stmt.ExecContext(ctx, args...)
	return res, classify(err)
}

// rwt is a write transaction: a reader at the transaction's own revision
// (so it reads its own writes) that also writes.
type rwt struct {
	reader
	d        *Datastore
	txCtx    context.Context
	metadata []byte

	began    bool
	finished bool
	txn      revision
	pending  []byte // changelog records not yet written
	seq      int
	relDelta int64
	newHash  *string
	// defsWritten is set by a write to the namespaces or caveats table.
	defsWritten bool
	// failed is the first error of a statement of the transaction, but a
	// primary key violation (create handles it) or no row: on some errors
	// (a full disk, an I/O error, an interrupt) SQLite rolls the whole
	// transaction back, and the statements after would run outside any
	// transaction, each applied at once. So after it every statement and
	// the commit fail, with it.
	failed error
}

// check records err as the transaction's failure (see failed) and returns it.
func (t *rwt) check(err error) error {
	if err != nil && t.failed == nil && !isConstraintPrimaryKey(err) && !errors.Is(err, sql.ErrNoRows) {
		t.failed = err
	}
	return err
}

var _ datastore.ReadWriteTransaction = (*rwt)(nil)

// begin starts the SQLite transaction and allocates the revision, at the
// transaction's first statement.
func (t *rwt) begin(ctx context.Context) error {
	if t.began {
		if t.finished {
			return errors.New("sqlite datastore: transaction already finished")
		}
		if t.failed != nil {
			return fmt.Errorf("sqlite datastore: an earlier statement of this transaction failed: %w", t.failed)
		}
		return nil
	}
	if err := t.d.acquireWrite(ctx); err != nil {
		return err
	}
	if err := t.d.beginWrite(ctx); err != nil {
		t.d.releaseWrite()
		return err
	}
	t.began = true
	res, err := t.d.exec(ctx, `INSERT INTO transactions (timestamp, metadata) VALUES (?, ?)`, time.Now().UnixNano(), nilIfEmpty(t.metadata))
	if err != nil {
		return fmt.Errorf("start transaction: %w", t.check(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return t.check(err)
	}
	t.txn = revision(id)
	t.rev = t.txn
	return nil
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// query runs a read inside the transaction (the reader's querier). Seeks
// keep their interrupt here: a write's statements all run under its
// context (cancel_test.go).
func (t *rwt) query(ctx context.Context, _ bool, query string, args ...any) (*sql.Rows, func(), error) {
	if err := t.begin(ctx); err != nil {
		return nil, nil, err
	}
	t.d.observed(query, args)
	stmt, release, err := t.d.writeStmts.get(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		release()
		return nil, nil, t.check(classify(err))
	}
	// The caller closes the rows, then releases: an error met while
	// reading them fails the transaction too.
	return rows, func() {
		if err := rows.Err(); err != nil {
			t.check(classify(err))
		}
		release()
	}, nil
}

func (t *rwt) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	res, err := t.d.exec(ctx, query, args...)
	return res, t.check(err)
}

// queryRow is the Datastore's queryRow, inside the transaction.
func (t *rwt) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return t.check(t.d.queryRow(ctx, query, args, dest...))
}

// abort rolls back a transaction that did not commit.
func (t *rwt) abort() {
	if !t.began || t.finished {
		return
	}
	t.finished = true
	_, _ = t.d.writeConn.ExecContext(context.Background(), `ROLLBACK`)
	t.d.releaseWrite()
}

func (t *rwt) commit(ctx context.Context) (datastore.Revision, error) {
	if t.failed != nil {
		return datastore.NoRevision, fmt.Errorf("sqlite datastore: a statement of this transaction failed, so it is not committed: %w", t.failed)
	}
	if err := t.flushChanges(ctx); err != nil {
		return datastore.NoRevision, err
	}
	if t.relDelta != 0 {
		if _, err := t.exec(ctx, `UPDATE metadata SET value = CAST(value AS INTEGER) + ? WHERE key = 'relationship_count'`, t.relDelta); err != nil {
			return datastore.NoRevision, err
		}
	}
	// The commit timestamp: never before the previous one, so that
	// timestamps order transactions as IDs do.
	ts := max(time.Now().UnixNano(), t.d.lastTS+1)
	if _, err := t.exec(ctx, `UPDATE transactions SET timestamp = ? WHERE id = ?`, ts, int64(t.txn)); err != nil {
		return datastore.NoRevision, err
	}
	if err := t.d.commitWrite(ctx); err != nil {
		return datastore.NoRevision, err
	}
	t.finished = true
	t.d.trimWriterCache(ctx)
	t.d.lastTS = ts
	h := t.d.head.Load()
	hash := h.schemaHash
	if t.newHash != nil {
		hash = *t.newHash
	}
	if t.defsWritten {
		t.d.defs.changed(t.txn) // before readers can see the new head
	}
	t.d.head.Store(&head{rev: t.txn, schemaHash: hash, ts: ts})
	t.d.releaseWrite()
	t.d.wakeWatchers()
	return t.txn, nil
}

// record appends a change for Watch, writing the pending records out as a
// changelog row once they are large.
func (t *rwt) record(ctx context.Context, kind changeKind, rel tuple.Relationship) error {
	var err error
	t.pending, err = appendRelChange(t.pending, kind, rel)
	if err != nil {
		return err
	}
	if len(t.pending) >= changelogBlobSize {
		return t.flushChanges(ctx)
	}
	return nil
}

func (t *rwt) recordDef(ctx context.Context, kind changeKind, name string, def []byte) error {
	t.pending = appendDefChange(t.pending, kind, name, def)
	if len(t.pending) >= changelogBlobSize {
		return t.flushChanges(ctx)
	}
	return nil
}

func (t *rwt) flushChanges(ctx context.Context) error {
	if len(t.pending) == 0 {
		return nil
	}
	if _, err := t.exec(ctx, `INSERT INTO changelog (txn, seq, data) VALUES (?, ?, ?)`, int64(t.txn), t.seq, t.pending); err != nil {
		return fmt.Errorf("write changelog: %w", err)
	}
	t.seq++
	t.pending = nil
	return nil
}

func pkArgs(rel tuple.Relationship) []any {
	return []any{rel.Resource.ObjectType, rel.Resource.ObjectID, rel.Resource.Relation,
		rel.Subject.ObjectType, rel.Subject.ObjectID, rel.Subject.Relation}
}

// liveRelationship reads the live version of rel, if any, and the revision
// that created it.
func (t *rwt) liveRelationship(ctx context.Context, rel tuple.Relationship) (tuple.Relationship, revision, bool, error) {
	if err := t.begin(ctx); err != nil {
		return tuple.Relationship{}, 0, false, err
	}
	var row relRow
	var created int64
	err := t.queryRow(ctx, liveRelSQL, pkArgs(rel), append(row.dest(), &created)...)
	if errors.Is(err, sql.ErrNoRows) {
		return tuple.Relationship{}, 0, false, nil
	}
	if err != nil {
		return tuple.Relationship{}, 0, false, err
	}
	existing, err := row.relationship()
	return existing, revision(created), true, err
}

// queryRow runs a single-row query on the write connection.
func (d *Datastore) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	stmt, release, err := d.writeStmts.get(ctx, query)
	if err != nil {
		return err
	}
	defer release()
	return classify(stmt.QueryRowContext(ctx, args...).Scan(dest...))
}

// retire ends the live version of rel: it is marked deleted at this
// revision, or removed if this transaction created it (no revision ever saw
// it).
func (t *rwt) retire(ctx context.Context, rel tuple.Relationship, created revision) error {
	var err error
	if created == t.txn {
		_, err = t.exec(ctx, dropRelSQL, pkArgs(rel)...)
	} else {
		_, err = t.exec(ctx, retireRelSQL, append([]any{int64(t.txn)}, pkArgs(rel)...)...)
	}
	return err
}

func (t *rwt) insert(ctx context.Context, touch bool, rel tuple.Relationship) (sql.Result, error) {
	if rel.OptionalCaveat == nil && rel.OptionalExpiration == nil && rel.OptionalIntegrity == nil {
		query := insertPlainRelSQL
		if touch {
			query = touchPlainRelSQL
		}
		return t.exec(ctx, query, rel.Resource.ObjectType, rel.Resource.ObjectID, rel.Resource.Relation,
			rel.Subject.ObjectType, rel.Subject.ObjectID, rel.Subject.Relation, int64(t.txn))
	}
	query := insertRelSQL
	if touch {
		query = touchRelSQL
	}
	vals, err := relValues(rel)
	if err != nil {
		return nil, err
	}
	return t.exec(ctx, query, append(vals, int64(t.txn), liveTxn)...)
}

// WriteRelationships applies creates, touches and deletes.
func (t *rwt) WriteRelationships(ctx context.Context, mutations []tuple.RelationshipUpdate) error {
	if err := t.begin(ctx); err != nil {
		return err
	}
	for _, m := range mutations {
		var err error
		switch m.Operation {
		case tuple.UpdateOperationCreate:
			err = t.create(ctx, m.Relationship)
		case tuple.UpdateOperationTouch:
			err = t.touch(ctx, m.Relationship)
		case tuple.UpdateOperationDelete:
			err = t.delete(ctx, m.Relationship)
		default:
			err = spiceerrors.MustBugf("unknown relationship update operation %v", m.Operation)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *rwt) create(ctx context.Context, rel tuple.Relationship) error {
	if _, err := t.insert(ctx, false, rel); err != nil {
		if isConstraintPrimaryKey(err) {
			existing, _, found, lerr := t.liveRelationship(ctx, rel)
			if lerr != nil {
				return lerr
			}
			if !found {
				existing = rel
			}
			return datastore.NewCreateRelationshipExistsError(&existing)
		}
		return fmt.Errorf("create relationship: %w", err)
	}
	t.relDelta++
	return t.record(ctx, changeCreated, rel)
}

func (t *rwt) touch(ctx context.Context, rel tuple.Relationship) error {
	res, err := t.insert(ctx, true, rel)
	if err != nil {
		return fmt.Errorf("touch relationship: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		t.relDelta++
		return t.record(ctx, changeCreated, rel)
	}
	existing, created, found, err := t.liveRelationship(ctx, rel)
	if err != nil {
		return err
	}
	if !found {
		return spiceerrors.MustBugf("relationship neither inserted nor found")
	}
	if sameRelationship(existing, rel) {
		return nil
	}
	if err := t.retire(ctx, rel, created); err != nil {
		return err
	}
	if _, err := t.insert(ctx, false, rel); err != nil {
		return fmt.Errorf("touch relationship: %w", err)
	}
	return t.record(ctx, changeReplaced, rel)
}

func (t *rwt) delete(ctx context.Context, rel tuple.Relationship) error {
	existing, created, found, err := t.liveRelationship(ctx, rel)
	if err != nil || !found {
		return err
	}
	if err := t.retire(ctx, existing, created); err != nil {
		return err
	}
	t.relDelta--
	return t.record(ctx, changeDeleted, existing)
}

// DeleteRelationships deletes the live relationships matching filter
// (expired ones included), at most limit of them when the options set one,
// and reports how many it deleted and whether it stopped at the limit.
func (t *rwt) DeleteRelationships(ctx context.Context, filter *v1.RelationshipFilter, opts ...options.DeleteOptionsOption) (uint64, bool, error) {
	o := options.NewDeleteOptionsWithOptionsAndDefaults(opts...)
	dsFilter, err := datastore.RelationshipsFilterFromPublicFilter(filter)
	if err != nil {
		return 0, false, err
	}
	var limit *uint64
	if o.DeleteLimit != nil && *o.DeleteLimit > 0 {
		limit = o.DeleteLimit
	}
	n, err := t.deleteMatching(ctx, dsFilter, limit)
	if err != nil {
		return n, false, err
	}
	return n, limit != nil && n == *limit, nil
}

func (t *rwt) deleteMatching(ctx context.Context, filter datastore.RelationshipsFilter, limit *uint64) (uint64, error) {
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	q := newRelQuery(t.txn)
	if err := q.resourceFilter(filter); err != nil {
		return 0, err
	}
	if wantsSubjectIndex(filter) {
		q.index = indexBySubject
	}
	query := q.sql(options.Unsorted, limit)
	query = "SELECT " + relColumns + ", created_txn" + query[len("SELECT "+relColumns):]
	type victim struct {
		rel     tuple.Relationship
		created revision
	}
	var victims []victim
	var row relRow
	var created int64
	dest := append(row.dest(), &created)
	err := t.queryAll(ctx, func(rows *sql.Rows) error {
		if limit != nil && uint64(len(victims)) >= *limit {
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
		victims = append(victims, victim{rel, revision(created)})
		return nil
	}, query, q.args...)
	if err != nil {
		return 0, fmt.Errorf("delete relationships: %w", err)
	}
	for _, v := range victims {
		if err := t.retire(ctx, v.rel, v.created); err != nil {
			return 0, fmt.Errorf("delete relationships: %w", err)
		}
		t.relDelta--
		if err := t.record(ctx, changeDeleted, v.rel); err != nil {
			return 0, err
		}
	}
	return uint64(len(victims)), nil
}

// BulkLoad inserts every relationship of the source, which must not exist
// yet (CreateRelationshipExistsError otherwise). Reading (and validating)
// the source and inserting run in parallel: a goroutine reads the source
// into chunks and sorts each chunk in primary key order (which makes
// SQLite's inserts much cheaper), while this one inserts the previous chunk.
func (t *rwt) BulkLoad(ctx context.Context, source datastore.BulkWriteRelationshipSource) (uint64, error) {
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	chunks := make(chan []tuple.Relationship, 1)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		chunk := make([]tuple.Relationship, 0, bulkChunk)
		send := func() bool {
			slices.SortFunc(chunk, compareByResource)
			select {
			case chunks <- chunk:
				chunk = make([]tuple.Relationship, 0, bulkChunk)
				return true
			case <-stop:
				return false
			}
		}
		for {
			rel, err := source.Next(ctx)
			if err != nil {
				readErr <- err
				return
			}
			if rel == nil {
				break
			}
			chunk = append(chunk, copyRelationship(*rel))
			if len(chunk) == bulkChunk && !send() {
				readErr <- nil
				return
			}
		}
		if len(chunk) > 0 && !send() {
			readErr <- nil
			return
		}
		readErr <- nil
	}()

	var total uint64
	var insertErr error
	for chunk := range chunks {
		if insertErr != nil {
			continue // drain until the reader sees stop
		}
		for _, rel := range chunk {
			if err := t.create(ctx, rel); err != nil {
				insertErr = err
				close(stop)
				break
			}
			total++
		}
	}
	if err := <-readErr; err != nil && insertErr == nil {
		return total, err
	}
	return total, insertErr
}

// copyRelationship copies what a bulk source may reuse.
func copyRelationship(rel tuple.Relationship) tuple.Relationship {
	if rel.OptionalCaveat != nil {
		rel.OptionalCaveat = rel.OptionalCaveat.CloneVT()
	}
	if rel.OptionalExpiration != nil {
		e := *rel.OptionalExpiration
		rel.OptionalExpiration = &e
	}
	if rel.OptionalIntegrity != nil {
		rel.OptionalIntegrity = rel.OptionalIntegrity.CloneVT()
	}
	return rel
}

func compareByResource(a, b tuple.Relationship) int {
	return cmp.Or(
		cmp.Compare(a.Resource.ObjectType, b.Resource.ObjectType),
		cmp.Compare(a.Resource.ObjectID, b.Resource.ObjectID),
		cmp.Compare(a.Resource.Relation, b.Resource.Relation),
		cmp.Compare(a.Subject.ObjectType, b.Subject.ObjectType),
		cmp.Compare(a.Subject.ObjectID, b.Subject.ObjectID),
		cmp.Compare(a.Subject.Relation, b.Subject.Relation),
	)
}

// replaceDefinition makes data the live version of a namespace or caveat
// definition.
func (t *rwt) replaceDefinition(ctx context.Context, table, name string, data []byte) error {
	if _, _, err := t.retireDefinition(ctx, table, name); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO `+table+` (name, definition, created_txn, deleted_txn) VALUES (?, ?, ?, ?)`,
		name, data, int64(t.txn), liveTxn)
	return err
}

// retireDefinition ends the live version of a definition, reporting whether
// there was one.
func (t *rwt) retireDefinition(ctx context.Context, table, name string) (bool, []byte, error) {
	if err := t.begin(ctx); err != nil {
		return false, nil, err
	}
	t.defsWritten = true
	var created int64
	var data []byte
	err := t.queryRow(ctx, `SELECT created_txn, definition FROM `+table+` WHERE name = ? AND deleted_txn = 9223372036854775807`,
		[]any{name}, &created, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	if revision(created) == t.txn {
		_, err = t.exec(ctx, `DELETE FROM `+table+` WHERE name = ? AND deleted_txn = 9223372036854775807`, name)
	} else {
		_, err = t.exec(ctx, `UPDATE `+table+` SET deleted_txn = ? WHERE name = ? AND deleted_txn = 9223372036854775807`, int64(t.txn), name)
	}
	return true, data, err
}

// LegacyWriteNamespaces writes namespace (object) definitions.
func (t *rwt) LegacyWriteNamespaces(ctx context.Context, defs ...*core.NamespaceDefinition) error {
	for _, def := range defs {
		data, err := def.MarshalVT()
		if err != nil {
			return err
		}
		if err := t.replaceDefinition(ctx, "namespaces", def.Name, data); err != nil {
			return fmt.Errorf("write namespace %s: %w", def.Name, err)
		}
		if err := t.recordDef(ctx, changeNamespace, def.Name, data); err != nil {
			return err
		}
	}
	return nil
}

// LegacyDeleteNamespaces deletes namespace definitions and, if asked, their
// relationships. A namespace that does not exist is an error.
func (t *rwt) LegacyDeleteNamespaces(ctx context.Context, names []string, opt datastore.DeleteNamespacesRelationshipsOption) error {
	for _, name := range names {
		found, _, err := t.retireDefinition(ctx, "namespaces", name)
		if err != nil {
			return fmt.Errorf("delete namespace %s: %w", name, err)
		}
		if !found {
			return datastore.NewNamespaceNotFoundErr(name)
		}
		if err := t.recordDef(ctx, changeNamespaceGone, name, nil); err != nil {
			return err
		}
		if opt == datastore.DeleteNamespacesAndRelationships {
			if _, err := t.deleteMatching(ctx, datastore.RelationshipsFilter{OptionalResourceType: name}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// LegacyWriteCaveats writes caveat definitions.
func (t *rwt) LegacyWriteCaveats(ctx context.Context, caveats []*core.CaveatDefinition) error {
	seen := make(map[string]bool, len(caveats))
	for _, def := range caveats {
		if seen[def.Name] {
			return fmt.Errorf("duplicate caveat %s", def.Name)
		}
		seen[def.Name] = true
		data, err := def.MarshalVT()
		if err != nil {
			return err
		}
		if err := t.replaceDefinition(ctx, "caveats", def.Name, data); err != nil {
			return fmt.Errorf("write caveat %s: %w", def.Name, err)
		}
		if err := t.recordDef(ctx, changeCaveat, def.Name, data); err != nil {
			return err
		}
	}
	return nil
}

// LegacyDeleteCaveats deletes caveat definitions; missing ones are ignored.
func (t *rwt) LegacyDeleteCaveats(ctx context.Context, names []string) error {
	for _, name := range names {
		found, _, err := t.retireDefinition(ctx, "caveats", name)
		if err != nil {
			return fmt.Errorf("delete caveat %s: %w", name, err)
		}
		if found {
			if err := t.recordDef(ctx, changeCaveatGone, name, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteStoredSchema makes schema the stored (unified) schema.
func (t *rwt) WriteStoredSchema(ctx context.Context, schema *core.StoredSchema) error {
	data, err := schema.MarshalVT()
	if err != nil {
		return fmt.Errorf("encode stored schema: %w", err)
	}
	if err := t.begin(ctx); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `DELETE FROM stored_schema WHERE deleted_txn = 9223372036854775807 AND created_txn = ?`, int64(t.txn)); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `UPDATE stored_schema SET deleted_txn = ? WHERE deleted_txn = 9223372036854775807`, int64(t.txn)); err != nil {
		return err
	}
	hash := schema.GetV1().GetSchemaHash()
	if _, err := t.exec(ctx, `INSERT INTO stored_schema (hash, data, created_txn, deleted_txn) VALUES (?, ?, ?, ?)`,
		hash, data, int64(t.txn), liveTxn); err != nil {
		return fmt.Errorf("write stored schema: %w", err)
	}
	t.newHash = &hash
	return nil
}

// counter returns the live version of a counter.
func (t *rwt) counter(ctx context.Context, name string) (created revision, filter []byte, found bool, err error) {
	if err := t.begin(ctx); err != nil {
		return 0, nil, false, err
	}
	var c int64
	err = t.queryRow(ctx, `SELECT created_txn, filter FROM counters WHERE name = ? AND deleted_txn = 9223372036854775807`, []any{name}, &c, &filter)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	return revision(c), filter, err == nil, err
}

func (t *rwt) retireCounter(ctx context.Context, name string, created revision) error {
	var err error
	if created == t.txn {
		_, err = t.exec(ctx, `DELETE FROM counters WHERE name = ? AND deleted_txn = 9223372036854775807`, name)
	} else {
		_, err = t.exec(ctx, `UPDATE counters SET deleted_txn = ? WHERE name = ? AND deleted_txn = 9223372036854775807`, int64(t.txn), name)
	}
	return err
}

// RegisterCounter registers a relationship counter.
func (t *rwt) RegisterCounter(ctx context.Context, name string, filter *core.RelationshipFilter) error {
	_, _, found, err := t.counter(ctx, name)
	if err != nil {
		return err
	}
	if found {
		return datastore.NewCounterAlreadyRegisteredErr(name, filter)
	}
	data, err := filter.MarshalVT()
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO counters (name, filter, count, computed_at_txn, created_txn, deleted_txn) VALUES (?, ?, 0, NULL, ?, ?)`,
		name, data, int64(t.txn), liveTxn)
	return err
}

// UnregisterCounter removes a relationship counter.
func (t *rwt) UnregisterCounter(ctx context.Context, name string) error {
	created, _, found, err := t.counter(ctx, name)
	if err != nil {
		return err
	}
	if !found {
		return datastore.NewCounterNotRegisteredErr(name)
	}
	return t.retireCounter(ctx, name, created)
}

// StoreCounterValue stores a counter's count, computed at a revision.
func (t *rwt) StoreCounterValue(ctx context.Context, name string, value int, computedAt datastore.Revision) error {
	created, filter, found, err := t.counter(ctx, name)
	if err != nil {
		return err
	}
	if !found {
		return datastore.NewCounterNotRegisteredErr(name)
	}
	var at any
	if r, ok := computedAt.(revision); ok {
		at = int64(r)
	}
	if err := t.retireCounter(ctx, name, created); err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO counters (name, filter, count, computed_at_txn, created_txn, deleted_txn) VALUES (?, ?, ?, ?, ?, ?)`,
		name, filter, value, at, int64(t.txn), liveTxn)
	return err
}
