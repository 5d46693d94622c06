package client

import (
	"context"
	"time"
)

// Actor performs the team and administrative actions on behalf of a user
// (or of an API token, which acts as its owner). Each method first checks
// the permission the action needs, fully consistent (a right revoked a
// moment ago must not authorize anything), and returns ErrPermissionDenied
// without writing anything when the actor lacks it.
//
// The check and the write are two calls: a right revoked between them is
// not seen by that one action.
type Actor struct {
	c       *Client
	subject Subject
}

// As returns an Actor for subject (a user or an API token).
func (c *Client) As(subject Subject) *Actor { return &Actor{c: c, subject: subject} }

// Require returns nil when the actor holds permission on resource (checked
// fully consistent), ErrPermissionDenied when it does not, or the error
// that kept the check from being made. Services use it to guard their own
// actions the way the Actor's methods guard the client's.
func (a *Actor) Require(ctx context.Context, permission string, resource Object) error {
	if !validRelation(permission) {
		return argErr("permission", permission, "must be a SpiceDB permission name")
	}
	if err := resource.Validate("resource"); err != nil {
		return err
	}
	return a.require(ctx, "Require", permission, resource)
}

// audited attaches the actor to ctx's Audit, unless one is attached.
func (a *Actor) audited(ctx context.Context) context.Context {
	au, _ := AuditFrom(ctx)
	if au.Actor == "" {
		au.Actor = a.subject.String()
	}
	return WithAudit(ctx, au)
}

// require checks that the actor holds permission on resource.
func (a *Actor) require(ctx context.Context, op, permission string, resource Object) error {
	if err := a.subject.Validate("actor"); err != nil {
		return err
	}
	if a.subject.Relation != "" {
		return argErr("actor", a.subject.String(), "must be a user or an API token, not a subject set")
	}
	d, err := a.c.Check(ctx, a.subject, permission, resource, WithConsistency(FullyConsistent()))
	if err != nil {
		return translate(op, err)
	}
	if !d.Allowed() {
		return opErr(op, ErrPermissionDenied, "%s may not %s on %s", a.subject, permission, resource)
	}
	return nil
}

// userID is the user the actor stands for: itself, or a token's owner.
func (a *Actor) userID(ctx context.Context) (string, error) {
	if a.subject.Type != TypeAPIToken {
		return a.subject.ID, nil
	}
	info, err := a.c.APIToken(ctx, a.subject.ID, WithConsistency(FullyConsistent()))
	if err != nil {
		return "", err
	}
	return info.Owner, nil
}

// CreateInvite invites someone into org with role (needs invite_member).
// The actor, or the token's owner, is the inviter.
func (a *Actor) CreateInvite(ctx context.Context, org string, role Role, ttl time.Duration) (InviteInfo, error) {
	if err := validateID("org", org); err != nil {
		return InviteInfo{}, err
	}
	if err := a.require(ctx, "CreateInvite", PermInviteMember, Organization(org)); err != nil {
		return InviteInfo{}, err
	}
	inviter, err := a.userID(ctx)
	if err != nil {
		return InviteInfo{}, err
	}
	return a.c.CreateInvite(a.audited(ctx), org, inviter, role, ttl)
}

// RevokeInvite withdraws an invite (needs invite#revoke: whoever may invite).
func (a *Actor) RevokeInvite(ctx context.Context, id string) (Revision, error) {
	if err := validateID("invite", id); err != nil {
		return "", err
	}
	if err := a.require(ctx, "RevokeInvite", PermRevoke, Invite(id)); err != nil {
		return "", err
	}
	return a.c.RevokeInvite(a.audited(ctx), id)
}

// ChangeRole switches a member between User and Read-only (needs change_role).
func (a *Actor) ChangeRole(ctx context.Context, org, userID string, role Role) (Revision, error) {
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	if err := a.require(ctx, "ChangeRole", PermChangeRole, Organization(org)); err != nil {
		return "", err
	}
	return a.c.ChangeRole(a.audited(ctx), org, userID, role)
}

// RemoveMember removes a member and their tokens (needs remove_member).
func (a *Actor) RemoveMember(ctx context.Context, org, userID string) (Revision, error) {
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	if err := a.require(ctx, "RemoveMember", PermRemoveMember, Organization(org)); err != nil {
		return "", err
	}
	return a.c.RemoveMember(a.audited(ctx), org, userID)
}

// DeleteAPIToken deletes a token (needs api_token#delete: its owner, or support).
func (a *Actor) DeleteAPIToken(ctx context.Context, tokenID string) (Revision, error) {
	if err := validateID("token", tokenID); err != nil {
		return "", err
	}
	if err := a.require(ctx, "DeleteAPIToken", PermDelete, Token(tokenID)); err != nil {
		return "", err
	}
	return a.c.DeleteAPIToken(a.audited(ctx), tokenID)
}

// DeleteOrganization deletes the account and all its artifacts (needs delete_account).
func (a *Actor) DeleteOrganization(ctx context.Context, org string) (Revision, error) {
	if err := validateID("org", org); err != nil {
		return "", err
	}
	if err := a.require(ctx, "DeleteOrganization", PermDeleteAccount, Organization(org)); err != nil {
		return "", err
	}
	return a.c.DeleteOrganization(a.audited(ctx), org)
}
