package client

import (
	"context"
	"errors"
	"slices"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// Member is a user of an organization with the role they hold.
type Member struct {
	UserID string
	Role   Role
}

// memberFilter matches whatever role the user holds in the organization
// (the only relations of organization whose subjects are users).
func memberFilter(org, userID string) *v1.RelationshipFilter {
	u := User(userID)
	return filter(TypeOrganization, org, "", &u)
}

func validateOrgUser(org, userID string) error {
	if err := validateID("org", org); err != nil {
		return err
	}
	return validateID("user", userID)
}

// CreateOrganization creates an organization with its first User, lists
// the support account among its members, and registers it on the platform,
// in one write. It fails with ErrAlreadyExists if the organization exists.
func (c *Client) CreateOrganization(ctx context.Context, org, firstUser string) (Revision, error) {
	if err := validateOrgUser(org, firstUser); err != nil {
		return "", err
	}
	if firstUser == c.cfg.supportUser {
		return "", argErr("first_user", firstUser, "is the support account, which every organization lists already")
	}
	o := Organization(org)
	updates := []*v1.RelationshipUpdate{
		create(rel(o, RelUser, User(firstUser))),
		create(rel(o, RelSupport, User(c.cfg.supportUser))),
		create(rel(Object{Type: TypePlatform, ID: PlatformID}, RelOrganization, o.Subject())),
	}
	pres := []precondition{
		mustNotExist(filter(TypeOrganization, org, "", nil), opErr("", ErrAlreadyExists, "organization %q exists", org)),
	}
	return c.write(ctx, "CreateOrganization", updates, pres, false)
}

// AddMember adds a user to an organization as User or Read-only. It fails
// with ErrNotFound when the organization does not exist and with
// ErrAlreadyExists when the user is already a member (use ChangeRole).
//
// What a former membership left behind (API tokens or invites whose
// clean-up was interrupted) is deleted first, so that nothing of it comes
// back to life with the new role.
func (c *Client) AddMember(ctx context.Context, org, userID string, role Role) (Revision, error) {
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	if !role.invitable() {
		return "", argErr("role", string(role), "must be user or readonly (the support account is listed by CreateOrganization)")
	}
	if _, err := c.clearFormerMembership(ctx, "AddMember", org, userID, FullyConsistent()); err != nil {
		return "", err
	}
	updates := []*v1.RelationshipUpdate{create(rel(Organization(org), string(role), User(userID)))}
	pres := []precondition{
		orgExists(org),
		mustNotExist(memberFilter(org, userID), opErr("", ErrAlreadyExists, "user %q is already a member of %q", userID, org)),
	}
	return c.write(ctx, "AddMember", updates, pres, false)
}

// ChangeRole switches a member's role: the other roles are deleted and the
// new one written together, so the user never holds two roles or none. The
// API tokens the member created in org switch too (a token holds its
// owner's role), behind a fence that keeps their list complete, in as many
// writes as they need, and never above the owner (see fence.go). It fails
// with ErrNotFound when the user is not a member, and with ErrConflict when
// the role changed between its read and its writes, or another role change
// of the member took its fence over: of
// concurrent changes, some may fail; the member always holds exactly one
// role, and its tokens that role or, after an interrupted change, a lower
// one until the next. Changing to the role already held is a harmless
// no-op, which also brings every token back to that role.
//
// Invites live only while their inviter may invite (invite#vouched). A
// member who loses the User role loses its pending invites: they are
// deleted right after the role changes (none can be created after it,
// since CreateInvite requires the inviting role as a write precondition).
// A member who gains it finds none of its old invites alive: whatever a
// demotion left behind is deleted before the promotion.
func (c *Client) ChangeRole(ctx context.Context, org, userID string, role Role) (Revision, error) {
	const op = "ChangeRole"
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	if !role.invitable() {
		return "", argErr("role", string(role), "must be user or readonly")
	}
	if userID == c.cfg.supportUser {
		return "", argErr("user", userID, "is the support account, whose role does not change")
	}
	current, err := c.RoleOf(ctx, org, userID, WithConsistency(FullyConsistent()))
	if err != nil {
		return "", translate(op, err)
	}
	if role.invites() && !current.invites() {
		// A promotion: the member cannot invite now, so its invites are
		// dead ones and no new one can appear before the role changes
		// (the write below requires the role read here).
		if _, err := c.deleteInvitesBy(ctx, op, org, userID, FullyConsistent()); err != nil {
			return "", err
		}
	}
	rev, err := c.moveRole(ctx, op, org, userID, current, role) // not retried: the role precondition makes it no longer idempotent
	if err != nil || role.invites() {
		return rev, err
	}
	return c.after(rev)(c.deleteInvitesBy(ctx, op, org, userID, freshAfter(rev)))
}

// RemoveMember removes a user from an organization, with every API token
// the user created there and every invite the user sent. It fails with
// ErrNotFound when the user is not a member. The support account cannot be
// removed.
//
// The roles go first, behind the fence of a role change (see ChangeRole):
// the tokens' roles, then the user's, so that the user and its tokens lose
// every right, and no new token or invite can be made for the user after
// it (their writes require the membership as a precondition). The tokens
// and invites are then deleted: the list is complete, since nothing can be
// added to it any more. A removal cut off between the two steps is
// finished by retrying it: the retry answers ErrNotFound, and deletes what
// the first attempt left behind.
func (c *Client) RemoveMember(ctx context.Context, org, userID string) (Revision, error) {
	const op = "RemoveMember"
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	if userID == c.cfg.supportUser {
		return "", argErr("user", userID, "is the support account, which every organization lists")
	}
	var rev Revision
	err := c.retryConflicts(ctx, func() error {
		current, err := c.RoleOf(ctx, org, userID, WithConsistency(FullyConsistent()))
		if errors.Is(err, ErrNotFound) {
			return opErr(op, ErrNotFound, "user %q is not a member of %q", userID, org)
		}
		if err != nil {
			return translate(op, err)
		}
		rev, err = c.moveRole(ctx, op, org, userID, current, "")
		return err
	})
	if errors.Is(err, ErrNotFound) {
		// Not a member (any more): perhaps an earlier removal lost its
		// connection between its two writes. Retrying it must finish the
		// job, so the tokens and invites such a removal left behind are
		// deleted now; the answer stays "not a member".
		if _, cerr := c.clearFormerMembership(ctx, op, org, userID, FullyConsistent()); cerr != nil && !errors.Is(cerr, ErrAlreadyExists) {
			return "", cerr
		}
		return "", err
	}
	if err != nil {
		return "", err
	}
	cleared, err := c.clearFormerMembership(ctx, op, org, userID, freshAfter(rev))
	if errors.Is(err, ErrAlreadyExists) {
		return rev, nil // added again meanwhile: that addition cleared the rest
	}
	return c.after(rev)(cleared, err)
}

// clearFormerMembership deletes the API tokens userID created in org, the
// invites userID sent there and the fence of an interrupted removal, when userID is not a member: after a
// removal, before a new membership. Then the lists cannot grow, because
// creating a token or an invite requires the membership (the inviting
// role) as a write precondition. It returns the revision of its last
// deletion ("" for none), or fails with ErrAlreadyExists, and deletes
// nothing, when userID is a member. It reads at cons: after the caller's
// own write, freshAfter that write.
func (c *Client) clearFormerMembership(ctx context.Context, op, org, userID string, cons Consistency) (Revision, error) {
	member, err := c.exists(ctx, memberFilter(org, userID), cons)
	if err != nil {
		return "", translate(op, err)
	}
	if member {
		return "", opErr(op, ErrAlreadyExists, "user %q is already a member of %q", userID, org)
	}
	tokens, err := c.tokensOf(ctx, org, userID, cons)
	if err != nil {
		return "", translate(op, err)
	}
	var updates []*v1.RelationshipUpdate
	for _, t := range tokens {
		updates = append(updates, tokenRelationships(remove, org, userID, t, roles...)...)
	}
	// And the fence of a removal interrupted before its end: it would
	// block a new membership's token creations until it expires.
	m := Membership(org, userID)
	for r, err := range c.read(ctx, filter(m.Type, m.ID, RelRoleChange, nil), cons, 0) {
		if err != nil {
			return "", translate(op, err)
		}
		updates = append(updates, remove(rel(m, RelRoleChange, Subject{Object: Object{Type: TypeRoleChange, ID: r.GetSubject().GetObject().GetObjectId()}})))
	}
	last, err := c.writeBatches(ctx, op, updates)
	if err != nil {
		return "", err
	}
	return c.after(last)(c.deleteInvitesBy(ctx, op, org, userID, cons))
}

// after returns a function that keeps rev when a later step wrote nothing.
func (c *Client) after(rev Revision) func(Revision, error) (Revision, error) {
	return func(later Revision, err error) (Revision, error) {
		if err != nil {
			return "", err
		}
		if later == "" {
			return rev, nil
		}
		return later, nil
	}
}

// ListMembers returns the organization's members with their roles, sorted
// by user ID. It fails with ErrNotFound when the organization does not exist.
func (c *Client) ListMembers(ctx context.Context, org string, opts ...CallOption) ([]Member, error) {
	if err := validateID("org", org); err != nil {
		return nil, err
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return nil, err
	}
	var members []Member
	for r, err := range c.read(ctx, filter(TypeOrganization, org, "", &Subject{Object: Object{Type: TypeUser}}), cc.consistency, 0) {
		if err != nil {
			return nil, translate("ListMembers", err)
		}
		if role := Role(r.GetRelation()); role.Valid() {
			members = append(members, Member{UserID: r.GetSubject().GetObject().GetObjectId(), Role: role})
		}
	}
	if len(members) == 0 {
		return nil, opErr("ListMembers", ErrNotFound, "organization %q has no members", org)
	}
	slices.SortFunc(members, func(a, b Member) int {
		if a.UserID < b.UserID {
			return -1
		}
		if a.UserID > b.UserID {
			return 1
		}
		return 0
	})
	return members, nil
}

// RoleOf returns the user's role in the organization, or ErrNotFound.
func (c *Client) RoleOf(ctx context.Context, org, userID string, opts ...CallOption) (Role, error) {
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return "", err
	}
	role, err := c.roleHeld(ctx, org, User(userID), cc.consistency)
	if err != nil {
		return "", translate("RoleOf", err)
	}
	if role == "" {
		return "", opErr("RoleOf", ErrNotFound, "user %q is not a member of %q", userID, org)
	}
	return role, nil
}

// roleHeld returns the role a subject (a user or an API token) holds in
// org, read at cons, or "" for none.
func (c *Client) roleHeld(ctx context.Context, org string, s Subject, cons Consistency) (Role, error) {
	for r, err := range c.read(ctx, filter(TypeOrganization, org, "", &s), cons, 0) {
		if err != nil {
			return "", err
		}
		if role := Role(r.GetRelation()); role.Valid() {
			return role, nil
		}
	}
	return "", nil
}
