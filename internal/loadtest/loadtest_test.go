package loadtest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/loadtest"
	"github.com/spicegate/spicegate/internal/service"
	"github.com/spicegate/spicegate/internal/spicedbtest"
	"github.com/spicegate/spicegate/seed"
)

// stallOnce is a target whose first request takes stall and the others no
// time: it tells how latency is counted, not how a server behaves.
type stallOnce struct {
	stall time.Duration
	calls atomic.Int64
}

func (s *stallOnce) Do(ctx context.Context, _ loadtest.Request) error {
	if s.calls.Add(1) == 1 {
		time.Sleep(s.stall)
	}
	return nil
}

// failEvery fails every other request, with a message that names it.
type failEvery struct{ calls atomic.Int64 }

func (f *failEvery) Do(ctx context.Context, _ loadtest.Request) error {
	if n := f.calls.Add(1); n%2 == 0 {
		return fmt.Errorf("request %d: %w", n, client.ErrUnavailable)
	}
	return nil
}

// Errors are counted by operation and code, and the report keeps the first
// message of each code: a CI failure can be read from the report alone.
func TestErrorsKeepTheirFirstMessage(t *testing.T) {
	res, err := loadtest.Run(t.Context(), loadtest.Config{Target: &failEvery{}, Shape: loadtest.Shape{Orgs: 2, Members: 2, Datasets: 2},
		Mix: loadtest.Mix{loadtest.OpCheck: 1}, Rate: 200, Duration: 100 * time.Millisecond, MaxInFlight: 1})
	require.NoError(t, err)
	check := res.Op(loadtest.OpCheck)
	require.Equal(t, map[string]int64{"unavailable": check.Count / 2}, check.Codes)
	assert.Equal(t, "request 2: "+client.ErrUnavailable.Error(), check.Samples["unavailable"])
	all := res.Op(loadtest.OpAll)
	assert.Equal(t, check.Samples["unavailable"], all.Samples["check unavailable"])

	var text strings.Builder
	res.WriteText(&text, "test")
	assert.Contains(t, text.String(), "(first: request 2: ")
}

// One request stalls for 200 ms with one request in flight at a time: the
// requests due meanwhile queue behind it, and their latency counts from
// when they were due, so the stall shows in the percentiles (a closed-loop
// tool would report one slow request and a p90 of microseconds).
func TestLatencyCountsFromTheDueTime(t *testing.T) {
	target := &stallOnce{stall: 200 * time.Millisecond}
	res, err := loadtest.Run(t.Context(), loadtest.Config{Target: target, Shape: loadtest.Shape{Orgs: 2, Members: 2, Datasets: 2},
		Mix: loadtest.Mix{loadtest.OpCheck: 1}, Rate: 1000, Duration: 400 * time.Millisecond, MaxInFlight: 1})
	require.NoError(t, err)
	all := res.Op(loadtest.OpAll)
	assert.InDelta(t, 400, all.Count, 40, "the arrival rate, not the answers' speed, sets the count")
	// Half the requests were due during the stall: they waited 0 to 200 ms.
	assert.GreaterOrEqual(t, all.P90, 100*time.Millisecond, "the requests due during the stall waited for it")
	// The slowest tenth of those waited 160 ms or more: the p95.
	assert.GreaterOrEqual(t, all.P95, 140*time.Millisecond)
	assert.True(t, all.P90 <= all.P95 && all.P95 <= all.P99, "percentiles out of order: p90 %s, p95 %s, p99 %s", all.P90, all.P95, all.P99)
	assert.GreaterOrEqual(t, all.Max, 190*time.Millisecond)
	assert.Positive(t, res.MaxLateness)
}

func TestParseMix(t *testing.T) {
	m, err := loadtest.ParseMix("check=80, add_member=20")
	require.NoError(t, err)
	assert.Equal(t, loadtest.Mix{loadtest.OpCheck: 80, loadtest.OpAddMember: 20}, m)
	assert.Equal(t, "check=80,add_member=20", m.String())
	for _, bad := range []string{"check", "chek=1", "check=-1", "check=x", "check=0"} {
		_, err := loadtest.ParseMix(bad)
		assert.Error(t, err, bad)
	}
	def, err := loadtest.ParseMix(loadtest.DefaultMix.String())
	require.NoError(t, err)
	assert.Equal(t, loadtest.DefaultMix, def)
}

func TestLoopbackOnlyUnlessAllowed(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "localhost:1", "[::1]:50051"} {
		assert.NoError(t, loadtest.CheckLoopback(ok, false), ok)
	}
	for _, remote := range []string{"10.0.0.1:8080", "example.com:443", "nonsense"} {
		assert.Error(t, loadtest.CheckLoopback(remote, false), remote)
	}
	assert.NoError(t, loadtest.CheckLoopback("10.0.0.1:8080", true))
	_, err := loadtest.NewHTTPTarget("http://192.0.2.1:8080", "t", 1, false)
	assert.ErrorContains(t, err, "--allow-remote")
}

// startLoaded runs `serve`'s service (memory datastore) with the data the
// load addresses.
func startLoaded(t *testing.T, shape loadtest.Shape) (*service.Service, service.Config) {
	t.Helper()
	data, err := yaml.Marshal(seed.Generate(shape.Orgs, shape.Members, shape.Datasets))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "seed.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	cfg := service.Config{GRPCAddr: spicedbtest.FreeAddr(t), HTTPAddr: "127.0.0.1:0", PresharedKey: "loadtest-key",
		DatastoreEngine: "memory", HTTPTokens: []string{"t-0123456789abcdef"}, Seed: path}
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	return svc, cfg
}

// The default mix, every operation of it, against a real service through
// both APIs: no error, every operation answered, the writes' own data
// (members added, tokens created) removed by later operations.
func TestEveryOperationAgainstServe(t *testing.T) {
	shape := loadtest.Shape{Orgs: 4, Members: 4, Datasets: 20}
	svc, cfg := startLoaded(t, shape)
	httpTarget, err := loadtest.NewHTTPTarget("http://"+svc.HTTPAddr(), cfg.HTTPTokens[0], 16, false)
	require.NoError(t, err)
	c, err := client.New(cfg.GRPCAddr, client.WithInsecure(), client.WithPresharedKey(cfg.PresharedKey))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	grpcTarget, err := loadtest.NewGRPCTarget(c, "")
	require.NoError(t, err)
	even := loadtest.Mix{}
	for _, op := range loadtest.Ops {
		even[op] = 1
	}
	for name, target := range map[string]loadtest.Target{"http": httpTarget, "grpc": grpcTarget} {
		t.Run(name, func(t *testing.T) {
			res, err := loadtest.Run(t.Context(), loadtest.Config{Target: target, Shape: shape, Mix: even,
				Rate: 150, Duration: 2 * time.Second, MaxInFlight: 32})
			require.NoError(t, err)
			var text strings.Builder
			res.WriteText(&text, name)
			t.Log("\n" + text.String())
			assert.Zero(t, res.Errors, "errors: %v, first messages: %v", res.Op(loadtest.OpAll).Codes, res.Op(loadtest.OpAll).Samples)
			for _, op := range loadtest.Ops {
				assert.Positive(t, res.Op(op).Count, "%s was sent", op)
			}
			assert.InDelta(t, 300, res.Op(loadtest.OpAll).Count, 30)
		})
	}
}

// recorder keeps every check it is sent, in order.
type recorder struct {
	mu     sync.Mutex
	checks []string
}

func (r *recorder) Do(_ context.Context, req loadtest.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, req.Subject+" "+req.Permission+" "+req.Resource)
	return nil
}

// Each find-max step sends requests of its own: a step repeating the
// previous one's would find their answers in the server's cache and hold a
// rate that fresh requests would not.
func TestFindMaxStepsSendNewRequests(t *testing.T) {
	target := &recorder{}
	fm := loadtest.FindMax{Step: 200 * time.Millisecond, Factor: 2, MaxRate: 200, P99: time.Second}
	_, steps, err := fm.Run(t.Context(), loadtest.Config{Target: target, Shape: loadtest.Shape{Orgs: 50, Members: 20, Datasets: 100},
		Mix: loadtest.Mix{loadtest.OpCheck: 1}, Rate: 100, MaxInFlight: 1, Seed: 7}, nil)
	require.NoError(t, err)
	require.Len(t, steps, 2)
	assert.Equal(t, []uint64{7, 8}, []uint64{steps[0].Seed, steps[1].Seed})
	first := int(steps[0].Result.Op(loadtest.OpAll).Count)
	require.Greater(t, first, 10)
	require.Greater(t, len(target.checks), first+10)
	assert.NotEqual(t, target.checks[:10], target.checks[first:first+10], "the second step began with the first step's requests")
}
