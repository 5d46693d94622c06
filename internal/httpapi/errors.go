package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

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
		return &apiError{status: http.StatusBadRequest, Code: "invalid_argument", Field: arg.Arg, Message: arg.Error()}
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": rpc error:"); i >= 0 {
		msg = msg[:i] // keep SpiceDB's wire details out of the answer
	}
	msg = strings.TrimPrefix(msg, "spicegate: ")
	switch {
	case errors.Is(err, client.ErrInvalidArgument):
		return &apiError{status: http.StatusBadRequest, Code: "invalid_argument", Message: msg}
	case errors.Is(err, client.ErrPermissionDenied):
		return &apiError{status: http.StatusForbidden, Code: "permission_denied", Message: msg}
	case errors.Is(err, client.ErrNotFound):
		return &apiError{status: http.StatusNotFound, Code: "not_found", Message: msg}
	case errors.Is(err, client.ErrAlreadyExists):
		return &apiError{status: http.StatusConflict, Code: "already_exists", Message: msg}
	case errors.Is(err, client.ErrConflict):
		return &apiError{status: http.StatusConflict, Code: "conflict", Message: msg}
	case errors.Is(err, client.ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the permission store is unavailable"}
	default:
		return &apiError{status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
}

// decode reads a JSON body strictly: one object, no unknown fields, within
// the size limit. Errors name the field when there is one.
func decode(r *http.Request, into any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var maxErr *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &maxErr):
			return &apiError{status: http.StatusBadRequest, Code: "body_too_large",
				Message: fmt.Sprintf("the request body exceeds %d bytes", maxErr.Limit)}
		case errors.Is(err, io.EOF):
			return badRequest("", "the request needs a JSON body")
		case errors.As(err, &typeErr):
			return badRequest(typeErr.Field, "field %q must be a %s", typeErr.Field, typeErr.Type)
		case errors.As(err, &syntaxErr):
			return badRequest("", "malformed JSON at byte %d", syntaxErr.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(field, "unknown field %q", field)
		default:
			return badRequest("", "malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return badRequest("", "the body must hold one JSON object")
	}
	return nil
}
