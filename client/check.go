package client

import (
	"context"
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// Permissionship is the outcome of a check.
type Permissionship int

const (
	// Denied: the subject does not hold the permission. The zero value, so
	// that a Decision nobody filled in never allows.
	Denied Permissionship = iota
	// Allowed: the subject holds the permission.
	Allowed
	// Conditional: the subject holds it only if a caveat's missing context
	// is satisfied. Not an allow.
	Conditional
)

// String returns "allowed", "denied" or "conditional".
func (p Permissionship) String() string {
	switch p {
	case Allowed:
		return "allowed"
	case Conditional:
		return "conditional"
	default:
		return "denied"
	}
}

// Decision is the answer to a check.
type Decision struct {
	Permissionship Permissionship
	// Revision is the revision the check was evaluated at.
	Revision Revision
	// MissingContext lists the caveat parameters a Conditional decision lacks.
	MissingContext []string
}

// Allowed reports whether the decision is an unconditional allow.
func (d Decision) Allowed() bool { return d.Permissionship == Allowed }

func decisionOf(p v1.CheckPermissionResponse_Permissionship, rev Revision, partial *v1.PartialCaveatInfo) Decision {
	d := Decision{Revision: rev}
	switch p {
	case v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION:
		d.Permissionship = Allowed
	case v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION:
		d.Permissionship = Conditional
		d.MissingContext = partial.GetMissingRequiredContext()
	default:
		d.Permissionship = Denied
	}
	return d
}

// CheckItem is one check of a CheckMany.
type CheckItem struct {
	Subject    Subject
	Permission string
	Resource   Object
}

// String formats the check as "resource#permission@subject".
func (it CheckItem) String() string {
	return fmt.Sprintf("%s#%s@%s", it.Resource, it.Permission, it.Subject)
}

func (it CheckItem) validate(arg string) error {
	if err := it.Subject.Validate(arg + "subject"); err != nil {
		return err
	}
	if !validRelation(it.Permission) {
		return argErr(arg+"permission", it.Permission, "must be a SpiceDB permission name")
	}
	return it.Resource.Validate(arg + "resource")
}

// CheckResult is one answer of a CheckMany: a decision, or the error that
// kept it from being made (then the decision is denied).
type CheckResult struct {
	Decision
	Err error
}

// Check asks whether subject holds permission on resource. Any error means
// not allowed: the decision is then denied, and the error says why
// (ErrUnavailable when SpiceDB cannot be reached).
func (c *Client) Check(ctx context.Context, subject Subject, permission string, resource Object, opts ...CallOption) (Decision, error) {
	item := CheckItem{Subject: subject, Permission: permission, Resource: resource}
	if err := item.validate(""); err != nil {
		return Decision{}, err
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return Decision{}, err
	}
	req := &v1.CheckPermissionRequest{
		Consistency: c.consistency(cc),
		Resource:    resource.proto(),
		Permission:  permission,
		Subject:     subject.proto(),
	}
	var resp *v1.CheckPermissionResponse
	err = c.retry(ctx, "Check", func(ctx context.Context) (err error) {
		resp, err = c.perms.CheckPermission(ctx, req)
		return err
	})
	if err != nil {
		return Decision{}, translate("Check", err)
	}
	return decisionOf(resp.GetPermissionship(), revisionOf(resp.GetCheckedAt()), resp.GetPartialCaveatInfo()), nil
}

// CheckMany runs many checks with CheckBulkPermissions, in chunks SpiceDB
// accepts, and returns one result per item, in the items' order. An error
// that stops the whole call is returned as err (and no results); an error
// of one item is in its result.
func (c *Client) CheckMany(ctx context.Context, items []CheckItem, opts ...CallOption) ([]CheckResult, error) {
	for i, it := range items {
		if err := it.validate(fmt.Sprintf("items[%d].", i)); err != nil {
			return nil, err
		}
	}
	cc, err := c.callConfig(opts)
	if err != nil {
		return nil, err
	}
	consistency := c.consistency(cc)
	results := make([]CheckResult, 0, len(items))
	for start := 0; start < len(items); start += c.cfg.bulkCheckChunk {
		chunk := items[start:min(start+c.cfg.bulkCheckChunk, len(items))]
		req := &v1.CheckBulkPermissionsRequest{Consistency: consistency}
		for _, it := range chunk {
			req.Items = append(req.Items, &v1.CheckBulkPermissionsRequestItem{
				Resource: it.Resource.proto(), Permission: it.Permission, Subject: it.Subject.proto(),
			})
		}
		var resp *v1.CheckBulkPermissionsResponse
		err := c.retry(ctx, "CheckMany", func(ctx context.Context) (err error) {
			resp, err = c.perms.CheckBulkPermissions(ctx, req)
			return err
		})
		if err != nil {
			return nil, translate("CheckMany", err)
		}
		if len(resp.GetPairs()) != len(chunk) {
			return nil, opErr("CheckMany", ErrInternal, "SpiceDB answered %d of %d checks", len(resp.GetPairs()), len(chunk))
		}
		rev := revisionOf(resp.GetCheckedAt())
		for i, pair := range resp.GetPairs() {
			if e := pair.GetError(); e != nil {
				results = append(results, CheckResult{Err: opErr("CheckMany", kindOfStatus(codeOf(e.GetCode()), e.GetMessage()), "%s: %s", chunk[i], e.GetMessage())})
				continue
			}
			item := pair.GetItem()
			results = append(results, CheckResult{Decision: decisionOf(item.GetPermissionship(), rev, item.GetPartialCaveatInfo())})
		}
		// Later chunks read the same snapshot as the first.
		if rev != "" {
			consistency = AtExactSnapshot(rev).proto(nil)
		}
	}
	return results, nil
}

// Permissions returns every permission the schema defines on the
// resource's type, with whether subject holds it, in one round trip: what a
// UI needs to enable or grey out its buttons.
func (c *Client) Permissions(ctx context.Context, subject Subject, resource Object, opts ...CallOption) (map[string]Decision, error) {
	perms, ok := permissionsByType[resource.Type]
	if !ok {
		return nil, argErr("resource.type", resource.Type, "is not a definition of the schema")
	}
	items := make([]CheckItem, len(perms))
	for i, p := range perms {
		items[i] = CheckItem{Subject: subject, Permission: p, Resource: resource}
	}
	results, err := c.CheckMany(ctx, items, opts...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Decision, len(perms))
	for i, r := range results {
		if r.Err != nil {
			return nil, r.Err
		}
		out[perms[i]] = r.Decision
	}
	return out, nil
}
