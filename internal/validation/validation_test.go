package validation_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/internal/validation"
)

func run(t *testing.T, names ...string) *validation.Report {
	t.Helper()
	sources := make([]validation.Source, 0, len(names))
	for _, name := range names {
		sources = append(sources, validation.Source{Dir: os.DirFS("testdata"), Name: name, Display: "testdata/" + name})
	}
	report, err := validation.Run(t.Context(), sources...)
	require.NoError(t, err)
	return report
}

// where is a problem reduced to what a person needs to find it.
type where struct {
	File string
	Line int
	Kind string
}

func locations(ps []validation.Problem) []where {
	out := make([]where, 0, len(ps))
	for _, p := range ps {
		out = append(out, where{p.File, p.Line, p.Kind})
	}
	return out
}

func TestPassingFiles(t *testing.T) {
	report := run(t, "good.yaml", "good.lookups.yaml", "schema.zed")
	assert.Empty(t, report.Failures)
	assert.Empty(t, report.Warnings)
	assert.True(t, report.OK(true))
	assert.Equal(t, 3, report.Files)
	assert.Empty(t, report.Coverage.Uncovered())
	assert.InDelta(t, 100.0, report.Coverage.Percent(), 0.001)
}

// TestFailures is the harness's negative test: each deliberately wrong file
// fails, at the file and line of the mistake.
func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		want      []where
		contextIs []string
	}{
		{
			name: "an assertTrue that is false and an assertFalse that is true",
			file: "wrong_assertion.yaml",
			want: []where{
				{"testdata/wrong_assertion.yaml", 8, "assertion"},
				{"testdata/wrong_assertion.yaml", 10, "assertion"},
			},
			contextIs: []string{"document:plan#write@user:ben", "document:plan#read@user:ann"},
		},
		{
			name:      "an expected relation missing a subject",
			file:      "wrong_validation.yaml",
			want:      []where{{"testdata/wrong_validation.yaml", 6, "validation"}},
			contextIs: []string{"document:plan#read"},
		},
		{
			name:      "a schema referring to an undefined relation",
			file:      "broken_schema.yaml",
			want:      []where{{"testdata/broken_schema.yaml", 6, "schema"}},
			contextIs: []string{"nosuchrelation"},
		},
		{
			name: "a lookup whose expected subjects are wrong",
			file: "wrong.lookups.yaml",
			want: []where{
				{"testdata/wrong.lookups.yaml", 3, "lookup"},
				{"testdata/wrong.lookups.yaml", 8, "lookup"},
			},
			contextIs: []string{"unexpected document:plan", "missing user:ben"},
		},
		{
			name:      "a lookup with a misspelt key",
			file:      "typo.lookups.yaml",
			want:      []where{{"testdata/typo.lookups.yaml", 6, "yaml"}},
			contextIs: []string{`unknown key "expect"`},
		},
		{
			name:      "a schemaFile that does not exist",
			file:      "missing_schema_file.yaml",
			want:      []where{{"testdata/missing_schema_file.yaml", 0, "schema"}},
			contextIs: []string{""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			report := run(t, tc.file)
			assert.False(t, report.OK(false))
			assert.Equal(t, tc.want, locations(report.Failures), "%v", report.Failures)
			for i, ctx := range tc.contextIs {
				if i < len(report.Failures) && ctx != "" {
					assert.Contains(t, report.Failures[i].Context+report.Failures[i].Message, ctx)
				}
			}
		})
	}
}

func TestLookupFailureSaysWhatDiffers(t *testing.T) {
	report := run(t, "wrong.lookups.yaml")
	require.Len(t, report.Failures, 2)
	assert.Equal(t, "testdata/wrong.lookups.yaml:3: lookup: lookupResources document#read @ user:ann: "+
		"unexpected document:plan (got [document:plan])", report.Failures[0].String())
	assert.Equal(t, "testdata/wrong.lookups.yaml:8: lookup: lookupSubjects document:plan#write @ user: "+
		"missing user:ben (got [user:ann])", report.Failures[1].String())
}

func TestWarningsAreReportedInTheSchemaFile(t *testing.T) {
	report := run(t, "warning.zed")
	assert.Empty(t, report.Failures)
	require.Len(t, report.Warnings, 1)
	w := report.Warnings[0]
	assert.Equal(t, "testdata/warning.zed", w.File)
	assert.Equal(t, 9, w.Line)
	assert.Contains(t, w.Message, "arrow-references-relation")
	assert.True(t, report.OK(false), "warnings alone pass")
	assert.False(t, report.OK(true), "warnings fail with fail-on-warn")
}

func TestCoverageNamesWhatIsMissing(t *testing.T) {
	report := run(t, "partial.yaml")
	assert.Empty(t, report.Failures)
	assert.Equal(t, []string{"document#read: no assertFalse"}, report.Coverage.Uncovered())
	assert.InDelta(t, 50.0, report.Coverage.Percent(), 0.001)
	assert.Equal(t, []validation.PermissionCoverage{
		{Permission: "document#read", True: 1, False: 0},
		{Permission: "document#write", True: 1, False: 1},
	}, report.Coverage.Permissions())

	// Coverage adds up across files: good.yaml asserts read false.
	report = run(t, "partial.yaml", "good.yaml")
	assert.Empty(t, report.Coverage.Uncovered())
}

func TestProblemString(t *testing.T) {
	p := validation.Problem{File: "a.yaml", Line: 3, Column: 7, Kind: "assertion",
		Message: "Expected relation or permission x to exist", Context: "x"}
	assert.Equal(t, "a.yaml:3:7: assertion: Expected relation or permission x to exist", p.String())
	p.Context = "y"
	assert.Equal(t, "a.yaml:3:7: assertion: Expected relation or permission x to exist (y)", p.String())
}
