package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"

	"github.com/spicegate/spicegate/internal/service"
)

// The banner prints a secret only when serve generated it, says so only
// then, and tells where the key goes for the operator commands.
func TestWelcomeShowsOnlyGeneratedSecrets(t *testing.T) {
	cfg := service.Config{GRPCAddr: defaultGRPCAddr, PresharedKey: "key-0123456789", HTTPTokens: []string{"tok-0123456789"}}
	welcome := func(cfg service.Config, genKey, genToken bool) string {
		var b bytes.Buffer
		printWelcome(&b, cfg, "127.0.0.1:8080", genKey, genToken)
		return b.String()
	}

	both := welcome(cfg, true, true)
	assert.Contains(t, both, "zed context set local 127.0.0.1:50051 key-0123456789 --insecure")
	assert.Contains(t, both, "export SPICEGATE_PRESHARED_KEY=key-0123456789\n  spicegate members acme\n")
	assert.Contains(t, both, "export SPICEGATE_TOKEN=tok-0123456789")
	assert.Contains(t, both, "The key and the (admin) token above were generated for this run")

	supplied := welcome(cfg, false, false)
	for _, secret := range []string{"key-0123456789", "tok-0123456789"} {
		assert.NotContains(t, supplied, secret, "a configured secret was echoed")
	}
	assert.Contains(t, supplied, "export SPICEGATE_PRESHARED_KEY=<your preshared key>")
	assert.NotContains(t, supplied, "generated")

	tokenSupplied := welcome(cfg, true, false)
	assert.Contains(t, tokenSupplied, "The key above was generated for this run")
	assert.NotContains(t, tokenSupplied, "token above")
	assert.NotContains(t, tokenSupplied, "tok-0123456789")

	other := cfg
	other.GRPCAddr = "127.0.0.1:6000"
	assert.Contains(t, welcome(other, true, true), "spicegate members acme --spicedb-endpoint 127.0.0.1:6000\n")

	external := cfg
	external.SpiceDBEndpoint = "spicedb.internal:50051"
	out := welcome(external, false, true)
	assert.NotContains(t, out, "zed context")
	assert.NotContains(t, out, "SPICEGATE_PRESHARED_KEY=", "the external SpiceDB's key is the operator's own")
}

// Every flag's help names its value plainly (pflag turns `quoted` words of a
// usage text into the value's name, which once showed "--preshared-key
// spicegate serve"), and every command taking SpiceDB's key says where it
// comes from and which environment variable holds it.
func TestHelpTexts(t *testing.T) {
	root := NewRootCommand()
	var withKey []string
	commands := root.Commands()
	for len(commands) > 0 {
		c := commands[0]
		commands = append(commands[1:], c.Commands()...)
		c.Flags().VisitAll(func(f *pflag.Flag) {
			assert.NotContains(t, f.Usage, "`", "%s --%s: a backquote in the usage names the value", c.CommandPath(), f.Name)
			if name, _ := pflag.UnquoteUsage(f); name != "" {
				assert.NotContains(t, name, " ", "%s --%s shows its value as %q", c.CommandPath(), f.Name, name)
			}
		})
		if f := c.Flags().Lookup("preshared-key"); f != nil {
			withKey = append(withKey, c.Name())
			help := f.Usage + " " + c.Long
			assert.True(t, strings.Contains(help, "SPICEGATE_PRESHARED_KEY") || strings.Contains(help, "environment variable"),
				"%s --preshared-key does not say which environment variable holds it: %q", c.CommandPath(), f.Usage)
		}
	}
	assert.Contains(t, withKey, "members")
	assert.Contains(t, withKey, "serve")
}
