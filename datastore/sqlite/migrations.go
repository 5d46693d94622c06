package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// liveTxn is the deleted_txn of a row that is not deleted: the largest
// SQLite integer, so that "deleted_txn > R" holds for every revision R.
const liveTxn = int64(9223372036854775807)

// migration is one step of the file's schema. Migrations run in order, each
// in its own transaction, and are recorded in schema_migrations; a file
// written by a newer version (a version this one does not know) is refused.
type migration struct {
	version int
	name    string
	up      func(ctx context.Context, tx *sql.Tx) error
}

var migrations = []migration{
	{1, "initial schema", migrateInitial},
}

// The initial schema.
//
// relationships is clustered (WITHOUT ROWID) on the resource side, which is
// how checks read it: namespace, object_id, relation, then the subject, then
// deleted_txn, so that every version of a relationship has its own key and a
// live row (deleted_txn = liveTxn) is unique: inserting a relationship that
// is already live is a primary key violation. Rows carry the revision that
// created them and the one that deleted them (MVCC): a reader at revision R
// sees the rows with created_txn <= R < deleted_txn.
//
// relationships_by_subject serves reverse queries (lookups, subject
// filters). It holds every column a read returns, so reverse reads never go
// back to the table, and it is ordered so that the BySubject sort order of
// a lookup (subject, then resource) is the index order.
//
// relationships_deleted and relationships_expiration are partial indexes
// over the rows that garbage collection deletes: deleted versions, and rows
// with an expiration.
//
// changelog holds, per transaction, the changes Watch reports, in blobs of
// records (see changelog.go). It is kept for the GC window.
const schemaV1 = `
CREATE TABLE metadata (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE transactions (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	timestamp INTEGER NOT NULL,
	metadata  BLOB
);
CREATE INDEX transactions_by_timestamp ON transactions (timestamp);

CREATE TABLE changelog (
	txn  INTEGER NOT NULL,
	seq  INTEGER NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (txn, seq)
) WITHOUT ROWID;

CREATE TABLE relationships (
	namespace           TEXT NOT NULL,
	object_id           TEXT NOT NULL,
	relation            TEXT NOT NULL,
	subject_namespace   TEXT NOT NULL,
	subject_object_id   TEXT NOT NULL,
	subject_relation    TEXT NOT NULL,
	caveat_name         TEXT,
	caveat_context      BLOB,
	expiration          INTEGER,
	integrity_key_id    TEXT,
	integrity_hash      BLOB,
	integrity_timestamp INTEGER,
	created_txn         INTEGER NOT NULL,
	deleted_txn         INTEGER NOT NULL,
	PRIMARY KEY (namespace, object_id, relation, subject_namespace, subject_object_id, subject_relation, deleted_txn)
) WITHOUT ROWID;

CREATE INDEX relationships_by_subject ON relationships (
	subject_namespace, subject_object_id, subject_relation, namespace, relation, object_id,
	created_txn, expiration, caveat_name, caveat_context, integrity_key_id, integrity_hash, integrity_timestamp
);
CREATE INDEX relationships_deleted ON relationships (deleted_txn) WHERE deleted_txn < 9223372036854775807;
CREATE INDEX relationships_expiration ON relationships (expiration) WHERE expiration IS NOT NULL;

CREATE TABLE namespaces (
	name        TEXT NOT NULL,
	definition  BLOB NOT NULL,
	created_txn INTEGER NOT NULL,
	deleted_txn INTEGER NOT NULL,
	PRIMARY KEY (name, deleted_txn)
) WITHOUT ROWID;

CREATE TABLE caveats (
	name        TEXT NOT NULL,
	definition  BLOB NOT NULL,
	created_txn INTEGER NOT NULL,
	deleted_txn INTEGER NOT NULL,
	PRIMARY KEY (name, deleted_txn)
) WITHOUT ROWID;

CREATE TABLE counters (
	name            TEXT NOT NULL,
	filter          BLOB NOT NULL,
	count           INTEGER NOT NULL,
	computed_at_txn INTEGER,
	created_txn     INTEGER NOT NULL,
	deleted_txn     INTEGER NOT NULL,
	PRIMARY KEY (name, deleted_txn)
) WITHOUT ROWID;

CREATE TABLE stored_schema (
	id          INTEGER PRIMARY KEY,
	hash        TEXT NOT NULL,
	data        BLOB NOT NULL,
	created_txn INTEGER NOT NULL,
	deleted_txn INTEGER NOT NULL
);
CREATE INDEX stored_schema_by_deleted ON stored_schema (deleted_txn);
`

func migrateInitial(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, schemaV1); err != nil {
		return err
	}
	id, err := newUUID()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO metadata (key, value) VALUES ('unique_id', ?), ('relationship_count', '0')`, id); err != nil {
		return err
	}
	// The first transaction: revision 1, the revision of an empty datastore.
	_, err = tx.ExecContext(ctx, `INSERT INTO transactions (timestamp) VALUES (?)`, time.Now().UnixNano())
	return err
}

// migrate brings the file's schema up to the newest version this package
// knows, and returns the version the file is at.
func migrate(ctx context.Context, db *sql.DB) (int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return 0, fmt.Errorf("create migrations table: %w", err)
	}
	current, err := schemaVersion(ctx, db)
	if err != nil {
		return 0, err
	}
	newest := migrations[len(migrations)-1].version
	if current > newest {
		return current, fmt.Errorf("%w (file at version %d, this version knows up to %d)", ErrNewerSchema, current, newest)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if err := runMigration(ctx, db, m); err != nil {
			return current, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		current = m.version
	}
	return current, nil
}

func runMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := m.up(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
},
) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// newUUID returns a random (version 4) UUID string.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
