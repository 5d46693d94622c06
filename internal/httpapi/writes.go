package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/spicegate/spicegate/client"
)

func itoa(i int) string { return strconv.Itoa(i) }

// pathID reads a path segment and validates it as an ID.
func pathID(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if err := client.ValidateID(name, id); err != nil {
		return "", badRequest(name, "%s %q is not a valid ID", name, id)
	}
	return id, nil
}

type revisionJSON struct {
	Revision client.Revision `json:"revision"`
}

// written turns a write's result into a response with its revision.
func written(status int) func(client.Revision, error) (int, any, client.Revision, error) {
	return func(rev client.Revision, err error) (int, any, client.Revision, error) {
		if err != nil {
			return 0, nil, "", err
		}
		return status, revisionJSON{rev}, rev, nil
	}
}

// handleWrite registers a write route. Every write goes through the
// client's Actor, which holds every rule of who may write what: the
// handler only decodes the request and picks the actor (see Server.actor).
func (s *Server) handleWrite(method, path string, h func(r *http.Request, a *client.Actor) (int, any, client.Revision, error)) {
	s.handle(method, path, ScopeAct, func(r *http.Request) (int, any, client.Revision, error) {
		a, err := s.actor(r)
		if err != nil {
			return 0, nil, "", err
		}
		return h(r, a)
	})
}

// deletion registers DELETE path/{id} for one kind of object.
func (s *Server) deletion(path string, del func(*client.Actor) func(ctx context.Context, id string) (client.Revision, error)) {
	s.handleWrite(http.MethodDelete, path, func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		id, err := pathID(r, "id")
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(del(a)(r.Context(), id))
	})
}

// owned is the body that creates an artifact for a person: the owner
// defaults to the actor (and may only be the actor, unless the system writes).
type owned struct {
	ID    string `json:"id"`
	Owner string `json:"owner,omitempty"`
}

// creation registers POST /v1/organizations/{org}/KIND for an artifact with an owner.
func (s *Server) creation(path string, create func(*client.Actor) func(ctx context.Context, org, id, owner string) (client.Revision, error)) {
	s.handleWrite(http.MethodPost, path, func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req owned
		org, err := orgAndBody(r, &req)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("id", req.ID); err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(create(a)(r.Context(), org, req.ID, req.Owner))
	})
}

func (s *Server) registerWrites() {
	c := s.cfg.Client

	// Organizations and members.
	s.handleWrite(http.MethodPost, "/v1/organizations", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			ID        string `json:"id"`
			FirstUser string `json:"first_user,omitempty"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		if err := required("id", req.ID); err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(a.CreateOrganization(r.Context(), req.ID, req.FirstUser))
	})
	s.handleWrite(http.MethodDelete, "/v1/organizations/{org}", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(a.DeleteOrganization(r.Context(), org))
	})
	s.handle(http.MethodGet, "/v1/organizations/{org}/members", ScopeCheck, func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		f := freshness{Consistency: r.URL.Query().Get("consistency"), Revision: r.URL.Query().Get("revision")}
		opts, err := f.options(r)
		if err != nil {
			return 0, nil, "", err
		}
		// A member list read for someone (the header) needs view_members.
		a, err := s.optionalActor(r)
		if err != nil {
			return 0, nil, "", err
		}
		var members []client.Member
		if a != nil {
			members, err = a.ListMembers(r.Context(), org, opts...)
		} else {
			members, err = c.ListMembers(r.Context(), org, opts...)
		}
		if err != nil {
			return 0, nil, "", err
		}
		type memberJSON struct {
			User string `json:"user"`
			Role string `json:"role"`
		}
		out := make([]memberJSON, len(members))
		for i, m := range members {
			out[i] = memberJSON{m.UserID, string(m.Role)}
		}
		return http.StatusOK, map[string]any{"members": out}, "", nil
	})
	s.handleWrite(http.MethodPost, "/v1/organizations/{org}/members", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			User string `json:"user"`
			Role string `json:"role"`
		}
		org, err := orgAndBody(r, &req)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("user", req.User); err != nil {
			return 0, nil, "", err
		}
		role, err := parseRole(req.Role)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(a.AddMember(r.Context(), org, req.User, role))
	})
	s.handleWrite(http.MethodPut, "/v1/organizations/{org}/members/{user}", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			Role string `json:"role"`
		}
		org, err := orgAndBody(r, &req)
		if err != nil {
			return 0, nil, "", err
		}
		user, err := pathID(r, "user")
		if err != nil {
			return 0, nil, "", err
		}
		role, err := parseRole(req.Role)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(a.ChangeRole(r.Context(), org, user, role))
	})
	s.handleWrite(http.MethodDelete, "/v1/organizations/{org}/members/{user}", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		user, err := pathID(r, "user")
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(a.RemoveMember(r.Context(), org, user))
	})

	// Invites.
	s.handleWrite(http.MethodPost, "/v1/organizations/{org}/invites", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			Role       string `json:"role"`
			TTLSeconds int64  `json:"ttl_seconds"`
		}
		org, err := orgAndBody(r, &req)
		if err != nil {
			return 0, nil, "", err
		}
		role, err := parseRole(req.Role)
		if err != nil {
			return 0, nil, "", err
		}
		if req.TTLSeconds <= 0 || req.TTLSeconds > int64(client.MaxInviteTTL/time.Second) {
			return 0, nil, "", badRequest("ttl_seconds", "ttl_seconds must be between 1 and %d", int64(client.MaxInviteTTL/time.Second))
		}
		inv, err := a.CreateInvite(r.Context(), org, role, time.Duration(req.TTLSeconds)*time.Second)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusCreated, map[string]any{
			"id": inv.ID, "organization": inv.Org, "role": inv.Role, "inviter": inv.Inviter,
			"expires_at": inv.ExpiresAt.Format(time.RFC3339), "revision": inv.Revision,
		}, inv.Revision, nil
	})
	s.handleWrite(http.MethodPost, "/v1/invites/{id}/accept", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		id, err := pathID(r, "id")
		if err != nil {
			return 0, nil, "", err
		}
		var req struct {
			User string `json:"user,omitempty"`
		}
		if err := decodeOptional(r, &req); err != nil {
			return 0, nil, "", err
		}
		m, rev, err := a.AcceptInvite(r.Context(), id, req.User)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusOK, map[string]any{"user": m.UserID, "role": m.Role, "revision": rev}, rev, nil
	})
	s.deletion("/v1/invites/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) { return a.RevokeInvite })

	// Artifacts: created in an organization (for the actor), deleted by ID.
	s.creation("/v1/organizations/{org}/datasets", func(a *client.Actor) func(context.Context, string, string, string) (client.Revision, error) {
		return a.RegisterDataset
	})
	s.creation("/v1/organizations/{org}/adapter-repositories", func(a *client.Actor) func(context.Context, string, string, string) (client.Revision, error) {
		return a.RegisterAdapterRepository
	})
	s.handleWrite(http.MethodPost, "/v1/organizations/{org}/training-jobs", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			ID         string `json:"id"`
			Repository string `json:"repository,omitempty"`
			Creator    string `json:"creator,omitempty"`
		}
		org, err := orgAndBody(r, &req)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("id", req.ID); err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(a.RegisterTrainingJob(r.Context(), org, req.ID, req.Repository, req.Creator))
	})
	s.handleWrite(http.MethodPost, "/v1/organizations/{org}/deployments", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			ID string `json:"id"`
		}
		org, err := orgAndBody(r, &req)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("id", req.ID); err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(a.RegisterDeployment(r.Context(), org, req.ID))
	})
	s.handleWrite(http.MethodPost, "/v1/organizations/{org}/api-tokens", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		var req struct {
			Owner string `json:"owner,omitempty"`
		}
		if err := decodeOptional(r, &req); err != nil {
			return 0, nil, "", err
		}
		id, rev, err := a.CreateAPIToken(r.Context(), org, req.Owner)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusCreated, map[string]any{"id": id, "revision": rev}, rev, nil
	})
	s.handleWrite(http.MethodPost, "/v1/llms", func(r *http.Request, a *client.Actor) (int, any, client.Revision, error) {
		var req struct {
			ID           string `json:"id"`
			Shared       bool   `json:"shared,omitempty"`
			Organization string `json:"organization,omitempty"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		if err := required("id", req.ID); err != nil {
			return 0, nil, "", err
		}
		switch {
		case req.Shared && req.Organization == "":
			return written(http.StatusCreated)(a.RegisterSharedLLM(r.Context(), req.ID))
		case !req.Shared && req.Organization != "":
			if err := client.ValidateID("organization", req.Organization); err != nil {
				return 0, nil, "", err
			}
			return written(http.StatusCreated)(a.RegisterPrivateLLM(r.Context(), req.Organization, req.ID))
		default:
			return 0, nil, "", badRequest("organization", "an LLM is either shared (\"shared\": true) or private to an organization (\"organization\")")
		}
	})

	s.deletion("/v1/datasets/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) { return a.DeleteDataset })
	s.deletion("/v1/adapter-repositories/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) {
		return a.DeleteAdapterRepository
	})
	s.deletion("/v1/training-jobs/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) {
		return a.DeleteTrainingJob
	})
	s.deletion("/v1/deployments/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) {
		return a.DeleteDeployment
	})
	s.deletion("/v1/llms/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) { return a.DeleteLLM })
	s.deletion("/v1/api-tokens/{id}", func(a *client.Actor) func(context.Context, string) (client.Revision, error) { return a.DeleteAPIToken })
}

// orgAndBody reads the organization from the path and decodes the body.
func orgAndBody(r *http.Request, into any) (string, error) {
	org, err := pathID(r, "org")
	if err != nil {
		return "", err
	}
	return org, decode(r, into)
}

func parseRole(s string) (client.Role, error) {
	if s == "" {
		return "", badRequest("role", "role is required: user or readonly")
	}
	role, err := client.ParseRole(s)
	if err != nil || role == client.RoleSupport {
		return "", badRequest("role", "role must be user or readonly")
	}
	return role, nil
}
