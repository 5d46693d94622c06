package cmd_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/cmd"
	"github.com/spicegate/spicegate/internal/failures"
)

func TestDescribeGivesOneLineAndAStatus(t *testing.T) {
	unauth := &client.Error{Op: "Explain", Kind: client.ErrUnauthenticated,
		Err: status.Error(codes.Unauthenticated, "invalid preshared key: rpc error: code = Unauthenticated desc = Request unauthenticated with bearer")}
	msg, code := cmd.Describe(unauth)
	assert.Equal(t, cmd.ExitFailure, code)
	assert.NotContains(t, msg, "spicegate:", "main adds the one prefix")
	assert.NotContains(t, msg, "rpc error")
	assert.Contains(t, msg, "SPICEGATE_PRESHARED_KEY", "says where the key comes from")

	for err, want := range map[error]int{
		nil: cmd.ExitOK,
		fmt.Errorf("%w: --as: bad", cmd.ErrUsage):                                 cmd.ExitUsage,
		&client.ArgumentError{Arg: "org", Value: "a b", Reason: "bad"}:            cmd.ExitUsage,
		&client.Error{Op: "RemoveMember", Kind: client.ErrPermissionDenied}:       cmd.ExitDenied,
		fmt.Errorf("%w: user:rita deploy organization:acme", cmd.ErrNoPermission): cmd.ExitDenied,
		&client.Error{Op: "Check", Kind: client.ErrUnavailable}:                   cmd.ExitUnavailable,
		&client.Error{Op: "ListMembers", Kind: client.ErrNotFound}:                cmd.ExitFailure,
		errors.New("open seed.yaml: no such file"):                                cmd.ExitFailure,
	} {
		_, code := cmd.Describe(err)
		assert.Equal(t, want, code, "%v", err)
	}
}

// The CLI column of the failure table (internal/failures) is the exit status.
func TestFailureTableExitStatus(t *testing.T) {
	for _, f := range failures.Table {
		if f.HTTPOnly {
			continue
		}
		_, exit := cmd.Describe(f.Err)
		assert.Equal(t, f.Exit, exit, f.What)
	}
}
