package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/spicegate/spicegate/client"
)

func itoa(i int) string { return strconv.Itoa(i) }

// actorOf reads ActorHeader. Team and administrative routes require it.
func actorOf(r *http.Request, required bool) (*client.Subject, error) {
	h := r.Header.Get(ActorHeader)
	if h == "" {
		if required {
			return nil, badRequest(ActorHeader, "this action is performed by a user: send the %s header, e.g. \"user:alice\"", ActorHeader)
		}
		return nil, nil
	}
	sub, err := client.ParseSubject(h)
	if err != nil || sub.Relation != "" || (sub.Type != client.TypeUser && sub.Type != client.TypeAPIToken) {
		return nil, badRequest(ActorHeader, "%s must be user:ID or api_token:ID", ActorHeader)
	}
	return &sub, nil
}

// guard enforces an optional actor's permission on resource.
func (s *Server) guard(r *http.Request, permission string, resource client.Object) error {
	actor, err := actorOf(r, false)
	if err != nil || actor == nil {
		return err
	}
	return s.cfg.Client.As(*actor).Require(r.Context(), permission, resource)
}

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

func (s *Server) registerWrites() {
	c := s.cfg.Client

	// Organizations and members.
	s.handle(http.MethodPost, "/v1/organizations", func(r *http.Request) (int, any, client.Revision, error) {
		var req struct {
			ID        string `json:"id"`
			FirstUser string `json:"first_user"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		if err := required("id", req.ID); err != nil {
			return 0, nil, "", err
		}
		if err := required("first_user", req.FirstUser); err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(c.CreateOrganization(r.Context(), req.ID, req.FirstUser))
	})
	s.handle(http.MethodDelete, "/v1/organizations/{org}", func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		actor, err := actorOf(r, true)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(c.As(*actor).DeleteOrganization(r.Context(), org))
	})
	s.handle(http.MethodGet, "/v1/organizations/{org}/members", func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		f := freshness{Consistency: r.URL.Query().Get("consistency"), Revision: r.URL.Query().Get("revision")}
		opts, err := f.options(r)
		if err != nil {
			return 0, nil, "", err
		}
		members, err := c.ListMembers(r.Context(), org, opts...)
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
	s.handle(http.MethodPost, "/v1/organizations/{org}/members", func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		var req struct {
			User string `json:"user"`
			Role string `json:"role"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		role, err := parseRole(req.Role)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("user", req.User); err != nil {
			return 0, nil, "", err
		}
		if err := s.guard(r, client.PermInviteMember, client.Organization(org)); err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(c.AddMember(r.Context(), org, req.User, role))
	})
	s.handle(http.MethodPut, "/v1/organizations/{org}/members/{user}", func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		user, err := pathID(r, "user")
		if err != nil {
			return 0, nil, "", err
		}
		var req struct {
			Role string `json:"role"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		role, err := parseRole(req.Role)
		if err != nil {
			return 0, nil, "", err
		}
		actor, err := actorOf(r, true)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(c.As(*actor).ChangeRole(r.Context(), org, user, role))
	})
	s.handle(http.MethodDelete, "/v1/organizations/{org}/members/{user}", func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		user, err := pathID(r, "user")
		if err != nil {
			return 0, nil, "", err
		}
		actor, err := actorOf(r, true)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(c.As(*actor).RemoveMember(r.Context(), org, user))
	})

	// Invites.
	s.handle(http.MethodPost, "/v1/organizations/{org}/invites", func(r *http.Request) (int, any, client.Revision, error) {
		org, err := pathID(r, "org")
		if err != nil {
			return 0, nil, "", err
		}
		var req struct {
			Role       string `json:"role"`
			TTLSeconds int64  `json:"ttl_seconds"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		role, err := parseRole(req.Role)
		if err != nil {
			return 0, nil, "", err
		}
		if req.TTLSeconds <= 0 || req.TTLSeconds > int64(client.MaxInviteTTL/time.Second) {
			return 0, nil, "", badRequest("ttl_seconds", "ttl_seconds must be between 1 and %d", int64(client.MaxInviteTTL/time.Second))
		}
		actor, err := actorOf(r, true)
		if err != nil {
			return 0, nil, "", err
		}
		inv, err := c.As(*actor).CreateInvite(r.Context(), org, role, time.Duration(req.TTLSeconds)*time.Second)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusCreated, map[string]any{
			"id": inv.ID, "organization": inv.Org, "role": inv.Role, "inviter": inv.Inviter,
			"expires_at": inv.ExpiresAt.Format(time.RFC3339), "revision": inv.Revision,
		}, inv.Revision, nil
	})
	s.handle(http.MethodPost, "/v1/invites/{id}/accept", func(r *http.Request) (int, any, client.Revision, error) {
		id, err := pathID(r, "id")
		if err != nil {
			return 0, nil, "", err
		}
		var req struct {
			User string `json:"user"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, "", err
		}
		if err := required("user", req.User); err != nil {
			return 0, nil, "", err
		}
		m, rev, err := c.AcceptInvite(r.Context(), id, req.User)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusOK, map[string]any{"user": m.UserID, "role": m.Role, "revision": rev}, rev, nil
	})
	s.handle(http.MethodDelete, "/v1/invites/{id}", func(r *http.Request) (int, any, client.Revision, error) {
		id, err := pathID(r, "id")
		if err != nil {
			return 0, nil, "", err
		}
		actor, err := actorOf(r, true)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(c.As(*actor).RevokeInvite(r.Context(), id))
	})

	// Artifacts: created in an organization, deleted by ID.
	type owned struct {
		ID    string `json:"id"`
		Owner string `json:"owner"`
	}
	s.handle(http.MethodPost, "/v1/organizations/{org}/datasets", func(r *http.Request) (int, any, client.Revision, error) {
		org, req, err := decodeOwned[owned](s, r, client.PermConnectDataset)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(c.RegisterDataset(r.Context(), org, req.ID, req.Owner))
	})
	s.handle(http.MethodPost, "/v1/organizations/{org}/adapter-repositories", func(r *http.Request) (int, any, client.Revision, error) {
		org, req, err := decodeOwned[owned](s, r, client.PermCreateAdapterRepository)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(c.RegisterAdapterRepository(r.Context(), org, req.ID, req.Owner))
	})
	s.handle(http.MethodPost, "/v1/organizations/{org}/training-jobs", func(r *http.Request) (int, any, client.Revision, error) {
		type job struct {
			ID         string `json:"id"`
			Repository string `json:"repository,omitempty"`
			Creator    string `json:"creator"`
		}
		org, req, err := decodeOwned[job](s, r, client.PermFineTune)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(c.RegisterTrainingJob(r.Context(), org, req.ID, req.Repository, req.Creator))
	})
	s.handle(http.MethodPost, "/v1/organizations/{org}/deployments", func(r *http.Request) (int, any, client.Revision, error) {
		type deployment struct {
			ID string `json:"id"`
		}
		org, req, err := decodeOwned[deployment](s, r, client.PermDeploy)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusCreated)(c.RegisterDeployment(r.Context(), org, req.ID))
	})
	s.handle(http.MethodPost, "/v1/organizations/{org}/api-tokens", func(r *http.Request) (int, any, client.Revision, error) {
		type token struct {
			Owner string `json:"owner"`
		}
		org, req, err := decodeOwned[token](s, r, client.PermCreateAPIToken)
		if err != nil {
			return 0, nil, "", err
		}
		if err := required("owner", req.Owner); err != nil {
			return 0, nil, "", err
		}
		// Members create their own tokens: an acting user may only create
		// tokens it owns.
		if actor, _ := actorOf(r, false); actor != nil && actor.Type == client.TypeUser && actor.ID != req.Owner {
			return 0, nil, "", &apiError{status: http.StatusForbidden, Code: "permission_denied",
				Message: "a user creates API tokens for itself only", Field: "owner"}
		}
		id, rev, err := c.CreateAPIToken(r.Context(), org, req.Owner)
		if err != nil {
			return 0, nil, "", err
		}
		return http.StatusCreated, map[string]any{"id": id, "revision": rev}, rev, nil
	})
	s.handle(http.MethodPost, "/v1/llms", func(r *http.Request) (int, any, client.Revision, error) {
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
			return written(http.StatusCreated)(c.RegisterSharedLLM(r.Context(), req.ID))
		case !req.Shared && req.Organization != "":
			return written(http.StatusCreated)(c.RegisterPrivateLLM(r.Context(), req.Organization, req.ID))
		default:
			return 0, nil, "", badRequest("organization", "an LLM is either shared (\"shared\": true) or private to an organization (\"organization\")")
		}
	})

	deletion := func(path, permission string, object func(string) client.Object, del func(*http.Request, string) (client.Revision, error)) {
		s.handle(http.MethodDelete, path, func(r *http.Request) (int, any, client.Revision, error) {
			id, err := pathID(r, "id")
			if err != nil {
				return 0, nil, "", err
			}
			if permission != "" {
				if err := s.guard(r, permission, object(id)); err != nil {
					return 0, nil, "", err
				}
			}
			return written(http.StatusOK)(del(r, id))
		})
	}
	deletion("/v1/datasets/{id}", client.PermDelete, client.Dataset, func(r *http.Request, id string) (client.Revision, error) {
		return c.DeleteDataset(r.Context(), id)
	})
	deletion("/v1/adapter-repositories/{id}", client.PermDelete, client.AdapterRepository, func(r *http.Request, id string) (client.Revision, error) {
		return c.DeleteAdapterRepository(r.Context(), id)
	})
	deletion("/v1/training-jobs/{id}", client.PermCancel, client.TrainingJob, func(r *http.Request, id string) (client.Revision, error) {
		return c.DeleteTrainingJob(r.Context(), id)
	})
	deletion("/v1/deployments/{id}", client.PermDelete, client.Deployment, func(r *http.Request, id string) (client.Revision, error) {
		return c.DeleteDeployment(r.Context(), id)
	})
	deletion("/v1/llms/{id}", "", client.LLM, func(r *http.Request, id string) (client.Revision, error) {
		return c.DeleteLLM(r.Context(), id)
	})
	s.handle(http.MethodDelete, "/v1/api-tokens/{id}", func(r *http.Request) (int, any, client.Revision, error) {
		id, err := pathID(r, "id")
		if err != nil {
			return 0, nil, "", err
		}
		actor, err := actorOf(r, true)
		if err != nil {
			return 0, nil, "", err
		}
		return written(http.StatusOK)(c.As(*actor).DeleteAPIToken(r.Context(), id))
	})
}

// decodeOwned reads the organization from the path and the body, and
// enforces an optional actor's permission on the organization.
func decodeOwned[T any](s *Server, r *http.Request, permission string) (string, T, error) {
	var req T
	org, err := pathID(r, "org")
	if err != nil {
		return "", req, err
	}
	if err := decode(r, &req); err != nil {
		return "", req, err
	}
	if err := s.guard(r, permission, client.Organization(org)); err != nil {
		return "", req, err
	}
	return org, req, nil
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
