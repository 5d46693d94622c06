package sqlite

import (
	"context"
	"errors"
	"fmt"

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

// wrapBusy marks SQLite busy errors with ErrBusy, keeping the cause.
func wrapBusy(err error) error {
	if err == nil || errors.Is(err, ErrBusy) {
		return err
	}
	if isBusy(err) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// ctxErr returns the context's error, if it is done, else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
