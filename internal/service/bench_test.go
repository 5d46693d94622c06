package service_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spicegate/spicegate/internal/service"
	"github.com/spicegate/spicegate/internal/spicedbtest"
	"github.com/spicegate/spicegate/seed"
)

// BenchmarkCheckHTTPvsGRPC measures, on one `serve` (SQLite, in a temporary
// file) and the same data, a dataset `view` check through the HTTP API
// (POST /v1/check, keep-alive) against the same check through SpiceDB's
// gRPC API (raw authzed-go CheckPermission over loopback TCP), both
// minimize-latency, sequential, alternating in blocks so that the machine's
// drift hits both. It reports each path's time per check and their ratio
// (issue #11's target: http/grpc <= 1.3). It also times the raw check over
// the in-memory connection the HTTP API uses, which is the HTTP path minus
// the HTTP layer.
//
//	go test -run '^$' -bench CheckHTTPvsGRPC -benchtime 5000x ./internal/service/
//	SPICEGATE_BENCH_SIZE=100x50x1000 go test ...   # the data (235k relationships)
func BenchmarkCheckHTTPvsGRPC(b *testing.B) {
	orgs, members, datasets := 20, 10, 200
	if size := os.Getenv("SPICEGATE_BENCH_SIZE"); size != "" {
		_, err := fmt.Sscanf(size, "%dx%dx%d", &orgs, &members, &datasets)
		require.NoError(b, err, "SPICEGATE_BENCH_SIZE=ORGSxMEMBERSxDATASETS")
	}
	gen := seed.Generate(orgs, members, datasets)
	data, err := yaml.Marshal(gen)
	require.NoError(b, err)
	seedPath := filepath.Join(b.TempDir(), "seed.yaml")
	require.NoError(b, os.WriteFile(seedPath, data, 0o600))
	const token = "bench-0123456789abcdef"
	cfg := service.Config{GRPCAddr: spicedbtest.FreeAddr(b), HTTPAddr: "127.0.0.1:0", PresharedKey: "bench-key",
		DatastoreEngine: "sqlite", DatastorePath: filepath.Join(b.TempDir(), "bench.db"), HTTPTokens: []string{token}, Seed: seedPath}
	svc, err := service.Start(b.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	b.Cleanup(func() { _ = svc.Stop() })

	conn, err := grpc.NewClient(cfg.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken(cfg.PresharedKey))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	perms := v1.NewPermissionsServiceClient(conn)
	// The connection the HTTP API itself uses: no TCP, no gRPC transport.
	inProcess := v1.NewPermissionsServiceClient(svc.Client().Conn())
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	url := "http://" + svc.HTTPAddr() + "/v1/check"

	// Random members against random datasets, of their own organization
	// (allowed: every member views) or of any (mostly denied); every answer
	// is compared between the two paths.
	type pair struct{ user, dataset string }
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := make([]pair, 1000)
	for i := range pairs {
		org := gen.Organizations[rng.IntN(len(gen.Organizations))]
		of := org
		if i%2 == 1 {
			of = gen.Organizations[rng.IntN(len(gen.Organizations))]
		}
		pairs[i] = pair{org.Members[rng.IntN(len(org.Members))].User, of.Datasets[rng.IntN(len(of.Datasets))].ID}
	}
	minimize := &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
	check := func(perms v1.PermissionsServiceClient, p pair) bool {
		resp, err := perms.CheckPermission(b.Context(), &v1.CheckPermissionRequest{
			Consistency: minimize,
			Resource:    &v1.ObjectReference{ObjectType: "dataset", ObjectId: p.dataset},
			Permission:  "view",
			Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: p.user}},
		})
		require.NoError(b, err)
		return resp.GetPermissionship() == v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	}
	viaGRPC := func(p pair) bool { return check(perms, p) }
	viaHTTP := func(p pair) bool {
		body := `{"subject":"user:` + p.user + `","permission":"view","resource":"dataset:` + p.dataset + `","consistency":"minimize_latency"}`
		req, err := http.NewRequestWithContext(b.Context(), http.MethodPost, url, bytes.NewReader([]byte(body)))
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		require.NoError(b, err)
		out, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode, "%s", out)
		return bytes.Contains(out, []byte(`"allowed":true`))
	}
	// Minimize-latency reads a snapshot up to SpiceDB's quantization window
	// old: wait until it holds the seed (an owner views its dataset).
	owned := gen.Organizations[0].Datasets[0]
	require.Eventually(b, func() bool { return viaGRPC(pair{owned.Owner, owned.ID}) }, 30*time.Second, 100*time.Millisecond)
	// A store younger than the quantization window (5 s) answers each
	// minimize-latency read with a datastore query: not the steady state.
	time.Sleep(6 * time.Second)
	// Warm both paths and compare every answer once.
	allowed := 0
	for _, p := range pairs {
		g, h := viaGRPC(p), viaHTTP(p)
		require.Equal(b, g, h, "%s on %s: gRPC says %v, HTTP %v", p.user, p.dataset, g, h)
		if g {
			allowed++
		}
	}
	require.Positive(b, allowed)
	require.Less(b, allowed, len(pairs))

	const block = 100
	var grpcTime, httpTime, directTime time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		start := time.Now()
		for i := range n {
			viaGRPC(pairs[(done+i)%len(pairs)])
		}
		grpcTime += time.Since(start)
		start = time.Now()
		for i := range n {
			viaHTTP(pairs[(done+i)%len(pairs)])
		}
		httpTime += time.Since(start)
		start = time.Now()
		for i := range n {
			check(inProcess, pairs[(done+i)%len(pairs)])
		}
		directTime += time.Since(start)
	}
	b.StopTimer()
	perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(perOp(grpcTime), "grpc-ns/check")
	b.ReportMetric(perOp(httpTime), "http-ns/check")
	b.ReportMetric(perOp(directTime), "direct-ns/check")
	b.ReportMetric(float64(httpTime)/float64(grpcTime), "http/grpc")
	b.Log("allowed " + strconv.Itoa(allowed) + " of " + strconv.Itoa(len(pairs)))
}
