package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
// place among the requests in flight until the connection closes.
func stall(t *testing.T, url, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: spicegate\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", path, token)
	require.NoError(t, err)
	return conn
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
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/v1/audit", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	a.fails("GET", "/v1/audit", "", http.StatusServiceUnavailable, "overloaded", "")
	a.ok("POST", "/v1/organizations", `{"id":"acme","first_user":"alice"}`, http.StatusCreated) // other requests are not affected
}
