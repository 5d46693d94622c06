package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// ObserveQueries makes d call f with the SQL and arguments of every read it
// runs (nil stops). For tests only.
func ObserveQueries(d *Datastore, f func(query string, args []any)) {
	if f == nil {
		d.observe.Store(nil)
		return
	}
	d.observe.Store(&f)
}

// WriterCacheUsed returns the bytes of page cache the write connection
// holds (SQLite's SQLITE_DBSTATUS_CACHE_USED). For tests only.
func WriterCacheUsed(d *Datastore) (int, error) { return d.writerCacheUsed() }

// LimitPages caps the database file at n pages on the write connection
// (SQLite's max_page_count), so that writes beyond it fail as on a full
// disk; 0 lifts the cap. For tests only.
func LimitPages(ctx context.Context, d *Datastore, n int) error {
	if n == 0 {
		n = 0xfffffffe
	}
	_, err := d.writeConn.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, n))
	return err
}

// PageCount is the database file's size in pages, as the writer sees it.
func PageCount(ctx context.Context, d *Datastore) (n int, err error) {
	err = d.writeConn.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n)
	return n, err
}

// LeaveTransactionOpen starts a transaction on the write connection and
// leaves it open, as a path that failed to end one would. For tests only.
func LeaveTransactionOpen(ctx context.Context, d *Datastore) error {
	_, err := d.writeConn.ExecContext(ctx, `BEGIN`)
	return err
}

// QueryPlan returns the detail lines of SQLite's EXPLAIN QUERY PLAN of
// query on db. For tests only.
func QueryPlan(db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			return nil, err
		}
		plan = append(plan, detail)
	}
	return plan, rows.Err()
}
