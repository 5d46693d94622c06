package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

type fileStats struct {
	rows, changelog, transactions, usedPages int64
}

func readFileStats(t *testing.T, db *sql.DB) fileStats {
	t.Helper()
	var s fileStats
	var pages, free int64
	require.NoError(t, db.QueryRow(`SELECT (SELECT COUNT(*) FROM relationships), (SELECT COUNT(*) FROM changelog),
		(SELECT COUNT(*) FROM transactions)`).Scan(&s.rows, &s.changelog, &s.transactions))
	require.NoError(t, db.QueryRow(`PRAGMA page_count`).Scan(&pages))
	require.NoError(t, db.QueryRow(`PRAGMA freelist_count`).Scan(&free))
	s.usedPages = pages - free
	return s
}

// TestGarbageCollectionLevelsOff runs a steady load of touches (that
// replace relationships), deletes and already-expired relationships against
// a datastore with a short GC window and a short GC interval, and samples
// the file: the number of rows (all versions), of changelog and transaction
// rows, and of pages in use must level off instead of growing with the
// number of writes, and expired relationships must be collected.
func TestGarbageCollectionLevelsOff(t *testing.T) {
	const window = 400 * time.Millisecond
	ds := newDatastore(t, append(syncNormal(),
		sqlite.WithRevisionQuantization(0),
		sqlite.WithGCWindow(window),
		sqlite.WithGCInterval(100*time.Millisecond))...)
	db, err := sql.Open("sqlite", "file:"+ds.Path()+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()

	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	duration := 4 * time.Second
	if testing.Short() {
		duration = 2 * time.Second
	}
	var samples []fileStats
	start := time.Now()
	nextSample := start.Add(duration / 10)
	writes := 0
	for time.Since(start) < duration {
		_, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
			var updates []tuple.RelationshipUpdate
			for range 20 {
				rel := tuple.MustParse(fmt.Sprintf("doc:d%d#viewer@user:u%d", rnd.IntN(100), rnd.IntN(3)))
				switch rnd.IntN(4) {
				case 0:
					updates = append(updates, tuple.Delete(rel))
				case 1: // a new version, with an expiration in the future
					exp := time.Now().Add(time.Hour + time.Duration(rnd.IntN(1000))*time.Second)
					rel.OptionalExpiration = &exp
					updates = append(updates, tuple.Touch(rel))
				case 2: // already expired
					exp := time.Now().Add(-time.Second)
					rel = tuple.MustParse(fmt.Sprintf("doc:x%d#viewer@user:u%d", writes, rnd.IntN(1000)))
					rel.OptionalExpiration = &exp
					updates = append(updates, tuple.Touch(rel))
				default:
					updates = append(updates, tuple.Touch(rel))
				}
			}
			return rwt.WriteRelationships(ctx, dedupe(updates))
		})
		require.NoError(t, err)
		writes++
		if time.Now().After(nextSample) {
			samples = append(samples, readFileStats(t, db))
			nextSample = nextSample.Add(duration / 10)
		}
	}
	require.GreaterOrEqual(t, len(samples), 8)
	t.Logf("%d write transactions; samples (rows, changelog, transactions, used pages): %v", writes, samples)

	// After the first window, the second half must not outgrow the first.
	half := len(samples) / 2
	maxOf := func(ss []fileStats, f func(fileStats) int64) int64 {
		var m int64
		for _, s := range ss {
			m = max(m, f(s))
		}
		return m
	}
	for name, f := range map[string]func(fileStats) int64{
		"rows":         func(s fileStats) int64 { return s.rows },
		"changelog":    func(s fileStats) int64 { return s.changelog },
		"transactions": func(s fileStats) int64 { return s.transactions },
		"used pages":   func(s fileStats) int64 { return s.usedPages },
	} {
		first, second := maxOf(samples[1:half], f), maxOf(samples[half:], f)
		require.LessOrEqual(t, float64(second), 1.5*float64(first)+10, "%s keep growing: %d in the first half, %d in the second", name, first, second)
	}

	// Expired relationships past the window, and versions deleted before it,
	// are collected (by the background collector, every 100ms).
	time.Sleep(window)
	cutoff := time.Now().Add(-window).UnixMicro()
	require.Eventually(t, func() bool {
		var expired, deleted int64
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM relationships WHERE expiration < ?`, cutoff).Scan(&expired))
		require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM relationships WHERE deleted_txn < 9223372036854775807`).Scan(&deleted))
		return expired == 0 && deleted == 0
	}, 5*time.Second, 50*time.Millisecond, "expired relationships or deleted versions were not collected")

	stats, err := ds.Statistics(ctx)
	require.NoError(t, err)
	var live int64
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM relationships WHERE deleted_txn = 9223372036854775807`).Scan(&live))
	require.EqualValues(t, live, stats.EstimatedRelationshipCount, "the relationship count drifted")
}

func dedupe(updates []tuple.RelationshipUpdate) []tuple.RelationshipUpdate {
	seen := map[string]bool{}
	out := updates[:0]
	for _, u := range updates {
		k := tuple.StringWithoutCaveatOrExpiration(u.Relationship)
		if !seen[k] {
			seen[k] = true
			out = append(out, u)
		}
	}
	return out
}
