package client_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/schemadsl/compiler"
	"github.com/authzed/spicedb/pkg/schemadsl/input"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/schema"
)

// TestNamesMatchTheSchema keeps the constants in step with schema.zed:
// PermissionsOf lists exactly each definition's permissions, and every
// relation the client writes exists.
func TestNamesMatchTheSchema(t *testing.T) {
	compiled, err := compiler.Compile(compiler.InputSchema{Source: input.Source("schema.zed"), SchemaString: schema.Text()},
		compiler.AllowUnprefixedObjectType())
	require.NoError(t, err)

	relations := map[string]bool{}
	for _, def := range compiled.ObjectDefinitions {
		var perms []string
		for _, rel := range def.GetRelation() {
			if rel.GetUsersetRewrite() != nil {
				perms = append(perms, rel.GetName())
			} else {
				relations[rel.GetName()] = true
			}
		}
		assert.ElementsMatch(t, perms, client.PermissionsOf(def.GetName()), "permissions of %s", def.GetName())
	}
	for _, rel := range []string{
		client.RelUser, client.RelReadonly, client.RelSupport, client.RelAPIToken, client.RelOrganization,
		client.RelOwner, client.RelRepository, client.RelCreator, client.RelPrompter, client.RelInviter,
		client.RelGrantsUser, client.RelGrantsReadonly, client.RelAcceptedBy, client.RelRoleChange,
	} {
		assert.True(t, relations[rel], "relation %s is not in the schema", rel)
	}
	var types []string
	for _, def := range compiled.ObjectDefinitions {
		types = append(types, def.GetName())
	}
	assert.ElementsMatch(t, []string{client.TypeUser, client.TypePlatform, client.TypeOrganization, client.TypeMembership, client.TypeRoleChange,
		client.TypeDataset, client.TypeAdapterRepository, client.TypeTrainingJob, client.TypeDeployment, client.TypeAPIToken,
		client.TypeLLM, client.TypeInvite}, types)
}

// TestClientDoesNotCompileSpiceDB: a service that imports the facade must
// not compile SpiceDB.
func TestClientDoesNotCompileSpiceDB(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/authzed/authzed-go/proto/authzed/api/v1", "the listing is real")
	for _, d := range deps {
		assert.False(t, strings.HasPrefix(d, "github.com/authzed/spicedb"), "client depends on %s", d)
	}
}

func TestParseRole(t *testing.T) {
	for in, want := range map[string]client.Role{"user": client.RoleUser, "User": client.RoleUser, "readonly": client.RoleReadonly,
		"read-only": client.RoleReadonly, "Read-only": client.RoleReadonly, "support": client.RoleSupport} {
		got, err := client.ParseRole(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := client.ParseRole("admin")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	assert.False(t, client.Role("admin").Valid())
}
