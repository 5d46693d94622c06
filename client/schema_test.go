package client_test

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
	"github.com/spicegate/spicegate/schema"
)

func TestApplySchemaRefusesRemovalsUnlessAllowed(t *testing.T) {
	conn := spicedbtest.StartWithoutSchema(t)
	c, err := client.NewFromConn(conn)
	require.NoError(t, err)
	schemas := v1.NewSchemaServiceClient(conn)

	// Nothing yet: everything is an addition, and it applies.
	var changes []client.SchemaChange
	require.Eventually(t, func() bool {
		changes, err = c.DiffSchema(t.Context())
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	assert.Contains(t, changes, client.SchemaChange{Kind: "definition_added", Object: "organization"})
	_, rev, err := c.ApplySchema(t.Context(), false)
	require.NoError(t, err)
	assert.NotEmpty(t, rev)
	changes, err = c.DiffSchema(t.Context())
	require.NoError(t, err)
	assert.Empty(t, changes)
	_, rev, err = c.ApplySchema(t.Context(), false)
	require.NoError(t, err)
	assert.Empty(t, rev, "nothing to change")

	// A deployed schema with a permission Spicegate's no longer has.
	older := strings.Replace(schema.Text(), "permission manage_adapter_repository = user_role + support_role",
		"permission manage_adapter_repository = user_role + support_role\n\tpermission legacy_view = user_role", 1)
	_, err = schemas.WriteSchema(t.Context(), &v1.WriteSchemaRequest{Schema: older})
	require.NoError(t, err)
	changes, err = c.DiffSchema(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []client.SchemaChange{{Kind: "permission_removed", Object: "organization#legacy_view", Removal: true}}, changes)

	_, _, err = c.ApplySchema(t.Context(), false)
	require.ErrorIs(t, err, client.ErrConflict)
	assert.Contains(t, err.Error(), "permission_removed organization#legacy_view")
	changes, err = c.DiffSchema(t.Context())
	require.NoError(t, err)
	assert.Len(t, changes, 1, "nothing was written")

	_, _, err = c.ApplySchema(t.Context(), true)
	require.NoError(t, err)
	changes, err = c.DiffSchema(t.Context())
	require.NoError(t, err)
	assert.Empty(t, changes)

	// A change of a doc comment names what it is about.
	commented := strings.Replace(schema.Text(), "/** deploy: creating deployments is for Users. */", "/** deploy: reworded. */", 1)
	require.NotEqual(t, schema.Text(), commented)
	_, err = schemas.WriteSchema(t.Context(), &v1.WriteSchemaRequest{Schema: commented})
	require.NoError(t, err)
	changes, err = c.DiffSchema(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []client.SchemaChange{{Kind: "permission_doc_comment_changed", Object: "organization#deploy"}}, changes)
}

// A store written by the previous version of Spicegate: the role change
// fence was organization#role_change, tokens had no membership index, and
// the version before it gave tokens no role. Applying the current schema
// drops the retired relation without asking, and brings every token up to
// the current model, so that role changes move them all.
func TestApplySchemaUpgradesAStoreOfAnEarlierVersion(t *testing.T) {
	conn := spicedbtest.StartWithoutSchema(t)
	c, err := client.NewFromConn(conn)
	require.NoError(t, err)
	schemas := v1.NewSchemaServiceClient(conn)
	perms := v1.NewPermissionsServiceClient(conn)
	older := strings.Replace(schema.Text(), "\trelation api_token: api_token\n\n\t/** user_role",
		"\trelation api_token: api_token\n\trelation role_change: user with expiration\n\n\t/** user_role", 1)
	require.NotEqual(t, schema.Text(), older)
	require.Eventually(t, func() bool {
		_, err = schemas.WriteSchema(t.Context(), &v1.WriteSchemaRequest{Schema: older})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)

	r := func(typ, id, relation, subjectType, subjectID string) *v1.RelationshipUpdate {
		return &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: &v1.Relationship{
			Resource: &v1.ObjectReference{ObjectType: typ, ObjectId: id}, Relation: relation,
			Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subjectType, ObjectId: subjectID}}}}
	}
	oldToken := func(id, org, owner, role string) []*v1.RelationshipUpdate {
		u := []*v1.RelationshipUpdate{r("api_token", id, "organization", "organization", org), r("api_token", id, "owner", "user", owner),
			r("organization", org, "api_token", "api_token", id), r("user", owner, "api_token", "api_token", id)}
		if role != "" {
			u = append(u, r("organization", org, role, "api_token", id))
		}
		return u
	}
	updates := []*v1.RelationshipUpdate{
		r("platform", "global", "organization", "organization", "acme"),
		r("organization", "acme", "user", "user", "alice"), r("organization", "acme", "readonly", "user", "rita"),
		r("organization", "acme", "support", "user", "support"),
	}
	updates = append(updates, oldToken("no-role", "acme", "alice", "")...)      // two versions ago
	updates = append(updates, oldToken("no-index", "acme", "alice", "user")...) // the previous version
	updates = append(updates, oldToken("rita-old", "acme", "rita", "")...)
	updates = append(updates, oldToken("left", "acme", "ex", "")...) // its owner left
	// Written around the facade (zed, a seed reloaded over changed roles):
	// above its owner, and a former member's that still acts.
	updates = append(updates, oldToken("rita-raised", "acme", "rita", "user")...)
	updates = append(updates, oldToken("left-acting", "acme", "ex", "readonly")...)
	fence := &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: orgRel("acme", "role_change", "rita")}
	fence.Relationship.OptionalExpiresAt = timestamppb.New(time.Now().Add(time.Hour))
	_, err = perms.WriteRelationships(t.Context(), &v1.WriteRelationshipsRequest{Updates: append(updates, fence)})
	require.NoError(t, err)

	changes, _, err := c.ApplySchema(t.Context(), false)
	require.NoError(t, err, "the retired fence relation goes without --allow-schema-removals")
	assert.Contains(t, changes, client.SchemaChange{Kind: "relation_removed", Object: "organization#role_change", Removal: true})
	changes, err = c.DiffSchema(t.Context())
	require.NoError(t, err)
	assert.Empty(t, changes)

	for tok, can := range map[string]bool{"no-role": true, "no-index": true, "rita-old": false, "rita-raised": false, "left": false, "left-acting": false} {
		assert.Equal(t, can, allowed(t, c, client.APIToken(tok), client.PermDeploy, client.Organization("acme")), "%s deploys", tok)
	}
	for _, tok := range []string{"rita-old", "rita-raised"} {
		assert.True(t, allowed(t, c, client.APIToken(tok), client.PermViewDataset, client.Organization("acme")), "%s acts as rita", tok)
	}
	for _, tok := range []string{"left", "left-acting"} {
		assert.False(t, allowed(t, c, client.APIToken(tok), client.PermMember, client.Organization("acme")), "%s (a former member's) acts for nothing", tok)
	}
	n, err := c.RepairTokens(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "idempotent")

	// Every one of alice's tokens moves with her now.
	_, err = c.ChangeRole(t.Context(), "acme", "alice", client.RoleReadonly)
	require.NoError(t, err)
	for _, tok := range []string{"no-role", "no-index"} {
		assert.False(t, allowed(t, c, client.APIToken(tok), client.PermDeploy, client.Organization("acme")), "%s was demoted with alice", tok)
	}
}
