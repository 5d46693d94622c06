//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/loadtest"
	"github.com/spicegate/spicegate/internal/spicedbtest"
	"github.com/spicegate/spicegate/seed"
)

// tcpProxy forwards a port to another; cut makes the far side vanish
// (every connection reset, new ones refused) until restore: a database
// that stops and starts, without stopping the machine's shared one.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, addr: freeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// statusOf sends one authenticated request and returns its status and
// JSON error code.
func statusOf(t *testing.T, d *deployment, method, path, body string) (int, string) {
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+d.httpAddr+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var e struct {
		Allowed bool `json:"allowed"`
		Error   struct{ Code string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode == http.StatusOK && strings.HasSuffix(path, "/check") && e.Allowed {
		return resp.StatusCode, "allowed"
	}
	return resp.StatusCode, e.Error.Code
}

func ready(t *testing.T, d *deployment) int {
	resp, err := http.Get("http://" + d.httpAddr + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// tokensAtOrBelowOwners checks the token invariant over every
// relationship: no API token holds a role above its owner's.
func tokensAtOrBelowOwners(t *testing.T, conn *client.Client) {
	rank := map[string]int{client.RelReadonly: 1, client.RelUser: 2, client.RelSupport: 3}
	role := map[string]int{} // "org subject" -> rank
	owner := map[string]string{}
	org := map[string]string{}
	for _, r := range spicedbtest.Relationships(t, conn.Conn()) {
		res, subj, _ := strings.Cut(r, "@")
		obj, rel, _ := strings.Cut(res, "#")
		typ, id, _ := strings.Cut(obj, ":")
		switch {
		case typ == client.TypeOrganization && rank[rel] > 0:
			role[id+" "+subj] = max(role[id+" "+subj], rank[rel])
		case typ == client.TypeAPIToken && rel == client.RelOwner:
			owner[id] = strings.TrimPrefix(subj, "user:")
		case typ == client.TypeAPIToken && rel == client.RelOrganization:
			org[id] = strings.TrimPrefix(subj, "organization:")
		}
	}
	for tok, o := range org {
		assert.LessOrEqual(t, role[o+" api_token:"+tok], role[o+" user:"+owner[tok]], "token %s of %s in %s outranks its owner", tok, owner[tok], o)
	}
}

// TestFaults is the fault table: each scenario injects one failure under
// load and requires the documented answers (see the README's failure
// table), never an allow by mistake, no half-written change, and recovery
// without a restart.
func TestFaults(t *testing.T) {
	shape := loadtest.Shape{Orgs: 5, Members: 6, Datasets: 50}
	load := func(t *testing.T, d *deployment) (*client.Client, loadtest.Target) {
		c, err := client.New(d.grpcAddr, client.WithInsecure(), client.WithPresharedKey(d.key))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = seed.Load(t.Context(), v1.NewPermissionsServiceClient(c.Conn()), seed.Generate(shape.Orgs, shape.Members, shape.Datasets), nil)
		require.NoError(t, err)
		target, err := loadtest.NewHTTPTarget("http://"+d.httpAddr, d.token, 32, false)
		require.NoError(t, err)
		return c, target
	}
	// A check that must never be allowed: bob is in no generated organization.
	const denied = `{"subject":"user:bob","permission":"view","resource":"dataset:org00001-d000001"}`

	t.Run("postgres stopped and started under load", func(t *testing.T) {
		spicegate, _ := build(t)
		db := freshDatabase(t)
		u, err := url.Parse(db)
		require.NoError(t, err)
		proxy := newTCPProxy(t, u.Host)
		u.Host = proxy.addr
		migrate := start(t, "spicegate migrate", spicegate, nil, "migrate", "--datastore-conn-uri", u.String())
		<-migrate.done
		require.Zero(t, migrate.cmd.ProcessState.ExitCode(), migrate.output())
		d := &deployment{grpcAddr: freeAddr(t), key: testKey, httpAddr: freeAddr(t), token: testToken}
		d.spicegate = start(t, "spicegate serve (embedded, postgres behind a proxy)", spicegate, nil, "serve",
			"--datastore-engine", "postgres", "--datastore-conn-uri", u.String(), "--no-seed", "--http-request-timeout", "3s",
			"--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr, "--preshared-key", d.key, "--http-token", d.token)
		waitHTTP(t, d.spicegate, d.httpAddr)
		c, target := load(t, d)

		var res *loadtest.Result
		var wg sync.WaitGroup
		wg.Go(func() {
			res, err = loadtest.Run(t.Context(), loadtest.Config{Target: target, Shape: shape, Mix: loadtest.DefaultMix,
				Rate: 40, Duration: 16 * time.Second, MaxInFlight: 32, Timeout: 5 * time.Second})
		})
		time.Sleep(4 * time.Second)
		proxy.cut()
		t.Log("postgres down")
		require.Eventually(t, func() bool { return ready(t, d) == http.StatusServiceUnavailable }, 10*time.Second, 200*time.Millisecond, "/readyz follows")
		code, why := statusOf(t, d, http.MethodPost, "/v1/check", denied)
		assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}, code, "a check while the database is down: %d %s", code, why)
		code, why = statusOf(t, d, http.MethodPost, "/v1/organizations/org00001/members", `{"user":"newcomer","role":"readonly"}`)
		assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}, code, "a write while the database is down: %d %s", code, why)
		time.Sleep(3 * time.Second)
		proxy.restore()
		t.Log("postgres back")
		require.Eventually(t, func() bool { return ready(t, d) == http.StatusOK }, 30*time.Second, 200*time.Millisecond, "/readyz follows, without a restart")
		wg.Wait()
		require.NoError(t, err)
		all := res.Op(loadtest.OpAll)
		t.Logf("under load: %d requests, errors by code: %v", all.Count, all.Codes)
		for code := range all.Codes {
			_, c, _ := strings.Cut(code, " ")
			assert.Contains(t, []string{"http_503_unavailable", "http_504_deadline_exceeded", "deadline_exceeded"}, c, "only unavailability while the database was down (first: %s)", all.Samples[code])
		}
		code, why = statusOf(t, d, http.MethodPost, "/v1/check", denied)
		assert.Equal(t, http.StatusOK, code, why)
		assert.NotEqual(t, "allowed", why, "never an allow by mistake")
		code, _ = statusOf(t, d, http.MethodPost, "/v1/organizations/org00001/members", `{"user":"newcomer","role":"readonly"}`)
		assert.Contains(t, []int{http.StatusCreated, http.StatusConflict}, code, "writes work again (409 if the write before the outage landed)")
		tokensAtOrBelowOwners(t, c)
	})

	t.Run("a dispatch-cluster node killed under load", func(t *testing.T) {
		d := dispatchCluster(t)
		c, target := load(t, d)
		// Two answers known in advance, asked all along: a member's view of
		// its organization's dataset (allowed) and an outsider's (denied).
		// While node 2 is down either may fail, but neither may be wrong.
		// (Node 1's dispatches to the dead node wait for it to come back, so
		// what fails is a request's deadline, not its answer.)
		const allowed = `{"subject":"user:org00001-u0001","permission":"view","resource":"dataset:org00001-d000001","consistency":"fully_consistent"}`
		var wrong, answered, failed atomic.Int64
		// ask runs in a goroutine of its own: no require (FailNow) in it.
		ask := func(ctx context.Context, body string) (int, bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.httpAddr+"/v1/check", strings.NewReader(body))
			if err != nil {
				return 0, false, err
			}
			req.Header.Set("Authorization", "Bearer "+d.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, false, err
			}
			defer resp.Body.Close()
			var out struct{ Allowed bool }
			err = json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out.Allowed, err
		}
		probe := func(ctx context.Context) {
			for ctx.Err() == nil {
				for body, want := range map[string]bool{allowed: true, denied: false} {
					code, got, err := ask(ctx, body)
					switch {
					case ctx.Err() != nil:
						return
					case err != nil:
						wrong.Add(1)
						t.Errorf("check %s: %v", body, err)
					case code == http.StatusOK && got == want:
						answered.Add(1)
					case code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
						failed.Add(1)
					default:
						wrong.Add(1)
						t.Errorf("check %s answered %d, allowed %t, around a node's death", body, code, got)
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		ctx, stop := context.WithCancel(t.Context())
		var res *loadtest.Result
		var err error
		var wg sync.WaitGroup
		wg.Go(func() { probe(ctx) })
		wg.Go(func() {
			res, err = loadtest.Run(t.Context(), loadtest.Config{Target: target, Shape: shape, Mix: loadtest.DefaultMix,
				Rate: 40, Duration: 16 * time.Second, MaxInFlight: 32, Timeout: 5 * time.Second})
			stop()
		})
		time.Sleep(4 * time.Second)
		d.peer.kill()
		t.Log("node 2 killed (kill -9)")
		time.Sleep(4 * time.Second)
		d.restartPeer()
		t.Log("node 2 back")
		wg.Wait()
		require.NoError(t, err)
		all := res.Op(loadtest.OpAll)
		t.Logf("under load: %d requests, errors by code: %v; probes: %d right, %d unavailable, %d wrong", all.Count, all.Codes,
			answered.Load(), failed.Load(), wrong.Load())
		for code := range all.Codes {
			_, c, _ := strings.Cut(code, " ")
			assert.Contains(t, []string{"http_503_unavailable", "http_504_deadline_exceeded", "deadline_exceeded"}, c, "only unavailability while a node was down (first: %s)", all.Samples[code])
		}
		assert.Zero(t, wrong.Load(), "an answer was wrong")
		require.Eventually(t, func() bool {
			code, got, err := ask(t.Context(), allowed)
			return err == nil && code == http.StatusOK && got
		}, 30*time.Second, 200*time.Millisecond, "the cluster answers again without restarting Spicegate or node 1")
		tokensAtOrBelowOwners(t, c)
	})

	t.Run("external SpiceDB hung, then killed", func(t *testing.T) {
		db := freshDatabase(t)
		migrateSpiceDB(t, db)
		d := &deployment{grpcAddr: freeAddr(t), key: testKey, httpAddr: freeAddr(t), token: testToken}
		run := spicedbNode(t, "spicedb", db, d.grpcAddr, "", "")
		d.spicedb = run()
		spicegate, _ := build(t)
		d.spicegate = start(t, "spicegate serve (in front)", spicegate, nil, "serve",
			"--spicedb-endpoint", d.grpcAddr, "--preshared-key", d.key, "--spicedb-insecure", "--http-request-timeout", "2s",
			"--http-addr", d.httpAddr, "--http-token", d.token)
		waitHTTP(t, d.spicegate, d.httpAddr)
		load(t, d)

		require.NoError(t, syscall.Kill(-d.spicedb.cmd.Process.Pid, syscall.SIGSTOP))
		t.Log("spicedb stopped (SIGSTOP)")
		began := time.Now()
		code, why := statusOf(t, d, http.MethodPost, "/v1/check", denied)
		assert.Equal(t, http.StatusGatewayTimeout, code, why)
		assert.Less(t, time.Since(began), 6*time.Second, "answered within the deadline, not hung")
		assert.Equal(t, http.StatusServiceUnavailable, ready(t, d))
		require.NoError(t, syscall.Kill(-d.spicedb.cmd.Process.Pid, syscall.SIGCONT))
		t.Log("spicedb resumed (SIGCONT)")
		require.Eventually(t, func() bool {
			code, _ := statusOf(t, d, http.MethodPost, "/v1/check", denied)
			return code == http.StatusOK
		},
			15*time.Second, 200*time.Millisecond)

		d.spicedb.kill()
		t.Log("spicedb killed")
		began = time.Now()
		code, why = statusOf(t, d, http.MethodPost, "/v1/check", denied)
		assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}, code, why)
		assert.Less(t, time.Since(began), 6*time.Second)
		d.spicedb = run()
		t.Log("spicedb restarted")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			if code, _ = statusOf(t, d, http.MethodPost, "/v1/check", denied); code == http.StatusOK {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		assert.Equal(t, http.StatusOK, code, "recovers without restarting Spicegate")
	})
}
