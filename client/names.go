package client

import "slices"

// Definitions of the schema (schema/schema.zed).
const (
	TypeUser              = "user"
	TypePlatform          = "platform"
	TypeOrganization      = "organization"
	TypeDataset           = "dataset"
	TypeAdapterRepository = "adapter_repository"
	TypeTrainingJob       = "training_job"
	TypeDeployment        = "deployment"
	TypeAPIToken          = "api_token"
	TypeLLM               = "llm"
	TypeInvite            = "invite"
	TypeMembership        = "membership"  // bookkeeping: one user's membership of one organization
	TypeRoleChange        = "role_change" // bookkeeping: one role change in progress
)

// PlatformID is the single platform object that lists every organization.
const PlatformID = "global"

// Relations of the schema. Services check permissions, never relations;
// relations are what the client writes.
const (
	RelUser           = "user"            // organization: the User role
	RelReadonly       = "readonly"        // organization: the Read-only role
	RelSupport        = "support"         // organization: the support account
	RelAPIToken       = "api_token"       // organization, user, membership: token indexes
	RelRoleChange     = "role_change"     // membership: the fence of a role change
	RelOrganization   = "organization"    // every artifact, private LLMs, platform
	RelOwner          = "owner"           // dataset, adapter_repository, api_token
	RelRepository     = "repository"      // training_job
	RelCreator        = "creator"         // training_job
	RelPrompter       = "prompter"        // llm
	RelInviter        = "inviter"         // invite
	RelGrantsUser     = "grants_user"     // invite
	RelGrantsReadonly = "grants_readonly" // invite
	RelAcceptedBy     = "accepted_by"     // invite: who used it
)

// Organization permissions: the Roles & Permissions matrix.
const (
	PermMember                  = "member"
	PermPromptLLM               = "prompt_llm"
	PermViewDataset             = "view_dataset"
	PermConnectDataset          = "connect_dataset"
	PermCreateAdapterRepository = "create_adapter_repository"
	PermFineTune                = "fine_tune"
	PermViewTrainingJob         = "view_training_job"
	PermDeploy                  = "deploy"
	PermViewDeployment          = "view_deployment"
	PermManageDeployment        = "manage_deployment"
	PermInviteMember            = "invite_member"
	PermViewMembers             = "view_members"
	PermCreateAPIToken          = "create_api_token"
	PermUpdateBilling           = "update_billing"
	PermUpdateUserProfile       = "update_user_profile"
	PermChangeRole              = "change_role"
	PermRemoveMember            = "remove_member"
	PermDeleteAPIToken          = "delete_api_token"
	PermDeleteAccount           = "delete_account"
	PermDeleteOwnDataset        = "delete_own_dataset"
	PermManageAdapterRepository = "manage_adapter_repository"
	PermUserRole                = "user_role"
	PermReadonlyRole            = "readonly_role"
	PermSupportRole             = "support_role"
)

// Resource permissions.
const (
	PermView             = "view"               // dataset, adapter_repository, training_job, deployment
	PermDelete           = "delete"             // dataset, adapter_repository, deployment, api_token, llm
	PermUpdate           = "update"             // adapter_repository, deployment
	PermPrompt           = "prompt"             // deployment, llm
	PermCancel           = "cancel"             // training_job
	PermToken            = "token"              // user
	PermAcceptAsUser     = "accept_as_user"     // invite
	PermAcceptAsReadonly = "accept_as_readonly" // invite
	PermVouched          = "vouched"            // invite
	PermRevoke           = "revoke"             // invite
)

// permissionsByType lists every permission of each definition, in schema
// order; Permissions checks them all in one round trip.
var permissionsByType = map[string][]string{
	TypeUser:     {PermToken},
	TypePlatform: {PermMember},
	TypeOrganization: {
		PermUserRole, PermReadonlyRole, PermSupportRole, PermMember,
		PermPromptLLM, PermViewDataset, PermConnectDataset, PermCreateAdapterRepository,
		PermFineTune, PermViewTrainingJob, PermDeploy, PermViewDeployment, PermManageDeployment,
		PermInviteMember, PermViewMembers, PermCreateAPIToken, PermUpdateBilling,
		PermUpdateUserProfile, PermChangeRole, PermRemoveMember, PermDeleteAPIToken, PermDeleteAccount,
		PermDeleteOwnDataset, PermManageAdapterRepository,
	},
	TypeDataset:           {PermView, PermDelete},
	TypeAdapterRepository: {PermView, PermFineTune, PermUpdate, PermDelete},
	TypeTrainingJob:       {PermView, PermCancel},
	TypeDeployment:        {PermView, PermUpdate, PermDelete, PermPrompt},
	TypeAPIToken:          {PermDelete},
	TypeLLM:               {PermPrompt, PermDelete},
	TypeInvite:            {PermAcceptAsUser, PermAcceptAsReadonly, PermVouched, PermRevoke},
}

// PermissionsOf returns the permissions the schema defines on a type, or nil.
func PermissionsOf(typ string) []string { return slices.Clone(permissionsByType[typ]) }

// Role is a user's role in an organization; its value is the relation that
// holds it. A user holds exactly one role per organization.
type Role string

// The roles of the platform's Roles & Permissions page.
const (
	RoleUser     Role = RelUser
	RoleReadonly Role = RelReadonly
	RoleSupport  Role = RelSupport
)

var roles = []Role{RoleUser, RoleReadonly, RoleSupport}

// String returns the role's relation name.
func (r Role) String() string { return string(r) }

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return slices.Contains(roles, r) }

// ParseRole parses "user", "readonly" or "support" (also "read-only" and "User").
func ParseRole(s string) (Role, error) {
	switch s {
	case "user", "User":
		return RoleUser, nil
	case "readonly", "read-only", "Read-only", "read_only":
		return RoleReadonly, nil
	case "support":
		return RoleSupport, nil
	}
	return "", argErr("role", s, "must be user, readonly or support")
}

// invitable reports whether an invite may grant the role: Users invite
// others as User or Read-only; the support account is never invited.
// rank orders roles by what they grant: support above User above
// Read-only above none ("").
func (r Role) rank() int {
	switch r {
	case RoleSupport:
		return 3
	case RoleUser:
		return 2
	case RoleReadonly:
		return 1
	}
	return 0
}

func (r Role) invitable() bool { return r == RoleUser || r == RoleReadonly }

// invites reports whether the role holds invite_member (schema.zed).
func (r Role) invites() bool { return r == RoleUser || r == RoleSupport }
