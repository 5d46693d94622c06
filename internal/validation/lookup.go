package validation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"go.yaml.in/yaml/v3"

	"github.com/authzed/spicedb/pkg/tuple"
	"github.com/authzed/spicedb/pkg/validationfile"
)

// LookupFile is Spicegate's list-assertion format, which zed's validation
// format cannot express: the complete answer of a LookupResources ("which
// resources of a type does this subject reach through a permission?") or a
// LookupSubjects ("which subjects of a type hold a permission on this
// resource?"). It runs against the schema and relationships of the zed
// validation file it names, so the data has one source of truth:
//
//	validationFile: resources.yaml     # relative to this file
//	lookupResources:
//	  - subject: user:alice            # type:id, or type:id#relation
//	    permission: view
//	    resourceType: dataset
//	    expected: [dataset:a, dataset:b]
//	lookupSubjects:
//	  - resource: dataset:a
//	    permission: delete
//	    subjectType: user              # type, or type#relation
//	    expected: [user:alice, user:support]
//
// A file is a lookup file when it has the top-level key validationFile.
// Expected lists are compared as sets and must be complete: a missing or an
// extra result fails. A wildcard subject is written user:*, with its
// exclusions as user:* - {user:a, user:b}; a conditional (caveated) result
// carries the suffix " (conditional)".
type LookupFile struct {
	ValidationFile  string            `yaml:"validationFile"`
	LookupResources []ResourcesLookup `yaml:"lookupResources"`
	LookupSubjects  []SubjectsLookup  `yaml:"lookupSubjects"`
}

// ResourcesLookup asserts the full result of one LookupResources call.
type ResourcesLookup struct {
	Subject      string   `yaml:"subject"`
	Permission   string   `yaml:"permission"`
	ResourceType string   `yaml:"resourceType"`
	Expected     []string `yaml:"expected"`
	line         int
}

// SubjectsLookup asserts the full result of one LookupSubjects call.
type SubjectsLookup struct {
	Resource    string   `yaml:"resource"`
	Permission  string   `yaml:"permission"`
	SubjectType string   `yaml:"subjectType"`
	Expected    []string `yaml:"expected"`
	line        int
}

// UnmarshalYAML records the entry's line and rejects unknown keys, so a typo
// such as "expect:" fails instead of asserting an empty list.
func (l *ResourcesLookup) UnmarshalYAML(node *yaml.Node) error {
	type plain ResourcesLookup
	if err := decodeStrict(node, (*plain)(l), "subject", "permission", "resourceType", "expected"); err != nil {
		return err
	}
	l.line = node.Line
	return nil
}

// UnmarshalYAML records the entry's line and rejects unknown keys.
func (l *SubjectsLookup) UnmarshalYAML(node *yaml.Node) error {
	type plain SubjectsLookup
	if err := decodeStrict(node, (*plain)(l), "resource", "permission", "subjectType", "expected"); err != nil {
		return err
	}
	l.line = node.Line
	return nil
}

// decodeStrict decodes a mapping that must have exactly the given keys.
func decodeStrict(node *yaml.Node, out any, keys ...string) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping with %s", node.Line, strings.Join(keys, ", "))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if !slices.Contains(keys, k.Value) {
			return fmt.Errorf("line %d: unknown key %q (expected %s)", k.Line, k.Value, strings.Join(keys, ", "))
		}
		seen[k.Value] = true
	}
	for _, k := range keys {
		if !seen[k] {
			return fmt.Errorf("line %d: missing key %q", node.Line, k)
		}
	}
	return node.Decode(out)
}

// isLookupFile reports whether the YAML document is a lookup file.
func isLookupFile(data []byte) (bool, error) {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return false, err
	}
	_, ok := top["validationFile"]
	return ok, nil
}

func runLookupFile(ctx context.Context, src Source, data []byte, report *Report) error {
	var lf LookupFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&lf); err != nil && !errors.Is(err, io.EOF) {
		report.Failures = append(report.Failures, yamlProblem(src.display(), err))
		return nil
	}
	if len(lf.LookupResources)+len(lf.LookupSubjects) == 0 {
		report.Failures = append(report.Failures, Problem{File: src.display(), Kind: "lookup",
			Message: "the file asserts no lookups (lookupResources, lookupSubjects)"})
		return nil
	}

	vfName := lf.ValidationFile
	vfData, err := readSibling(src, vfName)
	if err != nil {
		report.Failures = append(report.Failures, Problem{File: src.display(), Kind: "lookup",
			Message: fmt.Sprintf("cannot read validationFile %q: %v", vfName, err)})
		return nil
	}
	vf, err := validationfile.DecodeValidationFile(vfData)
	if err != nil {
		report.Failures = append(report.Failures, yamlProblem(src.sibling(vfName), err))
		return nil
	}
	vfSrc := Source{Dir: src.Dir, Name: siblingName(src.Name, vfName), Display: src.sibling(vfName)}
	dc, _, ok, err := openValidationFile(ctx, vfSrc, vf, report)
	if err != nil || !ok {
		return err
	}
	defer dc.Dispose()

	conn, stop, err := dc.RunV1InMemoryService()
	if err != nil {
		return err
	}
	defer stop()
	client := v1.NewPermissionsServiceClient(conn)

	for _, l := range lf.LookupResources {
		got, err := lookupResources(ctx, client, l)
		report.compareLookup(src.display(), l.line,
			fmt.Sprintf("lookupResources %s#%s @ %s", l.ResourceType, l.Permission, l.Subject), l.Expected, got, err)
	}
	for _, l := range lf.LookupSubjects {
		got, err := lookupSubjects(ctx, client, l)
		report.compareLookup(src.display(), l.line,
			fmt.Sprintf("lookupSubjects %s#%s @ %s", l.Resource, l.Permission, l.SubjectType), l.Expected, got, err)
	}
	return nil
}

func siblingName(name, rel string) string {
	return path.Join(path.Dir(name), rel)
}

func readSibling(src Source, rel string) ([]byte, error) {
	if rel == "" {
		return nil, errors.New("validationFile is empty")
	}
	return fs.ReadFile(src.Dir, siblingName(src.Name, rel))
}

func (r *Report) compareLookup(file string, line int, what string, expected, got []string, err error) {
	if err != nil {
		r.Failures = append(r.Failures, Problem{File: file, Line: line, Kind: "lookup", Message: fmt.Sprintf("%s: %v", what, err)})
		return
	}
	want := normalize(expected)
	slices.Sort(got)
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "unexpected "+strings.Join(extra, ", "))
	}
	r.Failures = append(r.Failures, Problem{File: file, Line: line, Kind: "lookup",
		Message: fmt.Sprintf("%s: %s (got [%s])", what, strings.Join(parts, "; "), strings.Join(got, ", "))})
}

func normalize(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var fullyConsistent = &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}

func lookupResources(ctx context.Context, client v1.PermissionsServiceClient, l ResourcesLookup) ([]string, error) {
	subject, err := parseSubject(l.Subject)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	stream, err := client.LookupResources(ctx, &v1.LookupResourcesRequest{
		Consistency:        fullyConsistent,
		ResourceObjectType: l.ResourceType,
		Permission:         l.Permission,
		Subject:            subject,
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l.ResourceType+":"+resp.GetResourceObjectId()+conditional(resp.GetPermissionship() == v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION))
	}
}

func lookupSubjects(ctx context.Context, client v1.PermissionsServiceClient, l SubjectsLookup) ([]string, error) {
	resource, err := tuple.ParseONR(l.Resource + "#" + l.Permission)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	subjectType, subjectRelation, _ := strings.Cut(l.SubjectType, "#")
	stream, err := client.LookupSubjects(ctx, &v1.LookupSubjectsRequest{
		Consistency:             fullyConsistent,
		Resource:                &v1.ObjectReference{ObjectType: resource.ObjectType, ObjectId: resource.ObjectID},
		Permission:              l.Permission,
		SubjectObjectType:       subjectType,
		OptionalSubjectRelation: subjectRelation,
	})
	if err != nil {
		return nil, err
	}
	suffix := ""
	if subjectRelation != "" {
		suffix = "#" + subjectRelation
	}
	var out []string
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		s := resp.GetSubject()
		text := subjectType + ":" + s.GetSubjectObjectId() + suffix
		if excluded := resp.GetExcludedSubjects(); len(excluded) > 0 {
			names := make([]string, 0, len(excluded))
			for _, e := range excluded {
				names = append(names, subjectType+":"+e.GetSubjectObjectId())
			}
			slices.Sort(names)
			text += " - {" + strings.Join(names, ", ") + "}"
		}
		out = append(out, text+conditional(s.GetPermissionship() == v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION))
	}
}

func conditional(is bool) string {
	if is {
		return " (conditional)"
	}
	return ""
}

func parseSubject(s string) (*v1.SubjectReference, error) {
	onr, err := tuple.ParseSubjectONR(s)
	if err != nil {
		return nil, err
	}
	rel := onr.Relation
	if rel == tuple.Ellipsis {
		rel = ""
	}
	return &v1.SubjectReference{
		Object:           &v1.ObjectReference{ObjectType: onr.ObjectType, ObjectId: onr.ObjectID},
		OptionalRelation: rel,
	}, nil
}
