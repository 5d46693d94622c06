package client

import (
	"context"
	"errors"
	"iter"
	"math/rand/v2"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// rel builds the relationship resource#relation@subject.
func rel(resource Object, relation string, subject Subject) *v1.Relationship {
	return &v1.Relationship{Resource: resource.proto(), Relation: relation, Subject: subject.proto()}
}

func expiring(r *v1.Relationship, at time.Time) *v1.Relationship {
	r.OptionalExpiresAt = timestamppb.New(at)
	return r
}

func update(op v1.RelationshipUpdate_Operation, r *v1.Relationship) *v1.RelationshipUpdate {
	return &v1.RelationshipUpdate{Operation: op, Relationship: r}
}

func create(r *v1.Relationship) *v1.RelationshipUpdate {
	return update(v1.RelationshipUpdate_OPERATION_CREATE, r)
}
func touch(r *v1.Relationship) *v1.RelationshipUpdate {
	return update(v1.RelationshipUpdate_OPERATION_TOUCH, r)
}
func remove(r *v1.Relationship) *v1.RelationshipUpdate {
	return update(v1.RelationshipUpdate_OPERATION_DELETE, r)
}

// filter builds a relationship filter; empty parts match anything.
func filter(resourceType, resourceID, relation string, subject *Subject) *v1.RelationshipFilter {
	f := &v1.RelationshipFilter{ResourceType: resourceType, OptionalResourceId: resourceID, OptionalRelation: relation}
	if subject != nil {
		f.OptionalSubjectFilter = &v1.SubjectFilter{SubjectType: subject.Type, OptionalSubjectId: subject.ID}
		if subject.Relation != "" {
			f.OptionalSubjectFilter.OptionalRelation = &v1.SubjectFilter_RelationFilter{Relation: subject.Relation}
		}
	}
	return f
}

// precondition is a write precondition with the error to report when it
// is what failed.
type precondition struct {
	filter    *v1.RelationshipFilter
	mustMatch bool
	failure   error
}

func mustExist(f *v1.RelationshipFilter, failure error) precondition {
	return precondition{filter: f, mustMatch: true, failure: failure}
}

func mustNotExist(f *v1.RelationshipFilter, failure error) precondition {
	return precondition{filter: f, mustMatch: false, failure: failure}
}

// orgExists is the precondition that the organization was created.
func orgExists(org string) precondition {
	o := Organization(org).Subject()
	return mustExist(filter(TypePlatform, PlatformID, RelOrganization, &o),
		opErr("", ErrNotFound, "organization %q does not exist", org))
}

type preconditionsKey struct{}

// withPreconditions returns a context whose writes (write, deleteMatching)
// carry pres besides their own: how an Actor makes its standing a
// condition of the writes it authorized.
func withPreconditions(ctx context.Context, pres []precondition) context.Context {
	if len(pres) == 0 {
		return ctx
	}
	return context.WithValue(ctx, preconditionsKey{}, append(preconditionsFrom(ctx), pres...))
}

func preconditionsFrom(ctx context.Context) []precondition {
	pres, _ := ctx.Value(preconditionsKey{}).([]precondition)
	return pres
}

// protoPreconditions converts preconditions for SpiceDB.
func protoPreconditions(pres []precondition) []*v1.Precondition {
	out := make([]*v1.Precondition, 0, len(pres))
	for _, p := range pres {
		pre := &v1.Precondition{Filter: p.filter, Operation: v1.Precondition_OPERATION_MUST_NOT_MATCH}
		if p.mustMatch {
			pre.Operation = v1.Precondition_OPERATION_MUST_MATCH
		}
		out = append(out, pre)
	}
	return out
}

// organizationOf returns the organization a resource belongs to (its
// organization relation), fully consistent; found is false when it has none.
func (c *Client) organizationOf(ctx context.Context, resource Object) (org string, found bool, err error) {
	for r, err := range c.read(ctx, filter(resource.Type, resource.ID, RelOrganization, nil), FullyConsistent(), 1) {
		if err != nil {
			return "", false, err
		}
		return r.GetSubject().GetObject().GetObjectId(), true, nil
	}
	return "", false, nil
}

// write applies updates atomically in one WriteRelationships call. With
// retry set (idempotent writes: only TOUCH and DELETE) it retries
// Unavailable and DeadlineExceeded. When a precondition fails, the error
// is that precondition's failure (found by reading each one again), or
// ErrConflict when the state changed back meanwhile.
func (c *Client) write(ctx context.Context, op string, updates []*v1.RelationshipUpdate, pres []precondition, retry bool) (Revision, error) {
	pres = append(pres[:len(pres):len(pres)], preconditionsFrom(ctx)...)
	req := &v1.WriteRelationshipsRequest{Updates: updates, OptionalTransactionMetadata: transactionMetadata(ctx),
		OptionalPreconditions: protoPreconditions(pres)}

	done := c.revs.begin()
	var resp *v1.WriteRelationshipsResponse
	lost := false // an attempt failed in a way that may have hidden its success
	call := func(ctx context.Context) (err error) {
		resp, err = c.perms.WriteRelationships(ctx, req)
		lost = lost || retryable(err)
		return err
	}
	var err error
	if retry {
		err = c.retry(ctx, op, call)
	} else {
		err = call(ctx)
	}
	if err != nil && lost && status.Code(err) == codes.FailedPrecondition {
		// An earlier attempt may have been applied and its answer lost
		// (Unavailable, DeadlineExceeded): its own changes then fail the
		// retry's preconditions (a delete required what it deleted). When
		// every update is in effect, that attempt landed: the write
		// succeeded, at a revision no older than now.
		if rev, ok := c.inEffect(ctx, updates); ok {
			done(rev)
			return rev, nil
		}
	}
	if err != nil {
		done("")
		if status.Code(err) == codes.FailedPrecondition && len(pres) > 0 {
			return "", c.whichPreconditionFailed(ctx, op, pres, err)
		}
		return "", translate(op, err)
	}
	rev := revisionOf(resp.GetWrittenAt())
	done(rev)
	return rev, nil
}

// inEffect reports whether every update holds now (a touched or created
// relationship exists, a deleted one does not), read fully consistent,
// with the revision of the read.
func (c *Client) inEffect(ctx context.Context, updates []*v1.RelationshipUpdate) (Revision, bool) {
	// The revision first: what is read next is at least as fresh.
	schema, err := c.schemas.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if err != nil {
		return "", false
	}
	for _, u := range updates {
		r := u.GetRelationship()
		f := &v1.RelationshipFilter{ResourceType: r.GetResource().GetObjectType(), OptionalResourceId: r.GetResource().GetObjectId(),
			OptionalRelation: r.GetRelation(), OptionalSubjectFilter: &v1.SubjectFilter{
				SubjectType: r.GetSubject().GetObject().GetObjectType(), OptionalSubjectId: r.GetSubject().GetObject().GetObjectId(),
				OptionalRelation: &v1.SubjectFilter_RelationFilter{Relation: r.GetSubject().GetOptionalRelation()}}}
		found, err := c.exists(ctx, f, FullyConsistent())
		if err != nil || found != (u.GetOperation() != v1.RelationshipUpdate_OPERATION_DELETE) {
			return "", false
		}
	}
	return revisionOf(schema.GetReadAt()), true
}

func (c *Client) whichPreconditionFailed(ctx context.Context, op string, pres []precondition, cause error) error {
	for _, p := range pres {
		found, err := c.exists(ctx, p.filter, FullyConsistent())
		if err != nil {
			return translate(op, err)
		}
		if found != p.mustMatch {
			var e *Error
			if errors.As(p.failure, &e) {
				return &Error{Op: op, Kind: e.Kind, Err: e.Err}
			}
			return &Error{Op: op, Kind: ErrConflict, Err: p.failure}
		}
	}
	return &Error{Op: op, Kind: ErrConflict, Err: cause}
}

// exists reports whether any relationship matches the filter.
func (c *Client) exists(ctx context.Context, f *v1.RelationshipFilter, cons Consistency) (bool, error) {
	for _, err := range c.read(ctx, f, cons, 1) {
		if err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// read pages through the relationships matching the filter with cursors.
// limit 0 reads them all.
func (c *Client) read(ctx context.Context, f *v1.RelationshipFilter, cons Consistency, limit int) iter.Seq2[*v1.Relationship, error] {
	return func(yield func(*v1.Relationship, error) bool) {
		consistency := cons.proto(&c.revs)
		var cursor *v1.Cursor
		seen := 0
		for {
			page := c.cfg.pageSize
			if limit > 0 && limit-seen < int(page) {
				page = uint32(limit - seen) //nolint:gosec // bounded by pageSize
			}
			var batch []*v1.ReadRelationshipsResponse
			err := c.retry(ctx, "ReadRelationships", func(ctx context.Context) error {
				batch = batch[:0]
				stream, err := c.perms.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
					Consistency: consistency, RelationshipFilter: f, OptionalLimit: page, OptionalCursor: cursor,
				})
				if err != nil {
					return err
				}
				return recvAll(stream, func(r *v1.ReadRelationshipsResponse) bool {
					batch = append(batch, r)
					return true
				})
			})
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range batch {
				if !yield(r.GetRelationship(), nil) {
					return
				}
				seen++
			}
			if len(batch) < int(page) || (limit > 0 && seen >= limit) {
				return
			}
			// The cursor carries the first page's revision; the request
			// must otherwise stay the same.
			cursor = batch[len(batch)-1].GetAfterResultCursor()
		}
	}
}

// deleteMatching deletes every relationship the filter matches, in batches
// SpiceDB accepts, and returns the revision of the last batch ("" if
// nothing matched). Deleting is idempotent, so batches are retried.
func (c *Client) deleteMatching(ctx context.Context, op string, f *v1.RelationshipFilter) (Revision, error) {
	var last Revision
	pres := preconditionsFrom(ctx)
	for {
		done := c.revs.begin()
		var resp *v1.DeleteRelationshipsResponse
		err := c.retry(ctx, op, func(ctx context.Context) (err error) {
			resp, err = c.perms.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
				RelationshipFilter:            f,
				OptionalLimit:                 uint32(c.cfg.maxWriteSize), //nolint:gosec // small constant
				OptionalAllowPartialDeletions: true,
				OptionalTransactionMetadata:   transactionMetadata(ctx),
				OptionalPreconditions:         protoPreconditions(pres),
			})
			return err
		})
		if err != nil {
			done("")
			if status.Code(err) == codes.FailedPrecondition && len(pres) > 0 {
				return last, c.whichPreconditionFailed(ctx, op, pres, err)
			}
			return last, translate(op, err)
		}
		rev := revisionOf(resp.GetDeletedAt())
		done(rev)
		if resp.GetRelationshipsDeletedCount() > 0 {
			last = rev
		}
		if resp.GetDeletionProgress() != v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL {
			return last, nil
		}
	}
}

// writeBatches applies idempotent updates (DELETE or TOUCH) in batches of
// the maximum write size and returns the last revision.
func (c *Client) writeBatches(ctx context.Context, op string, updates []*v1.RelationshipUpdate) (Revision, error) {
	var last Revision
	for start := 0; start < len(updates); start += c.cfg.maxWriteSize {
		end := min(start+c.cfg.maxWriteSize, len(updates))
		rev, err := c.write(ctx, op, updates[start:end], nil, true)
		if err != nil {
			return last, err
		}
		last = rev
	}
	return last, nil
}

// retryConflicts runs fn again (up to four times in all, after a short
// pause) while it fails with ErrConflict: a read-then-write whose
// precondition a concurrent write broke reads again and decides anew.
func (c *Client) retryConflicts(ctx context.Context, fn func() error) error {
	pause := 2 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if attempt == 4 || !errors.Is(err, ErrConflict) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause + time.Duration(rand.Int64N(int64(pause)))):
		}
		pause *= 2
	}
}
