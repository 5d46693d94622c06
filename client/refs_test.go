package client_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
)

func TestParseObjectAndSubject(t *testing.T) {
	o, err := client.ParseObject("dataset:team/a|b=c+d-e_f")
	require.NoError(t, err)
	assert.Equal(t, client.Object{Type: "dataset", ID: "team/a|b=c+d-e_f"}, o)
	assert.Equal(t, "dataset:team/a|b=c+d-e_f", o.String())

	for _, s := range []string{"user:alice", "organization:acme#member", "api_token:0a1b"} {
		sub, err := client.ParseSubject(s)
		require.NoError(t, err)
		assert.Equal(t, s, sub.String())
	}
	sub, err := client.ParseSubject("organization:acme#member")
	require.NoError(t, err)
	assert.Equal(t, client.Subject{Object: client.Organization("acme"), Relation: "member"}, sub)
	assert.Equal(t, client.User("a"), client.Object{Type: "user", ID: "a"}.Subject())
}

func TestParseRejectsWhatSpiceDBWould(t *testing.T) {
	tests := []struct {
		in  string
		arg string
	}{
		{"alice", "object"},
		{"User:alice", "object.type"},
		{"u:alice", "object.type"},
		{"user:", "object.id"},
		{"user:a b", "object.id"},
		{"user:*", "object.id"},
		{"user:" + strings.Repeat("a", 1025), "object.id"},
	}
	for _, tc := range tests {
		t.Run(tc.in[:min(len(tc.in), 20)], func(t *testing.T) {
			_, err := client.ParseObject(tc.in)
			var ae *client.ArgumentError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.arg, ae.Arg)
			assert.ErrorIs(t, err, client.ErrInvalidArgument)
		})
	}
	_, err := client.ParseSubject("organization:acme#")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.ParseSubject("organization:acme#Member")
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = client.ParseObject("user:" + strings.Repeat("a", 1024))
	require.NoError(t, err, "1024 characters is the limit, inclusive")
}
