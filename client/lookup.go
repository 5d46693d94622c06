package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// LookupResources yields every resource of resourceType on which subject
// holds permission. It pages with SpiceDB cursors (see [WithPageSize]),
// which read every page at the snapshot of the first, so listing 100,000
// datasets holds one page at a time. Only unconditional results are
// yielded. Iteration stops at the first error, which is yielded.
func (c *Client) LookupResources(ctx context.Context, subject Subject, permission, resourceType string, opts ...CallOption) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		cc, err := c.resourcesLookupArgs(subject, permission, resourceType, opts)
		if err != nil {
			yield(Object{}, err)
			return
		}
		consistency := c.consistency(cc)
		var cursor *v1.Cursor
		for attempt := 1; ; {
			n, last, stop, err := c.lookupResourcesPage(ctx, subject, permission, resourceType, consistency, cursor, yield)
			if stop {
				return
			}
			if err != nil {
				// A page that broke off resumes from the last result's cursor.
				if last != nil {
					cursor, attempt = last.GetAfterResultCursor(), 1
				}
				if !retryable(err) || attempt >= c.cfg.retry.attempts || ctx.Err() != nil {
					yield(Object{}, translate("LookupResources", err))
					return
				}
				attempt++
				continue
			}
			if n < int(c.cfg.pageSize) || last == nil {
				return
			}
			// The cursor carries the first page's revision: every page is
			// read at the same snapshot. The request must stay the same.
			cursor = last.GetAfterResultCursor()
		}
	}
}

// lookupResourcesPage streams one page; it returns how many results came,
// the last one, whether the consumer stopped, and the stream's error.
func (c *Client) lookupResourcesPage(ctx context.Context, subject Subject, permission, resourceType string,
	consistency *v1.Consistency, cursor *v1.Cursor, yield func(Object, error) bool,
) (n int, last *v1.LookupResourcesResponse, stopped bool, err error) {
	stream, err := c.perms.LookupResources(ctx, &v1.LookupResourcesRequest{
		Consistency:        consistency,
		ResourceObjectType: resourceType,
		Permission:         permission,
		Subject:            subject.proto(),
		OptionalLimit:      c.cfg.pageSize,
		OptionalCursor:     cursor,
	})
	if err != nil {
		return 0, nil, false, err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, last, false, nil
		}
		if err != nil {
			return n, last, false, err
		}
		n++
		last = resp
		if resp.GetPermissionship() != v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION {
			continue
		}
		if !yield(Object{Type: resourceType, ID: resp.GetResourceObjectId()}, nil) {
			return n, last, true, nil
		}
	}
}

// LookupSubjects yields every subject of subjectType (optionally a subject
// set, e.g. "organization#member") that holds permission on resource. A
// wildcard grant is yielded as the subject with ID "*". SpiceDB does not
// page this call: results stream one at a time, and a stream that breaks
// after the first result is not retried. Only unconditional results are
// yielded.
func (c *Client) LookupSubjects(ctx context.Context, resource Object, permission, subjectType string, opts ...CallOption) iter.Seq2[Subject, error] {
	return func(yield func(Subject, error) bool) {
		typ, relation, cc, err := c.subjectsLookupArgs(resource, permission, subjectType, opts)
		if err != nil {
			yield(Subject{}, err)
			return
		}
		req := &v1.LookupSubjectsRequest{
			Consistency:             c.consistency(cc),
			Resource:                resource.proto(),
			Permission:              permission,
			SubjectObjectType:       typ,
			OptionalSubjectRelation: relation,
		}
		for attempt := 1; ; attempt++ {
			yielded, stopped, err := c.lookupSubjectsOnce(ctx, req, typ, relation, yield)
			if stopped || err == nil {
				return
			}
			// Retry only while nothing was yielded: SpiceDB cannot resume this stream.
			if yielded || !retryable(err) || attempt >= c.cfg.retry.attempts || ctx.Err() != nil {
				yield(Subject{}, translate("LookupSubjects", err))
				return
			}
		}
	}
}

func (c *Client) lookupSubjectsOnce(ctx context.Context, req *v1.LookupSubjectsRequest, typ, relation string,
	yield func(Subject, error) bool,
) (yielded, stopped bool, err error) {
	stream, err := c.perms.LookupSubjects(ctx, req)
	if err != nil {
		return false, false, err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return yielded, false, nil
		}
		if err != nil {
			return yielded, false, err
		}
		s := resp.GetSubject()
		if s.GetPermissionship() != v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION {
			continue
		}
		yielded = true
		if !yield(Subject{Object: Object{Type: typ, ID: s.GetSubjectObjectId()}, Relation: relation}, nil) {
			return true, true, nil
		}
	}
}

func splitSubjectType(s string) (typ, relation string, err error) {
	typ, relation, _ = strings.Cut(s, "#")
	if !validType(typ) {
		return "", "", argErr("subjectType", s, "must be a SpiceDB type name, optionally with #relation")
	}
	if relation != "" && !validRelation(relation) {
		return "", "", argErr("subjectType", s, "has an invalid relation")
	}
	return typ, relation, nil
}

// LookupResourcesPage returns one page of LookupResources: at most limit
// resources after cursor ("" for the first page), and the cursor of the
// next page ("" after the last). A cursor is an opaque string for APIs that
// page across requests: it carries SpiceDB's cursor and the consistency of
// the first page, which every later page keeps (so opts only matter on the
// first page). Pass the same subject, permission and type with it.
func (c *Client) LookupResourcesPage(ctx context.Context, subject Subject, permission, resourceType, cursor string, limit uint32, opts ...CallOption) ([]Object, string, error) {
	if err := validateLimit(limit); err != nil {
		return nil, "", err
	}
	cc, err := c.resourcesLookupArgs(subject, permission, resourceType, opts)
	if err != nil {
		return nil, "", err
	}
	consistency := c.consistency(cc)
	var after *v1.Cursor
	if cursor != "" {
		pc, err := decodePageCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		after, consistency = &v1.Cursor{Token: pc.Token}, pc.consistency()
	}
	var out []Object
	var n int
	var last *v1.LookupResourcesResponse
	err = c.retry(ctx, "LookupResources", func(ctx context.Context) error {
		out, n, last = out[:0], 0, nil
		stream, err := c.perms.LookupResources(ctx, &v1.LookupResourcesRequest{
			Consistency: consistency, ResourceObjectType: resourceType, Permission: permission,
			Subject: subject.proto(), OptionalLimit: limit, OptionalCursor: after,
		})
		if err != nil {
			return err
		}
		return recvAll(stream, func(resp *v1.LookupResourcesResponse) bool {
			n++
			last = resp
			if resp.GetPermissionship() == v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION {
				out = append(out, Object{Type: resourceType, ID: resp.GetResourceObjectId()})
			}
			return true
		})
	})
	if err != nil {
		return nil, "", translate("LookupResources", err)
	}
	if n < int(limit) || last == nil {
		return out, "", nil
	}
	next, err := encodePageCursor(last.GetAfterResultCursor().GetToken(), consistency)
	if err != nil {
		return nil, "", &Error{Op: "LookupResources", Kind: ErrInternal, Err: err}
	}
	return out, next, nil
}

// pageCursor is what LookupResourcesPage's cursors carry.
type pageCursor struct {
	Token string `json:"t"`
	// Requirement and Revision are the first page's resolved consistency.
	Requirement string `json:"c"`
	Revision    string `json:"r,omitempty"`
}

func encodePageCursor(token string, c *v1.Consistency) (string, error) {
	pc := pageCursor{Token: token}
	switch r := c.GetRequirement().(type) {
	case *v1.Consistency_FullyConsistent:
		pc.Requirement = "full"
	case *v1.Consistency_AtLeastAsFresh:
		pc.Requirement, pc.Revision = "atleast", r.AtLeastAsFresh.GetToken()
	case *v1.Consistency_AtExactSnapshot:
		pc.Requirement, pc.Revision = "exact", r.AtExactSnapshot.GetToken()
	default:
		pc.Requirement = "minimize"
	}
	b, err := json.Marshal(pc)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decodePageCursor(s string) (pageCursor, error) {
	var pc pageCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &pc) != nil || pc.Token == "" {
		return pc, argErr("cursor", s, "is not a cursor this API returned")
	}
	return pc, nil
}

func (pc pageCursor) consistency() *v1.Consistency {
	switch pc.Requirement {
	case "full":
		return FullyConsistent().proto(nil)
	case "atleast":
		return AtLeastAsFresh(Revision(pc.Revision)).proto(nil)
	case "exact":
		return AtExactSnapshot(Revision(pc.Revision)).proto(nil)
	default:
		return MinimizeLatency().proto(nil)
	}
}

// LookupSubjectsPage returns one page of LookupSubjects: at most limit
// subjects after cursor ("" for the first page), and the cursor of the
// next page ("" after the last). SpiceDB does not page this call, so a
// cursor records how many subjects were returned and the revision of the
// first page; the next page reads that snapshot again, sorted by ID, and
// skips what was returned. Each page costs the whole lookup: for very
// large answers, prefer the LookupSubjects iterator.
func (c *Client) LookupSubjectsPage(ctx context.Context, resource Object, permission, subjectType, cursor string, limit uint32, opts ...CallOption) ([]Subject, string, error) {
	if err := validateLimit(limit); err != nil {
		return nil, "", err
	}
	typ, relation, cc, err := c.subjectsLookupArgs(resource, permission, subjectType, opts)
	if err != nil {
		return nil, "", err
	}
	consistency, skip := c.consistency(cc), 0
	if cursor != "" {
		pc, err := decodePageCursor(cursor)
		if err != nil || pc.Requirement != "exact" {
			return nil, "", argErr("cursor", cursor, "is not a cursor this API returned")
		}
		if _, err := fmt.Sscan(pc.Token, &skip); err != nil || skip < 0 {
			return nil, "", argErr("cursor", cursor, "is not a cursor this API returned")
		}
		consistency = pc.consistency()
	}
	// SpiceDB streams subjects in no particular order: collect the
	// snapshot's, sort them, and cut the page out.
	var all []string
	var rev Revision
	err = c.retry(ctx, "LookupSubjects", func(ctx context.Context) error {
		all, rev = all[:0], ""
		stream, err := c.perms.LookupSubjects(ctx, &v1.LookupSubjectsRequest{
			Consistency: consistency, Resource: resource.proto(), Permission: permission,
			SubjectObjectType: typ, OptionalSubjectRelation: relation,
		})
		if err != nil {
			return err
		}
		return recvAll(stream, func(resp *v1.LookupSubjectsResponse) bool {
			rev = revisionOf(resp.GetLookedUpAt())
			if s := resp.GetSubject(); s.GetPermissionship() == v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION {
				all = append(all, s.GetSubjectObjectId())
			}
			return true
		})
	})
	if err != nil {
		return nil, "", translate("LookupSubjects", err)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	end := min(skip+int(limit), len(all))
	var out []Subject
	for _, id := range all[min(skip, len(all)):end] {
		out = append(out, Subject{Object: Object{Type: typ, ID: id}, Relation: relation})
	}
	if end >= len(all) || rev == "" {
		return out, "", nil
	}
	next, err := encodePageCursor(fmt.Sprint(skip+len(out)), AtExactSnapshot(rev).proto(nil))
	if err != nil {
		return nil, "", &Error{Op: "LookupSubjects", Kind: ErrInternal, Err: err}
	}
	return out, next, nil
}

// resourcesLookupArgs validates the arguments of a LookupResources.
func (c *Client) resourcesLookupArgs(subject Subject, permission, resourceType string, opts []CallOption) (callConfig, error) {
	if err := subject.Validate("subject"); err != nil {
		return callConfig{}, err
	}
	if !validRelation(permission) {
		return callConfig{}, argErr("permission", permission, "must be a SpiceDB permission name")
	}
	if !validType(resourceType) {
		return callConfig{}, argErr("resourceType", resourceType, "must be a SpiceDB type name")
	}
	return c.callConfig(opts)
}

// subjectsLookupArgs validates the arguments of a LookupSubjects.
func (c *Client) subjectsLookupArgs(resource Object, permission, subjectType string, opts []CallOption) (typ, relation string, cc callConfig, err error) {
	if typ, relation, err = splitSubjectType(subjectType); err != nil {
		return "", "", cc, err
	}
	if err := resource.Validate("resource"); err != nil {
		return "", "", cc, err
	}
	if !validRelation(permission) {
		return "", "", cc, argErr("permission", permission, "must be a SpiceDB permission name")
	}
	cc, err = c.callConfig(opts)
	return typ, relation, cc, err
}

func validateLimit(limit uint32) error {
	if limit == 0 || limit > 10_000 {
		return argErr("limit", fmt.Sprint(limit), "must be between 1 and 10000")
	}
	return nil
}

// recvAll receives every message of a server stream, handing each to each
// until it returns false; it returns nil at the end of the stream.
func recvAll[T any](stream interface{ Recv() (T, error) }, each func(T) bool) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !each(msg) {
			return nil
		}
	}
}
