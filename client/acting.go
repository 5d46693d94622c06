package client

import (
	"context"
	"errors"
	"time"
)

// Actor performs writes on behalf of someone, and is the one place where
// Spicegate decides who may write what. Every write of the HTTP API, of the
// CLI and of services that act for their users goes through an Actor:
//
//   - [Client.As] a user: its own rights in each organization.
//   - [Client.As] an API token: exactly its owner's rights, in the token's
//     organization only, for as long as the owner holds the role (the schema
//     ties each token to its owner's live membership).
//   - [Client.System]: a trusted backend with no end user (provisioning,
//     seeding). It holds every permission.
//
// Each method validates its arguments, then checks the permission the
// write needs in the schema, fully consistent (a right revoked a moment ago
// must not authorize anything), and returns ErrPermissionDenied without
// writing anything when the actor lacks it. Writes made for someone (an
// owner, a creator, a first User, a joining user) are made for the actor
// itself: a user or a token may not name anyone else (see onBehalf).
// Writes carry the actor to the audit stream once it is verified.
//
// The check and the write are two calls. The writes that a revoked right
// could abuse carry write preconditions that fail when it was revoked
// meanwhile (an invite's inviter keeps the role, a token's owner is a
// member, the organization is not being deleted).
type Actor struct {
	c       *Client
	subject Subject
	system  bool
}

// SystemActor is the actor the audit stream records for [Client.System]'s writes.
const SystemActor = "system"

// As returns an Actor for subject: a user or an API token.
func (c *Client) As(subject Subject) *Actor { return &Actor{c: c, subject: subject} }

// System returns the Actor of a trusted backend that writes with no end
// user: it holds every permission, and writes that need a person (an
// artifact's owner, a token's owner, the joining user) must name one. Hand
// it only to code whose caller is trusted with every write (in the HTTP
// API: a service token of the admin scope).
func (c *Client) System() *Actor { return &Actor{c: c, system: true} }

// String names the actor as the audit stream records it: "user:alice",
// "api_token:ID" or "system".
func (a *Actor) String() string {
	if a.system {
		return SystemActor
	}
	return a.subject.String()
}

// IsSystem reports whether the actor is [Client.System].
func (a *Actor) IsSystem() bool { return a.system }

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

// validate checks that the actor is a user or an API token.
func (a *Actor) validate() error {
	if a.system {
		return nil
	}
	if err := a.subject.Validate("actor"); err != nil {
		return err
	}
	if a.subject.Relation != "" || (a.subject.Type != TypeUser && a.subject.Type != TypeAPIToken) {
		return argErr("actor", a.subject.String(), "must be a user or an API token (user:ID or api_token:ID)")
	}
	return nil
}

// require checks that the actor holds permission on resource.
func (a *Actor) require(ctx context.Context, op, permission string, resource Object) error {
	if err := a.validate(); err != nil {
		return err
	}
	if a.system {
		return nil
	}
	d, err := a.c.Check(ctx, a.subject, permission, resource, WithConsistency(FullyConsistent()))
	if err == nil && !d.Allowed() {
		// SpiceDB shares one head-revision lookup among concurrent
		// fully consistent requests: this one may have joined a lookup
		// begun before a write it must see (the token the actor just
		// created, say). A second check cannot: the lookup it joins began
		// after the first one ended. Only a denial is checked again: an
		// allow rests on the write's preconditions (see standing).
		d, err = a.c.Check(ctx, a.subject, permission, resource, WithConsistency(FullyConsistent()))
	}
	if err != nil {
		return translate(op, err)
	}
	if !d.Allowed() {
		return opErr(op, ErrPermissionDenied, "%s may not %s on %s", a.subject, permission, resource)
	}
	return nil
}

// audited attaches the verified actor to ctx's Audit: the audit stream
// records who was checked, never what a caller claimed.
func (a *Actor) audited(ctx context.Context) context.Context {
	au, _ := AuditFrom(ctx)
	au.Actor = a.String()
	return WithAudit(ctx, au)
}

// authorize checks that the actor holds permission on resource, and
// returns the context its writes are made with: the verified actor for the
// audit stream, and the actor's standing as write preconditions, so that a
// right revoked between the check and the write refuses the write instead
// of being ignored by it (see standing).
func (a *Actor) authorize(ctx context.Context, op, permission string, resource Object) (context.Context, error) {
	if err := a.require(ctx, op, permission, resource); err != nil {
		return nil, err
	}
	pres, err := a.standing(ctx, op, resource)
	if err != nil {
		return nil, err
	}
	return withPreconditions(a.audited(ctx), pres), nil
}

// standing is what the actor's permission on resource rests on, as write
// preconditions: the role the actor holds in the organization (the one the
// check just passed with: a user's, or the acting token's own, which
// mirrors its owner's), the acting token's membership of it,
// and, for a resource of an organization, that the resource still belongs
// to it (an ID deleted and created again elsewhere is not this resource).
// Every permission Actor checks needs one of these, so a write made after
// any of them changed fails with ErrPermissionDenied and writes nothing.
func (a *Actor) standing(ctx context.Context, op string, resource Object) ([]precondition, error) {
	if a.system {
		return nil, nil
	}
	lost := func(format string, args ...any) error {
		return opErr(op, ErrPermissionDenied, "%s lost its right meanwhile: "+format, append([]any{a.subject}, args...)...)
	}
	var pres []precondition
	org := resource.ID
	if resource.Type != TypeOrganization {
		var found bool
		var err error
		if org, found, err = a.c.organizationOf(ctx, resource); err != nil {
			return nil, translate(op, err)
		}
		if !found {
			return nil, nil // not an organization's (a shared LLM): nothing to rest on but the check
		}
		o := Organization(org).Subject()
		pres = append(pres, mustExist(filter(resource.Type, resource.ID, RelOrganization, &o), lost("%s is no longer in %s", resource, org)))
	}
	if a.subject.Type == TypeAPIToken {
		// What a token's permission rests on is its own role relationship
		// (the one the check just passed with), in its own organization.
		info, err := a.c.APIToken(ctx, a.subject.ID, WithConsistency(FullyConsistent()))
		if errors.Is(err, ErrNotFound) {
			return nil, lost("the token was deleted")
		}
		if err != nil {
			return nil, translate(op, err)
		}
		if info.Org != org {
			return nil, opErr(op, ErrPermissionDenied, "%s acts in %s only, not in %s", a.subject, info.Org, org)
		}
		o := Organization(info.Org).Subject()
		pres = append(pres, mustExist(filter(TypeAPIToken, info.ID, RelOrganization, &o), lost("the token was deleted")))
		role, err := a.c.roleHeld(ctx, org, a.subject, FullyConsistent())
		if err != nil {
			return nil, translate(op, err)
		}
		if role == "" {
			return nil, lost("it holds no role in %s", org)
		}
		return append(pres, mustExist(filter(TypeOrganization, org, string(role), &a.subject), lost("it is no longer %s in %s", role, org))), nil
	}
	role, err := a.c.RoleOf(ctx, org, a.subject.ID, WithConsistency(FullyConsistent()))
	if errors.Is(err, ErrNotFound) {
		return nil, lost("%s left %s", a.subject.ID, org)
	}
	if err != nil {
		return nil, translate(op, err)
	}
	u := User(a.subject.ID)
	return append(pres, mustExist(filter(TypeOrganization, org, string(role), &u), lost("%s is no longer %s in %s", a.subject.ID, role, org))), nil
}

// principal is the user an actor stands for: the user itself, or a
// token's owner. Only called after a permission check passed, so a token
// exists.
func (a *Actor) principal(ctx context.Context, op string) (string, error) {
	if a.subject.Type != TypeAPIToken {
		return a.subject.ID, nil
	}
	info, err := a.c.APIToken(ctx, a.subject.ID, WithConsistency(FullyConsistent()))
	if errors.Is(err, ErrNotFound) {
		return "", opErr(op, ErrPermissionDenied, "%s does not exist", a.subject)
	}
	if err != nil {
		return "", translate(op, err)
	}
	return info.Owner, nil
}

// onBehalf returns the user a write is made for (an owner, a creator, the
// inviter, a token's owner): for the system, given, which it must name; for
// a user or a token, its principal, and given must be empty or that same
// user. This is the rule "members create their own tokens (and datasets,
// repositories, jobs)" in one place: no actor, user or token, writes on
// another user's behalf, so a token can never mint a token for someone
// else, and never one that out-ranks its owner.
func (a *Actor) onBehalf(ctx context.Context, op, arg, given string) (string, error) {
	if a.system {
		if given == "" {
			return "", argErr(arg, given, "is required for a system write (there is no acting user to default to)")
		}
		return given, nil
	}
	p, err := a.principal(ctx, op)
	if err != nil {
		return "", err
	}
	if given != "" && given != p {
		return "", &Error{Op: op, Kind: ErrPermissionDenied, Arg: arg,
			Err: errors.New(a.subject.String() + " writes for " + p + " only, not for " + given)}
	}
	return p, nil
}

// personal guards the writes that belong to a person, not to an
// organization (creating an organization, accepting an invite): a user
// makes them for itself; an API token, which acts in its own organization
// only, never.
func (a *Actor) personal(op, arg, given string) (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	switch {
	case a.system:
		if given == "" {
			return "", argErr(arg, given, "is required for a system write (there is no acting user to default to)")
		}
		return given, nil
	case a.subject.Type == TypeAPIToken:
		return "", opErr(op, ErrPermissionDenied, "%s acts in its own organization only: a person does this", a.subject)
	case given != "" && given != a.subject.ID:
		return "", &Error{Op: op, Kind: ErrPermissionDenied, Arg: arg,
			Err: errors.New(a.subject.String() + " does this for itself only, not for " + given)}
	}
	return a.subject.ID, nil
}

// CreateOrganization signs an organization up: a user creates it with
// itself as the first User (firstUser empty or the actor's own ID); the
// system names any first User. API tokens may not.
func (a *Actor) CreateOrganization(ctx context.Context, org, firstUser string) (Revision, error) {
	const op = "CreateOrganization"
	if err := validateID("org", org); err != nil {
		return "", err
	}
	if err := validateOptionalID("first_user", firstUser); err != nil {
		return "", err
	}
	user, err := a.personal(op, "first_user", firstUser)
	if err != nil {
		return "", err
	}
	return a.c.CreateOrganization(a.audited(ctx), org, user)
}

// DeleteOrganization deletes the account and all its artifacts (needs delete_account).
func (a *Actor) DeleteOrganization(ctx context.Context, org string) (Revision, error) {
	const op = "DeleteOrganization"
	if err := validateID("org", org); err != nil {
		return "", err
	}
	// The deletion is many writes that remove what a standing rests on
	// (the acting token itself, once it reaches the tokens): the right is
	// checked when it starts, and its first write fences the organization.
	if err := a.require(ctx, op, PermDeleteAccount, Organization(org)); err != nil {
		return "", err
	}
	return a.c.DeleteOrganization(a.audited(ctx), org)
}

// ListMembers lists the organization's members (needs view_members).
func (a *Actor) ListMembers(ctx context.Context, org string, opts ...CallOption) ([]Member, error) {
	if err := validateID("org", org); err != nil {
		return nil, err
	}
	if err := a.require(ctx, "ListMembers", PermViewMembers, Organization(org)); err != nil {
		return nil, err
	}
	return a.c.ListMembers(ctx, org, opts...)
}

// AddMember adds a user as User or Read-only without an invite (needs invite_member).
func (a *Actor) AddMember(ctx context.Context, org, userID string, role Role) (Revision, error) {
	return a.roleWrite(ctx, "AddMember", PermInviteMember, org, userID, role, a.c.AddMember)
}

// ChangeRole switches a member between User and Read-only (needs change_role).
func (a *Actor) ChangeRole(ctx context.Context, org, userID string, role Role) (Revision, error) {
	return a.roleWrite(ctx, "ChangeRole", PermChangeRole, org, userID, role, a.c.ChangeRole)
}

// roleWrite is the shape of the writes that give a user a role: validate,
// require the organization permission, write.
func (a *Actor) roleWrite(ctx context.Context, op, permission, org, userID string, role Role, write func(context.Context, string, string, Role) (Revision, error)) (Revision, error) {
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	if !role.invitable() {
		return "", argErr("role", string(role), "must be user or readonly")
	}
	wctx, err := a.authorize(ctx, op, permission, Organization(org))
	if err != nil {
		return "", err
	}
	return write(wctx, org, userID, role)
}

// RemoveMember removes a member and their tokens (needs remove_member).
func (a *Actor) RemoveMember(ctx context.Context, org, userID string) (Revision, error) {
	if err := validateOrgUser(org, userID); err != nil {
		return "", err
	}
	wctx, err := a.authorize(ctx, "RemoveMember", PermRemoveMember, Organization(org))
	if err != nil {
		return "", err
	}
	return a.c.RemoveMember(wctx, org, userID)
}

// CreateInvite invites someone into org with role (needs invite_member).
// The actor, or the token's owner, is the inviter; the system may not
// invite (an invite lives only as long as its inviter may invite).
func (a *Actor) CreateInvite(ctx context.Context, org string, role Role, ttl time.Duration) (InviteInfo, error) {
	const op = "CreateInvite"
	if err := validateID("org", org); err != nil {
		return InviteInfo{}, err
	}
	if !role.invitable() {
		return InviteInfo{}, argErr("role", string(role), "an invite grants user or readonly")
	}
	if ttl <= 0 || ttl > MaxInviteTTL {
		return InviteInfo{}, argErr("ttl", ttl.String(), "must be positive and at most 90 days")
	}
	if a.system {
		return InviteInfo{}, argErr("actor", SystemActor, "an invite needs an inviter: act as the inviting user")
	}
	wctx, err := a.authorize(ctx, op, PermInviteMember, Organization(org))
	if err != nil {
		return InviteInfo{}, err
	}
	inviter, err := a.onBehalf(ctx, op, "inviter", "")
	if err != nil {
		return InviteInfo{}, err
	}
	return a.c.CreateInvite(wctx, org, inviter, role, ttl)
}

// AcceptInvite joins the invite's organization: a user accepts for itself
// (userID empty or its own ID); the system names the user. API tokens may
// not. The invite's ID is the secret that authorizes it.
func (a *Actor) AcceptInvite(ctx context.Context, id, userID string) (Member, Revision, error) {
	const op = "AcceptInvite"
	if err := validateID("invite", id); err != nil {
		return Member{}, "", err
	}
	if err := validateOptionalID("user", userID); err != nil {
		return Member{}, "", err
	}
	user, err := a.personal(op, "user", userID)
	if err != nil {
		return Member{}, "", err
	}
	return a.c.AcceptInvite(a.audited(ctx), id, user)
}

// RevokeInvite withdraws an invite, pending or used (needs invite#revoke:
// whoever may invite).
func (a *Actor) RevokeInvite(ctx context.Context, id string) (Revision, error) {
	if err := validateID("invite", id); err != nil {
		return "", err
	}
	wctx, err := a.authorize(ctx, "RevokeInvite", PermRevoke, Invite(id))
	if err != nil {
		return "", err
	}
	return a.c.RevokeInvite(wctx, id)
}

// CreateAPIToken creates an API token for the actor (owner empty or the
// actor's own user; a token creates one for its owner) in org (needs
// create_api_token). The system names the owner. It returns the token's ID.
func (a *Actor) CreateAPIToken(ctx context.Context, org, owner string) (string, Revision, error) {
	const op = "CreateAPIToken"
	if err := validateID("org", org); err != nil {
		return "", "", err
	}
	if err := validateOptionalID("owner", owner); err != nil {
		return "", "", err
	}
	wctx, err := a.authorize(ctx, op, PermCreateAPIToken, Organization(org))
	if err != nil {
		return "", "", err
	}
	owner, err = a.onBehalf(ctx, op, "owner", owner)
	if err != nil {
		return "", "", err
	}
	return a.c.CreateAPIToken(wctx, org, owner)
}

// DeleteAPIToken deletes a token (needs api_token#delete: its owner, or support).
func (a *Actor) DeleteAPIToken(ctx context.Context, tokenID string) (Revision, error) {
	return a.deleteAs(ctx, "DeleteAPIToken", PermDelete, Token(tokenID), a.c.DeleteAPIToken)
}

// RegisterDataset connects a dataset of org owned by the actor (needs
// connect_dataset); the system names the owner.
func (a *Actor) RegisterDataset(ctx context.Context, org, id, owner string) (Revision, error) {
	return a.registerOwned(ctx, "RegisterDataset", PermConnectDataset, org, id, "owner", owner, func(ctx context.Context, owner string) (Revision, error) {
		return a.c.RegisterDataset(ctx, org, id, owner)
	})
}

// DeleteDataset deletes a dataset (needs dataset#delete: its owner while a
// User, or support).
func (a *Actor) DeleteDataset(ctx context.Context, id string) (Revision, error) {
	return a.deleteAs(ctx, "DeleteDataset", PermDelete, Dataset(id), a.c.DeleteDataset)
}

// RegisterAdapterRepository creates an adapter repository of org owned by
// the actor (needs create_adapter_repository); the system names the owner.
func (a *Actor) RegisterAdapterRepository(ctx context.Context, org, id, owner string) (Revision, error) {
	return a.registerOwned(ctx, "RegisterAdapterRepository", PermCreateAdapterRepository, org, id, "owner", owner, func(ctx context.Context, owner string) (Revision, error) {
		return a.c.RegisterAdapterRepository(ctx, org, id, owner)
	})
}

// DeleteAdapterRepository deletes an adapter repository (needs adapter_repository#delete).
func (a *Actor) DeleteAdapterRepository(ctx context.Context, id string) (Revision, error) {
	return a.deleteAs(ctx, "DeleteAdapterRepository", PermDelete, AdapterRepository(id), a.c.DeleteAdapterRepository)
}

// RegisterTrainingJob starts a training job of org created by the actor,
// into repository (empty for none) (needs fine_tune); the system names the creator.
func (a *Actor) RegisterTrainingJob(ctx context.Context, org, id, repository, creator string) (Revision, error) {
	if repository != "" {
		if err := validateID("repository", repository); err != nil {
			return "", err
		}
	}
	return a.registerOwned(ctx, "RegisterTrainingJob", PermFineTune, org, id, "creator", creator, func(ctx context.Context, creator string) (Revision, error) {
		return a.c.RegisterTrainingJob(ctx, org, id, repository, creator)
	})
}

// DeleteTrainingJob cancels and deletes a training job (needs training_job#cancel).
func (a *Actor) DeleteTrainingJob(ctx context.Context, id string) (Revision, error) {
	return a.deleteAs(ctx, "DeleteTrainingJob", PermCancel, TrainingJob(id), a.c.DeleteTrainingJob)
}

// RegisterDeployment creates a deployment of org (needs deploy).
func (a *Actor) RegisterDeployment(ctx context.Context, org, id string) (Revision, error) {
	const op = "RegisterDeployment"
	if err := validateOrgArtifact(org, id); err != nil {
		return "", err
	}
	wctx, err := a.authorize(ctx, op, PermDeploy, Organization(org))
	if err != nil {
		return "", err
	}
	return a.c.RegisterDeployment(wctx, org, id)
}

// DeleteDeployment deletes a deployment (needs deployment#delete).
func (a *Actor) DeleteDeployment(ctx context.Context, id string) (Revision, error) {
	return a.deleteAs(ctx, "DeleteDeployment", PermDelete, Deployment(id), a.c.DeleteDeployment)
}

// RegisterPrivateLLM makes a private serverless LLM of org (needs deploy:
// serving a model for the organization is deploying it).
func (a *Actor) RegisterPrivateLLM(ctx context.Context, org, id string) (Revision, error) {
	const op = "RegisterPrivateLLM"
	if err := validateOrgArtifact(org, id); err != nil {
		return "", err
	}
	wctx, err := a.authorize(ctx, op, PermDeploy, Organization(org))
	if err != nil {
		return "", err
	}
	return a.c.RegisterPrivateLLM(wctx, org, id)
}

// RegisterSharedLLM adds a shared LLM to the platform's catalogue. Shared
// LLMs belong to the platform, not to any organization, so no user or
// token holds this: only the system does.
func (a *Actor) RegisterSharedLLM(ctx context.Context, id string) (Revision, error) {
	const op = "RegisterSharedLLM"
	if err := validateID("id", id); err != nil {
		return "", err
	}
	if err := a.validate(); err != nil {
		return "", err
	}
	if !a.system {
		return "", opErr(op, ErrPermissionDenied, "%s may not change the platform's shared LLMs: a system write does", a.subject)
	}
	return a.c.RegisterSharedLLM(a.audited(ctx), id)
}

// DeleteLLM deletes an LLM (needs llm#delete: manage_deployment in a
// private LLM's organization; nobody but the system on a shared LLM).
func (a *Actor) DeleteLLM(ctx context.Context, id string) (Revision, error) {
	return a.deleteAs(ctx, "DeleteLLM", PermDelete, LLM(id), a.c.DeleteLLM)
}

// registerOwned is the shape of the writes that create an artifact of org
// for a person: validate, require the organization permission, resolve
// the person (onBehalf), write.
func (a *Actor) registerOwned(ctx context.Context, op, permission, org, id, arg, person string, write func(context.Context, string) (Revision, error)) (Revision, error) {
	if err := validateOrgArtifact(org, id); err != nil {
		return "", err
	}
	if err := validateOptionalID(arg, person); err != nil {
		return "", err
	}
	wctx, err := a.authorize(ctx, op, permission, Organization(org))
	if err != nil {
		return "", err
	}
	person, err = a.onBehalf(ctx, op, arg, person)
	if err != nil {
		return "", err
	}
	return write(wctx, person)
}

// deleteAs is the shape of the deletions: validate, require the
// resource's permission, delete.
func (a *Actor) deleteAs(ctx context.Context, op, permission string, resource Object, del func(context.Context, string) (Revision, error)) (Revision, error) {
	if err := resource.Validate("id"); err != nil {
		return "", err
	}
	wctx, err := a.authorize(ctx, op, permission, resource)
	if err != nil {
		return "", err
	}
	return del(wctx, resource.ID)
}

func validateOrgArtifact(org, id string) error {
	if err := validateID("org", org); err != nil {
		return err
	}
	return validateID("id", id)
}

// validateOptionalID validates id unless it is empty.
func validateOptionalID(arg, id string) error {
	if id == "" {
		return nil
	}
	return validateID(arg, id)
}
