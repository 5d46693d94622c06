package client

import (
	"context"
	"errors"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// MaxInviteTTL bounds how long an invite may live.
const MaxInviteTTL = 90 * 24 * time.Hour

// InviteInfo is a pending (or used) invitation to join an organization.
type InviteInfo struct {
	// ID is the invite's secret: 128 random bits, the token of the link.
	// SpiceDB stores only its hash (see [Invite]); this is the one copy.
	ID      string
	Org     string
	Inviter string
	Role    Role
	// ExpiresAt is when the invite stops working.
	ExpiresAt time.Time
	// AcceptedBy is the user who used it; empty while pending.
	AcceptedBy string
	// Revision is the revision the invite was written at (CreateInvite only).
	Revision Revision
}

func grantsRelation(role Role) string {
	if role == RoleReadonly {
		return RelGrantsReadonly
	}
	return RelGrantsUser
}

// CreateInvite creates an invite to join org with role (User or
// Read-only), valid for ttl. Accepting it requires, at that time, that the
// inviter still may invite (invite#vouched). It fails with ErrNotFound
// when the inviter is not a member of org, and with ErrPermissionDenied
// when the inviter's role may not invite. The write's preconditions make
// sure the inviter still holds that role when the invite is written. The
// ID is unguessable: whoever holds it may accept, so hand it only to the
// invitee.
func (c *Client) CreateInvite(ctx context.Context, org, inviter string, role Role, ttl time.Duration) (InviteInfo, error) {
	const op = "CreateInvite"
	if err := validateID("org", org); err != nil {
		return InviteInfo{}, err
	}
	if err := validateID("inviter", inviter); err != nil {
		return InviteInfo{}, err
	}
	if !role.invitable() {
		return InviteInfo{}, argErr("role", string(role), "an invite grants user or readonly")
	}
	if ttl <= 0 || ttl > MaxInviteTTL {
		return InviteInfo{}, argErr("ttl", ttl.String(), "must be positive and at most 90 days")
	}
	vouching, err := c.invitingRole(ctx, op, org, inviter)
	if err != nil {
		return InviteInfo{}, err
	}
	id, err := newSecretID()
	if err != nil {
		return InviteInfo{}, &Error{Op: op, Kind: ErrInternal, Err: err}
	}
	expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
	inv := Invite(id)
	updates := []*v1.RelationshipUpdate{
		create(expiring(rel(inv, RelOrganization, Organization(org).Subject()), expires)),
		create(expiring(rel(inv, RelInviter, User(inviter)), expires)),
		create(expiring(rel(inv, grantsRelation(role), Subject{Object: Object{Type: TypeUser, ID: "*"}}), expires)),
	}
	rev, err := c.write(ctx, op, updates, []precondition{orgExists(org), vouching}, false)
	if err != nil {
		return InviteInfo{}, err
	}
	return InviteInfo{ID: id, Org: org, Inviter: inviter, Role: role, ExpiresAt: expires, Revision: rev}, nil
}

// invitingRole reads the role inviter holds in org, fully consistent, and
// returns the write precondition that it still holds it: an invite is
// written, or accepted, only while its inviter may invite. It fails with
// ErrNotFound when the inviter is not a member and ErrPermissionDenied
// when the role may not invite.
func (c *Client) invitingRole(ctx context.Context, op, org, inviter string) (precondition, error) {
	role, err := c.RoleOf(ctx, org, inviter, WithConsistency(FullyConsistent()))
	if errors.Is(err, ErrNotFound) {
		return precondition{}, opErr(op, ErrNotFound, "inviter %q is not a member of %q", inviter, org)
	}
	if err != nil {
		return precondition{}, translate(op, err)
	}
	if !role.invites() {
		return precondition{}, opErr(op, ErrPermissionDenied, "inviter %q may not invite in %q (role %s)", inviter, org, role)
	}
	u := User(inviter)
	return mustExist(filter(TypeOrganization, org, string(role), &u),
		opErr("", ErrConflict, "inviter %q lost the role %s in %q meanwhile", inviter, role, org)), nil
}

// deleteInvitesBy deletes the pending invites inviter sent in org (by
// their object IDs: the secrets are not known here), reading at cons, and
// returns the revision of the last deletion ("" when there was none).
func (c *Client) deleteInvitesBy(ctx context.Context, op, org, inviter string, cons Consistency) (Revision, error) {
	u := User(inviter)
	var ids []string
	for r, err := range c.read(ctx, filter(TypeInvite, "", RelInviter, &u), cons, 0) {
		if err != nil {
			return "", translate(op, err)
		}
		ids = append(ids, r.GetResource().GetObjectId())
	}
	o := Organization(org).Subject()
	var last Revision
	for _, id := range ids {
		inOrg, err := c.exists(ctx, filter(TypeInvite, id, RelOrganization, &o), cons)
		if err != nil {
			return "", translate(op, err)
		}
		if !inOrg {
			continue
		}
		rev, err := c.deleteMatching(ctx, op, filter(TypeInvite, id, "", nil))
		if err != nil {
			return "", err
		}
		if rev != "" {
			last = rev
		}
	}
	return last, nil
}

// GetInvite reads an invite, fully consistent. An invite that expired, was
// revoked, or never existed is ErrNotFound.
func (c *Client) GetInvite(ctx context.Context, id string) (InviteInfo, error) {
	if err := validateID("invite", id); err != nil {
		return InviteInfo{}, err
	}
	info := InviteInfo{ID: id}
	for r, err := range c.read(ctx, filter(TypeInvite, inviteKey(id), "", nil), FullyConsistent(), 0) {
		if err != nil {
			return InviteInfo{}, translate("GetInvite", err)
		}
		subject := r.GetSubject().GetObject().GetObjectId()
		switch r.GetRelation() {
		case RelOrganization:
			info.Org = subject
		case RelInviter:
			info.Inviter = subject
		case RelGrantsUser:
			info.Role = RoleUser
		case RelGrantsReadonly:
			info.Role = RoleReadonly
		case RelAcceptedBy:
			info.AcceptedBy = subject
		}
		if exp := r.GetOptionalExpiresAt(); exp != nil {
			info.ExpiresAt = exp.AsTime()
		}
	}
	if info.AcceptedBy == "" && (info.Org == "" || info.Inviter == "" || info.Role == "") {
		return InviteInfo{}, opErr("GetInvite", ErrNotFound, "invite does not exist, expired, or was revoked")
	}
	return info, nil
}

// AcceptInvite makes userID a member of the invite's organization with its
// role and consumes the invite, in one atomic write whose preconditions
// make sure that, of many concurrent accepts, exactly one succeeds, and
// that the inviter still holds its inviting role. What a former membership
// of userID left behind (tokens, invites) is deleted first.
//
// The invite keeps its organization and, in place of the rest,
// accepted_by (until it expires): a late accept is told it was used, and
// whoever may invite can still revoke (delete) it.
//
// Errors: ErrNotFound when the invite does not exist, expired, was
// revoked, or its inviter may no longer invite; ErrConflict when it was
// already accepted (by anyone, including concurrently); ErrAlreadyExists
// when userID is already a member (the invite is then left as it was).
func (c *Client) AcceptInvite(ctx context.Context, id, userID string) (Member, Revision, error) {
	const op = "AcceptInvite"
	if err := validateID("user", userID); err != nil {
		return Member{}, "", err
	}
	info, err := c.GetInvite(ctx, id)
	if err != nil {
		return Member{}, "", translate(op, err)
	}
	if info.AcceptedBy != "" {
		return Member{}, "", opErr(op, ErrConflict, "invite was already accepted")
	}
	vouched, err := c.Check(ctx, User(info.Inviter), PermVouched, Invite(id), WithConsistency(FullyConsistent()))
	if err != nil {
		return Member{}, "", translate(op, err)
	}
	var vouching precondition
	if vouched.Allowed() {
		vouching, err = c.invitingRole(ctx, op, info.Org, info.Inviter)
	}
	if !vouched.Allowed() || err != nil {
		// A concurrent accept may have consumed the invite (and its inviter
		// relationship) since it was read: that is a conflict, not a dead invite.
		if again, err := c.GetInvite(ctx, id); err != nil || again.AcceptedBy != "" {
			return Member{}, "", opErr(op, ErrConflict, "invite was accepted or revoked meanwhile")
		}
		return Member{}, "", opErr(op, ErrNotFound, "invite is no longer valid: its inviter may no longer invite")
	}
	if _, err := c.clearFormerMembership(ctx, op, info.Org, userID, FullyConsistent()); err != nil {
		return Member{}, "", err
	}

	inv := Invite(id)
	org := Organization(info.Org)
	everyone := Subject{Object: Object{Type: TypeUser, ID: "*"}}
	updates := []*v1.RelationshipUpdate{
		create(rel(org, string(info.Role), User(userID))),
		remove(rel(inv, RelInviter, User(info.Inviter))),
		remove(rel(inv, grantsRelation(info.Role), everyone)),
		touch(expiring(rel(inv, RelAcceptedBy, User(userID)), info.ExpiresAt)),
	}
	pres := []precondition{
		mustExist(filter(TypeInvite, inv.ID, grantsRelation(info.Role), &everyone), opErr("", ErrConflict, "invite was accepted or revoked meanwhile")),
		mustNotExist(memberFilter(info.Org, userID), opErr("", ErrAlreadyExists, "user %q is already a member of %q", userID, info.Org)),
		orgExists(info.Org),
		vouching,
	}
	rev, err := c.write(ctx, op, updates, pres, false)
	if err != nil {
		return Member{}, "", err
	}
	return Member{UserID: userID, Role: info.Role}, rev, nil
}

// RevokeInvite deletes an invite (pending or used). It fails with
// ErrNotFound when there is nothing to delete.
func (c *Client) RevokeInvite(ctx context.Context, id string) (Revision, error) {
	if err := validateID("invite", id); err != nil {
		return "", err
	}
	rev, err := c.deleteMatching(ctx, "RevokeInvite", filter(TypeInvite, inviteKey(id), "", nil))
	if err != nil {
		return "", err
	}
	if rev == "" {
		return "", opErr("RevokeInvite", ErrNotFound, "invite does not exist, expired, or was revoked")
	}
	return rev, nil
}
