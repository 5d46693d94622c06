package sqlite

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

var (
	// ErrLocked is returned by New when another process has the database
	// file open. The error names the file.
	ErrLocked = errors.New("database file is in use by another process")

	// ErrBusy is returned when a write transaction could not get the write
	// lock in time (WithBusyTimeout), or SQLite reported the database busy.
	// ReadWriteTx retries such transactions (WithMaxRetries) before giving up
	// with an error that wraps ErrBusy.
	ErrBusy = errors.New("database is busy")

	// ErrFull is returned (wrapped) by a write that found the disk of the
	// database file full (SQLite's SQLITE_FULL). Nothing of that write is
	// applied; reads go on; writes succeed again once space is freed,
	// without a restart. The error's gRPC status is ResourceExhausted (gRPC's
	// code for "the entire file system is out of space"), so that SpiceDB
	// answers its clients that, not an unknown error.
	ErrFull = errors.New("database or disk is full")

	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("datastore is closed")

	// ErrNewerSchema is returned by New when the file was written by a newer
	// version of this package, whose migrations this version does not know.
	ErrNewerSchema = errors.New("database file has a newer schema than this version supports")
)

// isBusy reports whether err is SQLite saying the database (or a table) is
// locked by another connection.
func isBusy(err error) bool {
	if errors.Is(err, ErrBusy) {
		return true
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// isConstraintPrimaryKey reports whether err is a primary key violation.
func isConstraintPrimaryKey(err error) bool {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// classify marks SQLite's busy errors with ErrBusy and its full ones with
// ErrFull, keeping the cause.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrBusy) || errors.Is(err, ErrFull) {
		return err
	}
	if isBusy(err) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	var se *sqlite3.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3lib.SQLITE_FULL {
		return fullError{err}
	}
	return err
}

// fullError is ErrFull with SQLite's error, and the gRPC status SpiceDB
// passes on as it is.
type fullError struct{ err error }

func (e fullError) Error() string {
	return "sqlite datastore: " + ErrFull.Error() + " (writes fail until space is freed): " + e.err.Error()
}

func (e fullError) Unwrap() []error { return []error{ErrFull, e.err} }

// GRPCStatus is ResourceExhausted.
func (e fullError) GRPCStatus() *status.Status { return status.New(codes.ResourceExhausted, e.Error()) }

// ctxErr returns the context's error, if it is done, else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
