package httpapi

import (
	"net/http"

	"github.com/spicegate/spicegate/client"
)

// freshness is how a read request says what freshness it needs. With
// neither field, reads are at least as fresh as this service's own newest
// write (read-your-writes through Spicegate).
type freshness struct {
	// Consistency is minimize_latency, at_least_as_fresh, fully_consistent
	// or at_exact_snapshot (the last two with revision where needed).
	Consistency string `json:"consistency,omitempty"`
	// Revision alone means at_least_as_fresh.
	Revision string `json:"revision,omitempty"`
}

func (f freshness) options(r *http.Request) ([]client.CallOption, error) {
	if f.Revision == "" && f.Consistency == "" {
		if h := r.Header.Get(RevisionHeader); h != "" {
			f.Revision = h
		}
	}
	rev := client.Revision(f.Revision)
	var c client.Consistency
	switch f.Consistency {
	case "":
		if rev == "" {
			return nil, nil
		}
		c = client.AtLeastAsFresh(rev)
	case "minimize_latency":
		c = client.MinimizeLatency()
	case "fully_consistent":
		c = client.FullyConsistent()
	case "at_least_as_fresh", "at_exact_snapshot":
		if rev == "" {
			return nil, badRequest("revision", "consistency %s needs a revision", f.Consistency)
		}
		c = client.AtLeastAsFresh(rev)
		if f.Consistency == "at_exact_snapshot" {
			c = client.AtExactSnapshot(rev)
		}
	default:
		return nil, badRequest("consistency", "consistency must be minimize_latency, at_least_as_fresh, fully_consistent or at_exact_snapshot")
	}
	return []client.CallOption{client.WithConsistency(c)}, nil
}

func parseSubject(field, s string) (client.Subject, error) {
	if s == "" {
		return client.Subject{}, badRequest(field, "%s is required, e.g. \"user:alice\"", field)
	}
	sub, err := client.ParseSubject(s)
	if err != nil {
		return sub, badRequest(field, "%s: %v", field, err)
	}
	return sub, nil
}

func parseObject(field, s string) (client.Object, error) {
	if s == "" {
		return client.Object{}, badRequest(field, "%s is required, e.g. \"dataset:reviews\"", field)
	}
	obj, err := client.ParseObject(s)
	if err != nil {
		return obj, badRequest(field, "%s: %v", field, err)
	}
	return obj, nil
}

func required(field, v string) error {
	if v == "" {
		return badRequest(field, "%s is required", field)
	}
	return nil
}

type checkItem struct {
	Subject    string `json:"subject"`
	Permission string `json:"permission"`
	Resource   string `json:"resource"`
}

func (it checkItem) parse(prefix string) (client.CheckItem, error) {
	sub, err := parseSubject(prefix+"subject", it.Subject)
	if err != nil {
		return client.CheckItem{}, err
	}
	if err := required(prefix+"permission", it.Permission); err != nil {
		return client.CheckItem{}, err
	}
	res, err := parseObject(prefix+"resource", it.Resource)
	if err != nil {
		return client.CheckItem{}, err
	}
	return client.CheckItem{Subject: sub, Permission: it.Permission, Resource: res}, nil
}

type decisionJSON struct {
	Allowed        bool   `json:"allowed"`
	Permissionship string `json:"permissionship"`
	Revision       string `json:"revision,omitempty"`
	Error          *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func (s *Server) decided(permission string, d client.Decision) decisionJSON {
	s.metrics.decisions.WithLabelValues(permission, d.Permissionship.String()).Inc()
	return decisionJSON{Allowed: d.Allowed(), Permissionship: d.Permissionship.String(), Revision: string(d.Revision)}
}

const (
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// page is the paging part of a lookup request.
type page struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	freshness
}

// parse returns the page size and the read options.
func (p page) parse(r *http.Request) (uint32, []client.CallOption, error) {
	if p.Limit < 0 || p.Limit > maxPageLimit {
		return 0, nil, badRequest("limit", "limit must be between 1 and %d", maxPageLimit)
	}
	limit := uint32(defaultPageLimit)
	if p.Limit > 0 {
		limit = uint32(p.Limit) //nolint:gosec // bounded above
	}
	opts, err := p.options(r)
	return limit, opts, err
}

func (s *Server) registerChecks() {
	c := s.cfg.Client

	s.handle(http.MethodPost, "/v1/check", ScopeCheck, func(r *http.Request) (int, any, client.Revision, error) {
		var req struct {
			checkItem
			freshness
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		item, err := req.parse("")
		if err != nil {
			return 0, nil, "", err
		}
		opts, err := req.options(r)
		if err != nil {
			return 0, nil, "", err
		}
		d, err := c.Check(r.Context(), item.Subject, item.Permission, item.Resource, opts...)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusOK, s.decided(item.Permission, d), d.Revision, nil
	})

	s.handle(http.MethodPost, "/v1/check/bulk", ScopeCheck, func(r *http.Request) (int, any, client.Revision, error) {
		var req struct {
			Items []checkItem `json:"items"`
			freshness
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		if len(req.Items) == 0 || len(req.Items) > 10_000 {
			return 0, nil, "", badRequest("items", "items must hold 1 to 10000 checks")
		}
		items := make([]client.CheckItem, len(req.Items))
		for i, it := range req.Items {
			var err error
			if items[i], err = it.parse("items[" + itoa(i) + "]."); err != nil {
				return 0, nil, "", err
			}
		}
		opts, err := req.options(r)
		if err != nil {
			return 0, nil, "", err
		}
		results, err := c.CheckMany(r.Context(), items, opts...)
		if err != nil {
			return 0, nil, "", err
		}
		out := make([]decisionJSON, len(results))
		var rev client.Revision
		for i, res := range results {
			if res.Err != nil {
				e := toAPIError(res.Err)
				out[i] = decisionJSON{Permissionship: client.Denied.String()}
				out[i].Error = &struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				}{e.Code, e.Message}
				continue
			}
			out[i] = s.decided(items[i].Permission, res.Decision)
			out[i].Revision = ""
			rev = res.Revision
		}
		return http.StatusOK, map[string]any{"results": out, "revision": rev}, rev, nil
	})

	s.handle(http.MethodPost, "/v1/permissions", ScopeCheck, func(r *http.Request) (int, any, client.Revision, error) {
		var req struct {
			Subject  string `json:"subject"`
			Resource string `json:"resource"`
			freshness
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		sub, err := parseSubject("subject", req.Subject)
		if err != nil {
			return 0, nil, "", err
		}
		res, err := parseObject("resource", req.Resource)
		if err != nil {
			return 0, nil, "", err
		}
		opts, err := req.options(r)
		if err != nil {
			return 0, nil, "", err
		}
		decisions, err := c.Permissions(r.Context(), sub, res, opts...)
		if err != nil {
			return 0, nil, "", err
		}
		perms := make(map[string]bool, len(decisions))
		var rev client.Revision
		for p, d := range decisions {
			perms[p] = d.Allowed()
			rev = d.Revision
		}
		return http.StatusOK, map[string]any{"permissions": perms, "revision": rev}, rev, nil
	})

	s.handle(http.MethodPost, "/v1/lookup/resources", ScopeCheck, func(r *http.Request) (int, any, client.Revision, error) {
		var req struct {
			Subject      string `json:"subject"`
			Permission   string `json:"permission"`
			ResourceType string `json:"resource_type"`
			page
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		sub, err := parseSubject("subject", req.Subject)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("permission", req.Permission); err != nil {
			return 0, nil, "", err
		}
		if err := required("resource_type", req.ResourceType); err != nil {
			return 0, nil, "", err
		}
		limit, opts, err := req.page.parse(r)
		if err != nil {
			return 0, nil, "", err
		}
		page, next, err := c.LookupResourcesPage(r.Context(), sub, req.Permission, req.ResourceType, req.Cursor, limit, opts...)
		if err != nil {
			return 0, nil, "", err
		}
		ids := make([]string, len(page))
		for i, o := range page {
			ids[i] = o.String()
		}
		return http.StatusOK, map[string]any{"resources": ids, "cursor": next}, "", nil
	})

	s.handle(http.MethodPost, "/v1/lookup/subjects", ScopeCheck, func(r *http.Request) (int, any, client.Revision, error) {
		var req struct {
			Resource    string `json:"resource"`
			Permission  string `json:"permission"`
			SubjectType string `json:"subject_type"`
			page
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		res, err := parseObject("resource", req.Resource)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("permission", req.Permission); err != nil {
			return 0, nil, "", err
		}
		if err := required("subject_type", req.SubjectType); err != nil {
			return 0, nil, "", err
		}
		limit, opts, err := req.page.parse(r)
		if err != nil {
			return 0, nil, "", err
		}
		page, next, err := c.LookupSubjectsPage(r.Context(), res, req.Permission, req.SubjectType, req.Cursor, limit, opts...)
		if err != nil {
			return 0, nil, "", err
		}
		subs := make([]string, len(page))
		for i, sub := range page {
			subs[i] = sub.String()
		}
		return http.StatusOK, map[string]any{"subjects": subs, "cursor": next}, "", nil
	})
}
