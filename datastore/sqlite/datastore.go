package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authzed/spicedb/pkg/datastore"
	sqlite3 "modernc.org/sqlite"
)

// Engine is the name this datastore reports as its engine.
const Engine = "sqlite"

// writerCacheSize is the least page cache of the write connection.
const writerCacheSize = 256 << 20

// Datastore is a SpiceDB datastore (datastore.Datastore) on one SQLite
// file. Create it with New and hand it to an embedded SpiceDB with
// server.WithDatastore; Close it when done. It is safe for concurrent use.
//
// Only one process may use a file at a time (New fails with ErrLocked for a
// second one): reads are served by a pool of read connections, and all
// writes go through a single write connection of this process.
type Datastore struct {
	path string
	cfg  config
	lock *fileLock

	writeDB    *sql.DB       // the write connection's pool (of one)
	writeConn  *sql.Conn     // the write connection: every write runs on it
	readDB     *sql.DB       // cfg.maxReadConns query-only connections
	readSlots  chan struct{} // one place per read connection (acquireRead)
	readStmts  *stmtCache
	writeStmts *stmtCache

	uniqueID string

	// writeSem is the write lock: a write transaction (or a garbage
	// collection batch) holds it from its first statement to its commit or
	// rollback. closing is closed when Close starts.
	writeSem chan struct{}
	closing  chan struct{}
	lastTS   int64 // commit timestamp of the head transaction (under writeSem)

	head     atomic.Pointer[head]
	notifyMu sync.Mutex
	notify   chan struct{} // closed (and replaced) at every commit

	optMu     sync.Mutex
	optimized *optimizedCache

	defs *defCache

	gcRan    atomic.Bool
	gcMu     sync.Mutex // one garbage collection at a time
	stopGC   context.CancelFunc
	gcDone   chan struct{}
	closed   atomic.Bool
	closeMu  sync.Mutex
	watchers sync.WaitGroup

	// observe, when set (by tests), sees the SQL of every read.
	observe atomic.Pointer[func(query string, args []any)]
}

func (d *Datastore) observed(query string, args []any) {
	if f := d.observe.Load(); f != nil {
		(*f)(query, args)
	}
}

var (
	_ datastore.Datastore                   = (*Datastore)(nil)
	_ datastore.GarbageCollectableDatastore = (*Datastore)(nil)
)

// New opens (creating it if needed) the SQLite database file at path,
// migrates its tables to the current version, and starts the background
// garbage collector. The file is locked against other processes until Close.
//
// path must be a file path; ":memory:" is not supported, because the
// datastore uses separate read and write connections.
func New(ctx context.Context, path string, opts ...Option) (*Datastore, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sqlite datastore: %w", err)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite datastore: %q is not a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite datastore: %w", err)
	}
	if dir := filepath.Dir(abs); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("sqlite datastore: directory of %s: %w", abs, err)
		}
	}

	lock, err := acquireLock(abs)
	if err != nil {
		return nil, err
	}
	d := &Datastore{
		path:      abs,
		cfg:       cfg,
		lock:      lock,
		writeSem:  make(chan struct{}, 1),
		readSlots: make(chan struct{}, cfg.maxReadConns),
		closing:   make(chan struct{}),
		notify:    make(chan struct{}),
	}
	if err := d.open(ctx); err != nil {
		d.closeDBs()
		_ = lock.release()
		return nil, fmt.Errorf("sqlite datastore: open %s: %w", abs, err)
	}
	if cfg.gcInterval > 0 {
		gcCtx, cancel := context.WithCancel(context.Background())
		d.stopGC = cancel
		d.gcDone = make(chan struct{})
		go d.gcLoop(gcCtx)
	}
	return d, nil
}

// writerCacheUsed returns the bytes of page cache the write connection
// holds.
func (d *Datastore) writerCacheUsed() (int, error) {
	var used int
	err := d.writeConn.Raw(func(dc any) error {
		status, ok := dc.(sqlite3.DBStatus)
		if !ok {
			return fmt.Errorf("sqlite: the driver's connection %T has no status", dc)
		}
		var err error
		used, _, err = status.Status(sqlite3.DBStatusCacheUsed, false)
		return err
	})
	return used, err
}

// trimWriterCache gives the write connection's page cache back when a
// transaction left it larger than a connection's configured cache. Its
// limit is writerCacheSize so that a large transaction (a bulk import, a
// deletion of many relationships) does not spill its pages to the WAL
// midway; once it has committed, those pages would otherwise stay for the
// life of the process (a million-relationship import left serve at 591 MiB
// of RSS, 177 MiB given back). Called with the write lock held.
func (d *Datastore) trimWriterCache(ctx context.Context) {
	if used, err := d.writerCacheUsed(); err == nil && int64(used) > d.cfg.cacheSize {
		_, _ = d.writeConn.ExecContext(ctx, `PRAGMA shrink_memory`)
	}
}

func (d *Datastore) dsn(write bool) string {
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", d.cfg.busyTimeout.Milliseconds()))
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous("+d.cfg.synchronous.pragma()+")")
	cache := d.cfg.cacheSize
	if write {
		// The writer's cache holds the pages a large transaction dirties
		// (a bulk import): when they do not fit, SQLite spills them to the
		// WAL in the middle of the transaction and reads them back.
		cache = max(cache, writerCacheSize)
	}
	params.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cache/1024))
	params.Add("_pragma", fmt.Sprintf("mmap_size(%d)", d.cfg.mmapSize))
	params.Add("_pragma", "temp_store(MEMORY)")
	params.Add("_pragma", "foreign_keys(OFF)")
	if write {
		params.Add("_pragma", "journal_size_limit(67108864)")
	} else {
		params.Add("_pragma", "query_only(1)")
	}
	// The path goes to SQLite as a URI (file:...), so escape what a URI
	// would otherwise interpret.
	u := url.URL{Scheme: "file", OmitHost: true, Path: filepath.ToSlash(d.path)}
	return u.String() + "?" + params.Encode()
}

func (d *Datastore) open(ctx context.Context) error {
	var err error
	d.writeDB, err = sql.Open("sqlite", d.dsn(true))
	if err != nil {
		return err
	}
	d.writeDB.SetMaxOpenConns(1)
	d.writeDB.SetMaxIdleConns(1)
	d.writeDB.SetConnMaxLifetime(0)
	d.writeDB.SetConnMaxIdleTime(0)

	if _, err := migrate(ctx, d.writeDB); err != nil {
		return err
	}
	d.writeConn, err = d.writeDB.Conn(ctx)
	if err != nil {
		return err
	}

	d.readDB, err = sql.Open("sqlite", d.dsn(false))
	if err != nil {
		return err
	}
	d.readDB.SetMaxOpenConns(d.cfg.maxReadConns)
	d.readDB.SetMaxIdleConns(d.cfg.maxReadConns)
	d.readDB.SetConnMaxLifetime(0)
	d.readDB.SetConnMaxIdleTime(0)
	d.readStmts = newStmtCache(d.readDB)
	d.writeStmts = newStmtCache(d.writeConn)

	if err := d.writeConn.QueryRowContext(ctx, `SELECT value FROM metadata WHERE key = 'unique_id'`).Scan(&d.uniqueID); err != nil {
		return fmt.Errorf("read unique ID: %w", err)
	}
	var headRev int64
	if err := d.writeConn.QueryRowContext(ctx, `SELECT id, timestamp FROM transactions ORDER BY id DESC LIMIT 1`).Scan(&headRev, &d.lastTS); err != nil {
		return fmt.Errorf("read head revision: %w", err)
	}
	hash, err := d.schemaHashAt(ctx, d.writeConn, revision(headRev))
	if err != nil {
		return err
	}
	d.defs = newDefCache(revision(headRev))
	d.head.Store(&head{rev: revision(headRev), schemaHash: hash, ts: d.lastTS})
	return nil
}

// Path returns the absolute path of the database file.
func (d *Datastore) Path() string { return d.path }

// MetricsID identifies the datastore in SpiceDB's metrics.
func (d *Datastore) MetricsID() (string, error) { return "sqlite:" + filepath.Base(d.path), nil }

// EngineName returns "sqlite" (datastore.EngineIdentifiable).
func (d *Datastore) EngineName() string { return Engine }

// UniqueID returns the datastore's ID, a UUID generated when the file was
// created and stored in it: stable across restarts and kept by backups.
func (d *Datastore) UniqueID(_ context.Context) (string, error) {
	if d.closed.Load() {
		return "", ErrClosed
	}
	return d.uniqueID, nil
}

// ReadyState reports the datastore ready once its file answers a query; New
// has migrated it already.
func (d *Datastore) ReadyState(ctx context.Context) (datastore.ReadyState, error) {
	if d.closed.Load() {
		return datastore.ReadyState{}, ErrClosed
	}
	var n int
	if err := d.readDB.QueryRowContext(ctx, `SELECT 1`).Scan(&n); err != nil {
		return datastore.ReadyState{Message: "database file does not answer: " + err.Error()}, ctxErr(ctx, err)
	}
	return datastore.ReadyState{Message: "ready", IsReady: true}, nil
}

// Features returns the supported features (the same as OfflineFeatures).
func (d *Datastore) Features(_ context.Context) (*datastore.Features, error) {
	return d.OfflineFeatures()
}

// OfflineFeatures reports Watch with continuous checkpoints and integrity
// data supported; the EmitImmediately watch strategy is not.
func (d *Datastore) OfflineFeatures() (*datastore.Features, error) {
	return &datastore.Features{
		Watch:                   datastore.Feature{Status: datastore.FeatureSupported},
		ContinuousCheckpointing: datastore.Feature{Status: datastore.FeatureSupported},
		WatchEmitsImmediately:   datastore.Feature{Status: datastore.FeatureUnsupported, Reason: "changes are emitted per committed revision"},
		IntegrityData:           datastore.Feature{Status: datastore.FeatureSupported},
	}, nil
}

// Statistics returns the unique ID, the number of live relationships (kept
// exactly, in the file, by every write; expired ones count until they are
// collected) and per-type statistics of the schema at the head revision.
func (d *Datastore) Statistics(ctx context.Context) (datastore.Stats, error) {
	if d.closed.Load() {
		return datastore.Stats{}, ErrClosed
	}
	var count int64
	if err := d.readDB.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM metadata WHERE key = 'relationship_count'`).Scan(&count); err != nil {
		return datastore.Stats{}, fmt.Errorf("read relationship count: %w", err)
	}
	reader := d.SnapshotReader(d.head.Load().rev)
	nsDefs, err := reader.LegacyListAllNamespaces(ctx)
	if err != nil {
		return datastore.Stats{}, err
	}
	if len(nsDefs) == 0 {
		// A schema written only to the unified stored schema.
		stored, err := reader.ReadStoredSchema(ctx)
		if err != nil && !errors.Is(err, datastore.ErrSchemaNotFound) {
			return datastore.Stats{}, err
		}
		if stored != nil {
			for _, def := range stored.Get().GetV1().GetNamespaceDefinitions() {
				nsDefs = append(nsDefs, datastore.RevisionedNamespace{Definition: def})
			}
		}
	}
	return datastore.Stats{
		UniqueID:                   d.uniqueID,
		EstimatedRelationshipCount: uint64(max(count, 0)),
		ObjectTypeStatistics:       datastore.ComputeObjectTypeStats(nsDefs),
	}, nil
}

// Backup writes a consistent copy of the database, as of the moment it
// starts, to destPath (which must not exist), while the datastore keeps
// serving reads and writes. The copy is a complete database file: open it
// with New to restore. It uses SQLite's VACUUM INTO, so the copy is also
// compacted.
func (d *Datastore) Backup(ctx context.Context, destPath string) error {
	if d.closed.Load() {
		return ErrClosed
	}
	abs, err := filepath.Abs(destPath)
	if err != nil {
		return fmt.Errorf("sqlite datastore backup: %w", err)
	}
	if abs == d.path {
		return errors.New("sqlite datastore backup: the destination is the database itself")
	}
	if _, err := os.Stat(abs); err == nil {
		return fmt.Errorf("sqlite datastore backup: %s already exists", abs)
	}
	// VACUUM INTO runs in a read transaction of its connection: a snapshot.
	// It needs a connection that may write a file, so use a dedicated one.
	db, err := sql.Open("sqlite", d.dsn(false))
	if err != nil {
		return fmt.Errorf("sqlite datastore backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite datastore backup: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA query_only(0)`); err != nil {
		return fmt.Errorf("sqlite datastore backup: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return fmt.Errorf("sqlite datastore backup to %s: %w", abs, err)
	}
	return privateFile(abs)
}

// Close stops the garbage collector and the watches, closes the database
// and releases the file lock. Calls made after Close fail with ErrClosed.
func (d *Datastore) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed.Swap(true) {
		return nil
	}
	close(d.closing)
	if d.stopGC != nil {
		d.stopGC()
		<-d.gcDone
	}
	d.wakeWatchers()
	d.watchers.Wait()
	// Wait for a write transaction in flight to finish.
	d.writeSem <- struct{}{}
	err := d.closeDBs()
	if lerr := d.lock.release(); err == nil {
		err = lerr
	}
	return err
}

func (d *Datastore) closeDBs() error {
	var errs []error
	if d.readStmts != nil {
		d.readStmts.close()
	}
	if d.writeStmts != nil {
		d.writeStmts.close()
	}
	if d.readDB != nil {
		errs = append(errs, d.readDB.Close())
	}
	if d.writeConn != nil {
		// Fold the WAL back into the database file, so that the file alone
		// is the whole database after a clean shutdown.
		_, _ = d.writeConn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
		errs = append(errs, d.writeConn.Close())
	}
	if d.writeDB != nil {
		errs = append(errs, d.writeDB.Close())
	}
	return errors.Join(errs...)
}

// wakeWatchers wakes every Watch (after a commit, or at Close).
func (d *Datastore) wakeWatchers() {
	d.notifyMu.Lock()
	close(d.notify)
	d.notify = make(chan struct{})
	d.notifyMu.Unlock()
}

func (d *Datastore) changed() <-chan struct{} {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	return d.notify
}

// preparer is a *sql.DB (whose statements database/sql prepares lazily on
// each connection that runs them) or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// stmtCache keeps prepared statements per SQL text.
type stmtCache struct {
	db preparer
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const maxCachedStatements = 512

func newStmtCache(db preparer) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// acquireRead takes a read connection's place, or gives up when ctx ends.
// database/sql's pool would wait for a connection too, but under the
// read's own context, which seeks do not give it (poolQuerier.query). The
// places are as many as the pool's connections. The reads made outside
// readers (revisions, readiness, statistics, the collector's bounds, the
// watch's start) take no place but hold a connection for one short indexed
// statement each, so a read with a place waits for a connection, without
// its context, at most about that long.
func (d *Datastore) acquireRead(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	select {
	case d.readSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// releaseRead gives back the place acquireRead took.
func (d *Datastore) releaseRead() { <-d.readSlots }

// get returns the prepared statement for query, and a function the caller
// calls when done with it (which closes it if it could not be cached).
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok {
		return s, noop, nil
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if len(c.m) >= maxCachedStatements {
		return s, func() { _ = s.Close() }, nil
	}
	c.m[query] = s
	return s, noop, nil
}

func noop() {}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.m {
		_ = s.Close()
		delete(c.m, k)
	}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BackupFile writes a consistent copy of the database file at srcPath to
// destPath (which must not exist), from any process: while a Datastore in
// another process serves the file, or while nothing does. It opens the
// file read-only, without taking the Datastore's lock (SQLite's own
// locking keeps the copy a snapshot of one moment), and copies with
// VACUUM INTO. Open the copy with New to restore.
func BackupFile(ctx context.Context, srcPath, destPath string) error {
	src, err := filepath.Abs(srcPath)
	if err != nil {
		return fmt.Errorf("sqlite backup: %w", err)
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite backup: %w", err)
	}
	dest, err := filepath.Abs(destPath)
	if err != nil {
		return fmt.Errorf("sqlite backup: %w", err)
	}
	if dest == src {
		return errors.New("sqlite backup: the destination is the database itself")
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("sqlite backup: %s already exists", dest)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("sqlite backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		return fmt.Errorf("sqlite backup of %s to %s: %w", src, dest, err)
	}
	return privateFile(dest)
}

// privateFile makes a backup readable by its owner only: it holds every
// relationship of every organization.
func privateFile(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("sqlite backup: %w", err)
	}
	return nil
}
