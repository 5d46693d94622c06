// Package validation runs SpiceDB validation files (the YAML format of
// `zed validate`), plain schema files, and Spicegate's lookup files with
// SpiceDB's own development engine (github.com/authzed/spicedb/pkg/development),
// in process, and reports every failure with the file and line it comes from.
//
// It adds two things zed cannot do: lookup files (see [LookupFile]), which
// assert the full answer of LookupResources and LookupSubjects, and a
// [Coverage] report of which permissions were asserted true and false.
package validation

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/authzed/spicedb/pkg/development"
	devinterface "github.com/authzed/spicedb/pkg/proto/developer/v1"
	"github.com/authzed/spicedb/pkg/validationfile"
	"github.com/authzed/spicedb/pkg/validationfile/blocks"
)

// Problem is one failure or warning, located in a file.
type Problem struct {
	// File is the file the problem is in, as the caller named it (a schema
	// problem is reported in the schema file a validation file refers to).
	File string
	// Line and Column are 1-indexed; zero when unknown.
	Line, Column int
	// Kind says what failed, e.g. "assertion", "validation", "schema", "warning".
	Kind string
	// Message says what went wrong.
	Message string
	// Context is the failing assertion or expression, when there is one.
	Context string
}

// String formats the problem as "file:line:column: kind: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
	}
	fmt.Fprintf(&b, ": %s: %s", p.Kind, p.Message)
	if p.Context != "" && !strings.Contains(p.Message, p.Context) {
		fmt.Fprintf(&b, " (%s)", p.Context)
	}
	return b.String()
}

// Report is the outcome of validating one or more files.
type Report struct {
	// Failures are schema errors, bad relationships, failed assertions,
	// failed expected relations and failed lookups.
	Failures []Problem
	// Warnings are SpiceDB's schema warnings (e.g. an arrow to a relation).
	Warnings []Problem
	// Coverage records which permissions the files' assertions exercised.
	Coverage *Coverage
	// Files counts the files validated.
	Files int
}

// OK reports whether there were no failures, and no warnings when failOnWarn is set.
func (r *Report) OK(failOnWarn bool) bool {
	return len(r.Failures) == 0 && (!failOnWarn || len(r.Warnings) == 0)
}

// Source is a file to validate. Dir holds the file and every file it refers
// to (schemaFile, validationFile) by paths relative to it.
type Source struct {
	Dir fs.FS
	// Name is the file's path inside Dir (slash-separated).
	Name string
	// Display is how reports name the file; Name when empty.
	Display string
}

func (s Source) display() string {
	if s.Display != "" {
		return s.Display
	}
	return s.Name
}

// sibling returns how reports name another file of the same directory.
func (s Source) sibling(name string) string {
	return path.Join(path.Dir(s.display()), name)
}

// Run validates every source and merges the results into one report. An
// error is returned only when a file cannot be read or the engine itself
// fails; everything wrong with a file's content is a Failure.
func Run(ctx context.Context, sources ...Source) (*Report, error) {
	report := &Report{Coverage: NewCoverage()}
	for _, src := range sources {
		if err := runOne(ctx, src, report); err != nil {
			return nil, fmt.Errorf("%s: %w", src.display(), err)
		}
		report.Files++
	}
	sortProblems(report.Failures)
	sortProblems(report.Warnings)
	return report, nil
}

func runOne(ctx context.Context, src Source, report *Report) error {
	data, err := fs.ReadFile(src.Dir, src.Name)
	if err != nil {
		return err
	}
	if strings.HasSuffix(src.Name, ".zed") {
		return runSchemaFile(ctx, src, string(data), report)
	}
	isLookup, err := isLookupFile(data)
	if err != nil {
		report.Failures = append(report.Failures, yamlProblem(src.display(), err))
		return nil
	}
	if isLookup {
		return runLookupFile(ctx, src, data, report)
	}
	return runValidationFile(ctx, src, data, report)
}

// runSchemaFile compiles a plain schema and reports its errors and warnings.
func runSchemaFile(ctx context.Context, src Source, schemaText string, report *Report) error {
	yctx, devErrs, err := development.NewDevContextForValidationFile(ctx,
		&validationfile.ValidationFile{Schema: blocks.SchemaWithPosition{Schema: schemaText}},
		development.WithRootFileName(src.display()))
	if err != nil {
		return err
	}
	if devErrs != nil {
		report.addDevErrors(src.display(), src.display(), devErrs.InputErrors)
		return nil
	}
	defer yctx.DevContext.Dispose()
	report.Coverage.addSchema(yctx.DevContext)
	return report.addWarnings(ctx, yctx.DevContext, src.display())
}

// runValidationFile runs a zed validation file: its assertions, its expected
// relations (validation block), and the schema's warnings.
func runValidationFile(ctx context.Context, src Source, data []byte, report *Report) error {
	vf, err := validationfile.DecodeValidationFile(data)
	if err != nil {
		report.Failures = append(report.Failures, yamlProblem(src.display(), err))
		return nil
	}
	dc, schemaDisplay, ok, err := openValidationFile(ctx, src, vf, report)
	if err != nil || !ok {
		return err
	}
	defer dc.Dispose()

	report.Coverage.addSchema(dc)
	report.Coverage.addAssertions(&vf.Assertions)
	if err := report.addWarnings(ctx, dc, schemaDisplay); err != nil {
		return err
	}

	failures, err := development.RunAllAssertions(dc, &vf.Assertions)
	if err != nil {
		return err
	}
	report.addDevErrors(src.display(), schemaDisplay, failures)

	// Expected relations run one key at a time so that a subject found but
	// not listed is reported at its key's line (the engine reports it at
	// line 0 when keys share one run), and in file order.
	for key, subjects := range vf.ExpectedRelations.ValidationMap {
		one := &blocks.ParsedExpectedRelations{ValidationMap: blocks.ValidationMap{key: subjects}}
		_, failures, err := development.RunValidation(dc, one)
		if err != nil {
			return err
		}
		for _, f := range failures {
			if f.Line == 0 {
				f.Line = uint32(max(key.SourcePosition.LineNumber, 0))       //nolint:gosec // line numbers are small
				f.Column = uint32(max(key.SourcePosition.ColumnPosition, 0)) //nolint:gosec // line numbers are small
			}
		}
		report.addDevErrors(src.display(), schemaDisplay, failures)
	}
	return nil
}

// openValidationFile builds a development context for a validation file.
// ok is false when the file's schema or relationships are broken, which is
// reported as failures.
func openValidationFile(ctx context.Context, src Source, vf *validationfile.ValidationFile, report *Report) (dc *development.DevContext, schemaDisplay string, ok bool, err error) {
	schemaDisplay = src.display()
	opts := []development.CompileOption{development.WithSourceFS(subDir(src))}
	if vf.SchemaFile != "" {
		schemaDisplay = src.sibling(vf.SchemaFile)
	} else if strings.TrimSpace(vf.Schema.Schema) == "" {
		report.Failures = append(report.Failures, Problem{File: src.display(), Kind: "schema",
			Message: "the file has neither `schema:` nor `schemaFile:`"})
		return nil, "", false, nil
	}
	yctx, devErrs, err := development.NewDevContextForValidationFile(ctx, vf, opts...)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			report.Failures = append(report.Failures, Problem{File: src.display(), Kind: "schema",
				Message: fmt.Sprintf("cannot read schemaFile %q: %v", vf.SchemaFile, pathErr.Err)})
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	if devErrs != nil {
		report.addDevErrors(src.display(), schemaDisplay, devErrs.InputErrors)
		return nil, "", false, nil
	}
	return yctx.DevContext, schemaDisplay, true, nil
}

// subDir is the directory of the source, as the file system that schemaFile
// and validationFile paths are relative to.
func subDir(src Source) fs.FS {
	dir := path.Dir(src.Name)
	if dir == "." {
		return src.Dir
	}
	sub, err := fs.Sub(src.Dir, dir)
	if err != nil {
		return src.Dir
	}
	return sub
}

func (r *Report) addWarnings(ctx context.Context, dc *development.DevContext, schemaDisplay string) error {
	warnings, err := development.GetWarnings(ctx, dc)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		r.Warnings = append(r.Warnings, Problem{
			File: schemaDisplay, Line: int(w.Line), Column: int(w.Column),
			Kind: "warning", Message: w.Message, Context: w.SourceCode,
		})
	}
	return nil
}

// addDevErrors converts the engine's errors. Schema errors are located in
// the schema file; everything else in the validation file.
func (r *Report) addDevErrors(file, schemaFile string, errs []*devinterface.DeveloperError) {
	for _, e := range errs {
		p := Problem{File: file, Line: int(e.Line), Column: int(e.Column), Message: e.Message, Context: e.Context}
		switch e.Source {
		case devinterface.DeveloperError_SCHEMA:
			p.Kind = "schema"
			p.File = schemaFile
		case devinterface.DeveloperError_RELATIONSHIP:
			p.Kind = "relationship"
		case devinterface.DeveloperError_ASSERTION:
			p.Kind = "assertion"
		case devinterface.DeveloperError_VALIDATION_YAML:
			p.Kind = "validation"
		default:
			p.Kind = strings.ToLower(e.Source.String())
		}
		r.Failures = append(r.Failures, p)
	}
}

// yamlProblem turns a YAML decoding error into a located problem. yaml.v3
// errors read "yaml: line N: ..." and the engine's own parsers report
// "... line N ..." in their messages; both keep the line in the message.
func yamlProblem(file string, err error) Problem {
	p := Problem{File: file, Kind: "yaml", Message: err.Error()}
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) && len(typeErr.Errors) > 0 {
		p.Message = strings.Join(typeErr.Errors, "; ")
	}
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(p.Message, "yaml: "), "line %d:", &line); scanErr == nil {
		p.Line = line
	}
	return p
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}
