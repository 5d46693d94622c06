//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

// driver is one way of using Spicegate: the Go client, or the HTTP API.
// The scenario runs unchanged through each. Writes return the revision;
// reads take the revision to be at least as fresh as. Methods fail the
// test on an unexpected error; want* methods return the error code.
type driver interface {
	createOrg(org, user string) string
	addMember(org, user, role string) string
	changeRole(actor, org, user, role string) (string, string)
	removeMember(actor, org, user string) (string, string)
	createInvite(actor, org, role string) (string, string)
	acceptInvite(id, user string) (string, string)
	registerDataset(org, id, owner string) string
	deleteDataset(id string) string
	registerAdapterRepository(org, id, owner string) string
	registerTrainingJob(org, id, repo, creator string) string
	registerDeployment(org, id string) string
	createToken(org, owner string) (id, rev string)
	deleteToken(actor, id string) (string, string)
	registerSharedLLM(id string) string
	registerPrivateLLM(org, id string) string
	check(subject, permission, resource, rev string) bool
	checkMany(items [][3]string, rev string) []bool
	lookupResources(subject, permission, typ, rev string) []string
	lookupSubjects(resource, permission, subjectType, rev string) []string
	deleteOrg(actor, org string) (string, string)
}

// goDriver writes through one SpiceDB endpoint and reads through another.
type goDriver struct {
	t             *testing.T
	write, reader *client.Client
}

func newGoDriver(t *testing.T, d *deployment) driver {
	t.Helper()
	connect := func(addr string) *client.Client {
		c, err := client.New(addr, client.WithInsecure(), client.WithPresharedKey(d.key))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	return &goDriver{t: t, write: connect(d.grpcAddr), reader: connect(d.readAddr)}
}

func (g *goDriver) ok(rev client.Revision, err error) string {
	g.t.Helper()
	require.NoError(g.t, err)
	require.NotEmpty(g.t, rev, "a write returns its revision")
	return string(rev)
}

// code turns an error into the HTTP API's error codes, so that both
// drivers are compared on the same terms.
func code(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, client.ErrPermissionDenied):
		return "permission_denied"
	case errors.Is(err, client.ErrNotFound):
		return "not_found"
	case errors.Is(err, client.ErrAlreadyExists):
		return "already_exists"
	case errors.Is(err, client.ErrConflict):
		return "conflict"
	case errors.Is(err, client.ErrInvalidArgument):
		return "invalid_argument"
	default:
		return "other: " + err.Error()
	}
}

func role(t *testing.T, s string) client.Role {
	r, err := client.ParseRole(s)
	require.NoError(t, err)
	return r
}

func subject(t *testing.T, s string) client.Subject {
	sub, err := client.ParseSubject(s)
	require.NoError(t, err)
	return sub
}

func object(t *testing.T, s string) client.Object {
	o, err := client.ParseObject(s)
	require.NoError(t, err)
	return o
}

func fresh(rev string) client.CallOption {
	return client.WithConsistency(client.AtLeastAsFresh(client.Revision(rev)))
}

func (g *goDriver) createOrg(org, user string) string {
	return g.ok(g.write.CreateOrganization(g.t.Context(), org, user))
}
func (g *goDriver) addMember(org, user, r string) string {
	return g.ok(g.write.AddMember(g.t.Context(), org, user, role(g.t, r)))
}
func (g *goDriver) changeRole(actor, org, user, r string) (string, string) {
	rev, err := g.write.As(subject(g.t, actor)).ChangeRole(g.t.Context(), org, user, role(g.t, r))
	return string(rev), code(err)
}
func (g *goDriver) removeMember(actor, org, user string) (string, string) {
	rev, err := g.write.As(subject(g.t, actor)).RemoveMember(g.t.Context(), org, user)
	return string(rev), code(err)
}
func (g *goDriver) createInvite(actor, org, r string) (string, string) {
	inv, err := g.write.As(subject(g.t, actor)).CreateInvite(g.t.Context(), org, role(g.t, r), time.Hour)
	return inv.ID, code(err)
}
func (g *goDriver) acceptInvite(id, user string) (string, string) {
	_, rev, err := g.write.AcceptInvite(g.t.Context(), id, user)
	return string(rev), code(err)
}
func (g *goDriver) registerDataset(org, id, owner string) string {
	return g.ok(g.write.RegisterDataset(g.t.Context(), org, id, owner))
}
func (g *goDriver) deleteDataset(id string) string {
	return g.ok(g.write.DeleteDataset(g.t.Context(), id))
}
func (g *goDriver) registerAdapterRepository(org, id, owner string) string {
	return g.ok(g.write.RegisterAdapterRepository(g.t.Context(), org, id, owner))
}
func (g *goDriver) registerTrainingJob(org, id, repo, creator string) string {
	return g.ok(g.write.RegisterTrainingJob(g.t.Context(), org, id, repo, creator))
}
func (g *goDriver) registerDeployment(org, id string) string {
	return g.ok(g.write.RegisterDeployment(g.t.Context(), org, id))
}
func (g *goDriver) createToken(org, owner string) (string, string) {
	id, rev, err := g.write.CreateAPIToken(g.t.Context(), org, owner)
	return id, g.ok(rev, err)
}
func (g *goDriver) deleteToken(actor, id string) (string, string) {
	rev, err := g.write.As(subject(g.t, actor)).DeleteAPIToken(g.t.Context(), id)
	return string(rev), code(err)
}
func (g *goDriver) registerSharedLLM(id string) string {
	return g.ok(g.write.RegisterSharedLLM(g.t.Context(), id))
}
func (g *goDriver) registerPrivateLLM(org, id string) string {
	return g.ok(g.write.RegisterPrivateLLM(g.t.Context(), org, id))
}
func (g *goDriver) check(s, p, r, rev string) bool {
	d, err := g.reader.Check(g.t.Context(), subject(g.t, s), p, object(g.t, r), fresh(rev))
	require.NoError(g.t, err)
	return d.Allowed()
}
func (g *goDriver) checkMany(items [][3]string, rev string) []bool {
	var in []client.CheckItem
	for _, it := range items {
		in = append(in, client.CheckItem{Subject: subject(g.t, it[0]), Permission: it[1], Resource: object(g.t, it[2])})
	}
	res, err := g.reader.CheckMany(g.t.Context(), in, fresh(rev))
	require.NoError(g.t, err)
	out := make([]bool, len(res))
	for i, r := range res {
		require.NoError(g.t, r.Err)
		out[i] = r.Allowed()
	}
	return out
}
func (g *goDriver) lookupResources(s, p, typ, rev string) []string {
	var out []string
	for o, err := range g.reader.LookupResources(g.t.Context(), subject(g.t, s), p, typ, fresh(rev)) {
		require.NoError(g.t, err)
		out = append(out, o.String())
	}
	return out
}
func (g *goDriver) lookupSubjects(r, p, st, rev string) []string {
	var out []string
	for s, err := range g.reader.LookupSubjects(g.t.Context(), object(g.t, r), p, st, fresh(rev)) {
		require.NoError(g.t, err)
		out = append(out, s.String())
	}
	return out
}
func (g *goDriver) deleteOrg(actor, org string) (string, string) {
	rev, err := g.write.As(subject(g.t, actor)).DeleteOrganization(g.t.Context(), org)
	return string(rev), code(err)
}

// httpDriver uses Spicegate's HTTP API.
type httpDriver struct {
	t     *testing.T
	base  string
	token string
}

func newHTTPDriver(t *testing.T, d *deployment) driver {
	return &httpDriver{t: t, base: "http://" + d.httpAddr, token: d.token}
}

// call sends a request and returns the decoded body and the error code.
func (h *httpDriver) call(method, path, actor string, body any) (map[string]any, string) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(h.t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.base+path, rd)
	require.NoError(h.t, err)
	req.Header.Set("Authorization", "Bearer "+h.token)
	if actor != "" {
		req.Header.Set("Spicegate-Actor", actor)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(h.t, json.NewDecoder(resp.Body).Decode(&out))
	if e, ok := out["error"].(map[string]any); ok {
		return out, fmt.Sprint(e["code"])
	}
	require.Less(h.t, resp.StatusCode, 300)
	if rev, ok := out["revision"]; ok {
		require.Equal(h.t, rev, resp.Header.Get("Spicegate-Revision"), "the revision is in the header too")
	}
	return out, ""
}

func (h *httpDriver) ok(method, path string, body any) map[string]any {
	h.t.Helper()
	out, c := h.call(method, path, "", body)
	require.Empty(h.t, c, "%s %s", method, path)
	return out
}

func (h *httpDriver) rev(out map[string]any) string {
	h.t.Helper()
	rev, _ := out["revision"].(string)
	require.NotEmpty(h.t, rev, "a write returns its revision")
	return rev
}

func (h *httpDriver) written(method, path, actor string, body any) (string, string) {
	out, c := h.call(method, path, actor, body)
	if c != "" {
		return "", c
	}
	return h.rev(out), ""
}

func (h *httpDriver) createOrg(org, user string) string {
	return h.rev(h.ok("POST", "/v1/organizations", map[string]string{"id": org, "first_user": user}))
}
func (h *httpDriver) addMember(org, user, r string) string {
	return h.rev(h.ok("POST", "/v1/organizations/"+org+"/members", map[string]string{"user": user, "role": r}))
}
func (h *httpDriver) changeRole(actor, org, user, r string) (string, string) {
	return h.written("PUT", "/v1/organizations/"+org+"/members/"+user, actor, map[string]string{"role": r})
}
func (h *httpDriver) removeMember(actor, org, user string) (string, string) {
	return h.written("DELETE", "/v1/organizations/"+org+"/members/"+user, actor, nil)
}
func (h *httpDriver) createInvite(actor, org, r string) (string, string) {
	out, c := h.call("POST", "/v1/organizations/"+org+"/invites", actor, map[string]any{"role": r, "ttl_seconds": 3600})
	id, _ := out["id"].(string)
	return id, c
}
func (h *httpDriver) acceptInvite(id, user string) (string, string) {
	return h.written("POST", "/v1/invites/"+id+"/accept", "", map[string]string{"user": user})
}
func (h *httpDriver) registerDataset(org, id, owner string) string {
	return h.rev(h.ok("POST", "/v1/organizations/"+org+"/datasets", map[string]string{"id": id, "owner": owner}))
}
func (h *httpDriver) deleteDataset(id string) string {
	return h.rev(h.ok("DELETE", "/v1/datasets/"+id, nil))
}
func (h *httpDriver) registerAdapterRepository(org, id, owner string) string {
	return h.rev(h.ok("POST", "/v1/organizations/"+org+"/adapter-repositories", map[string]string{"id": id, "owner": owner}))
}
func (h *httpDriver) registerTrainingJob(org, id, repo, creator string) string {
	return h.rev(h.ok("POST", "/v1/organizations/"+org+"/training-jobs", map[string]string{"id": id, "repository": repo, "creator": creator}))
}
func (h *httpDriver) registerDeployment(org, id string) string {
	return h.rev(h.ok("POST", "/v1/organizations/"+org+"/deployments", map[string]string{"id": id}))
}
func (h *httpDriver) createToken(org, owner string) (string, string) {
	out := h.ok("POST", "/v1/organizations/"+org+"/api-tokens", map[string]string{"owner": owner})
	return out["id"].(string), h.rev(out)
}
func (h *httpDriver) deleteToken(actor, id string) (string, string) {
	return h.written("DELETE", "/v1/api-tokens/"+id, actor, nil)
}
func (h *httpDriver) registerSharedLLM(id string) string {
	return h.rev(h.ok("POST", "/v1/llms", map[string]any{"id": id, "shared": true}))
}
func (h *httpDriver) registerPrivateLLM(org, id string) string {
	return h.rev(h.ok("POST", "/v1/llms", map[string]any{"id": id, "organization": org}))
}
func (h *httpDriver) check(s, p, r, rev string) bool {
	out := h.ok("POST", "/v1/check", map[string]string{"subject": s, "permission": p, "resource": r, "revision": rev})
	return out["allowed"].(bool)
}
func (h *httpDriver) checkMany(items [][3]string, rev string) []bool {
	var in []map[string]string
	for _, it := range items {
		in = append(in, map[string]string{"subject": it[0], "permission": it[1], "resource": it[2]})
	}
	out := h.ok("POST", "/v1/check/bulk", map[string]any{"items": in, "revision": rev})
	var res []bool
	for _, r := range out["results"].([]any) {
		res = append(res, r.(map[string]any)["allowed"].(bool))
	}
	return res
}
func (h *httpDriver) page(path string, body map[string]any, field string) []string {
	var all []string
	for {
		out := h.ok("POST", path, body)
		for _, v := range out[field].([]any) {
			all = append(all, v.(string))
		}
		next, _ := out["cursor"].(string)
		if next == "" {
			return all
		}
		body["cursor"] = next
	}
}
func (h *httpDriver) lookupResources(s, p, typ, rev string) []string {
	return h.page("/v1/lookup/resources", map[string]any{"subject": s, "permission": p, "resource_type": typ, "revision": rev, "limit": 2}, "resources")
}
func (h *httpDriver) lookupSubjects(r, p, st, rev string) []string {
	return h.page("/v1/lookup/subjects", map[string]any{"resource": r, "permission": p, "subject_type": st, "revision": rev, "limit": 2}, "subjects")
}
func (h *httpDriver) deleteOrg(actor, org string) (string, string) {
	return h.written("DELETE", "/v1/organizations/"+org, actor, nil)
}
