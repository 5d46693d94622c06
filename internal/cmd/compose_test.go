package cmd

import (
	"os"
	"strings"
	"testing"

	spicedbcmd "github.com/authzed/spicedb/pkg/cmd"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No Docker engine runs here, so the compose file is checked by reading it:
// its services, their dependencies and health checks, pinned images, and
// that every variable it sets is a setting its binary really reads.

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"},
		cli.WithWorkingDirectory("../.."), cli.WithName("spicegate"), cli.WithInterpolation(true))
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err)
	return p
}

// envOf returns the variables a command reads: prefix + FLAG_NAME for each
// of its flags, local and inherited.
func envOf(cmd *cobra.Command, prefix string) map[string]bool {
	out := map[string]bool{}
	add := func(f *pflag.Flag) { out[prefix+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = true }
	cmd.Flags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	return out
}

func subcommand(t *testing.T, root *cobra.Command, args []string) *cobra.Command {
	t.Helper()
	c, _, err := root.Find(args)
	require.NoError(t, err, "command %v", args)
	require.NotEqual(t, root, c, "command %v is not a subcommand", args)
	return c
}

func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	services := map[string]types.ServiceConfig{}
	for _, s := range p.Services {
		services[s.Name] = s
	}
	require.ElementsMatch(t, []string{"postgres", "spicedb-migrate", "spicedb-1", "spicedb-2", "spicegate"}, keys(services))

	// Start order, gated on health.
	dependsOn := map[string]map[string]string{
		"spicedb-migrate": {"postgres": types.ServiceConditionHealthy},
		"spicedb-1":       {"spicedb-migrate": types.ServiceConditionCompletedSuccessfully},
		"spicedb-2":       {"spicedb-migrate": types.ServiceConditionCompletedSuccessfully},
		"spicegate":       {"spicedb-1": types.ServiceConditionHealthy, "spicedb-2": types.ServiceConditionHealthy},
	}
	for name, want := range dependsOn {
		got := map[string]string{}
		for dep, cfg := range services[name].DependsOn {
			got[dep] = cfg.Condition
		}
		assert.Equal(t, want, got, "%s depends on", name)
	}
	for _, name := range []string{"postgres", "spicedb-1", "spicedb-2", "spicegate"} {
		hc := services[name].HealthCheck
		if assert.NotNil(t, hc, "%s has a health check", name) {
			assert.NotEmpty(t, hc.Test, "%s health check test", name)
		}
	}
	// Pinned images, never :latest.
	for name, s := range services {
		if s.Build != nil {
			continue
		}
		_, tag, ok := strings.Cut(s.Image, ":")
		assert.True(t, ok && tag != "" && tag != "latest", "%s: image %q is not pinned", name, s.Image)
	}
	assert.Equal(t, "authzed/spicedb:v1.56.2", services["spicedb-1"].Image, "the pinned SpiceDB")
	// Ports only on loopback.
	for name, s := range services {
		for _, port := range s.Ports {
			assert.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %s beyond loopback", name, port.Target)
		}
	}
	// Dispatch between the two nodes.
	for node, peer := range map[string]string{"spicedb-1": "spicedb-2", "spicedb-2": "spicedb-1"} {
		env := services[node].Environment
		assert.Equal(t, "true", *env["SPICEDB_DISPATCH_CLUSTER_ENABLED"])
		assert.Equal(t, peer+":50053", *env["SPICEDB_DISPATCH_UPSTREAM_ADDR"])
	}
	assert.Equal(t, "spicedb-1:50051", *services["spicegate"].Environment["SPICEGATE_SPICEDB_ENDPOINT"])
}

// TestComposeSetsOnlyRealSettings: every SPICEGATE_* and SPICEDB_*
// variable of the compose file is read by the binary it is given to.
func TestComposeSetsOnlyRealSettings(t *testing.T) {
	p := loadCompose(t)
	spicedbRoot, err := spicedbcmd.BuildRootCommand()
	require.NoError(t, err)
	spicegateRoot := NewRootCommand()
	checked := 0
	for _, s := range p.Services {
		var root *cobra.Command
		var prefix string
		switch {
		case strings.HasPrefix(s.Image, "authzed/spicedb:"):
			root, prefix = spicedbRoot, "SPICEDB_"
		case s.Build != nil:
			root, prefix = spicegateRoot, envPrefix
		default:
			continue
		}
		cmd := subcommand(t, root, s.Command)
		reads := envOf(cmd, prefix)
		for name := range s.Environment {
			if !strings.HasPrefix(name, "SPICEDB_") && !strings.HasPrefix(name, "SPICEGATE_") {
				continue
			}
			assert.True(t, reads[name], "%s sets %s, which `%s %s` does not read", s.Name, name, root.Name(), strings.Join(s.Command, " "))
			checked++
		}
	}
	assert.Greater(t, checked, 15, "the variables were really checked")
}

func TestDockerfileBuildsTheBinaryStatically(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	df := string(data)
	assert.Contains(t, df, "CGO_ENABLED=0 go build")
	assert.Contains(t, df, "./cmd/spicegate")
	assert.Equal(t, 2, strings.Count(df, "\nFROM ")+boolInt(strings.HasPrefix(df, "FROM ")), "multi-stage")
	assert.Contains(t, df, `HEALTHCHECK`)
	assert.Contains(t, df, `"healthcheck"`)
	// The image's variables are settings spicegate reads.
	reads := envOf(subcommand(t, NewRootCommand(), []string{"serve"}), envPrefix)
	for _, line := range strings.Split(df, "\n") {
		for _, f := range strings.Fields(line) {
			if name, _, ok := strings.Cut(f, "="); ok && strings.HasPrefix(name, envPrefix) {
				assert.True(t, reads[name], "Dockerfile sets %s, which spicegate serve does not read", name)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
