package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/httpapi"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// concrete fills a route's path parameters.
func concrete(path string) string {
	return strings.NewReplacer("{org}", "acme", "{user}", "rita", "{id}", "0123456789abcdef").Replace(path)
}

// TestEveryRouteEnforcesItsScope: a check token gets 403 on every route
// above reads and writes nothing; an act token gets 400 on every write
// without an actor; the OpenAPI document states each route's scope.
func TestEveryRouteEnforcesItsScope(t *testing.T) {
	a, srv := serveAPI(t, httpapi.Config{})
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated)
	before := spicedbtest.Relationships(t, srv.Conn(t))

	var doc struct {
		Paths map[string]map[string]struct {
			Scope    string                `json:"x-spicegate-scope"`
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(httpapi.OpenAPI(), &doc))
	schemesOf := map[httpapi.Scope][]string{
		httpapi.ScopeCheck: {"actToken", "adminToken", "checkToken"},
		httpapi.ScopeAct:   {"actToken", "adminToken"},
		httpapi.ScopeAdmin: {"adminToken"},
	}

	writes := 0
	for _, route := range a.api.Routes() {
		name := route.Method + " " + route.Path
		op := doc.Paths[route.Path][strings.ToLower(route.Method)]
		if route.Public {
			assert.Empty(t, op.Security, "%s is public", name)
			continue
		}
		assert.Equal(t, route.Scope.String(), op.Scope, "%s: x-spicegate-scope", name)
		var schemes []string
		for _, req := range op.Security {
			for scheme := range req {
				schemes = append(schemes, scheme)
			}
		}
		slices.Sort(schemes)
		assert.Equal(t, schemesOf[route.Scope], schemes, "%s: security", name)

		path := concrete(route.Path)
		if route.Scope > httpapi.ScopeCheck {
			a.fails(route.Method, path, `{}`, http.StatusForbidden, "insufficient_scope", "",
				"Authorization", "Bearer "+checkToken, httpapi.ActorHeader, "user:support")
		}
		if route.Scope == httpapi.ScopeAct {
			writes++
			a.fails(route.Method, path, `{}`, http.StatusBadRequest, "invalid_argument", httpapi.ActorHeader,
				"Authorization", "Bearer "+actToken)
		}
		if route.Scope == httpapi.ScopeAdmin && route.Path != "/v1/audit" {
			t.Errorf("%s: only the audit stream needs the admin scope to be called at all", name)
		}
	}
	assert.GreaterOrEqual(t, writes, 20, "every write route was tried")
	a.fails("GET", "/v1/audit", "", http.StatusForbidden, "insufficient_scope", "", "Authorization", "Bearer "+actToken)
	assert.Equal(t, before, spicedbtest.Relationships(t, srv.Conn(t)), "nothing was written")
}

// TestTheTakeoverOfIssue8IsRefused replays the attack: a Read-only member's
// token mints a token for support, then deletes the organization with it.
func TestTheTakeoverOfIssue8IsRefused(t *testing.T) {
	a, srv := serveAPI(t, httpapi.Config{})
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated)
	a.ok("POST", "/v1/organizations/acme/members", `{"user":"rita","role":"readonly"}`, http.StatusCreated)
	notebook := a.ok("POST", "/v1/organizations/acme/api-tokens", `{"owner":"rita"}`, http.StatusCreated).body["id"].(string)
	before := spicedbtest.Relationships(t, srv.Conn(t))

	for _, scope := range []string{actToken, token} {
		auth := "Bearer " + scope
		a.fails("POST", "/v1/organizations/acme/api-tokens", `{"owner":"support"}`, http.StatusForbidden, "permission_denied", "owner",
			"Authorization", auth, httpapi.ActorHeader, "api_token:"+notebook)
		a.fails("DELETE", "/v1/organizations/acme", "", http.StatusForbidden, "permission_denied", "",
			"Authorization", auth, httpapi.ActorHeader, "api_token:"+notebook)
		a.fails("DELETE", "/v1/organizations/acme/members/alice", "", http.StatusForbidden, "permission_denied", "",
			"Authorization", auth, httpapi.ActorHeader, "api_token:"+notebook)
		a.fails("PUT", "/v1/organizations/acme/members/rita", `{"role":"user"}`, http.StatusForbidden, "permission_denied", "",
			"Authorization", auth, httpapi.ActorHeader, "api_token:"+notebook)
	}
	assert.Equal(t, before, spicedbtest.Relationships(t, srv.Conn(t)), "nothing was written")

	// The token may mint a token for rita, which is no more than rita.
	minted := a.ok("POST", "/v1/organizations/acme/api-tokens", ``, http.StatusCreated,
		"Authorization", "Bearer "+actToken, httpapi.ActorHeader, "api_token:"+notebook).body["id"].(string)
	a.fails("DELETE", "/v1/organizations/acme", "", http.StatusForbidden, "permission_denied", "",
		"Authorization", "Bearer "+actToken, httpapi.ActorHeader, "api_token:"+minted)
	assert.False(t, a.allowed("api_token:"+minted, "delete_account", "organization:acme"))
	assert.True(t, a.allowed("api_token:"+minted, "view_dataset", "organization:acme"))
}

func TestStrictJSON(t *testing.T) {
	a := newAPI(t)
	before := a.ok("GET", "/v1/organizations/acme/members", "", http.StatusOK).raw
	const path = "/v1/organizations/acme/members"

	// Exact, case-sensitive keys: "User" is not "user".
	a.fails("POST", path, `{"User":"carol","role":"user"}`, 400, "invalid_argument", "User")
	// One value per key: the last of two must not win.
	a.fails("POST", path, `{"user":"carol","user":"rita","role":"user"}`, 400, "invalid_argument", "user")
	a.fails("POST", "/v1/check/bulk", `{"items":[{"subject":"user:a","permission":"view","resource":"dataset:d"},
		{"subject":"user:a","subject":"user:b","permission":"view","resource":"dataset:d"}]}`, 400, "invalid_argument", "items[1].subject")
	a.fails("POST", "/v1/check/bulk", `{"items":[{"Subject":"user:a","permission":"view","resource":"dataset:d"}]}`, 400, "invalid_argument", "items[0].Subject")
	a.fails("POST", path, `[{"user":"carol","role":"user"}]`, 400, "invalid_argument", "")
	a.fails("POST", path, `{"user":"carol","role":"user"}`, http.StatusUnsupportedMediaType, "unsupported_media_type", "",
		"Content-Type", "application/x-www-form-urlencoded")
	a.fails("POST", path, `{"user":"carol","role":"user"}`, http.StatusUnsupportedMediaType, "unsupported_media_type", "",
		"Content-Type", "text/plain")
	assert.Equal(t, before, a.ok("GET", path, "", http.StatusOK).raw, "nothing was written")

	// JSON with a charset, or no Content-Type at all, is fine.
	a.ok("POST", path, `{"user":"carol","role":"user"}`, http.StatusCreated, "Content-Type", "application/json; charset=utf-8")
	a.ok("POST", path, `{"user":"dave","role":"user"}`, http.StatusCreated)

	// Errors name the JSON key, not the Go argument.
	a.fails("POST", "/v1/organizations", `{"id":"initech"}`, 400, "invalid_argument", "first_user")
	a.fails("POST", "/v1/organizations", `{"id":"initech","first_user":"support"}`, 400, "invalid_argument", "first_user")
	a.fails("POST", "/v1/organizations/acme/invites", `{"role":"user","ttl_seconds":60}`, 400, "invalid_argument", httpapi.ActorHeader)
}

func TestReadinessDisclosesNothing(t *testing.T) {
	secret := "postgres://spicegate:hunter2@db.internal:5432/spicegate"
	a, _ := serveAPI(t, httpapi.Config{Ready: func(context.Context) error {
		return errors.New("dial " + secret + ": connection refused")
	}})
	r := a.do("GET", "/readyz", "", "Authorization", "")
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Equal(t, map[string]any{"status": "unavailable"}, r.body)
	for _, leak := range []string{"postgres", "hunter2", "db.internal", "5432", "spicegate:"} {
		assert.NotContains(t, r.raw, leak)
	}
}

// The audit stream carries the actor that was checked, or "system", never
// what a header claimed.
func TestAuditCarriesOnlyVerifiedActors(t *testing.T) {
	a := newAPI(t)
	start := a.ok("POST", "/v1/organizations/acme/deployments", `{"id":"d0"}`, http.StatusCreated, httpapi.ActorHeader, "user:alice").body["revision"].(string)
	a.fails("POST", "/v1/organizations/acme/deployments", `{"id":"d1"}`, 400, "invalid_argument", httpapi.ActorHeader, httpapi.ActorHeader, "user:support (forged)")
	a.fails("POST", "/v1/organizations/acme/deployments", `{"id":"d2"}`, 403, "permission_denied", "", httpapi.ActorHeader, "user:rita")
	a.ok("POST", "/v1/organizations/acme/deployments", `{"id":"d3"}`, http.StatusCreated, httpapi.ActorHeader, "user:alice")
	a.ok("POST", "/v1/organizations/acme/deployments", `{"id":"d4"}`, http.StatusCreated)

	changes := spicedbtest.Changes(t, a.client, client.Revision(start), 2)
	assert.Equal(t, "deployment:d3#organization@organization:acme", changes[0].Relationship)
	assert.Equal(t, "user:alice", changes[0].Actor)
	assert.Equal(t, "deployment:d4#organization@organization:acme", changes[1].Relationship)
	assert.Equal(t, client.SystemActor, changes[1].Actor, "an admin token's write without an actor is the system's")
}

func TestParseToken(t *testing.T) {
	for spec, want := range map[string]httpapi.Token{
		"check:0123456789abcdef": {Secret: "0123456789abcdef", Scope: httpapi.ScopeCheck},
		"act:0123456789abcdef":   {Secret: "0123456789abcdef", Scope: httpapi.ScopeAct},
		"admin:s3cret":           {Secret: "s3cret", Scope: httpapi.ScopeAdmin},
		"0123456789abcdef":       {Secret: "0123456789abcdef", Scope: httpapi.ScopeAdmin},
	} {
		got, err := httpapi.ParseToken(spec)
		require.NoError(t, err, spec)
		assert.Equal(t, want, got, spec)
	}
	for _, bad := range []string{"", "admin:", "root:0123456789abcdef", "Check:0123456789abcdef"} {
		_, err := httpapi.ParseToken(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err := httpapi.ParseTokens([]string{"check:0123456789abcdef", "nope:x"})
	assert.ErrorContains(t, err, "#2")
	assert.True(t, httpapi.Token{Secret: "short"}.Weak())
	assert.False(t, httpapi.Token{Secret: "0123456789abcdef"}.Weak())
}

// Only an admin token acts as the support account: an act token acts for
// customers' users at most. And a header sent twice is refused, not guessed.
func TestActingAsSupportNeedsAnAdminToken(t *testing.T) {
	a, srv := serveAPI(t, httpapi.Config{})
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated)
	supportTok := a.ok("POST", "/v1/organizations/acme/api-tokens", `{"owner":"support"}`, http.StatusCreated).body["id"].(string)
	before := spicedbtest.Relationships(t, srv.Conn(t))

	for _, actor := range []string{"user:support", "api_token:" + supportTok} {
		a.fails("DELETE", "/v1/organizations/acme", "", http.StatusForbidden, "insufficient_scope", httpapi.ActorHeader,
			"Authorization", "Bearer "+actToken, httpapi.ActorHeader, actor)
		a.fails("POST", "/v1/organizations/acme/api-tokens", ``, http.StatusForbidden, "insufficient_scope", httpapi.ActorHeader,
			"Authorization", "Bearer "+actToken, httpapi.ActorHeader, actor)
	}
	assert.Equal(t, before, spicedbtest.Relationships(t, srv.Conn(t)), "nothing was written")
	a.ok("POST", "/v1/organizations/acme/deployments", `{"id":"d1"}`, http.StatusCreated, httpapi.ActorHeader, "user:support")

	// Two actors, or two credentials: refused.
	send := func(headers ...string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.url+"/v1/organizations/acme/deployments", strings.NewReader(`{"id":"d2"}`))
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusBadRequest, send("Authorization", "Bearer "+actToken,
		httpapi.ActorHeader, "user:alice", httpapi.ActorHeader, "user:rita"))
	assert.Equal(t, http.StatusUnauthorized, send("Authorization", "Bearer "+actToken, "Authorization", "Bearer "+token,
		httpapi.ActorHeader, "user:alice"))
	assert.NotContains(t, spicedbtest.Relationships(t, srv.Conn(t)), "deployment:d2#organization@organization:acme")
}

// Invite links are secrets: reads (a check token's lookups, the audit
// stream, zed) see only their hashes, which accept nothing.
func TestInviteLinksDoNotLeakThroughLookups(t *testing.T) {
	a := newAPI(t)
	link := a.ok("POST", "/v1/organizations/acme/invites", `{"role":"user","ttl_seconds":3600}`, http.StatusCreated,
		httpapi.ActorHeader, "user:alice").body["id"].(string)
	r := a.ok("POST", "/v1/lookup/resources", `{"subject":"user:mallory","permission":"accept_as_user","resource_type":"invite"}`, http.StatusOK,
		"Authorization", "Bearer "+checkToken)
	listed := r.body["resources"].([]any)
	require.Len(t, listed, 1, "the invite is there")
	seen := strings.TrimPrefix(listed[0].(string), "invite:")
	assert.NotEqual(t, link, seen, "but not its link")
	a.fails("POST", "/v1/invites/"+seen+"/accept", ``, http.StatusNotFound, "not_found", "",
		"Authorization", "Bearer "+actToken, httpapi.ActorHeader, "user:mallory")
	a.ok("POST", "/v1/invites/"+link+"/accept", ``, http.StatusOK, "Authorization", "Bearer "+actToken, httpapi.ActorHeader, "user:carol")
}
