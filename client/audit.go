package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Audit says who caused a write and in answer to which request. Attach it
// to a context with WithAudit: every write made with that context carries
// it to SpiceDB as transaction metadata, and Watch reports it with each
// change.
type Audit struct {
	// Actor is the acting subject, e.g. "user:alice".
	Actor string
	// RequestID identifies the request that caused the write.
	RequestID string
}

type auditKey struct{}

// WithAudit returns a context whose writes carry a.
func WithAudit(ctx context.Context, a Audit) context.Context {
	return context.WithValue(ctx, auditKey{}, a)
}

// AuditFrom returns the Audit attached to ctx, if any.
func AuditFrom(ctx context.Context) (Audit, bool) {
	a, ok := ctx.Value(auditKey{}).(Audit)
	return a, ok
}

// Transaction metadata keys.
const (
	metaActor   = "actor"
	metaRequest = "request_id"
	metaTime    = "at"
)

// transactionMetadata is what a write made with ctx records: its Audit and
// the time it was sent.
func transactionMetadata(ctx context.Context) *structpb.Struct {
	fields := map[string]any{metaTime: time.Now().UTC().Format(time.RFC3339Nano)}
	if a, ok := AuditFrom(ctx); ok {
		if a.Actor != "" {
			fields[metaActor] = a.Actor
		}
		if a.RequestID != "" {
			fields[metaRequest] = a.RequestID
		}
	}
	s, err := structpb.NewStruct(fields)
	if err != nil {
		return nil
	}
	return s
}

// Change is one relationship change, as the audit stream reports it.
type Change struct {
	// Time is when the write was sent (its metadata), or when it was
	// observed for writes made without this client.
	Time time.Time `json:"time"`
	// Revision is the revision that includes the change: resume after it.
	Revision Revision `json:"revision"`
	// Operation is "touch" (written: SpiceDB's Watch reports a create as a
	// touch) or "delete".
	Operation string `json:"operation"`
	// Relationship is "resource#relation@subject".
	Relationship string `json:"relationship"`
	Actor        string `json:"actor,omitempty"`
	RequestID    string `json:"request_id,omitempty"`
}

// Watch follows SpiceDB's Watch API and yields every relationship change
// after the revision after ("" for changes from now on), in order. A
// consumer that records the Revision of the last change it handled and
// resumes with it neither loses nor repeats changes. The stream ends with
// ctx, or with the first error (yielded).
func (c *Client) Watch(ctx context.Context, after Revision) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		req := &v1.WatchRequest{}
		if after != "" {
			req.OptionalStartCursor = after.proto()
		}
		stream, err := c.watch.Watch(ctx, req)
		if err != nil {
			yield(Change{}, translate("Watch", err))
			return
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) || callerEnded(ctx, err) {
					return
				}
				yield(Change{}, translate("Watch", err))
				return
			}
			base := Change{Revision: revisionOf(resp.GetChangesThrough()), Time: time.Now().UTC()}
			if md := resp.GetOptionalTransactionMetadata().AsMap(); md != nil {
				base.Actor, _ = md[metaActor].(string)
				base.RequestID, _ = md[metaRequest].(string)
				if at, ok := md[metaTime].(string); ok {
					if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
						base.Time = t
					}
				}
			}
			for _, u := range resp.GetUpdates() {
				ch := base
				ch.Operation = operationName(u.GetOperation())
				ch.Relationship = relationshipString(u.GetRelationship())
				if !yield(ch, nil) {
					return
				}
			}
		}
	}
}

func operationName(op v1.RelationshipUpdate_Operation) string {
	switch op {
	case v1.RelationshipUpdate_OPERATION_CREATE:
		return "create"
	case v1.RelationshipUpdate_OPERATION_TOUCH:
		return "touch"
	case v1.RelationshipUpdate_OPERATION_DELETE:
		return "delete"
	default:
		return "unknown"
	}
}

func relationshipString(r *v1.Relationship) string {
	s := r.GetResource().GetObjectType() + ":" + r.GetResource().GetObjectId() + "#" + r.GetRelation() + "@" +
		r.GetSubject().GetObject().GetObjectType() + ":" + r.GetSubject().GetObject().GetObjectId()
	if rel := r.GetSubject().GetOptionalRelation(); rel != "" {
		s += "#" + rel
	}
	return s
}

// callerEnded reports whether a stream error is the caller's own context
// ending: gRPC may report the deadline (DeadlineExceeded) a moment before
// ctx.Err() says so.
func callerEnded(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	switch status.Code(err) {
	case codes.Canceled, codes.DeadlineExceeded:
		dl, ok := ctx.Deadline()
		return ok && !time.Now().Add(10*time.Millisecond).Before(dl)
	}
	return false
}
