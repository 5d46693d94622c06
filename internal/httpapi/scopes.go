package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spicegate/spicegate/client"
)

// Scope is what a service token may do. Each scope includes the ones
// before it: give a service the smallest that does its job, so that a
// leaked token does as little as possible.
type Scope int

// The scopes, from the smallest.
const (
	// ScopeCheck reads: checks, bulk checks, permissions, lookups, member
	// lists. A leaked check token writes nothing.
	ScopeCheck Scope = iota + 1
	// ScopeAct also writes, each on behalf of a verified actor (the
	// Spicegate-Actor header), whose permission the schema decides.
	ScopeAct
	// ScopeAdmin also makes system writes (no actor: provisioning,
	// seeding) and reads the audit stream.
	ScopeAdmin
)

var scopeNames = map[Scope]string{ScopeCheck: "check", ScopeAct: "act", ScopeAdmin: "admin"}

// String returns the scope's name: check, act or admin.
func (s Scope) String() string {
	if n, ok := scopeNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// ParseScope parses check, act or admin.
func ParseScope(s string) (Scope, error) {
	for scope, name := range scopeNames {
		if s == name {
			return scope, nil
		}
	}
	return 0, fmt.Errorf("unknown token scope %q: want check, act or admin", s)
}

// Token is a service token: the bearer secret and what it may do.
type Token struct {
	Secret string
	Scope  Scope
}

// ParseToken parses "SCOPE:SECRET" (e.g. "check:8f2c..."). A secret with
// no scope is an admin token, as every token was before scopes existed.
func ParseToken(s string) (Token, error) {
	scope, secret, scoped := strings.Cut(s, ":")
	if !scoped {
		scope, secret = ScopeAdmin.String(), s
	}
	sc, err := ParseScope(scope)
	if err != nil {
		return Token{}, err
	}
	if secret == "" {
		return Token{}, fmt.Errorf("a %s token needs a secret", sc)
	}
	return Token{Secret: secret, Scope: sc}, nil
}

// MinSecretLength is the shortest secret that is not guessable in practice
// (serve warns about shorter ones).
const MinSecretLength = 16

// Weak reports whether the token's secret is shorter than MinSecretLength.
func (t Token) Weak() bool { return len(t.Secret) < MinSecretLength }

// ParseTokens parses every token, naming the position of a bad one.
func ParseTokens(specs []string) ([]Token, error) {
	tokens := make([]Token, 0, len(specs))
	for i, s := range specs {
		t, err := ParseToken(s)
		if err != nil {
			return nil, fmt.Errorf("http-token #%d: %w", i+1, err)
		}
		tokens = append(tokens, t)
	}
	return tokens, nil
}

type scopeKey struct{}

// scopeOf is the scope the request's token was granted.
func scopeOf(r *http.Request) Scope {
	s, _ := r.Context().Value(scopeKey{}).(Scope)
	return s
}

// authenticate compares the bearer token with every configured token in
// constant time and returns its scope (0 when none matches). The scheme
// is case-insensitive (RFC 9110, section 11.1).
func (s *Server) authenticate(r *http.Request) Scope {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return 0 // none, or two: which one was meant?
	}
	scheme, got, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return 0
	}
	got = strings.TrimSpace(got)
	if got == "" {
		return 0
	}
	var granted Scope
	for _, t := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(got), []byte(t.Secret)) == 1 {
			granted = max(granted, t.Scope)
		}
	}
	return granted
}

// withScope records the request's scope for the handlers.
func withScope(r *http.Request, scope Scope) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), scopeKey{}, scope))
}

// actor returns who performs a write: the actor the Spicegate-Actor header
// names (an act or admin token vouches that it authenticated that user),
// or, for an admin token without the header, the system. The client's
// Actor then decides, in one place, what it may do.
//
// The vendor's support account administers every organization, so only an
// admin token may act as it (or as one of its tokens): a leaked act token
// acts as the customers' users at most.
func (s *Server) actor(r *http.Request) (*client.Actor, error) {
	values := r.Header.Values(ActorHeader)
	if len(values) > 1 {
		// Which one would a proxy in front have checked? Refuse to guess.
		return nil, badRequest(ActorHeader, "send %s once", ActorHeader)
	}
	if len(values) == 0 || values[0] == "" {
		if scopeOf(r) >= ScopeAdmin {
			return s.cfg.Client.System(), nil
		}
		return nil, badRequest(ActorHeader, "this write is made on behalf of someone: send the %s header (user:ID or api_token:ID); only an admin token writes without one", ActorHeader)
	}
	sub, err := client.ParseSubject(values[0])
	if err != nil || sub.Relation != "" || (sub.Type != client.TypeUser && sub.Type != client.TypeAPIToken) {
		return nil, badRequest(ActorHeader, "%s must be user:ID or api_token:ID", ActorHeader)
	}
	if scopeOf(r) < ScopeAdmin {
		support, err := s.isSupport(r.Context(), sub)
		if err != nil {
			return nil, err
		}
		if support {
			return nil, &apiError{status: http.StatusForbidden, Code: "insufficient_scope", Field: ActorHeader,
				Message: "acting as the support account needs a token of the admin scope"}
		}
	}
	return s.cfg.Client.As(sub), nil
}

// isSupport reports whether the actor is the support account or one of its
// API tokens.
func (s *Server) isSupport(ctx context.Context, sub client.Subject) (bool, error) {
	support := s.cfg.Client.SupportUser()
	if sub.Type == client.TypeUser {
		return sub.ID == support, nil
	}
	info, err := s.cfg.Client.APIToken(ctx, sub.ID, client.WithConsistency(client.FullyConsistent()))
	if errors.Is(err, client.ErrNotFound) {
		return false, nil // no such token: its permission checks deny it
	}
	if err != nil {
		return false, err
	}
	return info.Owner == support, nil
}

// optionalActor is the actor of a read that may be made for someone: nil
// without the header.
func (s *Server) optionalActor(r *http.Request) (*client.Actor, error) {
	if len(r.Header.Values(ActorHeader)) == 0 {
		return nil, nil
	}
	return s.actor(r)
}
