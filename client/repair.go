package client

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// RepairTokens brings every API token in line with the current model
// (schema.zed) and with its owner: it gets its index membership#api_token,
// without which a role change of its owner would not find it, and holds
// exactly its owner's role in its organization, or none when the owner is
// no member. It is for tokens that earlier versions of Spicegate wrote
// (without the index, or without a role), and for relationships written
// around the facade (a seed reloaded over changed memberships, zed).
//
// Each member's tokens are repaired in writes that require what the repair
// read: the owner's role (or its absence) and every token's existence, so
// a token deleted meanwhile stays deleted; and each takes down a role
// change's fence, as another role change does, so that no change in progress
// moves a list of tokens the repair changed. It reads every token and
// membership (indexed type-wide reads): ApplySchema runs it every time
// (serve at start, `spicegate schema apply`), the seed loaders after
// loading. The tokens of an organization being deleted are left to the
// deletion. It is idempotent, and
// returns how many tokens it changed.
func (c *Client) RepairTokens(ctx context.Context) (int, error) {
	const op = "RepairTokens"
	type token struct{ org, owner string }
	tokens := map[string]*token{}
	get := func(id string) *token {
		if tokens[id] == nil {
			tokens[id] = &token{}
		}
		return tokens[id]
	}
	scan := func(f *v1.RelationshipFilter, each func(*v1.Relationship)) error {
		for r, err := range c.read(ctx, f, FullyConsistent(), 0) {
			if err != nil {
				return translate(op, err)
			}
			each(r)
		}
		return nil
	}
	subjectID := func(r *v1.Relationship) string { return r.GetSubject().GetObject().GetObjectId() }
	indexed := map[[2]string]bool{} // membership ID, token ID
	tokenRoles := map[string][]Role{}
	memberRole := map[token]Role{}
	everyToken := Subject{Object: Object{Type: TypeAPIToken}}
	everyUser := Subject{Object: Object{Type: TypeUser}}
	for _, step := range []struct {
		f    *v1.RelationshipFilter
		each func(*v1.Relationship)
	}{
		{filter(TypeAPIToken, "", RelOrganization, nil), func(r *v1.Relationship) { get(r.GetResource().GetObjectId()).org = subjectID(r) }},
		{filter(TypeAPIToken, "", RelOwner, nil), func(r *v1.Relationship) { get(r.GetResource().GetObjectId()).owner = subjectID(r) }},
		{filter(TypeMembership, "", RelAPIToken, nil), func(r *v1.Relationship) { indexed[[2]string{r.GetResource().GetObjectId(), subjectID(r)}] = true }},
		{filter(TypeOrganization, "", "", &everyToken), func(r *v1.Relationship) {
			if role := Role(r.GetRelation()); role.Valid() {
				tokenRoles[subjectID(r)] = append(tokenRoles[subjectID(r)], role)
			}
		}},
		{filter(TypeOrganization, "", "", &everyUser), func(r *v1.Relationship) {
			if role := Role(r.GetRelation()); role.Valid() {
				memberRole[token{r.GetResource().GetObjectId(), subjectID(r)}] = role
			}
		}},
	} {
		if err := scan(step.f, step.each); err != nil {
			return 0, err
		}
	}

	// What each membership's tokens need, one membership at a time.
	needs := map[token][]tokenRepair{}
	for id, t := range tokens {
		if t.org == "" || t.owner == "" {
			continue // half a token: DeleteAPIToken's business
		}
		m := Membership(t.org, t.owner)
		want := memberRole[*t]
		var updates []*v1.RelationshipUpdate
		if !indexed[[2]string{m.ID, id}] {
			updates = append(updates, touch(rel(m, RelAPIToken, Token(id).Subject())))
		}
		for _, r := range tokenRoles[id] {
			if r != want {
				updates = append(updates, remove(rel(Organization(t.org), string(r), Token(id).Subject())))
			}
		}
		if want != "" && !slices.Contains(tokenRoles[id], want) {
			updates = append(updates, touch(rel(Organization(t.org), string(want), Token(id).Subject())))
		}
		if len(updates) > 0 {
			needs[*t] = append(needs[*t], tokenRepair{id, updates})
		}
	}
	repaired := 0
	for _, m := range slices.SortedFunc(maps.Keys(needs), func(a, b token) int {
		return cmp.Or(cmp.Compare(a.org, b.org), cmp.Compare(a.owner, b.owner))
	}) {
		n, err := c.repairMembership(ctx, op, m.org, m.owner, memberRole[m], needs[m])
		repaired += n
		if errors.Is(err, ErrNotFound) {
			continue // the organization is being deleted: its tokens go with it
		}
		if err != nil {
			return repaired, err
		}
	}
	return repaired, nil
}

// tokenRepair is what one token needs.
type tokenRepair struct {
	token   string
	updates []*v1.RelationshipUpdate
}

// repairMembership writes the repairs of owner's tokens in org, whose role
// was read as ownerRole ("" for none), and returns how many tokens it
// changed.
func (c *Client) repairMembership(ctx context.Context, op, org, owner string, ownerRole Role, repairs []tokenRepair) (int, error) {
	u := User(owner)
	listed := orgExists(org) // an organization being deleted gets nothing back
	held := mustExist(filter(TypeOrganization, org, string(ownerRole), &u), opErr("", ErrConflict, "the role of %q in %q changed meanwhile", owner, org))
	if ownerRole == "" {
		held = mustNotExist(memberFilter(org, owner), opErr("", ErrConflict, "%q joined %q meanwhile", owner, org))
	}
	// A hundred tokens per write: each brings the precondition that it
	// still exists, and SpiceDB bounds preconditions per write.
	const perWrite = 100
	done := 0
	o := Organization(org).Subject()
	for start := 0; start < len(repairs); start += perWrite {
		batch := repairs[start:min(start+perWrite, len(repairs))]
		down, pres, err := c.takeFenceDown(ctx, op, org, owner)
		if err != nil {
			return done, err
		}
		updates := down
		pres = append(pres, listed, held)
		for _, r := range batch {
			updates = append(updates, r.updates...)
			pres = append(pres, mustExist(filter(TypeAPIToken, r.token, RelOrganization, &o), opErr("", ErrConflict, "token %q was deleted meanwhile", r.token)))
		}
		if _, err := c.write(ctx, op, updates, pres, false); err != nil {
			return done, err
		}
		done += len(batch)
	}
	return done, nil
}
