package client

import (
	"context"
	"errors"
	"slices"
	"time"

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

// ChangeRole switches a member's role in one write: the other roles are
// deleted and the new one written together, so the user never holds two
// roles or none, and the API tokens the member created in org switch in
// the same write (a token holds its owner's role). It fails with
// ErrNotFound when the user is not a member, and with ErrConflict when the
// role changed between its read and the write (of concurrent changes, some
// may fail; the member always holds exactly one role). Changing to the
// role already held is a harmless no-op.
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

// roleChangeFence is how long a role change may take between its two
// writes before its fence expires by itself (and the change fails).
const roleChangeFence = 30 * time.Second

// moveRole changes userID's role in org from one role to another ("" to
// remove it), with the role every API token of userID in org holds, in one
// write: the owner and its tokens never hold different roles.
//
// The tokens must be listed before that write, and a token created between
// the listing and the write would keep the old role. So a fence goes
// first: organization#role_change@user, which token creation requires to
// be absent. After it, no token can be added, the listing is complete, and
// the second write, which requires the fence (still unexpired) and the old
// role, moves everything and takes the fence down.
func (c *Client) moveRole(ctx context.Context, op, org, userID string, from, to Role) (Revision, error) {
	o := Organization(org)
	u := User(userID)
	holds := mustExist(filter(TypeOrganization, org, string(from), &u), opErr("", ErrConflict, "the role of %q in %q changed meanwhile", userID, org))
	pres := []precondition{
		orgExists(org),
		mustExist(memberFilter(org, userID), opErr("", ErrNotFound, "user %q is not a member of %q", userID, org)),
		holds,
	}
	fenced, err := c.write(ctx, op, []*v1.RelationshipUpdate{touch(expiring(rel(o, RelRoleChange, u), time.Now().Add(roleChangeFence)))}, pres, false)
	if err != nil {
		return "", err
	}
	rev, err := c.moveBehindFence(ctx, op, o, u, to, fenced, pres)
	if err != nil {
		// Take the fence down rather than let it block the member's token
		// creations until it expires. Harmless if it is another change's:
		// that change then fails its own second write (ErrConflict).
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = c.write(cleanup, op, []*v1.RelationshipUpdate{remove(rel(o, RelRoleChange, u))}, nil, true)
		return "", err
	}
	return rev, nil
}

// moveBehindFence is moveRole's second step: list the tokens (no new one
// can appear), then move the owner's role and theirs, and take the fence
// down, in one write that requires the fence and the old role.
func (c *Client) moveBehindFence(ctx context.Context, op string, o Object, u Subject, to Role, fenced Revision, pres []precondition) (Revision, error) {
	org, userID := o.ID, u.ID
	tokens, err := c.tokensOf(ctx, org, userID, freshAfter(fenced))
	if err != nil {
		return "", translate(op, err)
	}
	// Every other role goes, not only from: whatever the owner or a token
	// held, afterwards it holds exactly the new role, or none.
	var updates []*v1.RelationshipUpdate
	move := func(s Subject) {
		for _, r := range roles {
			if r != to {
				updates = append(updates, remove(rel(o, string(r), s)))
			}
		}
		if to != "" {
			updates = append(updates, touch(rel(o, string(to), s)))
		}
	}
	move(u)
	for _, t := range tokens {
		move(Token(t).Subject())
	}
	updates = append(updates, remove(rel(o, RelRoleChange, u)))
	if len(updates) > c.cfg.maxWriteSize {
		return "", opErr(op, ErrConflict, "%s has %d API tokens in %s, too many to move in one write (%d updates at most): delete some first",
			userID, len(tokens), org, c.cfg.maxWriteSize)
	}
	pres = append(pres[:len(pres):len(pres)], mustExist(filter(TypeOrganization, org, RelRoleChange, &u),
		opErr("", ErrConflict, "the role change of %q in %q took too long, or another one ran meanwhile", userID, org)))
	return c.write(ctx, op, updates, pres, false)
}

// RemoveMember removes a user from an organization, with every API token
// the user created there and every invite the user sent. It fails with
// ErrNotFound when the user is not a member. The support account cannot be
// removed.
//
// The roles go first: the user's and, in the same write, those its tokens
// hold (see ChangeRole), so that the user and its tokens lose every right
// at once; no new token or invite can be made for the user after it (their
// writes require the membership as a precondition). The tokens and invites
// are then deleted: the list is complete, since nothing can be added to it
// any more. A removal cut off
// between the two steps is finished by retrying it: the retry answers
// ErrNotFound, and deletes what the first attempt left behind.
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

// clearFormerMembership deletes the API tokens userID created in org and
// the invites userID sent there, when userID is not a member: after a
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
	for r, err := range c.read(ctx, memberFilter(org, userID), cc.consistency, 0) {
		if err != nil {
			return "", translate("RoleOf", err)
		}
		if role := Role(r.GetRelation()); role.Valid() {
			return role, nil
		}
	}
	return "", opErr("RoleOf", ErrNotFound, "user %q is not a member of %q", userID, org)
}
