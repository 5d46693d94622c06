package cmd

import (
	"errors"
	"strings"

	"github.com/spicegate/spicegate/client"
)

// Exit statuses of the spicegate command.
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything else: SpiceDB unavailable, not found, a bug
	ExitUsage       = 2 // a wrong command line or argument: nothing was sent
	ExitDenied      = 3 // a write was refused, or a check denied with --error-on-no-permission
	ExitUnavailable = 4 // SpiceDB could not be reached or did not answer in time
)

// ErrNoPermission is what `check --error-on-no-permission` returns for a
// denied answer.
var ErrNoPermission = errors.New("no permission")

// Describe turns a command's error into the one line to print (without
// the "spicegate: " prefix main adds) and the exit status. gRPC's wire
// details are cut; an unauthenticated call says where the key comes from.
func Describe(err error) (string, int) {
	if err == nil {
		return "", ExitOK
	}
	msg := strings.TrimPrefix(err.Error(), "spicegate: ")
	if i := strings.Index(msg, ": rpc error:"); i >= 0 {
		msg = msg[:i]
	}
	switch {
	case errors.Is(err, client.ErrUnauthenticated):
		return msg + ": SpiceDB refused the preshared key; give the one `spicegate serve` printed (or was given) with --preshared-key or SPICEGATE_PRESHARED_KEY", ExitFailure
	case errors.Is(err, ErrUsage), errors.Is(err, client.ErrInvalidArgument):
		return msg, ExitUsage
	case errors.Is(err, client.ErrPermissionDenied), errors.Is(err, ErrNoPermission):
		return msg, ExitDenied
	case errors.Is(err, client.ErrUnavailable):
		return msg, ExitUnavailable
	}
	return msg, ExitFailure
}
