package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/cmd"
	"github.com/spicegate/spicegate/internal/service"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// readmeExample is a curl line of the README and the answer it documents.
type readmeExample struct {
	command, want string
}

// readmeExamples finds every `curl` line followed by a `# {...}` answer.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	var out []readmeExample
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "curl ") && strings.HasPrefix(lines[i+1], "# {") {
			out = append(out, readmeExample{lines[i], strings.TrimPrefix(lines[i+1], "# ")})
		}
	}
	return out
}

var revisionValue = regexp.MustCompile(`"revision":"[^"]*"`)

// normalize makes answers comparable: revisions are "...".
func normalize(t *testing.T, s string) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(s)), &v), s)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return revisionValue.ReplaceAllString(string(b), `"revision":"..."`)
}

// TestREADMECurlExamples runs the README's quick-start curl lines against a
// real `serve` (the defaults: the sqlite datastore, the demo seed) and compares the answers.
func TestREADMECurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the README's examples as written")
	}
	examples := readmeExamples(t)
	require.GreaterOrEqual(t, len(examples), 5, "the README documents its curl examples")

	svc, err := service.Start(t.Context(), service.Config{
		GRPCAddr: spicedbtest.FreeAddr(t), HTTPAddr: "127.0.0.1:0", PresharedKey: "readme-key", DatastoreEngine: "sqlite", DatastorePath: filepath.Join(t.TempDir(), "readme.db"),
		HTTPTokens: []string{"readme-token-0123456789"}, Seed: "demo",
	}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })

	for _, ex := range examples {
		command := strings.ReplaceAll(ex.command, "localhost:8080", svc.HTTPAddr())
		cmd := exec.CommandContext(t.Context(), "bash", "-c", command)
		cmd.Env = append(os.Environ(), "SPICEGATE_TOKEN=readme-token-0123456789")
		got, err := cmd.Output()
		require.NoError(t, err, ex.command)
		assert.Equal(t, normalize(t, strings.ReplaceAll(ex.want, `"..."`, `"x"`)), normalize(t, string(got)), ex.command)
	}
}

// TestREADMECLIExamples runs the README's CLI examples that talk to a
// running deployment (queries and writes) in process, against a real
// `serve` with the demo seed. An example whose comment says "permission
// denied" must be refused with exactly that; the others must succeed.
func TestREADMECLIExamples(t *testing.T) {
	runnable := map[string]bool{"check": true, "members": true, "whocan": true, "can": true}
	for _, op := range []string{"org", "member", "invite", "dataset", "adapter-repository", "training-job", "deployment", "token", "llm"} {
		runnable[op] = true
	}
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	type example struct {
		args   []string
		denied bool
		line   string
	}
	var examples []example
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "go run ./cmd/spicegate ")
		if !ok {
			continue
		}
		command, comment, _ := strings.Cut(rest, "#")
		args := strings.Fields(command)
		if len(args) == 0 || !runnable[args[0]] {
			continue
		}
		examples = append(examples, example{args: args, denied: strings.Contains(comment, "permission denied"), line: line})
	}
	require.GreaterOrEqual(t, len(examples), 7, "the README documents its CLI examples")

	grpcAddr := spicedbtest.FreeAddr(t)
	svc, err := service.Start(t.Context(), service.Config{
		GRPCAddr: grpcAddr, HTTPAddr: "127.0.0.1:0", PresharedKey: "readme-cli-key", DatastoreEngine: "sqlite", DatastorePath: filepath.Join(t.TempDir(), "readme.db"),
		HTTPTokens: []string{"readme-token-0123456789"}, Seed: "demo",
	}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Stop() })
	t.Setenv("SPICEGATE_PRESHARED_KEY", "readme-cli-key")
	t.Setenv("SPICEGATE_SPICEDB_ENDPOINT", grpcAddr)

	for _, ex := range examples {
		root := cmd.NewRootCommand()
		root.SetArgs(ex.args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.ExecuteContext(t.Context())
		if ex.denied {
			assert.ErrorIs(t, err, client.ErrPermissionDenied, ex.line)
			continue
		}
		assert.NoError(t, err, ex.line)
		assert.NotEmpty(t, out.String(), ex.line)
	}
}
