package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/httpapi"
)

const deployCheck = `{"subject":"user:alice","permission":"deploy","resource":"organization:acme"}`

// blackHole accepts TCP connections and never answers: a hung SpiceDB.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// A SpiceDB that hangs: the request's deadline reaches it, and the API
// answers 504 instead of hanging with it.
func TestAHungSpiceDBAnswers504WithinTheDeadline(t *testing.T) {
	c, err := client.New(blackHole(t), client.WithInsecure(), client.WithPresharedKey("key"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	s := httpapi.New(httpapi.Config{Client: c, Tokens: tokens, RequestTimeout: 300 * time.Millisecond,
		Ready: func(context.Context) error { return nil }})
	h := httptest.NewServer(s.Handler())
	t.Cleanup(h.Close)
	a := &api{t: t, url: h.URL, client: c, api: s}
	a.fails("POST", "/v1/check", deployCheck, http.StatusGatewayTimeout, "deadline_exceeded", "")
	a.fails("POST", "/v1/organizations/acme/datasets", `{"id":"d","owner":"alice"}`, http.StatusGatewayTimeout, "deadline_exceeded", "",
		httpapi.ActorHeader, "user:alice")
}

// stall opens a request to path whose body never arrives: it holds its
// place among the requests in flight until the connection closes. It
// returns once the server is seen to wait for the body (no answer comes).
func stall(t *testing.T, url, path string) net.Conn {
	t.Helper()
	for range 20 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: spicegate\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", path, token)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		_, err = conn.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			require.NoError(t, conn.SetReadDeadline(time.Time{}))
			return conn // no answer: it waits for its body, in its place
		}
		_ = conn.Close() // answered at once (refused while another request held the place): again
	}
	t.Fatal("no request could be made to wait for its body")
	return nil
}

// Beyond MaxInFlight requests the API answers 503 with Retry-After at
// once, and serves again as soon as a place is free.
func TestOverloadIsRefusedAtOnceWithRetryAfter(t *testing.T) {
	a, _ := serveAPI(t, httpapi.Config{MaxInFlight: 1})
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated)
	conn := stall(t, a.url, "/v1/check")
	var r response
	require.Eventually(t, func() bool {
		r = a.do("POST", "/v1/check", deployCheck)
		return r.status == http.StatusServiceUnavailable
	}, 10*time.Second, 10*time.Millisecond, "the stalled request holds the only place")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, "overloaded", r.body["error"].(map[string]any)["code"])
	a.ok("GET", "/healthz", "", http.StatusOK) // health stays outside the cap

	require.NoError(t, conn.Close())
	require.Eventually(t, func() bool {
		return a.do("POST", "/v1/check", deployCheck).status == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "the place is free again")
}

// Audit streams have a cap of their own.
func TestAuditStreamsAreCapped(t *testing.T) {
	a, _ := serveAPI(t, httpapi.Config{MaxStreams: 1})
	a.openAudit("")
	a.fails("GET", "/v1/audit", "", http.StatusServiceUnavailable, "overloaded", "")
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated) // other requests are not affected
}

// A route called with another method answers 405 with Allow; a path no
// route has answers 404.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	a := newAPI(t)
	r := a.do("DELETE", "/v1/check", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status, r.raw)
	assert.Equal(t, "POST", r.header.Get("Allow"))
	assert.Equal(t, "method_not_allowed", r.body["error"].(map[string]any)["code"])
	r = a.do("POST", "/v1/organizations/acme/members/rita", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status, r.raw)
	assert.Equal(t, "DELETE, PUT", r.header.Get("Allow"))
	a.fails("GET", "/v1/no-such-thing", "", http.StatusNotFound, "not_found", "")
}

// unknownPermissions is a gRPC PermissionsService that fails every check
// with Unknown, as SpiceDB does when its datastore is down (this test is
// about the mapping of that answer, not about SpiceDB).
type unknownPermissions struct {
	v1.UnimplementedPermissionsServiceServer
}

func (unknownPermissions) CheckPermission(context.Context, *v1.CheckPermissionRequest) (*v1.CheckPermissionResponse, error) {
	return nil, status.Error(codes.Unknown, "failed to connect to `host=127.0.0.1 user=spicegate database=spicegate`: dial error")
}

// An Unknown from SpiceDB is 503 while the store is not ready (retry
// later), 500 while it is (a bug); neither leaks the cause.
func TestUnknownFailuresAre503WhileTheStoreIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	v1.RegisterPermissionsServiceServer(g, unknownPermissions{})
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	c, err := client.New(l.Addr().String(), client.WithInsecure(), client.WithPresharedKey("key"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	var down atomic.Bool
	s := httpapi.New(httpapi.Config{Client: c, Tokens: tokens, Ready: func(context.Context) error {
		if down.Load() {
			return errors.New("datastore unreachable")
		}
		return nil
	}})
	h := httptest.NewServer(s.Handler())
	t.Cleanup(h.Close)
	a := &api{t: t, url: h.URL, client: c, api: s}

	down.Store(true)
	a.fails("POST", "/v1/check", deployCheck, http.StatusServiceUnavailable, "unavailable", "")
	down.Store(false)
	// Ready or not, SpiceDB's words here ("failed to connect") are a lost
	// database: 503 (TestALostDatastoreConnectionIsUnavailable: a bug stays 500).
	a.fails("POST", "/v1/check", deployCheck, http.StatusServiceUnavailable, "unavailable", "")
	r := a.do("POST", "/v1/check", deployCheck)
	assert.NotContains(t, r.raw, "host=")
}

// A permission the schema does not define: 400 naming the field, with
// SpiceDB's description of what is wrong.
func TestAMisspelledPermissionNamesTheField(t *testing.T) {
	a := newAPI(t)
	r := a.do("POST", "/v1/check", `{"subject":"user:alice","permission":"depoy","resource":"organization:acme"}`)
	require.Equal(t, http.StatusBadRequest, r.status, r.raw)
	e := r.body["error"].(map[string]any)
	assert.Equal(t, "invalid_argument", e["code"])
	assert.Equal(t, "permission", e["field"])
	assert.Contains(t, e["message"], "depoy")
	assert.NotContains(t, e["message"], "rpc error")
}

// Go's profiles are served to admin tokens only.
func TestProfilesNeedTheAdminScope(t *testing.T) {
	a := newAPI(t)
	a.fails("GET", "/debug/pprof/", "", http.StatusUnauthorized, "unauthenticated", "", "Authorization", "")
	a.fails("GET", "/debug/pprof/heap", "", http.StatusForbidden, "insufficient_scope", "", "Authorization", "Bearer "+checkToken)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+"/debug/pprof/goroutine?debug=1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "goroutine profile:")
}

// An audit stream whose caller stops reading is dropped once a write
// cannot finish within StreamWriteTimeout, and its place is free again: a
// stalled reader cannot hold the streams forever.
func TestAStreamThatIsNotReadIsDropped(t *testing.T) {
	a, srv := serveAPI(t, httpapi.Config{MaxStreams: 1, StreamWriteTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = fmt.Fprintf(conn, "GET /v1/audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token)
	require.NoError(t, err)
	// The headers go out once the stream holds its place: read them (and
	// nothing after), so that the request below cannot take the place
	// first on a busy machine (it would then stream, and never answer).
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool {
		return a.do("GET", "/v1/audit", "").status == http.StatusServiceUnavailable
	}, 5*time.Second, 20*time.Millisecond, "the unread stream holds the only place")

	// Changes the stream must carry, far more than the socket buffers hold;
	// the reader never reads them.
	perms := v1.NewPermissionsServiceClient(srv.Conn(t))
	for batch := range 30 {
		var updates []*v1.RelationshipUpdate
		for i := range 1000 {
			updates = append(updates, &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: &v1.Relationship{
				Resource: &v1.ObjectReference{ObjectType: client.TypeDataset, ObjectId: fmt.Sprintf("stream-filler-%d-%d", batch, i)},
				Relation: client.RelOrganization,
				Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: client.TypeOrganization, ObjectId: "acme"}}}})
		}
		_, err := perms.WriteRelationships(t.Context(), &v1.WriteRelationshipsRequest{Updates: updates})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/v1/audit", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "the stalled stream was dropped and its place freed")
}
