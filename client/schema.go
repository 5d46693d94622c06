package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/spicegate/spicegate/schema"
)

// SchemaChange is one difference between the schema SpiceDB holds and
// Spicegate's (package schema), as SpiceDB's schema reflection reports it.
type SchemaChange struct {
	// Kind is e.g. "definition_added", "relation_removed", "permission_expr_changed".
	Kind string
	// Object is the definition, or "definition#relation".
	Object string
	// Removal reports whether applying the change drops something that
	// services may still check or relationships may still use.
	Removal bool
}

func (c SchemaChange) String() string { return c.Kind + " " + c.Object }

// DiffSchema compares the schema SpiceDB holds with Spicegate's. When
// SpiceDB holds no schema yet, every definition is reported added.
func (c *Client) DiffSchema(ctx context.Context) ([]SchemaChange, error) {
	var resp *v1.DiffSchemaResponse
	err := c.retry(ctx, "DiffSchema", func(ctx context.Context) (err error) {
		resp, err = c.schemas.DiffSchema(ctx, &v1.DiffSchemaRequest{
			Consistency:      FullyConsistent().proto(nil),
			ComparisonSchema: schema.Text(),
		})
		return err
	})
	if err != nil {
		err = translate("DiffSchema", err)
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return allAdded(), nil
	}
	var out []SchemaChange
	for _, d := range resp.GetDiffs() {
		out = append(out, changeOf(d))
	}
	return out, nil
}

func allAdded() []SchemaChange {
	var out []SchemaChange
	for _, line := range strings.Split(schema.Text(), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "definition "); ok {
			out = append(out, SchemaChange{Kind: "definition_added", Object: strings.TrimSuffix(strings.TrimSpace(name), " {")})
		}
	}
	return out
}

func changeOf(d *v1.ReflectionSchemaDiff) SchemaChange {
	rel := func(parent, name string) string { return parent + "#" + name }
	switch x := d.GetDiff().(type) {
	case *v1.ReflectionSchemaDiff_DefinitionAdded:
		return SchemaChange{Kind: "definition_added", Object: x.DefinitionAdded.GetName()}
	case *v1.ReflectionSchemaDiff_DefinitionRemoved:
		return SchemaChange{Kind: "definition_removed", Object: x.DefinitionRemoved.GetName(), Removal: true}
	case *v1.ReflectionSchemaDiff_RelationAdded:
		return SchemaChange{Kind: "relation_added", Object: rel(x.RelationAdded.GetParentDefinitionName(), x.RelationAdded.GetName())}
	case *v1.ReflectionSchemaDiff_RelationRemoved:
		return SchemaChange{Kind: "relation_removed", Object: rel(x.RelationRemoved.GetParentDefinitionName(), x.RelationRemoved.GetName()), Removal: true}
	case *v1.ReflectionSchemaDiff_RelationSubjectTypeAdded:
		r := x.RelationSubjectTypeAdded.GetRelation()
		return SchemaChange{Kind: "relation_subject_type_added", Object: rel(r.GetParentDefinitionName(), r.GetName())}
	case *v1.ReflectionSchemaDiff_RelationSubjectTypeRemoved:
		r := x.RelationSubjectTypeRemoved.GetRelation()
		return SchemaChange{Kind: "relation_subject_type_removed", Object: rel(r.GetParentDefinitionName(), r.GetName()), Removal: true}
	case *v1.ReflectionSchemaDiff_PermissionAdded:
		return SchemaChange{Kind: "permission_added", Object: rel(x.PermissionAdded.GetParentDefinitionName(), x.PermissionAdded.GetName())}
	case *v1.ReflectionSchemaDiff_PermissionRemoved:
		return SchemaChange{Kind: "permission_removed", Object: rel(x.PermissionRemoved.GetParentDefinitionName(), x.PermissionRemoved.GetName()), Removal: true}
	case *v1.ReflectionSchemaDiff_PermissionExprChanged:
		return SchemaChange{Kind: "permission_expr_changed", Object: rel(x.PermissionExprChanged.GetParentDefinitionName(), x.PermissionExprChanged.GetName())}
	case *v1.ReflectionSchemaDiff_CaveatRemoved:
		return SchemaChange{Kind: "caveat_removed", Object: x.CaveatRemoved.GetName(), Removal: true}
	default: // doc comments, caveat changes: nothing is removed
		return SchemaChange{Kind: snake(strings.TrimPrefix(fmt.Sprintf("%T", d.GetDiff()), "*v1.ReflectionSchemaDiff_")), Object: changedObject(d)}
	}
}

// changedObject names what a change not listed above is about: every diff
// message names its object (GetName), and those inside a definition its
// parent (GetParentDefinitionName).
func changedObject(d *v1.ReflectionSchemaDiff) string {
	m := d.ProtoReflect()
	field := m.WhichOneof(m.Descriptor().Oneofs().ByName("diff"))
	if field == nil || field.Message() == nil {
		return ""
	}
	inner := m.Get(field).Message().Interface()
	named, ok := inner.(interface{ GetName() string })
	if !ok {
		return ""
	}
	if p, ok := inner.(interface{ GetParentDefinitionName() string }); ok && p.GetParentDefinitionName() != "" {
		return p.GetParentDefinitionName() + "#" + named.GetName()
	}
	return named.GetName()
}

// snake turns "PermissionDocCommentChanged" into "permission_doc_comment_changed".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// retiredRelations are relations earlier versions of Spicegate wrote for
// their own bookkeeping, which no service checks: the schema may drop them
// without allowRemovals, once their relationships are deleted (SpiceDB
// refuses to remove a relation still in use).
var retiredRelations = map[string]*v1.RelationshipFilter{
	// The role change fence before it moved to membership#role_change.
	TypeOrganization + "#" + RelRoleChange: filter(TypeOrganization, "", RelRoleChange, nil),
}

// ApplySchema writes Spicegate's schema when it differs from SpiceDB's. It
// refuses, with ErrConflict and nothing written, a change that removes a
// definition, relation, permission, subject type or caveat, unless
// allowRemovals is set: services may still check a removed permission, and
// SpiceDB itself refuses to remove a relation that relationships still use.
// The facade's own retired bookkeeping relations are the exception: their
// relationships are deleted and the relations dropped.
//
// Then, changed or not, it brings the API tokens in line with the model
// and their owners (RepairTokens): an earlier run may have written the
// schema and stopped before. It returns the changes and the revision
// written at ("" when there was nothing to change).
func (c *Client) ApplySchema(ctx context.Context, allowRemovals bool) ([]SchemaChange, Revision, error) {
	const op = "ApplySchema"
	changes, err := c.DiffSchema(ctx)
	if err != nil {
		return nil, "", err
	}
	if len(changes) == 0 {
		return nil, "", c.repairTokens(ctx)
	}
	var removals []string
	var retired []*v1.RelationshipFilter
	for _, ch := range changes {
		if f, ok := retiredRelations[ch.Object]; ok && ch.Kind == "relation_removed" {
			retired = append(retired, f)
			continue
		}
		if ch.Removal {
			removals = append(removals, ch.String())
		}
	}
	if len(removals) > 0 && !allowRemovals {
		return changes, "", opErr(op, ErrConflict, "the new schema removes %s; allow removals explicitly to apply it", strings.Join(removals, ", "))
	}
	for _, f := range retired {
		if _, err := c.deleteMatching(ctx, op, f); err != nil {
			return changes, "", err
		}
	}
	rev, err := c.WriteSchema(ctx)
	if err != nil {
		return changes, "", err
	}
	return changes, rev, c.repairTokens(ctx)
}

// repairTokens runs RepairTokens, again while it meets conflicts (it is
// idempotent: a retry picks up where a conflict stopped it), and logs what
// it changed.
func (c *Client) repairTokens(ctx context.Context) error {
	var repaired int
	err := c.retryConflicts(ctx, func() (err error) {
		repaired, err = c.RepairTokens(ctx)
		return err
	})
	if repaired > 0 {
		c.cfg.logger.Info("API tokens brought in line with the schema and their owners", "tokens", repaired)
	}
	return err
}
