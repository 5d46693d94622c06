package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/service"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// startService runs `serve`'s service with the demo seed on free ports.
func startService(t *testing.T) (grpcAddr, key string) {
	t.Helper()
	cfg := service.Config{
		GRPCAddr: spicedbtest.FreeAddr(t), HTTPAddr: "127.0.0.1:0", PresharedKey: "ops-test-key",
		DatastoreEngine: "memory", HTTPTokens: []string{"t-0123456789abcdef"}, Seed: "demo",
	}
	svc, err := service.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	return cfg.GRPCAddr, cfg.PresharedKey
}

func TestOperatorCommands(t *testing.T) {
	addr, key := startService(t)
	conn := []string{"--spicedb-endpoint", addr, "--preshared-key", key}
	run := func(args ...string) string {
		t.Helper()
		out, err := execute(t, append(args, conn...)...)
		require.NoError(t, err, out)
		return out
	}

	assert.Equal(t, "allowed: user:alice deploy organization:acme\n", run("check", "user:alice", "deploy", "organization:acme"))
	assert.Equal(t, "denied: user:rita deploy organization:acme\n", run("check", "user:rita", "deploy", "organization:acme"))
	assert.JSONEq(t, `{"allowed":false,"permissionship":"denied","revision":"`+jsonField(t, run("check", "user:rita", "deploy", "organization:acme", "-o", "json"), "revision")+`"}`,
		run("check", "user:rita", "deploy", "organization:acme", "-o", "json"))

	explained := run("check", "user:alice", "delete", "dataset:acme-support-tickets", "--explain")
	assert.Contains(t, explained, "allowed: user:alice delete dataset:acme-support-tickets")
	assert.Contains(t, explained, "✓ dataset:acme-support-tickets#delete (permission) for user:alice")
	assert.Contains(t, explained, "#owner (relation)")
	denied := run("check", "user:rita", "delete", "dataset:acme-support-tickets", "--explain")
	assert.Contains(t, denied, "✗ dataset:acme-support-tickets#delete (permission) for user:rita")

	assert.Equal(t, "USER     ROLE\nalice    user\nrita     readonly\nsupport  support\n", run("members", "acme"))
	assert.JSONEq(t, `[{"user":"alice","role":"readonly"},{"user":"bob","role":"user"},{"user":"support","role":"support"}]`,
		run("members", "globex", "-o", "json"))

	assert.ElementsMatch(t, []string{"user:alice", "user:support"}, lines(run("whocan", "delete", "dataset:acme-support-tickets")))
	assert.ElementsMatch(t, []string{"api_token:acme-alice-ci", "api_token:acme-rita-notebook"},
		lines(run("whocan", "view_dataset", "organization:acme", "--subject-type", "api_token")))
	assert.ElementsMatch(t, []string{"dataset:acme-support-tickets", "dataset:acme-product-faq"}, lines(run("can", "user:rita", "view", "dataset")))
	assert.JSONEq(t, `["dataset:globex-contracts"]`, run("can", "user:bob", "view", "dataset", "-o", "json"))
	assert.JSONEq(t, `[]`, run("can", "user:nobody", "view", "dataset", "-o", "json"))

	assert.Equal(t, "the deployed schema is Spicegate's\n", run("schema", "diff"))
	assert.Equal(t, "nothing to apply: the deployed schema is Spicegate's\n", run("schema", "apply"))

	// A denied answer exits 0 (the check worked), unless asked otherwise.
	out, err := execute(t, append([]string{"check", "user:rita", "deploy", "organization:acme", "--error-on-no-permission"}, conn...)...)
	require.ErrorIs(t, err, ErrNoPermission)
	assert.Equal(t, "denied: user:rita deploy organization:acme\n", out, "the answer is still printed")
	_, code := Describe(err)
	assert.Equal(t, ExitDenied, code)
	assert.Equal(t, "allowed: user:alice deploy organization:acme\n", run("check", "user:alice", "deploy", "organization:acme", "--error-on-no-permission"))

	// Writes say on whose behalf, and the actor's permission decides.
	_, err = execute(t, append([]string{"member", "remove", "acme", "rita"}, conn...)...)
	require.ErrorIs(t, err, ErrUsage)
	_, err = execute(t, append([]string{"member", "remove", "acme", "rita", "--as", "user:alice"}, conn...)...)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	assert.Contains(t, run("dataset", "connect", "acme", "cli-data", "--as", "user:alice"), "revision: ")
	assert.NotEmpty(t, jsonField(t, run("deployment", "create", "acme", "cli-dep", "--system", "-o", "json"), "revision"))
	assert.NotEmpty(t, jsonField(t, run("deployment", "delete", "cli-dep", "--as", "user:support", "-o", "json"), "revision"))
	_, err = execute(t, append([]string{"deployment", "delete", "cli-dep", "--as", "user:support"}, conn...)...)
	require.ErrorIs(t, err, client.ErrPermissionDenied, "it is gone: nobody may delete it any more")

	// Errors are errors, not decisions.
	_, err = execute(t, append([]string{"check", "alice", "deploy", "organization:acme"}, conn...)...)
	require.ErrorIs(t, err, client.ErrInvalidArgument)
	_, err = execute(t, "check", "user:alice", "deploy", "organization:acme", "--spicedb-endpoint", addr, "--preshared-key", "wrong")
	require.ErrorIs(t, err, client.ErrUnauthenticated)
}

func TestSeedCommandLoadsTwiceAndGenerates(t *testing.T) {
	addr, key := startService(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gen.yaml")
	out, err := execute(t, "seed", "--generate", "--orgs", "2", "--members", "3", "--datasets", "5", "--out", path)
	require.NoError(t, err, out)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "org00002-d000005")
	written := regexp.MustCompile(`^wrote .*: 2 organizations, (\d+) relationships\n$`).FindStringSubmatch(out)
	require.NotNil(t, written, "the generator says what it wrote: %q", out)

	// Loading twice reports the same count, the file's.
	c, err := client.New(addr, client.WithInsecure(), client.WithPresharedKey(key))
	require.NoError(t, err)
	defer c.Close()
	var tok string
	for i := range 2 {
		out, err = execute(t, "seed", path, "--spicedb-endpoint", addr, "--preshared-key", key)
		require.NoError(t, err, out)
		assert.Contains(t, out, "loaded "+path+": 2 organizations, "+written[1]+" relationships, at revision ")
		if i == 0 {
			// Between the loads, a Read-only member creates a token and is
			// promoted through the API: the reload demotes it again, and
			// the token with it.
			tok, _, err = c.CreateAPIToken(t.Context(), "org00001", "org00001-u0002")
			require.NoError(t, err)
			_, err = c.ChangeRole(t.Context(), "org00001", "org00001-u0002", client.RoleUser)
			require.NoError(t, err)
		}
	}
	assert.Contains(t, out, "moved 1 API tokens to their owners' roles")
	d, err := c.Check(t.Context(), client.APIToken(tok), client.PermDeploy, client.Organization("org00001"), client.WithConsistency(client.FullyConsistent()))
	require.NoError(t, err)
	assert.False(t, d.Allowed(), "the token followed its owner back to Read-only")
	out, err = execute(t, "members", "org00001", "--spicedb-endpoint", addr, "--preshared-key", key)
	require.NoError(t, err)
	assert.Equal(t, []string{"USER", "ROLE", "org00001-u0001", "user", "org00001-u0002", "readonly", "org00001-u0003", "user", "support", "support"}, lines(out))

	_, err = execute(t, "seed", "--generate", "--orgs", "0")
	require.Error(t, err)
	_, err = execute(t, "seed", filepath.Join(dir, "missing.yaml"), "--spicedb-endpoint", addr)
	require.Error(t, err)
}

func TestFlagsComeFromTheEnvironment(t *testing.T) {
	addr, key := startService(t)
	t.Setenv("SPICEGATE_SPICEDB_ENDPOINT", addr)
	t.Setenv("SPICEGATE_PRESHARED_KEY", key)
	out, err := execute(t, "check", "user:alice", "deploy", "organization:acme")
	require.NoError(t, err, out)
	assert.Equal(t, "allowed: user:alice deploy organization:acme\n", out)

	// A flag on the command line wins over the environment.
	_, err = execute(t, "check", "user:alice", "deploy", "organization:acme", "--preshared-key", "wrong")
	require.Error(t, err)
}

func lines(s string) []string { return strings.Fields(s) }

func jsonField(t *testing.T, s, field string) string {
	t.Helper()
	i := strings.Index(s, `"`+field+`": "`)
	require.GreaterOrEqual(t, i, 0, s)
	rest := s[i+len(field)+5:]
	return rest[:strings.Index(rest, `"`)]
}

func TestAuditCommandPrintsChangesFromARevision(t *testing.T) {
	addr, key := startService(t)
	c, err := client.New(addr, client.WithInsecure(), client.WithPresharedKey(key))
	require.NoError(t, err)
	defer c.Close()
	start, err := c.AddMember(t.Context(), "acme", "carol", client.RoleUser)
	require.NoError(t, err)
	ctx := client.WithAudit(t.Context(), client.Audit{Actor: "user:ops", RequestID: "r1"})
	_, err = c.RegisterDeployment(ctx, "acme", "audited")
	require.NoError(t, err)

	// The command follows changes until interrupted: give it a few seconds.
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"audit", "--after", string(start), "--spicedb-endpoint", addr, "--preshared-key", key})
	runCtx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	require.NoError(t, root.ExecuteContext(runCtx))

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1, out.String())
	var change client.Change
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &change))
	assert.Equal(t, "deployment:audited#organization@organization:acme", change.Relationship)
	assert.Equal(t, "user:ops", change.Actor)
	assert.Equal(t, "r1", change.RequestID)
}

// `spicegate loadtest` loads its data, sends a bounded load through the
// HTTP API and reports it as JSON; --find-max stops at the first rate that
// misses the bound.
func TestLoadtestCommand(t *testing.T) {
	addr, key := startService(t)
	out, err := execute(t, "loadtest", "--setup", "--orgs", "2", "--members", "3", "--datasets", "5",
		"--rate", "100", "--duration", "1s", "-o", "json", "--spicedb-endpoint", addr, "--preshared-key", key)
	require.NoError(t, err, out)
	var res struct {
		Target string `json:"target"`
		Sent   int    `json:"sent"`
		Errors int    `json:"errors"`
		Ops    []struct {
			Op    string  `json:"op"`
			Count int     `json:"count"`
			P99   float64 `json:"p99_ms"`
		} `json:"operations"`
	}
	jsonLine := out[strings.LastIndex(out, "\n{")+1:] // after the progress lines (standard error)
	require.NoError(t, json.Unmarshal([]byte(jsonLine), &res), out)
	assert.Contains(t, out, "loading the generated data: 2 organizations")
	assert.Equal(t, "grpc "+addr, res.Target)
	assert.InDelta(t, 100, res.Sent, 10)
	assert.Zero(t, res.Errors)
	require.NotEmpty(t, res.Ops)
	assert.Equal(t, "all", res.Ops[len(res.Ops)-1].Op)
	assert.Positive(t, res.Ops[len(res.Ops)-1].P99)

	out, err = execute(t, "loadtest", "--orgs", "2", "--members", "3", "--datasets", "5", "--mix", "check=1",
		"--find-max", "--p99", "1us", "--step", "300ms", "--rate", "50", "--spicedb-endpoint", addr, "--preshared-key", key)
	require.NoError(t, err, out)
	assert.Contains(t, out, "highest rate that held (p99 <= 1µs, no error): 0/s", "no check answers within a microsecond")

	_, err = execute(t, "loadtest", "--spicedb-endpoint", "192.0.2.1:50051")
	require.ErrorContains(t, err, "--allow-remote")
	_, err = execute(t, "loadtest", "--mix", "check=0")
	require.Error(t, err)
}
