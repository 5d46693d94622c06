package client

import (
	"context"
	"maps"
	"slices"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// artifactTypes lists what belongs to an organization through an
// `organization` relation, with the artifact's other relations, which go
// with it. Keep it in step with schema.zed.
var artifactTypes = []struct {
	typ       string
	relations []string
}{
	{TypeDataset, []string{RelOwner}},
	{TypeAdapterRepository, []string{RelOwner}},
	{TypeTrainingJob, []string{RelRepository, RelCreator}},
	{TypeDeployment, nil},
	{TypeAPIToken, []string{RelOwner}},
	{TypeInvite, []string{RelInviter, RelGrantsUser, RelGrantsReadonly, RelAcceptedBy}},
	{TypeLLM, []string{RelPrompter}}, // private LLMs
}

// DeleteOrganization is the support action "delete the entire account and
// all artifacts": it removes every relationship of the organization, of
// every artifact that belongs to it (datasets, adapter repositories,
// training jobs, deployments, API tokens and their indexes, invites,
// private LLMs), of its memberships' bookkeeping, and every relationship
// whose subject is the organization (its private LLMs' prompter, its
// platform listing).
//
// First it fences the organization off, in that order: its platform
// listing goes, so that no write into it can succeed any more (creating
// an artifact, a token, an invite or a membership requires the listing as
// a write precondition; a role change in progress fails too), then the
// roles its members' API tokens hold, then those of the User and Read-only
// members themselves. The support account stays until the end, so that
// support may resume an interrupted deletion.
//
// An organization with 100,000 artifacts does not fit in one write, so the
// deletion goes in pages, each a short call that honours ctx. It is not
// atomic, but it is resumable: the links from artifacts to the
// organization go last (and the organization's own relationships after
// them), so calling it again after an interruption finishes the job. It
// fails with ErrNotFound when there is nothing to delete.
//
// Cost: for each artifact type it reads the artifacts' other relations
// type-wide (e.g. every dataset#owner), because that is one indexed scan
// on every datastore, where one call per artifact is not.
func (c *Client) DeleteOrganization(ctx context.Context, org string) (Revision, error) {
	const op = "DeleteOrganization"
	if err := validateID("org", org); err != nil {
		return "", err
	}
	orgSubject := Organization(org).Subject()
	var last Revision
	keep := func(rev Revision) {
		if rev != "" {
			last = rev
		}
	}

	everyUser := Subject{Object: Object{Type: TypeUser}}
	everyToken := Subject{Object: Object{Type: TypeAPIToken}}
	// The members, for their membership objects (see the end).
	people := map[string]struct{}{}
	for r, err := range c.read(ctx, filter(TypeOrganization, org, "", &everyUser), FullyConsistent(), 0) {
		if err != nil {
			return "", translate(op, err)
		}
		people[r.GetSubject().GetObject().GetObjectId()] = struct{}{}
	}
	for _, f := range []*v1.RelationshipFilter{
		filter(TypePlatform, PlatformID, RelOrganization, &orgSubject),
		filter(TypeOrganization, org, RelUser, &everyToken),
		filter(TypeOrganization, org, RelReadonly, &everyToken),
		filter(TypeOrganization, org, RelSupport, &everyToken),
		filter(TypeOrganization, org, RelUser, &everyUser),
		filter(TypeOrganization, org, RelReadonly, &everyUser),
	} {
		rev, err := c.deleteMatching(ctx, op, f)
		if err != nil {
			return last, err
		}
		keep(rev)
	}

	// The memberships' bookkeeping (token indexes, role change fences),
	// before the tokens: should the deletion be interrupted, the next one
	// finds them again through the tokens' owners.
	rev, err := c.deleteMemberships(ctx, op, org, people, freshAfter(last))
	if err != nil {
		return last, err
	}
	keep(rev)

	for _, at := range artifactTypes {
		ids := map[string]struct{}{}
		// After the fence (and each page since): freshAfter, so that no
		// artifact written before the fence is missed.
		for r, err := range c.read(ctx, filter(at.typ, "", RelOrganization, &orgSubject), freshAfter(last), 0) {
			if err != nil {
				return last, translate(op, err)
			}
			ids[r.GetResource().GetObjectId()] = struct{}{}
		}
		if len(ids) == 0 {
			continue
		}
		for _, relation := range at.relations {
			rev, err := c.deleteWhere(ctx, op, filter(at.typ, "", relation, nil), freshAfter(last), func(r *v1.Relationship) bool {
				_, ok := ids[r.GetResource().GetObjectId()]
				return ok
			})
			if err != nil {
				return last, err
			}
			keep(rev)
		}
		if at.typ == TypeAPIToken {
			// The owners' token indexes: user:X#api_token@api_token:ID.
			tokens := Subject{Object: Object{Type: TypeAPIToken}}
			rev, err := c.deleteWhere(ctx, op, filter(TypeUser, "", RelAPIToken, &tokens), freshAfter(last), func(r *v1.Relationship) bool {
				_, ok := ids[r.GetSubject().GetObject().GetObjectId()]
				return ok
			})
			if err != nil {
				return last, err
			}
			keep(rev)
		}
		rev, err := c.deleteMatching(ctx, op, filter(at.typ, "", RelOrganization, &orgSubject))
		if err != nil {
			return last, err
		}
		keep(rev)
	}

	// Private LLMs registered before they named their organization.
	members := Subject{Object: Organization(org), Relation: PermMember}
	for _, f := range []*v1.RelationshipFilter{
		filter(TypeLLM, "", RelPrompter, &members),
		filter(TypeOrganization, org, "", nil),
	} {
		rev, err := c.deleteMatching(ctx, op, f)
		if err != nil {
			return last, err
		}
		keep(rev)
	}
	if last == "" {
		return "", opErr(op, ErrNotFound, "organization %q has nothing to delete", org)
	}
	return last, nil
}

// exactDeleteBatch is how many named relationships deleteWhere deletes per
// write. SpiceDB's PostgreSQL datastore finds them with one OR of
// equalities, and PostgreSQL's time to plan it grows with the square of
// its length: about 20 ms for 100, 1 s for 1,000 (EXPLAIN of the
// statement). DeleteOrganization of 100,000 datasets on PostgreSQL spent
// 120 s in these writes at 1,000 per write, 36 s at 100 (and more again at
// 50: per-write costs take over). The other datastores do not mind.
const exactDeleteBatch = 100

// deleteWhere deletes the relationships the filter matches (read at cons)
// and keep accepts, a batch of deletions at a time.
func (c *Client) deleteWhere(ctx context.Context, op string, f *v1.RelationshipFilter, cons Consistency, keep func(*v1.Relationship) bool) (Revision, error) {
	var last Revision
	var batch []*v1.RelationshipUpdate
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rev, err := c.write(ctx, op, batch, nil, true)
		if err != nil {
			return err
		}
		last, batch = rev, batch[:0]
		return nil
	}
	for r, err := range c.read(ctx, f, cons, 0) {
		if err != nil {
			return last, translate(op, err)
		}
		if !keep(r) {
			continue
		}
		batch = append(batch, remove(r))
		if len(batch) >= min(exactDeleteBatch, c.cfg.maxWriteSize) {
			if err := flush(); err != nil {
				return last, err
			}
		}
	}
	return last, flush()
}

// deleteMemberships deletes the membership objects of org: those named
// "org|user" in one go (by prefix), the digests one by one, for the given
// members and the owners of org's API tokens (read at cons).
func (c *Client) deleteMemberships(ctx context.Context, op, org string, people map[string]struct{}, cons Consistency) (Revision, error) {
	orgSubject := Organization(org).Subject()
	tokens := map[string]struct{}{}
	for r, err := range c.read(ctx, filter(TypeAPIToken, "", RelOrganization, &orgSubject), cons, 0) {
		if err != nil {
			return "", translate(op, err)
		}
		tokens[r.GetResource().GetObjectId()] = struct{}{}
	}
	if len(tokens) > 0 {
		for r, err := range c.read(ctx, filter(TypeAPIToken, "", RelOwner, nil), cons, 0) {
			if err != nil {
				return "", translate(op, err)
			}
			if _, ok := tokens[r.GetResource().GetObjectId()]; ok {
				people[r.GetSubject().GetObject().GetObjectId()] = struct{}{}
			}
		}
	}
	var filters []*v1.RelationshipFilter
	if !strings.Contains(org, "|") {
		filters = append(filters, &v1.RelationshipFilter{ResourceType: TypeMembership, OptionalResourceIdPrefix: org + "|"})
	}
	for _, p := range slices.Sorted(maps.Keys(people)) {
		if m := Membership(org, p); !strings.Contains(m.ID, "|") {
			filters = append(filters, filter(m.Type, m.ID, "", nil))
		}
	}
	var last Revision
	for _, f := range filters {
		rev, err := c.deleteMatching(ctx, op, f)
		if err != nil {
			return last, err
		}
		if rev != "" {
			last = rev
		}
	}
	return last, nil
}
