package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	datastorecfg "github.com/authzed/spicedb/pkg/cmd/datastore"
	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/migration"
	"github.com/authzed/spicedb/pkg/migrate"
	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/jackc/pgx/v5"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// The benchmarks measure the SQLite datastore behind a real SpiceDB (gRPC
// over an in-memory network), against SpiceDB's memory datastore, on
// Spicegate's schema and data set: organizations of 50 members (40 User, 9
// Read-only, the support account) with datasets that name their organization
// and an owner. By default the data set is small (10 organizations of 100
// datasets); SPICEGATE_BENCH_FULL=1 runs the target size (100 organizations
// of 1,000 datasets: 205,000 relationships) and the cold start on 1,000,000
// relationships:
//
//	SPICEGATE_BENCH_FULL=1 go test -run '^$' -bench . -benchtime 2000x ./datastore/sqlite/
func benchShape() platformShape {
	if os.Getenv("SPICEGATE_BENCH_FULL") == "1" {
		return platformShape{orgs: 100, members: 50, datasets: 1000}
	}
	return platformShape{orgs: 10, members: 50, datasets: 100}
}

type benchServer struct {
	conn  *grpc.ClientConn
	ds    *sqlite.Datastore // nil for the memory datastore
	fresh *v1.Consistency   // at least as fresh as the load
}

var (
	benchMu      sync.Mutex
	benchServers = map[string]*benchServer{}
)

// loadedServer starts (once per benchmark binary) a loaded server on the engine.
func loadedServer(b *testing.B, engine string) *benchServer {
	benchMu.Lock()
	defer benchMu.Unlock()
	if s := benchServers[engine]; s != nil {
		return s
	}
	shape := benchShape()
	s := &benchServer{}
	switch engine {
	case "sqlite":
		dir, err := os.MkdirTemp("", "spicegate-bench")
		require.NoError(b, err)
		s.ds, err = sqlite.New(context.Background(), filepath.Join(dir, "bench.sqlite"))
		require.NoError(b, err)
		s.conn = startServerUntilExit(b, s.ds)
	case "postgres":
		s.conn = startPostgresServerUntilExit(b)
	default:
		s.conn = startServerUntilExit(b, nil)
	}
	writeSchema(b, s.conn)
	start := time.Now()
	shape.load(b, s.conn)
	elapsed := time.Since(start)
	b.Logf("%s: loaded %d relationships with ImportBulkRelationships in %s (%.0f relationships/s)",
		engine, shape.rels(), elapsed.Round(time.Millisecond), float64(shape.rels())/elapsed.Seconds())
	// A write after the load gives a ZedToken that covers it.
	written, err := v1.NewPermissionsServiceClient(s.conn).WriteRelationships(context.Background(), &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: rel("platform", "global", "organization", "organization", orgID(0))}},
	})
	require.NoError(b, err)
	s.fresh = &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: written.GetWrittenAt()}}
	// Minimize-latency reads use a quantized revision: wait until it covers
	// the load.
	o := shape.orgs - 1
	require.Eventually(b, func() bool {
		resp, err := v1.NewPermissionsServiceClient(s.conn).CheckPermission(context.Background(), &v1.CheckPermissionRequest{
			Consistency: minimizeLatency, Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: datasetID(o, shape.datasets-1)},
			Permission: "view", Subject: user(o, 0)})
		return err == nil && resp.GetPermissionship() == v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	}, time.Minute, 100*time.Millisecond)
	if s.ds != nil {
		if fi, err := os.Stat(s.ds.Path() + "-wal"); err == nil {
			b.Logf("sqlite: WAL %d bytes", fi.Size())
		}
		size := fileSize(s.ds.Path())
		b.Logf("sqlite: file size %d bytes, %.0f bytes per relationship", size, float64(size)/float64(shape.rels()))
	}
	benchServers[engine] = s
	return s
}

// startServerUntilExit starts a server shared by benchmarks: it lives until
// the process exits.
func startServerUntilExit(b *testing.B, ds datastore.Datastore) *grpc.ClientConn {
	conn, _ := startServerNoCleanup(b, ds)
	return conn
}

func fileSize(path string) int64 {
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	return total
}

var (
	minimizeLatency = &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
	fullyConsistent = &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
)

// measure runs op b.N times (at most maxOps when maxOps > 0: the memory
// datastore is too slow at the full size for thousands) and reports the
// median and 99th percentile.
func measure(b *testing.B, maxOps int, op func(rnd *rand.Rand)) {
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	n := b.N
	if maxOps > 0 {
		n = min(n, maxOps)
	}
	durations := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range n {
		start := time.Now()
		op(rnd)
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
}

func user(o, m int) *v1.SubjectReference {
	return &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: userID(o, m)}}
}

func check(b *testing.B, conn grpc.ClientConnInterface, c *v1.Consistency, typ, id, perm string, subject *v1.SubjectReference, want v1.CheckPermissionResponse_Permissionship) {
	resp, err := v1.NewPermissionsServiceClient(conn).CheckPermission(context.Background(), &v1.CheckPermissionRequest{
		Consistency: c, Resource: &v1.ObjectReference{ObjectType: typ, ObjectId: id}, Permission: perm, Subject: subject,
	})
	if err != nil {
		b.Fatal(err)
	}
	if resp.GetPermissionship() != want {
		b.Fatalf("%s:%s#%s@%s: %s", typ, id, perm, subject.GetObject().GetObjectId(), resp.GetPermissionship())
	}
}

// BenchmarkCheckDatasetView checks dataset:X#view for a member of X's
// organization:
//   - session: one member (chosen at random) checks random datasets of their
//     organization, at least as fresh as the load (as Spicegate's services
//     do after a write): SpiceDB's dispatch cache holds the organization part
//     of the check after the first one, and every check reads its dataset.
//   - random_fully_consistent: a random member of a random organization each
//     time, fully consistent: nothing is cached, the whole check is computed.
func BenchmarkCheckDatasetView(b *testing.B) {
	shape := benchShape()
	for _, engine := range benchEngines() {
		b.Run(engine+"/session", func(b *testing.B) {
			s := loadedServer(b, engine)
			o := rand.IntN(shape.orgs)
			subject := user(o, 1+rand.IntN(shape.members-2))
			measure(b, opsCap(engine), func(rnd *rand.Rand) {
				check(b, s.conn, s.fresh, "dataset", datasetID(o, rnd.IntN(shape.datasets)), "view", subject,
					v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
			})
		})
		b.Run(engine+"/random_fully_consistent", func(b *testing.B) {
			s := loadedServer(b, engine)
			measure(b, opsCap(engine), func(rnd *rand.Rand) {
				o := rnd.IntN(shape.orgs)
				check(b, s.conn, fullyConsistent, "dataset", datasetID(o, rnd.IntN(shape.datasets)), "view", user(o, rnd.IntN(shape.members-1)),
					v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
			})
		})
	}
}

// BenchmarkCheckOrgDeploy checks organization:O#deploy for a random member
// of a random organization (allowed for User, denied for Read-only), at
// least as fresh as the load, and fully consistent.
func BenchmarkCheckOrgDeploy(b *testing.B) {
	shape := benchShape()
	for _, engine := range benchEngines() {
		for _, c := range []string{"at_least_as_fresh", "fully_consistent"} {
			b.Run(engine+"/"+c, func(b *testing.B) {
				s := loadedServer(b, engine)
				consistency := fullyConsistent
				if c == "at_least_as_fresh" {
					consistency = s.fresh
				}
				measure(b, opsCap(engine), func(rnd *rand.Rand) {
					o, m := rnd.IntN(shape.orgs), rnd.IntN(shape.members-1)
					want := v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
					if m >= shape.members*4/5 {
						want = v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
					}
					check(b, s.conn, consistency, "organization", orgID(o), "deploy", user(o, m), want)
				})
			})
		}
	}
}

// BenchmarkBulkCheck100Datasets checks view on 100 datasets of one
// organization for one member, in one CheckBulkPermissions call.
func BenchmarkBulkCheck100Datasets(b *testing.B) {
	shape := benchShape()
	for _, engine := range benchEngines() {
		b.Run(engine, func(b *testing.B) {
			s := loadedServer(b, engine)
			measure(b, opsCap(engine), func(rnd *rand.Rand) {
				o := rnd.IntN(shape.orgs)
				subject := user(o, rnd.IntN(shape.members-1))
				first := rnd.IntN(max(1, shape.datasets-100))
				items := make([]*v1.CheckBulkPermissionsRequestItem, 0, 100)
				for d := first; d < first+100 && d < shape.datasets; d++ {
					items = append(items, &v1.CheckBulkPermissionsRequestItem{
						Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: datasetID(o, d)}, Permission: "view", Subject: subject})
				}
				resp, err := v1.NewPermissionsServiceClient(s.conn).CheckBulkPermissions(context.Background(),
					&v1.CheckBulkPermissionsRequest{Consistency: s.fresh, Items: items})
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range resp.GetPairs() {
					if p.GetItem().GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
						b.Fatalf("bulk check: %v", p)
					}
				}
			})
		})
	}
}

// BenchmarkLookupResourcesDatasets lists the datasets a member may view
// (all of the organization's).
func BenchmarkLookupResourcesDatasets(b *testing.B) {
	shape := benchShape()
	for _, engine := range benchEngines() {
		b.Run(engine, func(b *testing.B) {
			s := loadedServer(b, engine)
			measure(b, opsCap(engine), func(rnd *rand.Rand) {
				o := rnd.IntN(shape.orgs)
				stream, err := v1.NewPermissionsServiceClient(s.conn).LookupResources(context.Background(), &v1.LookupResourcesRequest{
					Consistency: s.fresh, ResourceObjectType: "dataset", Permission: "view", Subject: user(o, rnd.IntN(shape.members-1)),
				})
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != shape.datasets {
					b.Fatalf("LookupResources found %d datasets, want %d", n, shape.datasets)
				}
			})
		})
	}
}

// BenchmarkQueriesPerCheck counts the datastore queries of one fully
// consistent dataset view check (no cache can answer it).
func BenchmarkQueriesPerCheck(b *testing.B) {
	shape := benchShape()
	s := loadedServer(b, "sqlite")
	var queries atomic.Int64
	sqlite.ObserveQueries(s.ds, func(string, []any) { queries.Add(1) })
	defer sqlite.ObserveQueries(s.ds, nil)
	measure(b, 0, func(rnd *rand.Rand) {
		o := rnd.IntN(shape.orgs)
		check(b, s.conn, fullyConsistent, "dataset", datasetID(o, rnd.IntN(shape.datasets)), "view", user(o, rnd.IntN(shape.members-1)),
			v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION)
	})
	b.ReportMetric(float64(queries.Load())/float64(b.N), "queries/check")
}

// BenchmarkImportBulkRelationships loads the data set into a new file with
// ImportBulkRelationships and reports relationships per second, and the size
// of the file per relationship once closed (the WAL checkpointed into it).
func BenchmarkImportBulkRelationships(b *testing.B) {
	shape := benchShape()
	for range b.N {
		b.StopTimer()
		ds := newDatastore(b)
		conn, stop := startServerNoCleanup(b, ds)
		writeSchema(b, conn)
		b.StartTimer()
		start := time.Now()
		shape.load(b, conn)
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		require.NoError(b, ds.Close())
		b.ReportMetric(float64(shape.rels())/elapsed.Seconds(), "rels/s")
		b.ReportMetric(float64(fileSize(ds.Path()))/float64(shape.rels()), "bytes/rel")
		b.StartTimer()
	}
}

// BenchmarkColdStart opens a file holding 1,000,000 relationships (built
// once, by the datastore's BulkLoad) and answers its first check: the time
// from New to the answer, with a new SpiceDB server. Only with
// SPICEGATE_BENCH_FULL=1 (building the file takes a while).
func BenchmarkColdStart(b *testing.B) {
	if os.Getenv("SPICEGATE_BENCH_FULL") != "1" {
		b.Skip("set SPICEGATE_BENCH_FULL=1")
	}
	shape := platformShape{orgs: 100, members: 50, datasets: 4975} // 1,000,000 relationships
	path := filepath.Join(b.TempDir(), "cold.sqlite")
	{
		// The schema through SpiceDB, the relationships with the datastore's
		// BulkLoad (one SpiceDB import stream of a million relationships
		// outlasts SpiceDB's 30s streaming deadline), 200,000 a transaction.
		ds, err := sqlite.New(context.Background(), path)
		require.NoError(b, err)
		conn, stop := startServerNoCleanup(b, ds)
		writeSchema(b, conn)
		stop()
		var rels []tuple.Relationship
		shape.each(func(r *v1.Relationship) {
			rels = append(rels, tuple.MustParse(r.GetResource().GetObjectType()+":"+r.GetResource().GetObjectId()+"#"+r.GetRelation()+"@"+
				r.GetSubject().GetObject().GetObjectType()+":"+r.GetSubject().GetObject().GetObjectId()))
		})
		start := time.Now()
		for i := 0; i < len(rels); i += 200000 {
			_, err := ds.ReadWriteTx(context.Background(), func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
				_, err := rwt.BulkLoad(ctx, &sliceSource{rels: rels[i:min(i+200000, len(rels))]})
				return err
			})
			require.NoError(b, err)
		}
		b.Logf("built %d relationships in %s; file %d bytes", len(rels), time.Since(start).Round(time.Millisecond), fileSize(path))
		require.NoError(b, ds.Close())
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		ds, err := sqlite.New(context.Background(), path)
		require.NoError(b, err)
		conn, stop := startServerNoCleanup(b, ds)
		o := 42
		require.Eventually(b, func() bool {
			_, err := v1.NewPermissionsServiceClient(conn).CheckPermission(context.Background(), &v1.CheckPermissionRequest{
				Consistency: minimizeLatency, Resource: &v1.ObjectReference{ObjectType: "dataset", ObjectId: datasetID(o, 4000)},
				Permission: "view", Subject: user(o, 3)})
			return err == nil
		}, time.Minute, time.Millisecond)
		b.ReportMetric(time.Since(start).Seconds(), "s-to-first-check")
		stop()
		require.NoError(b, ds.Close())
	}
}

// benchEngines are the datastores the benchmarks compare in one run: the
// SQLite one, SpiceDB's memory datastore, and SpiceDB's PostgreSQL datastore
// when SPICEGATE_BENCH_POSTGRES_URI names a role that may create databases
// (scripts/postgres.sh makes one).
func benchEngines() []string {
	engines := []string{"sqlite", "memory"}
	if os.Getenv("SPICEGATE_BENCH_POSTGRES_URI") != "" {
		engines = append(engines, "postgres")
	}
	return engines
}

// startPostgresServerUntilExit starts a server on SpiceDB's PostgreSQL
// datastore, in a database of its own (created, migrated to head).
func startPostgresServerUntilExit(b *testing.B) *grpc.ClientConn {
	admin := os.Getenv("SPICEGATE_BENCH_POSTGRES_URI")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(b, err)
	defer conn.Close(ctx)
	name := fmt.Sprintf("spicegate_bench_%d", os.Getpid())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(b, err)
	u, err := url.Parse(admin)
	require.NoError(b, err)
	u.Path = "/" + name
	require.NoError(b, migration.Run(ctx, &migration.Config{DatastoreEngine: "postgres", DatastoreURI: u.String(),
		Timeout: time.Hour, BatchSize: 1000}, migrate.Head))
	cfg := datastorecfg.DefaultDatastoreConfig()
	cfg.Engine, cfg.URI = "postgres", u.String()
	c, _ := startServerWithConfigNoCleanup(b, cfg)
	return c
}

// opsCap caps the operations on the memory datastore at the full size.
func opsCap(engine string) int {
	if engine == "memory" && os.Getenv("SPICEGATE_BENCH_FULL") == "1" {
		return 100
	}
	return 0
}

// sliceSource is a datastore.BulkWriteRelationshipSource over a slice.
type sliceSource struct {
	rels []tuple.Relationship
	i    int
}

func (s *sliceSource) Next(context.Context) (*tuple.Relationship, error) {
	if s.i == len(s.rels) {
		return nil, nil
	}
	s.i++
	return &s.rels[s.i-1], nil
}

// BenchmarkBulkLoad loads the data set into a new file with the
// datastore's BulkLoad directly (no SpiceDB, no gRPC): the datastore's own
// rate.
func BenchmarkBulkLoad(b *testing.B) {
	shape := benchShape()
	var rels []tuple.Relationship
	shape.each(func(r *v1.Relationship) {
		rels = append(rels, tuple.MustParse(r.GetResource().GetObjectType()+":"+r.GetResource().GetObjectId()+"#"+r.GetRelation()+"@"+
			r.GetSubject().GetObject().GetObjectType()+":"+r.GetSubject().GetObject().GetObjectId()))
	})
	for range b.N {
		b.StopTimer()
		ds := newDatastore(b)
		b.StartTimer()
		start := time.Now()
		_, err := ds.ReadWriteTx(context.Background(), func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
			n, err := rwt.BulkLoad(ctx, &sliceSource{rels: rels})
			if err == nil && n != uint64(len(rels)) {
				err = fmt.Errorf("loaded %d of %d", n, len(rels))
			}
			return err
		})
		require.NoError(b, err)
		b.ReportMetric(float64(len(rels))/time.Since(start).Seconds(), "rels/s")
	}
}
