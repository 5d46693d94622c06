package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/httpapi"
	"github.com/spicegate/spicegate/internal/procs"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

const (
	token      = "test-token-0123456789" // admin
	checkToken = "check-token-0123456789"
	actToken   = "act-token-0123456789"
)

// tokens are the API's service tokens: one of each scope, and a second admin.
var tokens = []httpapi.Token{
	{Secret: "other-token-0123456789", Scope: httpapi.ScopeAdmin},
	{Secret: token, Scope: httpapi.ScopeAdmin},
	{Secret: checkToken, Scope: httpapi.ScopeCheck},
	{Secret: actToken, Scope: httpapi.ScopeAct},
}

type api struct {
	t      *testing.T
	url    string
	client *client.Client
	api    *httpapi.Server
}

// newAPI serves the API over a real SpiceDB with acme (alice: User, rita:
// Read-only, support) and globex (bob).
func newAPI(t *testing.T) *api {
	t.Helper()
	a, _ := serveAPI(t, httpapi.Config{MaxBodyBytes: 4096})
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated)
	a.ok("POST", "/v1/organizations/acme/members", `{"user":"rita","role":"readonly"}`, http.StatusCreated)
	a.ok("POST", "/v1/organizations", `{"id":"globex","first_user":"bob"}`, http.StatusCreated)
	return a
}

// serveAPI serves the API (cfg with the test's client and tokens) over a
// fresh SpiceDB, and returns it with the SpiceDB.
func serveAPI(t *testing.T, cfg httpapi.Config) (*api, *spicedbtest.Server) {
	t.Helper()
	srv := spicedbtest.Start(t)
	cfg.Client, cfg.Tokens = srv.Client(t), tokens
	s := httpapi.New(cfg)
	h := httptest.NewServer(s.Handler())
	t.Cleanup(h.Close)
	return &api{t: t, url: h.URL, client: cfg.Client, api: s}, srv
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a *api) do(method, path, body string, headers ...string) response {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, strings.NewReader(body))
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		require.NoError(a.t, json.Unmarshal(raw, &out.body), string(raw))
	}
	return out
}

// ok does the request and requires the status.
func (a *api) ok(method, path, body string, status int, headers ...string) response {
	a.t.Helper()
	r := a.do(method, path, body, headers...)
	require.Equal(a.t, status, r.status, "%s %s: %s", method, path, r.raw)
	return r
}

// fails does the request and requires the error status, code and field.
func (a *api) fails(method, path, body string, status int, code, field string, headers ...string) {
	a.t.Helper()
	r := a.do(method, path, body, headers...)
	require.Equal(a.t, status, r.status, "%s %s: %s", method, path, r.raw)
	e, ok := r.body["error"].(map[string]any)
	require.True(a.t, ok, "a JSON error body: %s", r.raw)
	assert.Equal(a.t, code, e["code"], r.raw)
	assert.NotEmpty(a.t, e["message"])
	if field != "" {
		assert.Equal(a.t, field, e["field"], r.raw)
	}
}

func (a *api) allowed(subject, permission, resource string) bool {
	a.t.Helper()
	r := a.ok("POST", "/v1/check", `{"subject":"`+subject+`","permission":"`+permission+`","resource":"`+resource+`","consistency":"fully_consistent"}`, http.StatusOK)
	return r.body["allowed"].(bool)
}

func TestCheckAndRevisionRoundTrip(t *testing.T) {
	a := newAPI(t)
	r := a.ok("POST", "/v1/check", `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"}`, http.StatusOK)
	assert.Equal(t, true, r.body["allowed"])
	assert.Equal(t, "allowed", r.body["permissionship"])
	rev := r.header.Get(httpapi.RevisionHeader)
	require.NotEmpty(t, rev)
	assert.Equal(t, rev, r.body["revision"])

	// A write returns its revision; passing it back reads at least that fresh.
	w := a.ok("POST", "/v1/organizations/acme/datasets", `{"id":"reviews","owner":"alice"}`, http.StatusCreated)
	written := w.body["revision"].(string)
	require.NotEmpty(t, written)
	assert.Equal(t, written, w.header.Get(httpapi.RevisionHeader))
	r = a.ok("POST", "/v1/check", `{"subject":"user:rita","permission":"view","resource":"dataset:reviews","revision":"`+written+`"}`, http.StatusOK)
	assert.Equal(t, true, r.body["allowed"])
	r = a.ok("POST", "/v1/check", `{"subject":"user:rita","permission":"view","resource":"dataset:reviews"}`, http.StatusOK, httpapi.RevisionHeader, written)
	assert.Equal(t, true, r.body["allowed"], "the revision may come as a header")
	r = a.ok("POST", "/v1/check", `{"subject":"user:rita","permission":"view","resource":"dataset:reviews","consistency":"at_exact_snapshot","revision":"`+rev+`"}`, http.StatusOK)
	assert.Equal(t, false, r.body["allowed"], "the snapshot before the write")
	a.fails("POST", "/v1/check", `{"subject":"user:rita","permission":"view","resource":"dataset:reviews","consistency":"at_exact_snapshot"}`, 400, "invalid_argument", "revision")
	a.fails("POST", "/v1/check", `{"subject":"user:rita","permission":"view","resource":"dataset:reviews","consistency":"eventually"}`, 400, "invalid_argument", "consistency")
	// minimize_latency may read a snapshot up to SpiceDB's quantization
	// window (5 s) old: on a store this young (under -race, its schema may
	// be written after the window began), possibly one without the schema.
	require.Eventually(t, func() bool {
		return a.do("POST", "/v1/check", `{"subject":"user:rita","permission":"view","resource":"dataset:reviews","consistency":"minimize_latency"}`).status == http.StatusOK
	}, 15*time.Second, 100*time.Millisecond, "minimize_latency is accepted")
}

// Every API request is reported to the processor controller, whether it
// succeeds or not.
func TestAPIRequestsAreReported(t *testing.T) {
	a := newAPI(t)
	a.allowed("user:alice", "deploy", "organization:acme") // the first call of a method may also count at SpiceDB's side
	before := procs.Requests()
	a.allowed("user:alice", "deploy", "organization:acme")
	a.fails("POST", "/v1/check", `{"permission":"deploy"}`, 400, "invalid_argument", "subject")
	after := procs.Requests()
	assert.Equal(t, int64(2), after.Started-before.Started)
	assert.Equal(t, before.Overlapped, after.Overlapped, "one at a time")

	// The routes that run many checks or a lookup count as overlapping.
	for _, path := range []string{"/v1/check/bulk", "/v1/permissions", "/v1/lookup/resources", "/v1/lookup/subjects"} {
		before := procs.Requests()
		a.do("POST", path, `{}`)
		after := procs.Requests()
		assert.Equal(t, int64(1), after.Started-before.Started, path)
		assert.Equal(t, int64(1), after.Overlapped-before.Overlapped, path)
	}
}

func TestBulkCheckPermissionsAndLookups(t *testing.T) {
	a := newAPI(t)
	r := a.ok("POST", "/v1/check/bulk", `{"items":[
		{"subject":"user:alice","permission":"deploy","resource":"organization:acme"},
		{"subject":"user:rita","permission":"deploy","resource":"organization:acme"},
		{"subject":"user:rita","permission":"no_such_permission","resource":"organization:acme"}]}`, http.StatusOK)
	results := r.body["results"].([]any)
	require.Len(t, results, 3)
	assert.Equal(t, true, results[0].(map[string]any)["allowed"])
	assert.Equal(t, false, results[1].(map[string]any)["allowed"])
	assert.Equal(t, false, results[2].(map[string]any)["allowed"])
	assert.NotNil(t, results[2].(map[string]any)["error"], "a failed item says why, and is denied")
	a.fails("POST", "/v1/check/bulk", `{"items":[]}`, 400, "invalid_argument", "items")
	a.fails("POST", "/v1/check/bulk", `{"items":[{"subject":"user:a","permission":"view","resource":"dataset:"}]}`, 400, "invalid_argument", "items[0].resource")

	r = a.ok("POST", "/v1/permissions", `{"subject":"user:rita","resource":"organization:acme"}`, http.StatusOK)
	perms := r.body["permissions"].(map[string]any)
	assert.Equal(t, true, perms["view_dataset"])
	assert.Equal(t, false, perms["connect_dataset"])
	assert.Len(t, perms, len(client.PermissionsOf(client.TypeOrganization)))

	for _, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
		a.ok("POST", "/v1/organizations/acme/datasets", `{"id":"`+id+`","owner":"alice"}`, http.StatusCreated)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		r = a.ok("POST", "/v1/lookup/resources", `{"subject":"user:rita","permission":"view","resource_type":"dataset","limit":2,"cursor":"`+cursor+`"}`, http.StatusOK)
		for _, v := range r.body["resources"].([]any) {
			got = append(got, v.(string))
		}
		if cursor = r.body["cursor"].(string); cursor == "" {
			break
		}
	}
	assert.ElementsMatch(t, []string{"dataset:d1", "dataset:d2", "dataset:d3", "dataset:d4", "dataset:d5"}, got)
	a.fails("POST", "/v1/lookup/resources", `{"subject":"user:rita","permission":"view","resource_type":"dataset","limit":5000}`, 400, "invalid_argument", "limit")

	got = nil
	cursor = ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		r = a.ok("POST", "/v1/lookup/subjects", `{"resource":"organization:acme","permission":"view_members","subject_type":"user","limit":2,"cursor":"`+cursor+`"}`, http.StatusOK)
		for _, v := range r.body["subjects"].([]any) {
			got = append(got, v.(string))
		}
		if cursor = r.body["cursor"].(string); cursor == "" {
			break
		}
	}
	assert.Equal(t, []string{"user:alice", "user:rita", "user:support"}, got)
	a.fails("POST", "/v1/lookup/subjects", `{"resource":"organization:acme","permission":"view_members"}`, 400, "invalid_argument", "subject_type")
}

func TestMembersRolesAndInvites(t *testing.T) {
	a := newAPI(t)
	r := a.ok("GET", "/v1/organizations/acme/members", "", http.StatusOK)
	assert.Equal(t, []any{
		map[string]any{"user": "alice", "role": "user"},
		map[string]any{"user": "rita", "role": "readonly"},
		map[string]any{"user": "support", "role": "support"},
	}, r.body["members"])
	a.fails("GET", "/v1/organizations/nosuch/members", "", 404, "not_found", "")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":"rita","role":"user"}`, 409, "already_exists", "")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":"carol","role":"support"}`, 400, "invalid_argument", "role")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":"carol","role":"user"}`, 403, "permission_denied", "", httpapi.ActorHeader, "user:rita")
	a.ok("POST", "/v1/organizations/acme/members", `{"user":"carol","role":"user"}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")

	// Role changes and removals are support's, and an act token needs an actor.
	a.fails("PUT", "/v1/organizations/acme/members/rita", `{"role":"user"}`, 400, "invalid_argument", httpapi.ActorHeader, "Authorization", "Bearer "+actToken)
	a.fails("PUT", "/v1/organizations/acme/members/rita", `{"role":"user"}`, 403, "permission_denied", "", httpapi.ActorHeader, "user:alice")
	a.fails("PUT", "/v1/organizations/acme/members/rita", `{"role":"user"}`, 400, "invalid_argument", httpapi.ActorHeader, httpapi.ActorHeader, "organization:acme#member")
	a.ok("PUT", "/v1/organizations/acme/members/rita", `{"role":"user"}`, http.StatusOK, httpapi.ActorHeader, "user:support")
	assert.True(t, a.allowed("user:rita", "deploy", "organization:acme"))
	a.fails("DELETE", "/v1/organizations/acme/members/bob", "", 404, "not_found", "", httpapi.ActorHeader, "user:support")
	a.ok("DELETE", "/v1/organizations/acme/members/carol", "", http.StatusOK, httpapi.ActorHeader, "user:support")
	assert.False(t, a.allowed("user:carol", "member", "organization:acme"))

	// Invites: created by who may invite, accepted once.
	a.fails("POST", "/v1/organizations/acme/invites", `{"role":"readonly","ttl_seconds":3600}`, 403, "permission_denied", "", httpapi.ActorHeader, "user:bob")
	a.fails("POST", "/v1/organizations/acme/invites", `{"role":"readonly","ttl_seconds":0}`, 400, "invalid_argument", "ttl_seconds", httpapi.ActorHeader, "user:alice")
	r = a.ok("POST", "/v1/organizations/acme/invites", `{"role":"readonly","ttl_seconds":3600}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")
	id := r.body["id"].(string)
	assert.Len(t, id, 32)
	assert.Equal(t, "alice", r.body["inviter"])
	r = a.ok("POST", "/v1/invites/"+id+"/accept", `{"user":"dave"}`, http.StatusOK)
	assert.Equal(t, "readonly", r.body["role"])
	a.fails("POST", "/v1/invites/"+id+"/accept", `{"user":"erin"}`, 409, "conflict", "")
	a.fails("POST", "/v1/invites/0123456789abcdef0123456789abcdef/accept", `{"user":"erin"}`, 404, "not_found", "")
	r = a.ok("POST", "/v1/organizations/acme/invites", `{"role":"user","ttl_seconds":60}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")
	id = r.body["id"].(string)
	a.fails("DELETE", "/v1/invites/"+id, "", 403, "permission_denied", "", httpapi.ActorHeader, "user:rita2")
	a.ok("DELETE", "/v1/invites/"+id, "", http.StatusOK, httpapi.ActorHeader, "user:alice")
	a.fails("POST", "/v1/invites/"+id+"/accept", `{"user":"erin"}`, 404, "not_found", "")
}

func TestArtifactsTokensLLMsAndOrganizationDeletion(t *testing.T) {
	a := newAPI(t)
	// Creation with an actor enforces the matching organization permission.
	a.fails("POST", "/v1/organizations/acme/datasets", `{"id":"x","owner":"rita"}`, 403, "permission_denied", "", httpapi.ActorHeader, "user:rita")
	a.ok("POST", "/v1/organizations/acme/datasets", `{"id":"reviews","owner":"alice"}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")
	a.fails("POST", "/v1/organizations/acme/datasets", `{"id":"reviews","owner":"alice"}`, 409, "already_exists", "")
	a.fails("POST", "/v1/organizations/nosuch/datasets", `{"id":"y","owner":"alice"}`, 404, "not_found", "")
	a.ok("POST", "/v1/organizations/acme/adapter-repositories", `{"id":"bot","owner":"alice"}`, http.StatusCreated)
	a.fails("POST", "/v1/organizations/acme/training-jobs", `{"id":"run1","repository":"bot","creator":"rita"}`, 403, "permission_denied", "", httpapi.ActorHeader, "user:rita")
	a.ok("POST", "/v1/organizations/acme/training-jobs", `{"id":"run1","repository":"bot","creator":"alice"}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")
	a.ok("POST", "/v1/organizations/acme/deployments", `{"id":"llama"}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")
	assert.True(t, a.allowed("user:rita", "view", "training_job:run1"))
	assert.False(t, a.allowed("user:rita", "update", "deployment:llama"))

	// Tokens: a user creates its own; the token acts as its owner.
	a.fails("POST", "/v1/organizations/acme/api-tokens", `{"owner":"alice"}`, 403, "permission_denied", "owner", httpapi.ActorHeader, "user:rita")
	r := a.ok("POST", "/v1/organizations/acme/api-tokens", `{"owner":"rita"}`, http.StatusCreated, httpapi.ActorHeader, "user:rita")
	tok := r.body["id"].(string)
	assert.True(t, a.allowed("api_token:"+tok, "view", "dataset:reviews"))
	assert.False(t, a.allowed("api_token:"+tok, "delete", "dataset:reviews"))
	a.fails("DELETE", "/v1/api-tokens/"+tok, "", 403, "permission_denied", "", httpapi.ActorHeader, "user:alice")
	a.ok("DELETE", "/v1/api-tokens/"+tok, "", http.StatusOK, httpapi.ActorHeader, "user:rita")
	assert.False(t, a.allowed("api_token:"+tok, "view", "dataset:reviews"))

	// LLMs.
	a.ok("POST", "/v1/llms", `{"id":"llama-3","shared":true}`, http.StatusCreated)
	a.ok("POST", "/v1/llms", `{"id":"acme-ft","organization":"acme"}`, http.StatusCreated)
	a.fails("POST", "/v1/llms", `{"id":"both","shared":true,"organization":"acme"}`, 400, "invalid_argument", "organization")
	assert.True(t, a.allowed("user:anyone", "prompt", "llm:llama-3"))
	assert.False(t, a.allowed("user:bob", "prompt", "llm:acme-ft"))
	a.ok("DELETE", "/v1/llms/llama-3", "", http.StatusOK)
	assert.False(t, a.allowed("user:anyone", "prompt", "llm:llama-3"))

	// Deletions, with and without an actor.
	a.fails("DELETE", "/v1/datasets/reviews", "", 403, "permission_denied", "", httpapi.ActorHeader, "user:rita")
	a.ok("DELETE", "/v1/datasets/reviews", "", http.StatusOK, httpapi.ActorHeader, "user:alice")
	a.fails("DELETE", "/v1/datasets/reviews", "", 404, "not_found", "")
	a.fails("DELETE", "/v1/training-jobs/run1", "", 403, "permission_denied", "", httpapi.ActorHeader, "user:rita")
	a.ok("DELETE", "/v1/training-jobs/run1", "", http.StatusOK)
	a.ok("DELETE", "/v1/adapter-repositories/bot", "", http.StatusOK, httpapi.ActorHeader, "user:support")
	a.ok("DELETE", "/v1/deployments/llama", "", http.StatusOK, httpapi.ActorHeader, "user:alice")

	a.fails("DELETE", "/v1/organizations/acme", "", 403, "permission_denied", "", httpapi.ActorHeader, "user:alice")
	assert.True(t, a.allowed("user:alice", "member", "organization:acme"), "nothing was deleted")
	a.ok("DELETE", "/v1/organizations/acme", "", http.StatusOK, httpapi.ActorHeader, "user:support")
	assert.False(t, a.allowed("user:alice", "member", "organization:acme"))
	assert.False(t, a.allowed("user:rita", "prompt", "llm:acme-ft"))
}

// TestMalformedRequestsWriteNothing covers every 400 cause, and proves the
// state did not change.
func TestMalformedRequestsWriteNothing(t *testing.T) {
	a := newAPI(t)
	before := a.ok("GET", "/v1/organizations/acme/members", "", http.StatusOK).raw

	a.fails("POST", "/v1/organizations/acme/members", `{"user":"carol","role":"user","admin":true}`, 400, "invalid_argument", "admin")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":"carol","role":`, 400, "invalid_argument", "")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":7,"role":"user"}`, 400, "invalid_argument", "user")
	a.fails("POST", "/v1/organizations/acme/members", ``, 400, "invalid_argument", "")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":"carol","role":"user"} {"user":"dave"}`, 400, "invalid_argument", "")
	a.fails("POST", "/v1/organizations/acme/members", `{"user":"car ol","role":"user"}`, 400, "invalid_argument", "user")
	a.fails("POST", "/v1/organizations/ac%20me/members", `{"user":"carol","role":"user"}`, 400, "invalid_argument", "org")
	big := `{"user":"carol","role":"user","pad":"` + strings.Repeat("x", 5000) + `"}`
	a.fails("POST", "/v1/organizations/acme/members", big, 400, "body_too_large", "")
	a.fails("POST", "/v1/check", `{"subject":"alice","permission":"view","resource":"dataset:d"}`, 400, "invalid_argument", "subject")
	a.fails("POST", "/v1/check", `{"subject":"user:alice","permission":"view"}`, 400, "invalid_argument", "resource")

	assert.Equal(t, before, a.ok("GET", "/v1/organizations/acme/members", "", http.StatusOK).raw)
}

func TestAuthentication(t *testing.T) {
	a := newAPI(t)
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Basic " + token, "Bearer" + token, token} {
		r := a.do("POST", "/v1/check", `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"}`, "Authorization", auth)
		assert.Equal(t, http.StatusUnauthorized, r.status, "Authorization %q", auth)
		assert.Equal(t, "unauthenticated", r.body["error"].(map[string]any)["code"])
	}
	for _, auth := range []string{"Bearer other-token-0123456789", "bearer " + token, "BEARER " + checkToken} {
		r := a.do("POST", "/v1/check", `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"}`, "Authorization", auth)
		assert.Equal(t, http.StatusOK, r.status, "every configured token works, and the scheme is case-insensitive: %q", auth)
	}
	// Health and docs need no token.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		r := a.do("GET", path, "", "Authorization", "")
		assert.Equal(t, http.StatusOK, r.status, path)
	}
	a.fails("GET", "/v1/nosuch", "", 404, "not_found", "")
}

func TestUnavailableIsNeverAnAllow(t *testing.T) {
	c, err := client.New("127.0.0.1:1", client.WithInsecure(), client.WithRetry(1, 0, 0))
	require.NoError(t, err)
	s := httpapi.New(httpapi.Config{Client: c, Tokens: tokens})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	a := &api{t: t, url: srv.URL, client: c, api: s}
	r := a.do("POST", "/v1/check", `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"}`)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Equal(t, "unavailable", r.body["error"].(map[string]any)["code"])
	assert.NotContains(t, r.raw, "allowed")
	assert.NotContains(t, r.raw, "127.0.0.1", "no internals in the answer")
	r = a.do("GET", "/readyz", "")
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
}

func TestMetricsCountRequestsDecisionsAndErrors(t *testing.T) {
	a := newAPI(t)
	a.allowed("user:alice", "deploy", "organization:acme")
	a.allowed("user:rita", "deploy", "organization:acme")
	a.fails("POST", "/v1/check", `{}`, 400, "invalid_argument", "subject")
	m := a.ok("GET", "/metrics", "", http.StatusOK).raw
	assert.Contains(t, m, `spicegate_decisions_total{permission="deploy",result="allowed"} 1`)
	assert.Contains(t, m, `spicegate_decisions_total{permission="deploy",result="denied"} 1`)
	assert.Contains(t, m, `spicegate_errors_total{code="invalid_argument"} 1`)
	assert.Contains(t, m, `spicegate_http_requests_total{code="200",route="POST /v1/check"} 2`)
	assert.Contains(t, m, `spicegate_http_request_duration_seconds_count{route="POST /v1/check"} 3`)
}

// /metrics serves the Gatherer it is given (the service adds SpiceDB's
// registry); a family that fails to gather is left out, not a 500 that
// hides the others.
func TestMetricsServeTheGathererAndSurviveAFailingOne(t *testing.T) {
	registry := prometheus.NewRegistry()
	failing := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return nil, errors.New("a collector failed")
	})
	extra := prometheus.NewRegistry()
	extra.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "spicedb_like_total", Help: "another registry's"}))
	a, _ := serveAPI(t, httpapi.Config{Registry: registry, Gatherer: prometheus.Gatherers{registry, extra, failing}})
	a.ok("GET", "/metrics", "", http.StatusOK)
	m := a.ok("GET", "/metrics", "", http.StatusOK).raw
	assert.Contains(t, m, "spicedb_like_total 0")
	assert.Contains(t, m, `spicegate_http_requests_total{code="200",route="GET /metrics"} 1`, "the API's own, in Registry")
}

// TestOpenAPIDocumentsEveryRoute: every registered route is in the
// document, and every documented operation is registered.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	a := newAPI(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	served := a.ok("GET", "/v1/openapi.json", "", http.StatusOK).raw
	require.NoError(t, json.Unmarshal([]byte(served), &doc))
	require.True(t, bytes.Equal([]byte(served), httpapi.OpenAPI()))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."))

	var documented, registered []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range a.api.Routes() {
		registered = append(registered, r.Method+" "+r.Path)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	assert.Equal(t, registered, documented)
}

func TestAuditStream(t *testing.T) {
	a := newAPI(t)
	start := a.ok("POST", "/v1/organizations/acme/members", `{"user":"carol","role":"user"}`, http.StatusCreated).body["revision"].(string)

	resp := a.openAudit(start)
	assert.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))

	// Writes made after the stream opened arrive, with their actor and request.
	r := a.ok("DELETE", "/v1/organizations/acme/members/carol", "", http.StatusOK, httpapi.ActorHeader, "user:support", httpapi.RequestIDHeader, "req-7")
	assert.Equal(t, "req-7", r.header.Get(httpapi.RequestIDHeader))
	// The removal writes its fence first (membership#role_change), then
	// deletes the role: every change carries the actor and the request.
	lines := bufio.NewScanner(resp.Body)
	var change map[string]any
	for change["relationship"] != "organization:acme#user@user:carol" {
		require.True(t, lines.Scan(), "a change arrives")
		change = nil
		require.NoError(t, json.Unmarshal(lines.Bytes(), &change))
		assert.Equal(t, "user:support", change["actor"])
		assert.Equal(t, "req-7", change["request_id"])
	}
	assert.Equal(t, "delete", change["operation"])
	assert.Equal(t, r.body["revision"], change["revision"])

	a.fails("GET", "/v1/audit", "", 401, "unauthenticated", "", "Authorization", "")
}

// openAudit opens the audit stream after the revision ("" for now), for at
// most 20 s or the test, and requires it to answer 200.
func (a *api) openAudit(after string) *http.Response {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), 20*time.Second)
	a.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/v1/audit?after="+url.QueryEscape(after), nil)
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	a.t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(a.t, http.StatusOK, resp.StatusCode)
	return resp
}
