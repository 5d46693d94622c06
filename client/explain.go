package client

import (
	"context"
	"fmt"
	"io"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// Trace is SpiceDB's account of how a check was decided: the permission
// or relation it evaluated on a resource, its result, and the checks it
// took to get there.
type Trace struct {
	Resource Object
	// Name is the permission or relation evaluated.
	Name string
	// IsRelation reports whether Name is a relation (a stored fact) rather
	// than a permission (a rule).
	IsRelation bool
	Subject    Subject
	Result     Permissionship
	// Cached reports whether SpiceDB answered this step from its cache.
	Cached   bool
	Children []*Trace
}

// Explain is Check with SpiceDB's check tracing: the decision and the path
// that granted or denied it.
func (c *Client) Explain(ctx context.Context, subject Subject, permission string, resource Object, opts ...CallOption) (Decision, *Trace, error) {
	item := CheckItem{Subject: subject, Permission: permission, Resource: resource}
	if err := item.validate(""); err != nil {
		return Decision{}, nil, err
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return Decision{}, nil, err
	}
	var resp *v1.CheckPermissionResponse
	err = c.retry(ctx, "Explain", func(ctx context.Context) (err error) {
		resp, err = c.perms.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: c.consistency(cc), Resource: resource.proto(), Permission: permission,
			Subject: subject.proto(), WithTracing: true,
		})
		return err
	})
	if err != nil {
		return Decision{}, nil, translate("Explain", err)
	}
	d := decisionOf(resp.GetPermissionship(), revisionOf(resp.GetCheckedAt()), resp.GetPartialCaveatInfo())
	return d, traceOf(resp.GetDebugTrace().GetCheck()), nil
}

func traceOf(t *v1.CheckDebugTrace) *Trace {
	if t == nil {
		return nil
	}
	out := &Trace{
		Resource:   Object{Type: t.GetResource().GetObjectType(), ID: t.GetResource().GetObjectId()},
		Name:       t.GetPermission(),
		IsRelation: t.GetPermissionType() == v1.CheckDebugTrace_PERMISSION_TYPE_RELATION,
		Subject: Subject{Object: Object{Type: t.GetSubject().GetObject().GetObjectType(), ID: t.GetSubject().GetObject().GetObjectId()},
			Relation: t.GetSubject().GetOptionalRelation()},
		Cached: t.GetWasCachedResult(),
	}
	switch t.GetResult() {
	case v1.CheckDebugTrace_PERMISSIONSHIP_HAS_PERMISSION:
		out.Result = Allowed
	case v1.CheckDebugTrace_PERMISSIONSHIP_CONDITIONAL_PERMISSION:
		out.Result = Conditional
	}
	for _, sub := range t.GetSubProblems().GetTraces() {
		out.Children = append(out.Children, traceOf(sub))
	}
	return out
}

// Write prints the trace as an indented tree a person can read: ✓ for a
// step that held, ✗ for one that did not.
func (t *Trace) Write(w io.Writer) error {
	return t.write(w, 0)
}

func (t *Trace) write(w io.Writer, depth int) error {
	if t == nil {
		return nil
	}
	mark := "✗"
	switch t.Result {
	case Allowed:
		mark = "✓"
	case Conditional:
		mark = "?"
	}
	kind := "permission"
	if t.IsRelation {
		kind = "relation"
	}
	cached := ""
	if t.Cached {
		cached = " (cached)"
	}
	if _, err := fmt.Fprintf(w, "%s%s %s#%s (%s) for %s%s\n", strings.Repeat("  ", depth), mark, t.Resource, t.Name, kind, t.Subject, cached); err != nil {
		return err
	}
	for _, child := range t.Children {
		if err := child.write(w, depth+1); err != nil {
			return err
		}
	}
	return nil
}
