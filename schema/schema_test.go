package schema_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/internal/validation"
	"github.com/spicegate/spicegate/schema"
)

// suite lists the validation and lookup files of this directory.
func suite(t *testing.T) []validation.Source {
	t.Helper()
	names, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	lookups, err := filepath.Glob("lookups/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, lookups)
	names = append(names, lookups...)
	require.NotEmpty(t, names)
	dir := os.DirFS(".")
	sources := make([]validation.Source, 0, len(names))
	for _, name := range names {
		sources = append(sources, validation.Source{Dir: dir, Name: name, Display: "schema/" + name})
	}
	return sources
}

// TestValidationSuite runs every validation and lookup file with SpiceDB's
// engine: no failure, no warning, and every permission asserted both ways.
func TestValidationSuite(t *testing.T) {
	report, err := validation.Run(t.Context(), suite(t)...)
	require.NoError(t, err)

	for _, p := range report.Failures {
		t.Error(p) // file:line: the failing assertion
	}
	for _, p := range report.Warnings {
		t.Error(p)
	}
	for _, u := range report.Coverage.Uncovered() {
		t.Error("coverage:", u)
	}
	assert.InDelta(t, 100.0, report.Coverage.Percent(), 0.001, report.Coverage.String())
	assert.Equal(t, len(suite(t)), report.Files)
}

// TestEmbeddedSchemaIsTheFile guards the go:embed: binaries write exactly
// the schema the validation files prove.
func TestEmbeddedSchemaIsTheFile(t *testing.T) {
	onDisk, err := os.ReadFile(schema.FileName)
	require.NoError(t, err)
	assert.Equal(t, string(onDisk), schema.Text())
}

// role is one column of the Roles & Permissions matrix, with the schema
// permission that holds its principals.
type role struct {
	name       string
	permission string
}

var (
	roleUser     = role{"User", "user_role"}
	roleReadonly = role{"Read-only", "readonly_role"}
	roleSupport  = role{"support", "support_role"}
)

// matrix is the Roles & Permissions matrix of issue #2, the law: which
// roles hold each organization permission.
var matrix = []struct {
	permission string
	holders    []role
}{
	{"member", []role{roleUser, roleReadonly, roleSupport}},
	{"prompt_llm", []role{roleUser, roleReadonly, roleSupport}},
	{"view_dataset", []role{roleUser, roleReadonly, roleSupport}},
	{"connect_dataset", []role{roleUser, roleSupport}},
	{"create_adapter_repository", []role{roleUser, roleSupport}},
	{"fine_tune", []role{roleUser, roleSupport}},
	{"view_training_job", []role{roleUser, roleReadonly, roleSupport}},
	{"deploy", []role{roleUser, roleSupport}},
	{"view_deployment", []role{roleUser, roleReadonly, roleSupport}},
	{"manage_deployment", []role{roleUser, roleSupport}},
	{"invite_member", []role{roleUser, roleSupport}},
	{"view_members", []role{roleUser, roleReadonly, roleSupport}},
	{"create_api_token", []role{roleUser, roleReadonly, roleSupport}},
	{"update_billing", []role{roleUser, roleSupport}},
	{"update_user_profile", []role{roleSupport}},
	{"change_role", []role{roleSupport}},
	{"remove_member", []role{roleSupport}},
	{"delete_api_token", []role{roleSupport}},
	{"delete_account", []role{roleSupport}},
}

// TestEveryMatrixCellIsPinned flips each cell of the matrix in the schema,
// one at a time (a yes becomes no by excluding the role, a no becomes yes
// by adding it), and requires the validation suite to fail on an assertion
// about that very permission. It proves that no cell can change unnoticed.
// Under the race detector it flips one cell per row, a different role from
// one row to the next (every permission, a third of the cells).
func TestEveryMatrixCellIsPinned(t *testing.T) {
	for i, row := range matrix {
		for j, r := range []role{roleUser, roleReadonly, roleSupport} {
			if raceEnabled && j != i%3 {
				continue
			}
			holds := false
			for _, h := range row.holders {
				holds = holds || h == r
			}
			name := fmt.Sprintf("%s/%s/holds=%v", row.permission, r.name, holds)
			t.Run(name, func(t *testing.T) {
				t.Parallel() // each mutation is validated on its own
				mutated := flipCell(t, schema.Text(), row.permission, r.permission, holds)
				report, err := validation.Run(t.Context(), validation.Source{
					Dir:  mutatedDir(t, mutated),
					Name: "organization.yaml",
				})
				require.NoError(t, err)
				require.NotEmpty(t, report.Failures, "flipping %s for %s went unnoticed", row.permission, r.name)
				for _, f := range report.Failures {
					require.Contains(t, []string{"assertion", "validation"}, f.Kind, "the mutated schema must compile: %s", f)
				}
				assert.True(t, anyAssertionMentions(report.Failures, "#"+row.permission+"@"),
					"no failed assertion names %s: %v", row.permission, report.Failures)
			})
		}
	}
}

// flipCell rewrites `permission P = EXPR` of the organization definition to
// grant or revoke one role.
func flipCell(t *testing.T, text, permission, rolePermission string, holds bool) string {
	t.Helper()
	start := strings.Index(text, "definition organization {")
	require.GreaterOrEqual(t, start, 0)
	end := start + strings.Index(text[start:], "\n}\n")
	require.Greater(t, end, start)
	org := text[start:end]

	re := regexp.MustCompile(`(?m)^(\s*permission ` + permission + ` = )(.+)$`)
	require.Len(t, re.FindAllString(org, -1), 1, "organization#%s must be defined on one line", permission)
	org = re.ReplaceAllStringFunc(org, func(line string) string {
		m := re.FindStringSubmatch(line)
		if holds {
			return m[1] + "(" + m[2] + ") - " + rolePermission
		}
		return m[1] + m[2] + " + " + rolePermission
	})
	return text[:start] + org + text[end:]
}

// mutatedDir is this directory with schema.zed replaced.
func mutatedDir(t *testing.T, schemaText string) fs.FS {
	t.Helper()
	data, err := os.ReadFile("organization.yaml")
	require.NoError(t, err)
	return fstest.MapFS{
		"organization.yaml": {Data: data},
		schema.FileName:     {Data: []byte(schemaText)},
	}
}

func anyAssertionMentions(problems []validation.Problem, s string) bool {
	for _, p := range problems {
		if p.Kind == "assertion" && strings.Contains(p.Context, s) {
			return true
		}
	}
	return false
}
