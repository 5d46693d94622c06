package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spicegate/spicegate/client"
)

// Target sends requests to a Spicegate deployment. Do returns nil on
// success, or an error whose Code names the failure for the report.
type Target interface {
	Do(ctx context.Context, r Request) error
}

// Failure is a request that failed, with a short code for the report
// ("http_503", "unavailable", "deadline_exceeded", ...).
type Failure struct {
	Code string
	Err  error
}

func (f *Failure) Error() string { return f.Code + ": " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// codeOf names an error for the report.
func codeOf(err error) string {
	var f *Failure
	switch {
	case errors.As(err, &f):
		return f.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	for _, k := range []struct {
		err  error
		code string
	}{
		{client.ErrInvalidArgument, "invalid_argument"}, {client.ErrNotFound, "not_found"},
		{client.ErrPermissionDenied, "permission_denied"}, {client.ErrAlreadyExists, "already_exists"},
		{client.ErrConflict, "conflict"}, {client.ErrUnavailable, "unavailable"},
		{client.ErrUnauthenticated, "unauthenticated"}, {client.ErrInternal, "internal"},
	} {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	return "other"
}

// CheckLoopback refuses a target that is not on this machine unless
// allowRemote: a load test is an attack on whatever it points at.
func CheckLoopback(hostport string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("target %q: %w", hostport, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not a loopback address: load tests run against this machine only unless --allow-remote is given", hostport)
}

// HTTPTarget sends requests to Spicegate's HTTP API.
type HTTPTarget struct {
	base   string
	token  string
	client *http.Client
	// Consistency is the "consistency" of reads ("" for the service's default).
	Consistency string
}

// NewHTTPTarget returns a target for the HTTP API at base (e.g.
// "http://127.0.0.1:8080"), authenticating with token (an `act` scoped
// one, or admin). Its connection pool keeps up to conns idle connections.
func NewHTTPTarget(base, token string, conns int, allowRemote bool) (*HTTPTarget, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--http %q: want http://host:port", base)
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if err := CheckLoopback(hostport, allowRemote); err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = conns
	transport.MaxIdleConnsPerHost = conns
	return &HTTPTarget{base: strings.TrimSuffix(base, "/"), token: token, client: &http.Client{Transport: transport}}, nil
}

// CloseIdleConnections closes the connections the target keeps open
// between requests.
func (t *HTTPTarget) CloseIdleConnections() { t.client.CloseIdleConnections() }

// Do sends one request and reads its whole answer.
func (t *HTTPTarget) Do(ctx context.Context, r Request) error {
	type obj = map[string]any
	read := func(body obj) obj {
		if t.Consistency != "" {
			body["consistency"] = t.Consistency
		}
		return body
	}
	var method, path string
	var body obj
	switch r.Op {
	case OpCheck:
		method, path, body = http.MethodPost, "/v1/check", read(obj{"subject": r.Subject, "permission": r.Permission, "resource": r.Resource})
	case OpBulkCheck:
		items := make([]obj, len(r.Resources))
		for i, res := range r.Resources {
			items[i] = obj{"subject": r.Subject, "permission": r.Permission, "resource": res}
		}
		method, path, body = http.MethodPost, "/v1/check/bulk", read(obj{"items": items})
	case OpPermissions:
		method, path, body = http.MethodPost, "/v1/permissions", read(obj{"subject": r.Subject, "resource": r.Resource})
	case OpLookup:
		method, path, body = http.MethodPost, "/v1/lookup/resources",
			read(obj{"subject": r.Subject, "permission": r.Permission, "resource_type": r.Resource, "limit": LookupLimit})
	case OpAddMember:
		method, path, body = http.MethodPost, "/v1/organizations/"+r.Org+"/members", obj{"user": r.User, "role": "readonly"}
	case OpRemoveMember:
		method, path = http.MethodDelete, "/v1/organizations/"+r.Org+"/members/"+url.PathEscape(r.User)
	case OpCreateToken:
		method, path, body = http.MethodPost, "/v1/organizations/"+r.Org+"/api-tokens", obj{}
	case OpDeleteToken:
		method, path = http.MethodDelete, "/v1/api-tokens/"+r.Token
	case OpCreateInvite:
		method, path, body = http.MethodPost, "/v1/organizations/"+r.Org+"/invites", obj{"role": "readonly", "ttl_seconds": 3600}
	default:
		return fmt.Errorf("unknown operation %q", r.Op)
	}
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, payload)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Actor != "" {
		req.Header.Set("Spicegate-Actor", r.Actor)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Failure{Code: "connection", Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return &Failure{Code: "connection", Err: err}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return &Failure{Code: "http_" + strconv.Itoa(resp.StatusCode) + "_" + e.Error.Code, Err: fmt.Errorf("%s %s: %s", method, path, bytes.TrimSpace(data))}
	}
	if r.done != nil {
		var created struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(data, &created)
		r.done(created.ID)
	}
	return nil
}

// GRPCTarget sends requests through the Go facade over SpiceDB's gRPC API,
// as a Go service would.
type GRPCTarget struct {
	c    *client.Client
	opts []client.CallOption
}

// NewGRPCTarget returns a target over c. Reads use consistency
// ("minimize_latency", "fully_consistent", or "" for the facade's default).
func NewGRPCTarget(c *client.Client, consistency string) (*GRPCTarget, error) {
	t := &GRPCTarget{c: c}
	switch consistency {
	case "":
	case "minimize_latency":
		t.opts = append(t.opts, client.WithConsistency(client.MinimizeLatency()))
	case "fully_consistent":
		t.opts = append(t.opts, client.WithConsistency(client.FullyConsistent()))
	default:
		return nil, fmt.Errorf("--consistency %q: want minimize_latency or fully_consistent", consistency)
	}
	return t, nil
}

// Do sends one request.
func (t *GRPCTarget) Do(ctx context.Context, r Request) error {
	switch r.Op {
	case OpCheck:
		s, res, err := parsePair(r.Subject, r.Resource)
		if err != nil {
			return err
		}
		_, err = t.c.Check(ctx, s, r.Permission, res, t.opts...)
		return err
	case OpBulkCheck:
		s, err := client.ParseSubject(r.Subject)
		if err != nil {
			return err
		}
		items := make([]client.CheckItem, len(r.Resources))
		for i, res := range r.Resources {
			o, err := client.ParseObject(res)
			if err != nil {
				return err
			}
			items[i] = client.CheckItem{Subject: s, Permission: r.Permission, Resource: o}
		}
		results, err := t.c.CheckMany(ctx, items, t.opts...)
		if err != nil {
			return err
		}
		for _, res := range results {
			if res.Err != nil {
				return res.Err
			}
		}
		return nil
	case OpPermissions:
		s, res, err := parsePair(r.Subject, r.Resource)
		if err != nil {
			return err
		}
		_, err = t.c.Permissions(ctx, s, res, t.opts...)
		return err
	case OpLookup:
		s, err := client.ParseSubject(r.Subject)
		if err != nil {
			return err
		}
		_, _, err = t.c.LookupResourcesPage(ctx, s, r.Permission, r.Resource, "", LookupLimit, t.opts...)
		return err
	}
	actor, err := client.ParseSubject(r.Actor)
	if err != nil {
		return err
	}
	a := t.c.As(actor)
	switch r.Op {
	case OpAddMember:
		_, err = a.AddMember(ctx, r.Org, r.User, client.RoleReadonly)
	case OpRemoveMember:
		_, err = a.RemoveMember(ctx, r.Org, r.User)
	case OpCreateToken:
		var id string
		if id, _, err = a.CreateAPIToken(ctx, r.Org, ""); err == nil {
			r.done(id)
			return nil
		}
	case OpDeleteToken:
		_, err = a.DeleteAPIToken(ctx, r.Token)
	case OpCreateInvite:
		_, err = a.CreateInvite(ctx, r.Org, client.RoleReadonly, time.Hour)
	default:
		return fmt.Errorf("unknown operation %q", r.Op)
	}
	if err == nil && r.done != nil {
		r.done("")
	}
	return err
}

func parsePair(subject, resource string) (client.Subject, client.Object, error) {
	s, err := client.ParseSubject(subject)
	if err != nil {
		return client.Subject{}, client.Object{}, err
	}
	o, err := client.ParseObject(resource)
	return s, o, err
}
