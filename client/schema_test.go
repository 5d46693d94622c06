package client_test

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
