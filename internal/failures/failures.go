// Package failures is the one table of what each kind of failure looks
// like at every entry point: the HTTP status and JSON error code, the Go
// client's sentinel error, and the CLI's exit status. The HTTP API's and
// the CLI's tests check their mapping against it, and the README prints it
// (a test keeps the two the same). No failure that is not a bug is a 500,
// and none is ever an allow.
package failures

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
)

// Failure is one row of the table.
type Failure struct {
	// What happened, as the README says it.
	What string
	// Err is the error the facade returns for it (what the HTTP API and the
	// CLI receive), built from SpiceDB's answer as the facade translates it.
	Err error
	// Sentinel is the client's error that errors.Is matches.
	Sentinel error
	// Status and Code are the HTTP API's answer; HTTPOnly marks a failure
	// the HTTP API alone produces (the Go client and the CLI never see it).
	Status   int
	Code     string
	HTTPOnly bool
	// Exit is the CLI's exit status.
	Exit int
}

func spicedb(op string, kind error, code codes.Code, msg string) error {
	return &client.Error{Op: op, Kind: kind, Err: status.Error(code, msg)}
}

// Table lists every failure, most common first.
var Table = []Failure{
	{What: "a malformed or unknown argument (ID, type, permission, consistency)", Sentinel: client.ErrInvalidArgument,
		Err:    spicedb("Check", client.ErrInvalidArgument, codes.FailedPrecondition, "relation/permission `depoy` not found under definition `organization`"),
		Status: 400, Code: "invalid_argument", Exit: 2},
	{What: "a revision from another or a restarted datastore, or older than the GC window", Sentinel: client.ErrInvalidArgument,
		Err:    spicedb("Check", client.ErrInvalidArgument, codes.OutOfRange, "invalid revision: revision has expired"),
		Status: 400, Code: "invalid_argument", Exit: 2},
	{What: "the schema is missing (nothing was applied to the datastore)", Sentinel: client.ErrInvalidArgument,
		Err:    spicedb("Check", client.ErrInvalidArgument, codes.FailedPrecondition, "object definition `organization` not found"),
		Status: 400, Code: "invalid_argument", Exit: 2},
	{What: "no or an unknown HTTP bearer token", HTTPOnly: true, Status: 401, Code: "unauthenticated"},
	{What: "SpiceDB refuses the preshared key (the CLI's, the Go client's, or, misconfigured, the service's own)", Sentinel: client.ErrUnauthenticated,
		Err:    spicedb("Check", client.ErrUnauthenticated, codes.Unauthenticated, "invalid preshared key"),
		Status: 503, Code: "unavailable", Exit: 1},
	{What: "the actor lacks the permission (a write refused)", Sentinel: client.ErrPermissionDenied,
		Err:    &client.Error{Op: "RegisterDeployment", Kind: client.ErrPermissionDenied, Err: errors.New("user:rita lacks deploy on organization:acme")},
		Status: 403, Code: "permission_denied", Exit: 3},
	{What: "the object does not exist", Sentinel: client.ErrNotFound,
		Err:    &client.Error{Op: "RemoveMember", Kind: client.ErrNotFound, Err: errors.New(`user "carol" is not a member of "acme"`)},
		Status: 404, Code: "not_found", Exit: 1},
	{What: "it exists already", Sentinel: client.ErrAlreadyExists,
		Err:    &client.Error{Op: "AddMember", Kind: client.ErrAlreadyExists, Err: errors.New(`user "rita" is already a member of "acme"`)},
		Status: 409, Code: "already_exists", Exit: 1},
	{What: "a concurrent change won (a role changed meanwhile): read again and retry", Sentinel: client.ErrConflict,
		Err:    &client.Error{Op: "ChangeRole", Kind: client.ErrConflict, Err: errors.New(`the role of "rita" in "acme" changed meanwhile`)},
		Status: 409, Code: "conflict", Exit: 1},
	{What: "SpiceDB unreachable, or its datastore down (PostgreSQL stopped)", Sentinel: client.ErrUnavailable,
		Err:    spicedb("Check", client.ErrUnavailable, codes.Unavailable, "connection refused"),
		Status: 503, Code: "unavailable", Exit: 4},
	{What: "a write when the SQLite file's disk is full (reads go on; writes work again once there is room, no restart)", Sentinel: client.ErrUnavailable,
		Err:    spicedb("RegisterDataset", client.ErrUnavailable, codes.ResourceExhausted, "sqlite datastore: database or disk is full (writes fail until space is freed)"),
		Status: 503, Code: "unavailable", Exit: 4},
	{What: "SpiceDB did not answer within the deadline (hung, overloaded)", Sentinel: client.ErrUnavailable,
		Err:    &client.Error{Op: "Check", Kind: client.ErrUnavailable, Err: fmt.Errorf("waiting for SpiceDB: %w", context.DeadlineExceeded)},
		Status: 504, Code: "deadline_exceeded", Exit: 4},
	{What: "too many HTTP requests at once (retry after Retry-After)", HTTPOnly: true, Status: 503, Code: "overloaded"},
	{What: "a bug (anything else)", Sentinel: client.ErrInternal,
		Err:    spicedb("Check", client.ErrInternal, codes.Internal, "unexpected"),
		Status: 500, Code: "internal", Exit: 1},
}

// Markdown renders the table as the README prints it.
func Markdown() string {
	out := "| failure | HTTP | JSON `code` | Go client (`errors.Is`) | CLI exit |\n|---|---|---|---|---|\n"
	for _, f := range Table {
		sentinel, exit := "—", "—"
		if !f.HTTPOnly {
			sentinel = "`client." + sentinelName(f.Sentinel) + "`"
			exit = fmt.Sprint(f.Exit)
		}
		out += fmt.Sprintf("| %s | %d | `%s` | %s | %s |\n", f.What, f.Status, f.Code, sentinel, exit)
	}
	return out
}

func sentinelName(err error) string {
	for name, s := range map[string]error{
		"ErrInvalidArgument": client.ErrInvalidArgument, "ErrNotFound": client.ErrNotFound, "ErrPermissionDenied": client.ErrPermissionDenied,
		"ErrAlreadyExists": client.ErrAlreadyExists, "ErrConflict": client.ErrConflict, "ErrUnavailable": client.ErrUnavailable,
		"ErrUnauthenticated": client.ErrUnauthenticated, "ErrInternal": client.ErrInternal,
	} {
		if s == err {
			return name
		}
	}
	return "?"
}
