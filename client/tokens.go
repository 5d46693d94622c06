package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// newSecretID returns 128 bits from the system's cryptographic random
// source, hex-encoded: unguessable IDs for invites and tokens.
func newSecretID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// tokenRelationships are the relationships of a token: its organization
// and owner, the three indexes organization#api_token, user#api_token and
// membership#api_token, and the roles it holds in its organization (its
// owner's; see schema.zed, definitions organization and membership).
func tokenRelationships(op func(*v1.Relationship) *v1.RelationshipUpdate, org, owner, token string, roles ...Role) []*v1.RelationshipUpdate {
	t := Token(token)
	// The roles first: should a deletion be split across writes, the token
	// stops acting with the first.
	var updates []*v1.RelationshipUpdate
	for _, r := range roles {
		updates = append(updates, op(rel(Organization(org), string(r), t.Subject())))
	}
	return append(updates,
		op(rel(t, RelOrganization, Organization(org).Subject())),
		op(rel(t, RelOwner, User(owner))),
		op(rel(Organization(org), RelAPIToken, t.Subject())),
		op(rel(Object{Type: TypeUser, ID: owner}, RelAPIToken, t.Subject())),
		op(rel(Membership(org, owner), RelAPIToken, t.Subject())),
	)
}

// CreateAPIToken creates an API token for owner in org and returns its ID
// (128 random bits). The token acts with its owner's rights in org for as
// long as both exist: it holds its owner's role relationship itself, and
// every role change or removal of the owner moves it along (see
// ChangeRole). It fails with ErrNotFound when owner is not a member or the
// organization does not exist (or is being deleted), and with ErrConflict
// when the owner's role keeps changing meanwhile. Owner's role, and the
// absence of a role change in progress, are write preconditions: a token
// is never written for a member who was removed meanwhile, nor with a
// role its owner no longer holds.
func (c *Client) CreateAPIToken(ctx context.Context, org, owner string) (string, Revision, error) {
	const op = "CreateAPIToken"
	if err := validateOrgUser(org, owner); err != nil {
		return "", "", err
	}
	id, err := newSecretID()
	if err != nil {
		return "", "", &Error{Op: op, Kind: ErrInternal, Err: err}
	}
	var rev Revision
	err = c.retryConflicts(ctx, func() error {
		role, err := c.RoleOf(ctx, org, owner, WithConsistency(FullyConsistent()))
		if errors.Is(err, ErrNotFound) {
			return opErr(op, ErrNotFound, "user %q is not a member of %q", owner, org)
		}
		if err != nil {
			return translate(op, err)
		}
		u := User(owner)
		pres := []precondition{
			orgExists(org),
			mustExist(memberFilter(org, owner), opErr("", ErrNotFound, "user %q is not a member of %q", owner, org)),
			mustExist(filter(TypeOrganization, org, string(role), &u), opErr("", ErrConflict, "the role of %q in %q changed meanwhile", owner, org)),
			noRoleChange(org, owner),
			mustNotExist(filter(TypeAPIToken, id, "", nil), opErr("", ErrAlreadyExists, "token ID collision")),
		}
		rev, err = c.write(ctx, op, tokenRelationships(create, org, owner, id, role), pres, false)
		return err
	})
	if err != nil {
		return "", "", err
	}
	return id, rev, nil
}

// APITokenInfo is what the schema knows of a token.
type APITokenInfo struct {
	ID    string
	Org   string
	Owner string
}

// APIToken returns a token's organization and owner, or ErrNotFound.
func (c *Client) APIToken(ctx context.Context, tokenID string, opts ...CallOption) (APITokenInfo, error) {
	if err := validateID("token", tokenID); err != nil {
		return APITokenInfo{}, err
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return APITokenInfo{}, err
	}
	info := APITokenInfo{ID: tokenID}
	for r, err := range c.read(ctx, filter(TypeAPIToken, tokenID, "", nil), cc.consistency, 0) {
		if err != nil {
			return APITokenInfo{}, translate("APIToken", err)
		}
		switch r.GetRelation() {
		case RelOrganization:
			info.Org = r.GetSubject().GetObject().GetObjectId()
		case RelOwner:
			info.Owner = r.GetSubject().GetObject().GetObjectId()
		}
	}
	if info.Org == "" || info.Owner == "" {
		return APITokenInfo{}, opErr("APIToken", ErrNotFound, "token %q does not exist", tokenID)
	}
	return info, nil
}

// DeleteAPIToken deletes a token: from then on every check on it is
// denied. It fails with ErrNotFound when the token does not exist. It
// never waits for a role change of the token's owner in progress, nor
// stops it: such a change moves only tokens that still exist (see
// fence.go).
func (c *Client) DeleteAPIToken(ctx context.Context, tokenID string) (Revision, error) {
	info, err := c.APIToken(ctx, tokenID, WithConsistency(FullyConsistent()))
	if err != nil {
		return "", err
	}
	return c.write(ctx, "DeleteAPIToken", tokenRelationships(remove, info.Org, info.Owner, tokenID, roles...), nil, true)
}

// ListAPITokens returns the IDs of the tokens owner created in org.
func (c *Client) ListAPITokens(ctx context.Context, org, owner string, opts ...CallOption) ([]string, error) {
	if err := validateOrgUser(org, owner); err != nil {
		return nil, err
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return nil, err
	}
	ids, err := c.tokensOf(ctx, org, owner, cc.consistency)
	return ids, translate("ListAPITokens", err)
}

// tokensOf lists owner's tokens in org, read at cons: one indexed read of
// the membership's token index.
func (c *Client) tokensOf(ctx context.Context, org, owner string, cons Consistency) ([]string, error) {
	var ids []string
	m := Membership(org, owner)
	for r, err := range c.read(ctx, filter(m.Type, m.ID, RelAPIToken, nil), cons, 0) {
		if err != nil {
			return nil, err
		}
		ids = append(ids, r.GetSubject().GetObject().GetObjectId())
	}
	return ids, nil
}
