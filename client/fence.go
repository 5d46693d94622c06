package client

import (
	"context"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// A member's API tokens hold the member's role relationship themselves
// (schema.zed, definition organization), so a role change or a removal must
// move every token's role with the owner's, and a token must never hold a
// role above its owner's, whatever is interrupted, retried or concurrent.
//
// The tokens are listed (membership#api_token), then moved, possibly in
// several writes (a member may have thousands). So that the list is
// complete and stays so, the change first raises a fence,
// membership:org|user#role_change@role_change:N, N random: token creation
// requires no fence, and token deletion takes the fence down. Every later
// write of the change requires its own fence N, and renews its expiration:
// a change whose fence expired (it stalled) or was taken over (by another
// change, a token deletion or the organization's deletion) writes nothing
// more, so at most one change moves a member's tokens at a time, and it
// moves exactly the tokens it listed. The fence is N's own, not the
// member's: a stalled change cannot mistake a later change's fence for its
// own.
//
// The order keeps tokens at or below the owner at every step: a promotion
// moves the owner first, then the tokens; a demotion or removal the tokens
// first, then the owner. An interrupted change leaves tokens below their
// owner, never above, and the next change (or a retry) moves them all.

// roleChangeFence is how long a fence lives after each write of its change:
// the longest pause between two writes of one change, and the longest an
// interrupted change blocks the member's token creations and role changes.
// The expiration is computed with this process's clock and compared with
// the datastore's, so the two must agree to within a few seconds.
const roleChangeFence = 30 * time.Second

// fence is one role change's fence on one membership.
type fence struct {
	membership Object
	change     Subject
}

// relationship is the fence's relationship, expiring roleChangeFence from now.
func (f fence) relationship() *v1.Relationship {
	return expiring(rel(f.membership, RelRoleChange, f.change), time.Now().Add(roleChangeFence))
}

// held is the precondition that the fence is still this change's.
func (f fence) held() precondition {
	return mustExist(filter(f.membership.Type, f.membership.ID, RelRoleChange, &f.change),
		opErr("", ErrConflict, "the role change of %s took too long, or another change or a token deletion took over", f.membership.ID))
}

// noRoleChange is the precondition of token creation: no role change of
// owner in org is in progress.
func noRoleChange(org, owner string) precondition {
	m := Membership(org, owner)
	return mustNotExist(filter(m.Type, m.ID, RelRoleChange, nil),
		opErr("", ErrConflict, "the role of %q in %q is being changed", owner, org))
}

// takeFenceDown returns the updates that delete the fence of a role change
// of userID in org in progress, if any, with the preconditions that keep
// the write exact: that fence still exists, or, when there was none, none
// appeared. A write carrying them ends the change in progress (its next
// write fails), and no change is in progress once it is done.
func (c *Client) takeFenceDown(ctx context.Context, op, org, userID string) ([]*v1.RelationshipUpdate, []precondition, error) {
	m := Membership(org, userID)
	var updates []*v1.RelationshipUpdate
	var pres []precondition
	for r, err := range c.read(ctx, filter(m.Type, m.ID, RelRoleChange, nil), FullyConsistent(), 0) {
		if err != nil {
			return nil, nil, translate(op, err)
		}
		change := Subject{Object: Object{Type: TypeRoleChange, ID: r.GetSubject().GetObject().GetObjectId()}}
		updates = append(updates, remove(rel(m, RelRoleChange, change)))
		pres = append(pres, fence{membership: m, change: change}.held())
	}
	if len(pres) == 0 {
		pres = append(pres, noRoleChange(org, userID))
	}
	return updates, pres, nil
}

// moveRole changes userID's role in org from one role to another ("" to
// remove it), with the role every API token of userID in org holds (see
// the top of this file). pres are the conditions of the change (the
// organization, the membership, the role from); every write requires them,
// with the owner's role as it is at that step.
func (c *Client) moveRole(ctx context.Context, op, org, userID string, from, to Role) (Revision, error) {
	u := User(userID)
	holds := func(r Role) precondition {
		return mustExist(filter(TypeOrganization, org, string(r), &u), opErr("", ErrConflict, "the role of %q in %q changed meanwhile", userID, org))
	}
	pres := []precondition{
		orgExists(org),
		mustExist(memberFilter(org, userID), opErr("", ErrNotFound, "user %q is not a member of %q", userID, org)),
	}

	// Raise the fence, taking over an earlier one (an interrupted change's,
	// or a concurrent one's, which then fails).
	id, err := newSecretID()
	if err != nil {
		return "", &Error{Op: op, Kind: ErrInternal, Err: err}
	}
	f := fence{membership: Membership(org, userID), change: Subject{Object: Object{Type: TypeRoleChange, ID: id}}}
	down, takeover, err := c.takeFenceDown(ctx, op, org, userID)
	if err != nil {
		return "", err
	}
	fenced, err := c.write(ctx, op, append(down, create(f.relationship())), concat(pres, takeover, []precondition{holds(from)}), false)
	if err != nil {
		return "", err
	}
	rev, err := c.moveBehindFence(ctx, op, org, u, from, to, f, fenced, pres, holds)
	if err != nil {
		// Take the fence down rather than let it block the member's token
		// creations until it expires. Only this change's: a fence that
		// took this one's place belongs to a change that goes on.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = c.write(cleanup, op, []*v1.RelationshipUpdate{remove(rel(f.membership, RelRoleChange, f.change))}, nil, true)
		return "", err
	}
	return rev, nil
}

// moveBehindFence is moveRole's work behind its fence: list the tokens
// (the list cannot change any more), then move the owner and the tokens
// in the order that keeps every token at or below its owner, in writes
// that each require the fence and renew it; the last one takes it down.
func (c *Client) moveBehindFence(ctx context.Context, op, org string, u Subject, from, to Role, f fence, fenced Revision,
	pres []precondition, holds func(Role) precondition) (Revision, error) {
	tokens, err := c.tokensOf(ctx, org, u.ID, freshAfter(fenced))
	if err != nil {
		return "", translate(op, err)
	}
	o := Organization(org)
	// Every other role goes, not only from: whatever the owner or a token
	// held, afterwards it holds exactly the new role, or none.
	move := func(s Subject) []*v1.RelationshipUpdate {
		var updates []*v1.RelationshipUpdate
		for _, r := range roles {
			if r != to {
				updates = append(updates, remove(rel(o, string(r), s)))
			}
		}
		if to != "" {
			updates = append(updates, touch(rel(o, string(to), s)))
		}
		return updates
	}
	owner := move(u)
	perToken := len(owner)
	var tokenWrites [][]*v1.RelationshipUpdate
	perWrite := max(1, (c.cfg.maxWriteSize-1)/perToken) // one update renews or removes the fence
	for start := 0; start < len(tokens); start += perWrite {
		var batch []*v1.RelationshipUpdate
		for _, t := range tokens[start:min(start+perWrite, len(tokens))] {
			batch = append(batch, move(Token(t).Subject())...)
		}
		tokenWrites = append(tokenWrites, batch)
	}

	// The writes in order; the owner's role at each step is the
	// precondition of the next.
	type step struct {
		updates []*v1.RelationshipUpdate
		after   Role // the owner's role once this step is written
	}
	var steps []step
	if to.rank() > from.rank() {
		steps = append(steps, step{owner, to})
		for _, w := range tokenWrites {
			steps = append(steps, step{w, to})
		}
	} else {
		for _, w := range tokenWrites {
			steps = append(steps, step{w, from})
		}
		steps = append(steps, step{owner, to})
	}
	var rev Revision
	current := from
	for i, s := range steps {
		fenceUpdate := touch(f.relationship())
		if i == len(steps)-1 {
			fenceUpdate = remove(rel(f.membership, RelRoleChange, f.change))
		}
		if c.beforeFencedWrite != nil {
			c.beforeFencedWrite(i)
		}
		if rev, err = c.write(ctx, op, append(s.updates, fenceUpdate), concat(pres, []precondition{f.held(), holds(current)}), false); err != nil {
			return "", err
		}
		current = s.after
	}
	return rev, nil
}

// concat joins precondition lists into a new one.
func concat(lists ...[]precondition) []precondition {
	var out []precondition
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
