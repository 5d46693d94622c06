package client

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// registerArtifact creates an artifact of an organization: its
// organization relationship and the extra ones, in one write that fails
// with ErrNotFound when the organization does not exist and with
// ErrAlreadyExists when the artifact does.
func (c *Client) registerArtifact(ctx context.Context, op string, resource Object, org string, extra []*v1.Relationship, pres ...precondition) (Revision, error) {
	if err := resource.Validate("id"); err != nil {
		return "", err
	}
	if err := validateID("org", org); err != nil {
		return "", err
	}
	updates := []*v1.RelationshipUpdate{create(rel(resource, RelOrganization, Organization(org).Subject()))}
	for _, r := range extra {
		updates = append(updates, create(r))
	}
	pres = append([]precondition{
		orgExists(org),
		mustNotExist(filter(resource.Type, resource.ID, "", nil), opErr("", ErrAlreadyExists, "%s exists", resource)),
	}, pres...)
	return c.write(ctx, op, updates, pres, false)
}

// deleteObject deletes every relationship of the object as a resource. It
// fails with ErrNotFound when there was none.
func (c *Client) deleteObject(ctx context.Context, op string, resource Object) (Revision, error) {
	if err := resource.Validate("id"); err != nil {
		return "", err
	}
	rev, err := c.deleteMatching(ctx, op, filter(resource.Type, resource.ID, "", nil))
	if err != nil {
		return "", err
	}
	if rev == "" {
		return "", opErr(op, ErrNotFound, "%s does not exist", resource)
	}
	return rev, nil
}

// ownerIsMember is the precondition that owner belongs to org.
func ownerIsMember(org, owner string) precondition {
	return mustExist(memberFilter(org, owner), opErr("", ErrNotFound, "owner %q is not a member of %q", owner, org))
}

// RegisterDataset records a dataset of org, owned by owner (a member).
func (c *Client) RegisterDataset(ctx context.Context, org, id, owner string) (Revision, error) {
	if err := validateID("owner", owner); err != nil {
		return "", err
	}
	d := Dataset(id)
	return c.registerArtifact(ctx, "RegisterDataset", d, org,
		[]*v1.Relationship{rel(d, RelOwner, User(owner))}, ownerIsMember(org, owner))
}

// DeleteDataset deletes a dataset's relationships.
func (c *Client) DeleteDataset(ctx context.Context, id string) (Revision, error) {
	return c.deleteObject(ctx, "DeleteDataset", Dataset(id))
}

// RegisterAdapterRepository records an adapter repository of org, created by owner (a member).
func (c *Client) RegisterAdapterRepository(ctx context.Context, org, id, owner string) (Revision, error) {
	if err := validateID("owner", owner); err != nil {
		return "", err
	}
	r := AdapterRepository(id)
	return c.registerArtifact(ctx, "RegisterAdapterRepository", r, org,
		[]*v1.Relationship{rel(r, RelOwner, User(owner))}, ownerIsMember(org, owner))
}

// DeleteAdapterRepository deletes an adapter repository's relationships.
func (c *Client) DeleteAdapterRepository(ctx context.Context, id string) (Revision, error) {
	return c.deleteObject(ctx, "DeleteAdapterRepository", AdapterRepository(id))
}

// RegisterTrainingJob records a training job of org, started by creator (a
// member), training into repository (an adapter repository of the same
// organization; empty for none).
func (c *Client) RegisterTrainingJob(ctx context.Context, org, id, repository, creator string) (Revision, error) {
	if err := validateID("creator", creator); err != nil {
		return "", err
	}
	j := TrainingJob(id)
	extra := []*v1.Relationship{rel(j, RelCreator, User(creator))}
	pres := []precondition{ownerIsMember(org, creator)}
	if repository != "" {
		if err := validateID("repository", repository); err != nil {
			return "", err
		}
		extra = append(extra, rel(j, RelRepository, AdapterRepository(repository).Subject()))
		o := Organization(org).Subject()
		pres = append(pres, mustExist(filter(TypeAdapterRepository, repository, RelOrganization, &o),
			opErr("", ErrNotFound, "adapter repository %q is not in %q", repository, org)))
	}
	return c.registerArtifact(ctx, "RegisterTrainingJob", j, org, extra, pres...)
}

// DeleteTrainingJob deletes a training job's relationships.
func (c *Client) DeleteTrainingJob(ctx context.Context, id string) (Revision, error) {
	return c.deleteObject(ctx, "DeleteTrainingJob", TrainingJob(id))
}

// RegisterDeployment records a deployment of org.
func (c *Client) RegisterDeployment(ctx context.Context, org, id string) (Revision, error) {
	return c.registerArtifact(ctx, "RegisterDeployment", Deployment(id), org, nil)
}

// DeleteDeployment deletes a deployment's relationships.
func (c *Client) DeleteDeployment(ctx context.Context, id string) (Revision, error) {
	return c.deleteObject(ctx, "DeleteDeployment", Deployment(id))
}

// RegisterSharedLLM makes llm:id a shared serverless LLM, prompted by every
// user and by every organization's API tokens. Registering it again is a
// harmless no-op; it fails with ErrAlreadyExists when llm:id is an
// organization's private LLM.
func (c *Client) RegisterSharedLLM(ctx context.Context, id string) (Revision, error) {
	l := LLM(id)
	if err := l.Validate("id"); err != nil {
		return "", err
	}
	updates := []*v1.RelationshipUpdate{
		touch(rel(l, RelPrompter, Subject{Object: Object{Type: TypeUser, ID: "*"}})),
		touch(rel(l, RelPrompter, Subject{Object: Object{Type: TypePlatform, ID: PlatformID}, Relation: PermMember})),
	}
	// Never merge into an organization's private LLM of the same ID: its
	// organization could then delete (or, deleted itself, take down) the
	// platform's shared LLM.
	pres := []precondition{
		mustNotExist(filter(TypeLLM, id, RelOrganization, nil), opErr("", ErrAlreadyExists, "%s is a private LLM of an organization", l)),
	}
	return c.write(ctx, "RegisterSharedLLM", updates, pres, true)
}

// RegisterPrivateLLM makes llm:id a private serverless LLM of org, prompted
// by its members (and their tokens) only, and managed like its deployments.
func (c *Client) RegisterPrivateLLM(ctx context.Context, org, id string) (Revision, error) {
	l := LLM(id)
	return c.registerArtifact(ctx, "RegisterPrivateLLM", l, org,
		[]*v1.Relationship{rel(l, RelPrompter, Subject{Object: Organization(org), Relation: PermMember})})
}

// DeleteLLM deletes an LLM's relationships.
func (c *Client) DeleteLLM(ctx context.Context, id string) (Revision, error) {
	return c.deleteObject(ctx, "DeleteLLM", LLM(id))
}
