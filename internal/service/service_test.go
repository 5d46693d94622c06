package service_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/datastore/sqlite"
	"github.com/spicegate/spicegate/internal/service"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// get GETs a health URL (ending in z), or POSTs alice's deploy check on
// acme, at least as fresh as rev.
func get(t *testing.T, url, token string, rev ...client.Revision) (int, string) {
	t.Helper()
	body := `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"`
	if len(rev) > 0 {
		body += `,"revision":"` + string(rev[0]) + `"`
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body+"}"))
	require.NoError(t, err)
	if strings.HasSuffix(url, "z") {
		req.Method = http.MethodGet
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// demoConfig is an embedded service on the memory engine with one HTTP
// token (tok-0123456789abcdef) and free ports; tests set what they need.
func demoConfig(t *testing.T) service.Config {
	return service.Config{GRPCAddr: spicedbtest.FreeAddr(t), HTTPAddr: "127.0.0.1:0", PresharedKey: "k", DatastoreEngine: "memory",
		HTTPTokens: []string{"tok-0123456789abcdef"}}
}

func TestEmbeddedServiceServesAndStopsCleanly(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Seed = "demo"
	cfg.ShutdownTimeout = 5 * time.Second
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	base := "http://" + svc.HTTPAddr()

	code, body := get(t, base+"/readyz", "")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = get(t, base+"/v1/check", "tok-0123456789abcdef")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"allowed":true`, "the demo seed is loaded")

	// SpiceDB's own gRPC API answers with the key, for zed and any client.
	c, err := client.New(cfg.GRPCAddr, client.WithInsecure(), client.WithPresharedKey("k"))
	require.NoError(t, err)
	defer c.Close()
	d, err := c.Check(t.Context(), client.User("rita"), client.PermDeploy, client.Organization("acme"), client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.False(t, d.Allowed())

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Wait(ctx) }()
	cancel() // what SIGINT/SIGTERM do
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the service did not stop")
	}
	_, err = net.DialTimeout("tcp", svc.HTTPAddr(), time.Second)
	assert.Error(t, err, "the HTTP port is closed")
	_, err = c.Check(t.Context(), client.User("rita"), client.PermDeploy, client.Organization("acme"), client.WithConsistency(client.FullyConsistent()))
	assert.Error(t, err, "SpiceDB stopped with the service")
}

func TestInFrontOfAnExternalSpiceDB(t *testing.T) {
	external := spicedbtest.StartTCP(t)
	cfg := service.Config{HTTPAddr: "127.0.0.1:0", SpiceDBEndpoint: external.Addr, SpiceDBKey: external.Key,
		SpiceDBInsecure: true, HTTPTokens: []string{"tok-0123456789abcdef"}}
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	// Written by another client: the check passes the write's revision
	// (read-your-writes across services).
	c := external.Client(t)
	rev, err := c.CreateOrganization(t.Context(), "acme", "alice")
	require.NoError(t, err)
	code, body := get(t, "http://"+svc.HTTPAddr()+"/v1/check", "tok-0123456789abcdef", rev)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"allowed":true`)

	bad := cfg
	bad.SpiceDBKey = "wrong"
	_, err = service.Start(t.Context(), bad, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, client.ErrUnauthenticated)
}

func TestConfigValidateNamesTheSetting(t *testing.T) {
	base := service.Config{GRPCAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", PresharedKey: "k", DatastoreEngine: "memory"}
	require.NoError(t, base.Validate())
	tests := map[string]func(*service.Config){
		"datastore-engine":                       func(c *service.Config) { c.DatastoreEngine = "mysql" },
		"datastore-conn-uri":                     func(c *service.Config) { c.DatastoreEngine = "postgres" },
		"preshared-key":                          func(c *service.Config) { c.PresharedKey = "" },
		"http-addr":                              func(c *service.Config) { c.HTTPAddr = "" },
		"preshared-key (the external SpiceDB's)": func(c *service.Config) { c.SpiceDBEndpoint = "x:1" },
	}
	tests["http-token"] = func(c *service.Config) { c.HTTPTokens = []string{"admin:short"}; c.HTTPAddr = "0.0.0.0:8080" }
	tests["http-token #2"] = func(c *service.Config) { c.HTTPTokens = []string{"check:0123456789abcdef", "root:0123456789abcdef"} }
	tests["datastore-conn-pool-read-max-open"] = func(c *service.Config) { c.PostgresReadConns = 4 } // on memory
	tests["datastore-conn-pool-write-max-open"] = func(c *service.Config) {
		c.DatastoreEngine, c.DatastoreURI, c.PostgresWriteConns = "postgres", "postgres://x", -1
	}
	tests["datastore-conn-pool-write-max-open must be 0"] = func(c *service.Config) {
		c.DatastoreEngine, c.DatastoreURI, c.PostgresWriteConns = "postgres", "postgres://x", 1
	}
	tests["datastore-revision-quantization-interval (5s) must be shorter than datastore-gc-window (3s)"] = func(c *service.Config) {
		c.DatastoreGCWindow = 3 * time.Second
	}
	tests["datastore-revision-quantization-interval (15m0s) must be shorter than datastore-gc-window (10m0s)"] = func(c *service.Config) {
		c.RevisionQuantization = 15 * time.Minute // on memory: a 10-minute window
	}
	noQuantization := base
	noQuantization.DatastoreGCWindow, noQuantization.RevisionQuantization = 3*time.Second, -1
	require.NoError(t, noQuantization.Validate(), "no quantization fits any window")
	pool := base
	pool.DatastoreEngine, pool.DatastoreURI, pool.PostgresReadConns, pool.PostgresWriteConns = "postgres", "postgres://x", 4, 2
	require.NoError(t, pool.Validate(), "pool sizes on postgres")
	short := base
	short.HTTPTokens = []string{"short"}
	require.NoError(t, short.Validate(), "a short token is fine on loopback (tests, benchmarks)")
	for setting, mutate := range tests {
		cfg := base
		mutate(&cfg)
		assert.ErrorContains(t, cfg.Validate(), setting)
	}
}

// TestSeedLoadsOnlyIntoAnEmptyStore: a restart never brings back what users
// deleted; --seed-non-empty makes reloading an explicit choice.
func TestSeedLoadsOnlyIntoAnEmptyStore(t *testing.T) {
	external := spicedbtest.StartTCP(t)
	cfg := service.Config{HTTPAddr: "127.0.0.1:0", SpiceDBEndpoint: external.Addr, SpiceDBKey: external.Key,
		SpiceDBInsecure: true, HTTPTokens: []string{"tok-0123456789abcdef"}, Seed: "demo"}
	run := func(cfg service.Config) {
		svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, svc.Stop())
	}
	c := external.Client(t)
	role := func() string {
		r, err := c.RoleOf(t.Context(), "acme", "rita", client.WithConsistency(client.FullyConsistent()))
		if errors.Is(err, client.ErrNotFound) {
			return "none"
		}
		require.NoError(t, err)
		return string(r)
	}

	run(cfg)
	require.Equal(t, "readonly", role(), "the seed went into the empty store")
	_, err := c.As(client.User("support")).RemoveMember(t.Context(), "acme", "rita")
	require.NoError(t, err)
	run(cfg)
	assert.Equal(t, "none", role(), "a restart does not undo the removal")
	cfg.SeedNonEmpty = true
	run(cfg)
	assert.Equal(t, "readonly", role(), "unless asked to")
}

// TestTakenPortsFailFast: a port in use fails Start (before SpiceDB
// starts: the ports are bound first), and the error names the setting.
func TestTakenPortsFailFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	base := demoConfig(t)
	base.Seed = "demo"
	for setting, mutate := range map[string]func(*service.Config){
		"http-addr": func(c *service.Config) { c.HTTPAddr = taken.Addr().String() },
		"grpc-addr": func(c *service.Config) { c.GRPCAddr = taken.Addr().String() },
	} {
		cfg := base
		mutate(&cfg)
		_, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
		require.ErrorContains(t, err, setting)
	}
}

// TestTheDefaultKeepsItsDataInAFile: serve on the sqlite datastore keeps
// everything across a restart, seeds only the empty file, refuses a second
// process on the same file, and restores from a backup taken while running.
func TestTheDefaultKeepsItsDataInAFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spicegate.db")
	cfg := service.Config{GRPCAddr: spicedbtest.FreeAddr(t), HTTPAddr: "127.0.0.1:0", PresharedKey: "k", DatastoreEngine: "sqlite",
		DatastorePath: path, HTTPTokens: []string{"tok-0123456789abcdef"}, Seed: "demo", ShutdownTimeout: 5 * time.Second}
	start := func(cfg service.Config) (*service.Service, *client.Client) {
		svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		c, err := client.New(cfg.GRPCAddr, client.WithInsecure(), client.WithPresharedKey("k"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return svc, c
	}
	member := func(c *client.Client, user string) bool {
		d, err := c.Check(t.Context(), client.User(user), client.PermMember, client.Organization("acme"), client.WithConsistency(client.FullyConsistent()))
		require.NoError(t, err)
		return d.Allowed()
	}

	svc, c := start(cfg)
	require.True(t, member(c, "rita"), "the demo seed went into the new file")
	_, err := c.As(client.User("support")).RemoveMember(t.Context(), "acme", "rita")
	require.NoError(t, err)
	_, err = c.AddMember(t.Context(), "acme", "carol", client.RoleUser)
	require.NoError(t, err)

	// One process per file.
	second := cfg
	second.GRPCAddr, second.HTTPAddr = spicedbtest.FreeAddr(t), "127.0.0.1:0"
	_, err = service.Start(t.Context(), second, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, path, "the error names the file")

	// An online backup, then a write after it.
	backup := filepath.Join(dir, "backup.db")
	require.NoError(t, sqlite.BackupFile(t.Context(), path, backup))
	_, err = c.AddMember(t.Context(), "acme", "dave", client.RoleUser)
	require.NoError(t, err)
	require.NoError(t, svc.Stop())

	svc, c = start(cfg)
	assert.False(t, member(c, "rita"), "a restart neither loses the removal nor reloads the seed")
	assert.True(t, member(c, "carol"))
	assert.True(t, member(c, "dave"))
	require.NoError(t, svc.Stop())

	restored := cfg
	restored.DatastorePath = backup
	svc, c = start(restored)
	assert.True(t, member(c, "carol"), "the backup holds what was written before it")
	assert.False(t, member(c, "dave"), "and nothing after")
	assert.False(t, member(c, "rita"))
	require.NoError(t, svc.Stop())
}

// TestTheSupportAccountIsOneSetting: a seed naming another support account
// than the service's is refused, and organizations list the configured one.
func TestTheSupportAccountIsOneSetting(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Seed = "demo"
	cfg.SupportUser = "vendor-desk"
	_, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "--support-user")

	cfg.Seed, cfg.GRPCAddr = "", spicedbtest.FreeAddr(t)
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	c := svc.Client()
	_, err = c.As(client.User("alice")).CreateOrganization(t.Context(), "acme", "")
	require.NoError(t, err)
	members, err := c.ListMembers(t.Context(), "acme", client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.Equal(t, []client.Member{{UserID: "alice", Role: client.RoleUser}, {UserID: "vendor-desk", Role: client.RoleSupport}}, members)
}

// A client that sends its headers and part of its body, then stalls, is
// cut off once the read timeout (the request timeout + 5 s) passes: it
// holds no connection, unauthenticated, forever.
func TestAClientStalledMidBodyIsCutOff(t *testing.T) {
	cfg := demoConfig(t)
	cfg.HTTPRequestTimeout = time.Second
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	conn, err := net.Dial("tcp", svc.HTTPAddr())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"subject\":")
	require.NoError(t, err)
	began := time.Now()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	require.NoError(t, err, "the server closed the connection (not our 20 s deadline)")
	assert.Less(t, time.Since(began), 10*time.Second, "within the read timeout (6 s here)")
}

// Stop drains a request in flight: it closes the listener at once, waits
// while the request (whose body is still arriving) is served, and returns
// once its answer is sent; Stop again returns at once.
// sendHalf opens a connection to the HTTP API at addr and sends a POST of
// body to path, all but its last bytes: the request is in flight until
// finish sends the rest and reads the answer.
func sendHalf(t *testing.T, addr, path, body string) (finish func() (int, string)) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-0123456789abcdef\r\n"+
		"Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body[:10])
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // the server reads the headers: the connection is active
	return func() (int, string) {
		t.Helper()
		_, err := io.WriteString(conn, body[10:])
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, "the request in flight got no answer")
		answer, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(answer)
	}
}

func TestStopDrainsARequestInFlight(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Seed = "demo"
	cfg.ShutdownTimeout = 15 * time.Second
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	code, body := get(t, "http://"+svc.HTTPAddr()+"/v1/check", "tok-0123456789abcdef")
	require.Equal(t, http.StatusOK, code, body)

	finish := sendHalf(t, svc.HTTPAddr(), "/v1/check", `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"}`)

	stopped := make(chan error, 1)
	go func() { stopped <- svc.Stop() }()
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", svc.HTTPAddr(), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "Stop closes the listener at once")
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a request in flight", err)
	default:
	}

	code, answer := finish()
	assert.Equal(t, http.StatusOK, code, answer)
	assert.Contains(t, answer, `"allowed":true`)
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Stop did not return once the request was answered")
	}
	// Stop again (a deferred Stop after a signal's, say) returns at once.
	again := make(chan error, 1)
	go func() { again <- svc.Stop() }()
	select {
	case err := <-again:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a second Stop hangs")
	}
}

// SIGINT/SIGTERM end the context serve started the service with: the
// request in flight (a lookup) is still answered, because SpiceDB stops only after the
// HTTP API has drained (it once stopped with the context, at once, and the
// request in flight failed).
func TestASignalDrainsBeforeSpiceDBStops(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Seed = "demo"
	cfg.ShutdownTimeout = 15 * time.Second
	ctx, signal := context.WithCancel(t.Context())
	defer signal()
	svc, err := service.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	code, body := get(t, "http://"+svc.HTTPAddr()+"/v1/check", "tok-0123456789abcdef")
	require.Equal(t, http.StatusOK, code, body)

	// A lookup: a streaming call, which goes through SpiceDB's gRPC server.
	finish := sendHalf(t, svc.HTTPAddr(), "/v1/lookup/resources",
		`{"subject":"user:alice","permission":"view","resource_type":"dataset","consistency":"fully_consistent"}`)

	waited := make(chan error, 1)
	go func() { waited <- svc.Wait(ctx) }()
	signal()
	time.Sleep(time.Second) // time enough for SpiceDB to stop, were it to stop with ctx

	code, answer := finish()
	assert.Equal(t, http.StatusOK, code, answer)
	assert.Contains(t, answer, `"dataset:`)
	select {
	case err := <-waited:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Wait did not return once the request was answered")
	}
}

// /metrics serves Spicegate's metrics with the embedded SpiceDB's (its gRPC
// calls, dispatch, datastore) and the Go runtime's, each family once.
func TestMetricsIncludeTheEmbeddedSpiceDBs(t *testing.T) {
	cfg := demoConfig(t)
	cfg.Seed = "demo"
	cfg.ShutdownTimeout = 5 * time.Second
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	base := "http://" + svc.HTTPAddr()
	code, _ := get(t, base+"/v1/check", "tok-0123456789abcdef")
	require.Equal(t, http.StatusOK, code)

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metrics := string(body)
	for _, family := range []string{
		"spicegate_http_requests_total", "spicegate_goroutine_stack_holders", // Spicegate's
		"grpc_server_handled_total", "spicedb_middleware_consistency_assigned_total", // SpiceDB's
		"go_goroutines", "process_resident_memory_bytes", // the runtime's and the process's
	} {
		assert.Equal(t, 1, strings.Count(metrics, "# TYPE "+family+" "), family)
	}
	assert.Contains(t, metrics, `grpc_method="CheckPermission"`, "the HTTP check went through SpiceDB's chain")
	assert.NotContains(t, metrics, "spicedb_environment_info", "the host's name, unauthenticated")
}
