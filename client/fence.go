package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// complete, the change first raises a fence,
// membership:org|user#role_change@role_change:N, N random: token creation
// requires no fence. Every later write of the change requires its own
// fence N, and renews its expiration: a change whose fence expired (it
// stalled) or was taken over (by another change, a token repair or the
// organization's deletion) writes nothing more, so at most one change
// moves a member's tokens at a time. The fence is N's own, not the
// member's: a stalled change cannot mistake a later change's fence for its
// own.
//
// The order keeps tokens at or below the owner at every step: the roles
// above the new one are taken from the tokens, then the owner moves, then
// the tokens get the new role. An interrupted change leaves tokens below
// their owner, never above, and the next change (or a retry) moves them
// all. Tokens may be deleted meanwhile (a member deleting its own tokens
// must neither wait nor stop its demotion or removal): taking roles away
// requires nothing of the tokens, and only the writes that grant a role
// require their tokens to exist (see moveBehindFence).

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
		opErr("", ErrConflict, "the role change of %s took too long, or another change took over", f.membership.ID))
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

// tokenGone is the failure of a write that grants a role to a token
// deleted meanwhile: the change leaves that token out and writes again.
type tokenGone struct{ token string }

func (e *tokenGone) Error() string { return fmt.Sprintf("API token %q was deleted meanwhile", e.token) }

// moveBehindFence is moveRole's work behind its fence: list the tokens
// (none can be added any more), then move the owner and the tokens in
// writes that each require the fence and renew it; the last one takes it
// down. The order keeps every token at or below its owner:
//
//  1. take from the tokens every role above the new one (a demotion or a
//     removal; nothing for a promotion);
//  2. move the owner;
//  3. give the tokens the new role (none for a removal).
//
// Tokens may still be deleted meanwhile (deleting one's own tokens must
// neither wait nor stop one's removal or demotion). Steps 1 and 2 only
// take roles away, which a deleted token cannot misuse, so they require
// nothing of the tokens and no deletion can stop them. Step 3 grants, so
// each of its writes requires every token it grants to exist; when one was
// deleted, the write is made again without it.
func (c *Client) moveBehindFence(ctx context.Context, op, org string, u Subject, from, to Role, f fence, fenced Revision,
	pres []precondition, holds func(Role) precondition) (Revision, error) {
	tokens, err := c.liveTokens(ctx, op, org, u.ID, freshAfter(fenced))
	if err != nil {
		return "", err
	}
	o := Organization(org)
	above := func(s Subject) []*v1.RelationshipUpdate { // every role above to
		var updates []*v1.RelationshipUpdate
		for _, r := range roles {
			if r.rank() > to.rank() {
				updates = append(updates, remove(rel(o, string(r), s)))
			}
		}
		return updates
	}
	exactly := func(s Subject) []*v1.RelationshipUpdate { // to, and no other role
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
	type step struct {
		updates func(tokens []string) []*v1.RelationshipUpdate
		tokens  []string // the tokens it changes
		grants  bool     // whether it gives them a role (then they must exist)
		after   Role     // the owner's role once written
	}
	batches := func(per func(Subject) []*v1.RelationshipUpdate, grants bool, after Role) []step {
		var out []step
		if len(tokens) == 0 || len(per(u)) == 0 {
			return nil
		}
		n := max(1, (c.cfg.maxWriteSize-1)/len(per(u))) // one update renews or removes the fence
		for start := 0; start < len(tokens); start += n {
			out = append(out, step{tokens: tokens[start:min(start+n, len(tokens))], grants: grants, after: after,
				updates: func(ts []string) []*v1.RelationshipUpdate {
					var updates []*v1.RelationshipUpdate
					for _, t := range ts {
						updates = append(updates, per(Token(t).Subject())...)
					}
					return updates
				}})
		}
		return out
	}
	var steps []step
	if to.rank() < from.rank() || to == from {
		steps = append(steps, batches(above, false, from)...)
	}
	steps = append(steps, step{updates: func([]string) []*v1.RelationshipUpdate { return exactly(u) }, after: to})
	if to != "" {
		steps = append(steps, batches(exactly, true, to)...)
	}

	var rev Revision
	current := from
	for i, st := range steps {
		fenceUpdate := touch(f.relationship())
		if i == len(steps)-1 {
			fenceUpdate = remove(rel(f.membership, RelRoleChange, f.change))
		}
		for {
			stepPres := concat(pres, []precondition{f.held(), holds(current)})
			if st.grants {
				for _, t := range st.tokens {
					stepPres = append(stepPres, mustExist(filter(TypeAPIToken, t, RelOwner, &u), // as liveTokens tells
						&Error{Kind: ErrConflict, Err: &tokenGone{t}}))
				}
			}
			if c.beforeFencedWrite != nil {
				c.beforeFencedWrite(i)
			}
			rev, err = c.write(ctx, op, append(st.updates(st.tokens), fenceUpdate), stepPres, false)
			var gone *tokenGone
			if err == nil || !errors.As(err, &gone) {
				break
			}
			left := slices.DeleteFunc(slices.Clone(st.tokens), func(t string) bool { return t == gone.token })
			if len(left) == len(st.tokens) {
				break // not one of this write's tokens: report it
			}
			st.tokens = left
		}
		if err != nil {
			return "", err
		}
		current = st.after
	}
	return rev, nil
}

// liveTokens lists owner's tokens in org from the index
// membership#api_token, keeping those that still exist (the owner's
// tokens, one indexed read), and deletes the index entries of tokens that
// no longer do (a token deletion interrupted half-way, or a relationship
// deleted by hand): only a token that exists ever gets a role.
func (c *Client) liveTokens(ctx context.Context, op, org, owner string, cons Consistency) ([]string, error) {
	indexed, err := c.tokensOf(ctx, org, owner, cons)
	if err != nil || len(indexed) == 0 {
		return nil, translate(op, err)
	}
	exists := map[string]bool{}
	u := User(owner)
	for r, err := range c.read(ctx, filter(TypeAPIToken, "", RelOwner, &u), cons, 0) {
		if err != nil {
			return nil, translate(op, err)
		}
		exists[r.GetResource().GetObjectId()] = true
	}
	var live []string
	var stale []*v1.RelationshipUpdate
	m := Membership(org, owner)
	for _, t := range indexed {
		if exists[t] {
			live = append(live, t)
		} else {
			stale = append(stale, remove(rel(m, RelAPIToken, Token(t).Subject())))
		}
	}
	if _, err := c.writeBatches(ctx, op, stale); err != nil {
		return nil, err
	}
	return live, nil
}

// concat joins precondition lists into a new one.
func concat(lists ...[]precondition) []precondition {
	var out []precondition
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
