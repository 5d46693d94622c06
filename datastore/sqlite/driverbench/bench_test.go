// Package driverbench compares two pure-Go SQLite drivers, modernc.org/sqlite
// and github.com/ncruces/go-sqlite3, on the access paths of the Spicegate
// SQLite datastore: 205,000 relationships (the target data set), inserted in
// random order in one transaction, then the reads of a check (one resource
// ID), of a bulk check (100 IDs) and of a lookup (1,000 rows from the subject
// index), serially and from two goroutines. The results are in ../README.md.
package driverbench

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
	_ "github.com/ncruces/go-sqlite3/embed"
	_ "modernc.org/sqlite"
)

const schema = `
CREATE TABLE rel (
 namespace TEXT NOT NULL, object_id TEXT NOT NULL, relation TEXT NOT NULL,
 subject_namespace TEXT NOT NULL, subject_object_id TEXT NOT NULL, subject_relation TEXT NOT NULL,
 caveat_name TEXT, caveat_context BLOB, expiration INTEGER,
 created_txn INTEGER NOT NULL, deleted_txn INTEGER NOT NULL DEFAULT 9223372036854775807,
 PRIMARY KEY (namespace, object_id, relation, subject_namespace, subject_object_id, subject_relation, deleted_txn)
) WITHOUT ROWID;
CREATE INDEX rel_subject ON rel (subject_namespace, subject_object_id, subject_relation, namespace, relation);
`

const cols = "namespace,object_id,relation,subject_namespace,subject_object_id,subject_relation,caveat_name,caveat_context,expiration"

var drivers = []string{"sqlite", "sqlite3"} // modernc.org/sqlite, github.com/ncruces/go-sqlite3

func genRows() [][6]string {
	var rows [][6]string
	for o := range 100 {
		for m := range 50 {
			rel := "user"
			if m >= 40 && m < 49 {
				rel = "readonly"
			} else if m == 49 {
				rel = "support"
			}
			rows = append(rows, [6]string{"organization", fmt.Sprintf("org%d", o), rel, "user", fmt.Sprintf("u%d-%d", o, m), "..."})
		}
		for d := range 1000 {
			id := fmt.Sprintf("ds%d-%d", o, d)
			rows = append(rows, [6]string{"dataset", id, "organization", "organization", fmt.Sprintf("org%d", o), "..."})
			rows = append(rows, [6]string{"dataset", id, "owner", "user", fmt.Sprintf("u%d-%d", o, d%40), "..."})
		}
	}
	return rows
}

func open(tb testing.TB, drv string) *sql.DB {
	db, err := sql.Open(drv, "file:"+filepath.Join(tb.TempDir(), "x.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-65536)&_pragma=mmap_size(268435456)&_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.Exec(schema); err != nil {
		tb.Fatal(err)
	}
	return db
}

func insert(tb testing.TB, db *sql.DB, rows [][6]string) {
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	stmt, err := tx.Prepare("INSERT INTO rel (namespace,object_id,relation,subject_namespace,subject_object_id,subject_relation,created_txn) VALUES (?,?,?,?,?,?,1)")
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range rows {
		if _, err := stmt.Exec(r[0], r[1], r[2], r[3], r[4], r[5]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

var (
	loadedMu sync.Mutex
	loaded   = map[string]*sql.DB{}
)

func loadedDB(b *testing.B, drv string) *sql.DB {
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if db := loaded[drv]; db != nil {
		return db
	}
	rows := genRows()
	sort.Slice(rows, func(i, j int) bool { return strings.Join(rows[i][:], "\x00") < strings.Join(rows[j][:], "\x00") })
	db, err := sql.Open(drv, "file:"+filepath.Join(os.TempDir(), "driverbench-"+drv+".db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-65536)&_pragma=mmap_size(268435456)&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	db.Exec("DROP TABLE IF EXISTS rel")
	if _, err := db.Exec(schema); err != nil {
		b.Fatal(err)
	}
	insert(b, db, rows)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	loaded[drv] = db
	return db
}

type rel struct {
	a, b, c, d, e, f string
	cn               sql.NullString
	cc               []byte
	ex               sql.NullInt64
}

func scanAll(b *testing.B, rs *sql.Rows) int {
	defer rs.Close()
	n := 0
	var r rel
	for rs.Next() {
		if err := rs.Scan(&r.a, &r.b, &r.c, &r.d, &r.e, &r.f, &r.cn, &r.cc, &r.ex); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n
}

// BenchmarkInsertShuffled measures one transaction inserting 205,000
// relationships in random order (each row into the clustered primary key and
// the subject index).
func BenchmarkInsertShuffled(b *testing.B) {
	rows := genRows()
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for _, drv := range drivers {
		b.Run(drv, func(b *testing.B) {
			for range b.N {
				db := open(b, drv)
				start := time.Now()
				insert(b, db, rows)
				b.ReportMetric(float64(len(rows))/time.Since(start).Seconds(), "rows/s")
			}
		})
	}
}

// BenchmarkCheckQuery is the query a check issues: one resource ID, one relation.
func BenchmarkCheckQuery(b *testing.B) {
	for _, drv := range drivers {
		b.Run(drv, func(b *testing.B) {
			db := loadedDB(b, drv)
			q, err := db.Prepare("SELECT " + cols + " FROM rel WHERE namespace=? AND object_id IN (?) AND relation=? AND created_txn<=? AND deleted_txn>? AND (expiration IS NULL OR expiration>?)")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UnixNano()
			b.ResetTimer()
			for i := range b.N {
				scanAll(b, must(q.Query("dataset", fmt.Sprintf("ds%d-%d", i%100, i%1000), "organization", 5, 5, now)))
			}
		})
	}
}

// BenchmarkCheckQueryParallel runs the check query from two goroutines (2 cores).
func BenchmarkCheckQueryParallel(b *testing.B) {
	for _, drv := range drivers {
		b.Run(drv, func(b *testing.B) {
			db := loadedDB(b, drv)
			q, err := db.Prepare("SELECT " + cols + " FROM rel WHERE namespace=? AND object_id IN (?) AND relation=? AND created_txn<=? AND deleted_txn>? AND (expiration IS NULL OR expiration>?)")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UnixNano()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(1000)
				for pb.Next() {
					i++
					scanAll(b, must(q.Query("dataset", fmt.Sprintf("ds%d-%d", i%100, i%1000), "organization", 5, 5, now)))
				}
			})
		})
	}
}

// BenchmarkBulkCheckQuery is a bulk check's query: 100 resource IDs.
func BenchmarkBulkCheckQuery(b *testing.B) {
	for _, drv := range drivers {
		b.Run(drv, func(b *testing.B) {
			db := loadedDB(b, drv)
			q, err := db.Prepare("SELECT " + cols + " FROM rel WHERE namespace=? AND object_id IN (" + strings.TrimSuffix(strings.Repeat("?,", 100), ",") + ") AND relation=? AND created_txn<=? AND deleted_txn>? AND (expiration IS NULL OR expiration>?)")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UnixNano()
			b.ResetTimer()
			for i := range b.N {
				args := []any{"dataset"}
				for k := range 100 {
					args = append(args, fmt.Sprintf("ds%d-%d", i%100, (i*7+k)%1000))
				}
				args = append(args, "organization", 5, 5, now)
				scanAll(b, must(q.Query(args...)))
			}
		})
	}
}

// BenchmarkLookupQuery is a lookup's reverse query: the 1,000 datasets of an organization.
func BenchmarkLookupQuery(b *testing.B) {
	for _, drv := range drivers {
		b.Run(drv, func(b *testing.B) {
			db := loadedDB(b, drv)
			q, err := db.Prepare("SELECT " + cols + " FROM rel INDEXED BY rel_subject WHERE subject_namespace=? AND subject_object_id IN (?) AND subject_relation=? AND namespace=? AND relation=? AND created_txn<=? AND deleted_txn>? AND (expiration IS NULL OR expiration>?)")
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now().UnixNano()
			b.ResetTimer()
			for i := range b.N {
				if n := scanAll(b, must(q.Query("organization", fmt.Sprintf("org%d", i%100), "...", "dataset", "organization", 5, 5, now))); n != 1000 {
					b.Fatal(n)
				}
			}
		})
	}
}

func must(rs *sql.Rows, err error) *sql.Rows {
	if err != nil {
		panic(err)
	}
	return rs
}
