package cmd

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// execute runs the command tree as the binary would, returning its output.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestValidateTheSchemaSuite(t *testing.T) {
	out, err := execute(t, "validate", "--fail-on-warn", "--coverage",
		"../../schema/organization.yaml", "../../schema/resources.yaml",
		"../../schema/lookups/resources.yaml", "../../schema/schema.zed")
	require.NoError(t, err, out)
	assert.Contains(t, out, "ok: 4 files, 0 failures, 0 warnings")
	assert.Contains(t, out, "(100%)")
}

// A schema alone asserts nothing: no coverage line to misread, and one
// file is "1 file".
func TestValidateASchemaAloneSaysNoCoverage(t *testing.T) {
	out, err := execute(t, "validate", "../../schema/schema.zed")
	require.NoError(t, err, out)
	assert.Equal(t, "ok: 1 file, 0 failures, 0 warnings\n", out)
}

func TestValidateFailsAndSaysWhere(t *testing.T) {
	out, err := execute(t, "validate", "../validation/testdata/wrong_assertion.yaml")
	require.ErrorIs(t, err, errValidationFailed)
	assert.Contains(t, out, "../validation/testdata/wrong_assertion.yaml:8:7: assertion: Expected relation or permission document:plan#write@user:ben to exist")
	assert.Contains(t, out, "../validation/testdata/wrong_assertion.yaml:10:7: assertion:")
	assert.Contains(t, out, "FAILED: 1 file, 2 failures")
}

func TestValidateFailOnWarn(t *testing.T) {
	out, err := execute(t, "validate", "../validation/testdata/warning.zed")
	require.NoError(t, err, out)
	assert.Contains(t, out, "../validation/testdata/warning.zed:9:")

	out, err = execute(t, "validate", "--fail-on-warn", "../validation/testdata/warning.zed")
	require.ErrorIs(t, err, errValidationFailed)
	assert.Contains(t, out, "arrow-references-relation")
}

func TestValidateCoverageFlag(t *testing.T) {
	_, err := execute(t, "validate", "../validation/testdata/partial.yaml")
	require.NoError(t, err)

	out, err := execute(t, "validate", "--coverage", "../validation/testdata/partial.yaml")
	require.ErrorIs(t, err, errValidationFailed)
	assert.Contains(t, out, "coverage: document#read: no assertFalse")
}

func TestValidateUnreadableFile(t *testing.T) {
	_, err := execute(t, "validate", "no/such/file.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no/such/file.yaml")
}

func TestValidateNeedsFiles(t *testing.T) {
	_, err := execute(t, "validate")
	require.Error(t, err)
}
