package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/authzed/spicedb/pkg/datastore"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/tuple"
)

// watchBatch is how many transactions a Watch loads at a time.
const watchBatch = 256

// Watch streams the changes committed after afterRevision: one
// RevisionChanges per revision, in revision order, with the relationship
// changes, the schema changes and the transaction metadata the options ask
// for, and checkpoints (after each batch of changes, and every checkpoint
// interval while nothing is written) when the options ask for them. A
// consumer that falls behind by more than the buffer for longer than the
// buffer write timeout is disconnected (datastore.WatchDisconnectedError).
// A revision whose history was garbage collected is rejected.
func (d *Datastore) Watch(ctx context.Context, afterRevision datastore.Revision, opts datastore.WatchOptions) (<-chan datastore.RevisionChanges, <-chan error) {
	bufLen := opts.WatchBufferLength
	if bufLen == 0 {
		bufLen = d.cfg.watchBufferLength
	}
	updates := make(chan datastore.RevisionChanges, bufLen)
	errs := make(chan error, 1)
	fail := func(err error) (<-chan datastore.RevisionChanges, <-chan error) {
		close(updates)
		errs <- err
		close(errs)
		return updates, errs
	}
	if d.closed.Load() {
		return fail(ErrClosed)
	}
	if opts.EmissionStrategy == datastore.EmitImmediatelyStrategy {
		return fail(errors.New("emit immediately strategy is unsupported by the SQLite datastore"))
	}
	after, err := toRevision(afterRevision)
	if err != nil {
		return fail(err)
	}
	if after > d.head.Load().rev {
		return fail(datastore.NewInvalidRevisionErr(afterRevision, datastore.CouldNotDetermineRevision))
	}
	var oldest int64
	if err := d.readDB.QueryRowContext(ctx, `SELECT MIN(id) FROM transactions`).Scan(&oldest); err != nil {
		return fail(fmt.Errorf("watch: %w", err))
	}
	if int64(after) < oldest {
		return fail(datastore.NewInvalidRevisionErr(afterRevision, datastore.RevisionStale))
	}

	w := &watcher{
		d:            d,
		opts:         opts,
		updates:      updates,
		errs:         errs,
		writeTimeout: opts.WatchBufferWriteTimeout,
		checkpoint:   opts.CheckpointInterval,
	}
	if w.writeTimeout <= 0 {
		w.writeTimeout = d.cfg.watchBufferTimeout
	}
	if w.checkpoint <= 0 {
		w.checkpoint = d.cfg.checkpointInterval
	}
	d.watchers.Add(1)
	go func() {
		defer d.watchers.Done()
		defer close(errs)
		defer close(updates)
		if err := w.run(ctx, after); err != nil {
			errs <- err
		}
	}()
	return updates, errs
}

type watcher struct {
	d            *Datastore
	opts         datastore.WatchOptions
	updates      chan datastore.RevisionChanges
	errs         chan error
	writeTimeout time.Duration
	checkpoint   time.Duration
}

var errWatchDisconnected = datastore.NewWatchDisconnectedErr()

func (w *watcher) send(ctx context.Context, rc datastore.RevisionChanges) error {
	select {
	case w.updates <- rc:
		return nil
	default:
	}
	timer := time.NewTimer(w.writeTimeout)
	defer timer.Stop()
	select {
	case w.updates <- rc:
		return nil
	case <-timer.C:
		return errWatchDisconnected
	case <-ctx.Done():
		return datastore.NewWatchCanceledErr()
	case <-w.d.closing:
		return ErrClosed
	}
}

func (w *watcher) run(ctx context.Context, current revision) error {
	wantCheckpoints := w.opts.Content&datastore.WatchCheckpoints != 0
	idle := time.NewTimer(w.checkpoint)
	defer idle.Stop()
	for {
		if ctx.Err() != nil {
			return datastore.NewWatchCanceledErr()
		}
		if w.d.closed.Load() {
			return ErrClosed
		}
		changed := w.d.changed()
		headRev := w.d.head.Load().rev
		if headRev > current {
			last, err := w.emit(ctx, current, headRev)
			if err != nil {
				return err
			}
			current = last
			if wantCheckpoints {
				if err := w.send(ctx, datastore.RevisionChanges{Revision: current, IsCheckpoint: true}); err != nil {
					return err
				}
			}
			continue
		}
		select {
		case <-ctx.Done():
			return datastore.NewWatchCanceledErr()
		case <-w.d.closing:
			return ErrClosed
		case <-changed:
		case <-idle.C:
			idle.Reset(w.checkpoint)
			if wantCheckpoints {
				// Continuous checkpointing, but never at the price of
				// disconnecting a consumer that is merely idle.
				select {
				case w.updates <- datastore.RevisionChanges{Revision: current, IsCheckpoint: true}:
				default:
				}
			}
		}
	}
}

// emit sends the changes of the transactions in (after, upTo], at most
// watchBatch of them, and returns the last revision it covered.
func (w *watcher) emit(ctx context.Context, after, upTo revision) (revision, error) {
	type txnInfo struct {
		id       int64
		metadata []byte
	}
	var txns []txnInfo
	err := w.query(ctx, func(rows *sql.Rows) error {
		var t txnInfo
		if err := rows.Scan(&t.id, &t.metadata); err != nil {
			return err
		}
		txns = append(txns, t)
		return nil
	}, `SELECT id, metadata FROM transactions WHERE id > ? AND id <= ? ORDER BY id LIMIT `+strconv.Itoa(watchBatch), int64(after), int64(upTo))
	if err != nil {
		return after, err
	}
	if len(txns) == 0 {
		return upTo, nil
	}
	last := revision(txns[len(txns)-1].id)

	builders := make(map[int64]*revisionChanges, len(txns))
	for _, t := range txns {
		builders[t.id] = newRevisionChanges(w.opts.Content, w.opts.MaximumBufferedChangesByteSize)
	}
	err = w.query(ctx, func(rows *sql.Rows) error {
		var txn int64
		var blob []byte
		if err := rows.Scan(&txn, &blob); err != nil {
			return err
		}
		b := builders[txn]
		if b == nil {
			return nil
		}
		return b.add(blob)
	}, `SELECT txn, data FROM changelog WHERE txn > ? AND txn <= ? ORDER BY txn, seq`, int64(after), int64(last))
	if err != nil {
		return after, err
	}
	for _, t := range txns {
		rc, ok, err := builders[t.id].build(revision(t.id), t.metadata)
		if err != nil {
			return after, err
		}
		if !ok {
			continue
		}
		if err := w.send(ctx, rc); err != nil {
			return after, err
		}
		delete(builders, t.id)
	}
	return last, nil
}

func (w *watcher) query(ctx context.Context, scan func(*sql.Rows) error, query string, args ...any) error {
	rows, release, err := poolQuerier{w.d}.query(ctx, false, query, args...)
	if err != nil {
		return w.queryErr(ctx, err)
	}
	defer release()
	defer rows.Close()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return w.queryErr(ctx, err)
		}
		if err := scan(rows); err != nil {
			return w.queryErr(ctx, err)
		}
	}
	return w.queryErr(ctx, rows.Err())
}

func (w *watcher) queryErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return datastore.NewWatchCanceledErr()
	}
	var limitErr datastore.MaximumChangesSizeExceededError
	if errors.As(err, &limitErr) {
		return err
	}
	if w.d.closed.Load() {
		return ErrClosed
	}
	return datastore.NewWatchTemporaryErr(fmt.Errorf("watch: %w", err))
}

// revisionChanges folds one revision's changelog records into its net
// changes: a relationship touched then deleted within the transaction is
// reported as deleted only if it existed before it, and so on.
type revisionChanges struct {
	content  datastore.WatchContent
	maxBytes uint64
	bytes    uint64

	rels    map[string]*relChange
	relKeys []string
	defs    map[string]changeRecord // by kind prefix + name
	defKeys []string
}

type relChange struct {
	existedBefore bool
	last          changeKind
	rel           tuple.Relationship
}

func newRevisionChanges(content datastore.WatchContent, maxBytes uint64) *revisionChanges {
	return &revisionChanges{content: content, maxBytes: maxBytes}
}

func (rc *revisionChanges) add(blob []byte) error {
	rc.bytes += uint64(len(blob))
	if rc.maxBytes > 0 && rc.bytes > rc.maxBytes {
		return datastore.NewMaximumChangesSizeExceededError(rc.maxBytes)
	}
	return decodeChanges(blob, func(rec changeRecord) error {
		switch rec.kind {
		case changeCreated, changeReplaced, changeDeleted:
			if rc.content&datastore.WatchRelationships == 0 {
				return nil
			}
			if rc.rels == nil {
				rc.rels = make(map[string]*relChange)
			}
			key := tuple.StringWithoutCaveatOrExpiration(rec.rel)
			c, ok := rc.rels[key]
			if !ok {
				c = &relChange{existedBefore: rec.kind != changeCreated}
				rc.rels[key] = c
				rc.relKeys = append(rc.relKeys, key)
			}
			c.last, c.rel = rec.kind, rec.rel
		default:
			if rc.content&datastore.WatchSchema == 0 {
				return nil
			}
			if rc.defs == nil {
				rc.defs = make(map[string]changeRecord)
			}
			key := "n$" + rec.name
			if rec.kind == changeCaveat || rec.kind == changeCaveatGone {
				key = "c$" + rec.name
			}
			if _, ok := rc.defs[key]; !ok {
				rc.defKeys = append(rc.defKeys, key)
			}
			rc.defs[key] = rec
		}
		return nil
	})
}

// build returns the revision's changes, and whether there is anything to
// report.
func (rc *revisionChanges) build(rev revision, metadata []byte) (datastore.RevisionChanges, bool, error) {
	out := datastore.RevisionChanges{Revision: rev}
	for _, key := range rc.relKeys {
		c := rc.rels[key]
		switch {
		case c.last != changeDeleted:
			out.RelationshipChanges = append(out.RelationshipChanges, tuple.Touch(c.rel))
		case c.existedBefore:
			out.RelationshipChanges = append(out.RelationshipChanges, tuple.Delete(c.rel))
		}
	}
	for _, key := range rc.defKeys {
		rec := rc.defs[key]
		switch rec.kind {
		case changeNamespace:
			def := &core.NamespaceDefinition{}
			if err := def.UnmarshalVT(rec.definition); err != nil {
				return out, false, fmt.Errorf("watch: decode namespace %s: %w", rec.name, err)
			}
			out.ChangedDefinitions = append(out.ChangedDefinitions, def)
		case changeCaveat:
			def := &core.CaveatDefinition{}
			if err := def.UnmarshalVT(rec.definition); err != nil {
				return out, false, fmt.Errorf("watch: decode caveat %s: %w", rec.name, err)
			}
			out.ChangedDefinitions = append(out.ChangedDefinitions, def)
		case changeNamespaceGone:
			out.DeletedNamespaces = append(out.DeletedNamespaces, rec.name)
		case changeCaveatGone:
			out.DeletedCaveats = append(out.DeletedCaveats, rec.name)
		}
	}
	if len(metadata) > 0 {
		m := &structpb.Struct{}
		if err := proto.Unmarshal(metadata, m); err != nil {
			return out, false, fmt.Errorf("watch: decode transaction metadata: %w", err)
		}
		out.Metadatas = []*structpb.Struct{m}
	}
	ok := len(out.RelationshipChanges) > 0 || len(out.ChangedDefinitions) > 0 ||
		len(out.DeletedNamespaces) > 0 || len(out.DeletedCaveats) > 0 || len(out.Metadatas) > 0
	return out, ok, nil
}
