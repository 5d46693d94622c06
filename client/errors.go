package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Every error the client returns matches one of them with
// errors.Is (or is a context error), and keeps its cause in the chain.
var (
	// ErrInvalidArgument: an argument is malformed (see [ArgumentError] for
	// which one). Nothing was sent to SpiceDB.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the organization, member, invite or token does not exist
	// (an expired invite does not exist).
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: the acting user lacks the permission the action
	// needs. Nothing was written.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrAlreadyExists: a create found what it would have overwritten.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a concurrent write changed what this write depended on
	// (e.g. another accept consumed the invite). Nothing was written.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: SpiceDB could not be reached or did not answer in time.
	// A check that fails with it is not allowed.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthenticated: SpiceDB refused the client's credentials (preshared key).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrInternal: SpiceDB failed in a way the caller cannot fix.
	ErrInternal = errors.New("internal error")
)

// ArgumentError says which argument was invalid and why. It matches
// ErrInvalidArgument.
type ArgumentError struct {
	// Arg names the argument, e.g. "subject" or "resource.id".
	Arg string
	// Value is the rejected value.
	Value string
	// Reason says what is wrong with it.
	Reason string
}

// Error formats the argument, its value and the reason.
func (e *ArgumentError) Error() string {
	return fmt.Sprintf("invalid argument %s %q: %s", e.Arg, e.Value, e.Reason)
}

// Is makes ArgumentError match ErrInvalidArgument.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func argErr(arg, value, reason string) error {
	return &ArgumentError{Arg: arg, Value: value, Reason: reason}
}

// Error is an error from an operation: its kind (a sentinel above), the
// operation, and the underlying cause (often a gRPC status).
type Error struct {
	// Kind is one of the sentinel errors.
	Kind error
	// Op is the client method, e.g. "Check".
	Op string
	// Err is the cause.
	Err error
	// Arg names the argument the error is about, when there is one (e.g.
	// "owner" when an actor names someone else as a token's owner).
	Arg string
}

// Error formats the operation, the kind and the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("spicegate: %s: %v", e.Op, e.Kind)
	}
	return fmt.Sprintf("spicegate: %s: %v: %v", e.Op, e.Kind, e.Err)
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func opErr(op string, kind error, format string, args ...any) error {
	return &Error{Op: op, Kind: kind, Err: fmt.Errorf(format, args...)}
}

// translate maps an error from gRPC to the client's errors, in one place.
// Argument errors and already-translated errors pass through.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) || errors.Is(err, ErrInvalidArgument) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Op: op, Kind: ErrUnavailable, Err: err}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Op: op, Kind: ErrInternal, Err: err}
	}
	return &Error{Op: op, Kind: kindOfStatus(st.Code(), err.Error()), Err: err}
}

// kindOfStatus is kindOf, but SpiceDB's Unknown or Internal for a lost
// database connection (see LostDatastore) is "retry later", as the HTTP API
// answers it (503), not a bug.
func kindOfStatus(code codes.Code, msg string) error {
	kind := kindOf(code)
	if kind == ErrInternal && lostDatastore(msg) {
		return ErrUnavailable
	}
	return kind
}

func kindOf(code codes.Code) error {
	switch code {
	case codes.InvalidArgument, codes.OutOfRange:
		return ErrInvalidArgument
	case codes.FailedPrecondition:
		// SpiceDB's answer to a type, relation or permission the schema does
		// not define. (A failed write precondition is told apart in write.)
		return ErrInvalidArgument
	case codes.NotFound:
		return ErrNotFound
	case codes.AlreadyExists:
		return ErrAlreadyExists
	case codes.Aborted:
		return ErrConflict
	case codes.PermissionDenied, codes.Unauthenticated:
		// SpiceDB answers a wrong preshared key with PermissionDenied. The
		// client's ErrPermissionDenied means an actor lacks a permission.
		return ErrUnauthenticated
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
		return ErrUnavailable
	default:
		return ErrInternal
	}
}

// retryable reports whether a failed read or idempotent write may be tried
// again: SpiceDB unavailable or out of time, or its datastore's connection
// lost under a request (a read that timed out while PostgreSQL restarted).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.Unknown, codes.Internal:
		return LostDatastore(err)
	default:
		return false
	}
}

// LostDatastore reports whether SpiceDB's error says that its datastore's
// connection failed. SpiceDB answers such failures with Unknown or
// Internal, as it answers its own bugs; only the words of the database
// driver tell "retry later" apart.
func LostDatastore(err error) bool {
	return err != nil && lostDatastore(err.Error())
}

func lostDatastore(msg string) bool {
	for _, marker := range []string{"unexpected EOF", "connection refused", "failed to connect", "i/o timeout", "connection reset", "broken pipe"} {
		if strings.Contains(msg, marker) {
			return true
		}
	}
	return false
}

// codeOf converts the code of an error inside a response (google.rpc.Status).
func codeOf(code int32) codes.Code {
	if code < 0 {
		return codes.Unknown
	}
	return codes.Code(uint32(code))
}
