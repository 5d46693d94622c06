package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
)

// apiError is the JSON error body: a stable code, a message, and the
// field that was wrong when there is one.
type apiError struct {
	status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "invalid_argument", Field: field, Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) int {
	writeJSON(w, e.status, map[string]*apiError{"error": e})
	return e.status
}

// toAPIError maps the client's errors to statuses, in one place. Messages
// of server-side failures are generic: the cause is logged, not returned.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var arg *client.ArgumentError
	if errors.As(err, &arg) {
		return &apiError{status: http.StatusBadRequest, Code: "invalid_argument", Field: fieldOf(arg.Arg), Message: arg.Error()}
	}
	var field string
	var ce *client.Error
	if errors.As(err, &ce) {
		field = fieldOf(ce.Arg)
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": rpc error:"); i >= 0 {
		msg = msg[:i] // keep SpiceDB's wire details out of the answer
	}
	msg = strings.TrimPrefix(msg, "spicegate: ")
	switch {
	case errors.Is(err, client.ErrInvalidArgument):
		// SpiceDB's own word on a bad argument describes the request (e.g.
		// "relation/permission `depoy` not found under definition
		// `organization`"): the caller needs it, and it reveals nothing.
		var st interface{ GRPCStatus() *status.Status }
		if ce != nil && errors.As(err, &st) {
			desc := st.GRPCStatus().Message()
			msg = ce.Op + ": " + desc
			if field == "" && strings.Contains(desc, "relation/permission") {
				field = "permission"
			}
		}
		return &apiError{status: http.StatusBadRequest, Code: "invalid_argument", Message: msg, Field: field}
	case errors.Is(err, client.ErrPermissionDenied):
		return &apiError{status: http.StatusForbidden, Code: "permission_denied", Message: msg, Field: field}
	case errors.Is(err, client.ErrNotFound):
		return &apiError{status: http.StatusNotFound, Code: "not_found", Message: msg}
	case errors.Is(err, client.ErrAlreadyExists):
		return &apiError{status: http.StatusConflict, Code: "already_exists", Message: msg}
	case errors.Is(err, client.ErrConflict):
		return &apiError{status: http.StatusConflict, Code: "conflict", Message: msg}
	case deadlineExceeded(err):
		return &apiError{status: http.StatusGatewayTimeout, Code: "deadline_exceeded", Message: "the permission store did not answer in time"}
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrUnauthenticated):
		// SpiceDB refusing this service's own key is a misconfiguration
		// the caller cannot fix: the store is unavailable to it.
		return &apiError{status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the permission store is unavailable"}
	default:
		return &apiError{status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
}

// fieldOf names, in the API's terms, the client argument an error is about:
// the client's arguments are the JSON keys and path parameters, but the
// actor comes in a header.
func fieldOf(arg string) string {
	if arg == "actor" {
		return ActorHeader
	}
	return arg
}

// deadlineExceeded reports whether err is the end of the request's
// deadline: the context's own, or SpiceDB's gRPC answer to it.
func deadlineExceeded(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var st interface{ GRPCStatus() *status.Status }
	return errors.As(err, &st) && st.GRPCStatus().Code() == codes.DeadlineExceeded
}

// apiError is toAPIError, and one more question for a failure it cannot
// name: is the permission store ready? SpiceDB answers "Unknown" when its
// datastore is down (PostgreSQL stopped, say), the same code as for a bug;
// a caller must be told "retry later" (503) rather than "bug" (500), so an
// internal error while the store is not ready is unavailability.
func (s *Server) apiError(ctx context.Context, err error) *apiError {
	ae := toAPIError(err)
	if ae.status != http.StatusInternalServerError {
		return ae
	}
	// The moment the datastore goes, the readiness probe below may still
	// pass (it reads what SpiceDB holds already); SpiceDB's own words for
	// a lost database connection say unavailability just as well.
	if client.LostDatastore(err) {
		return &apiError{status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the permission store is unavailable"}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if s.cfg.Ready(ctx) != nil {
		return &apiError{status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the permission store is unavailable"}
	}
	return ae
}
