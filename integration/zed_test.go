//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zedBinary is the real zed CLI, built from its source by .ci/run
// (bash ../shared/zed/build.sh .cache/zed) and named by SPICEGATE_ZED.
func zedBinary(t *testing.T) string {
	t.Helper()
	zed := os.Getenv("SPICEGATE_ZED")
	if zed == "" {
		t.Skip("SPICEGATE_ZED names no zed binary (.ci/run builds one)")
	}
	abs, err := filepath.Abs(zed)
	require.NoError(t, err)
	return abs
}

// serveWithDemo runs `spicegate serve` on a fresh SQLite file with the demo
// seed, as the README's quick start does.
func serveWithDemo(t *testing.T, seed bool) *deployment {
	t.Helper()
	spicegate, _ := build(t)
	d := &deployment{grpcAddr: freeAddr(t), key: testKey, httpAddr: freeAddr(t), token: testToken}
	args := []string{"serve", "--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr, "--preshared-key", d.key,
		"--http-token", d.token, "--datastore-path", filepath.Join(t.TempDir(), "spicegate.db")}
	if !seed {
		args = append(args, "--no-seed")
	}
	d.spicegate = start(t, "spicegate serve (zed)", spicegate, nil, args...)
	waitHTTP(t, d.spicegate, d.httpAddr)
	return d
}

// zedRun runs one shell line with zed on the PATH, a private HOME and the
// keyring password a headless machine needs (README: beside the zed example).
func zedRun(t *testing.T, zed, home, line string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "HOME="+home, "ZED_KEYRING_PASSWORD=spicegate-test",
		"PATH="+filepath.Dir(zed)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	require.NoError(t, err, "%s\nstdout: %s\nstderr: %s", line, out.String(), errOut.String())
	assert.NotContains(t, errOut.String(), "released version", "%s: zed sees the SpiceDB version compiled in", line)
	return out.String(), errOut.String()
}

// readmeZedLines returns the zed lines of the README's zed example.
func readmeZedLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "zed ") {
			lines = append(lines, sc.Text())
		}
	}
	require.GreaterOrEqual(t, len(lines), 5, "the README's zed example")
	return lines
}

// TestREADMEZedClaims runs every zed line of the README against a real
// `serve`, as written, and the other zed claims of the README: the schema
// files pass `zed validate`, `zed backup` moves everything to another
// instance, and `zed relationship watch` follows changes.
func TestREADMEZedClaims(t *testing.T) {
	zed := zedBinary(t)
	d := serveWithDemo(t, true)
	home := t.TempDir()

	// zed reads with minimize_latency: SpiceDB's quantized revisions may lag
	// the seed by up to one quantization window (5 s) after start-up.
	fresh := false
	for range 40 {
		out, err := exec.CommandContext(t.Context(), zed, "permission", "check", "organization:acme", "deploy", "user:alice",
			"--endpoint", d.grpcAddr, "--token", d.key, "--insecure", "--skip-version-check").Output()
		if fresh = err == nil && strings.TrimSpace(string(out)) == "true"; fresh {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.True(t, fresh, "a minimize-latency read sees the seed within a quantization window")

	for _, line := range readmeZedLines(t) {
		command, comment, _ := strings.Cut(line, "#")
		command = strings.ReplaceAll(command, "127.0.0.1:50051", d.grpcAddr)
		command = strings.ReplaceAll(command, "<key>", d.key)
		out, _ := zedRun(t, zed, home, command)
		if want := strings.TrimSpace(comment); want != "" {
			assert.Equal(t, want, strings.TrimSpace(out), line)
		}
		if strings.Contains(command, "lookup-resources dataset view user:rita") {
			assert.Contains(t, out, "acme-support-tickets", line)
		}
		if strings.Contains(command, "schema read") {
			assert.Contains(t, out, "definition organization", line)
		}
	}

	// The validation files, as the README says.
	zedRun(t, zed, home, "zed validate schema/*.yaml")

	// Backup of this instance, restored into another one.
	backup := filepath.Join(t.TempDir(), "acme.zedbackup")
	zedRun(t, zed, home, "zed backup create "+backup)
	other := serveWithDemo(t, false)
	flags := " --endpoint " + other.grpcAddr + " --token " + other.key + " --insecure"
	zedRun(t, zed, home, "zed backup restore "+backup+flags)
	out, _ := zedRun(t, zed, home, "zed permission check organization:acme deploy user:alice --consistency-full"+flags)
	assert.Equal(t, "true", strings.TrimSpace(out), "the restored instance answers as the first")
	out, _ = zedRun(t, zed, home, "zed permission check organization:acme deploy user:rita --consistency-full"+flags)
	assert.Equal(t, "false", strings.TrimSpace(out))

	// Watch sees a write made while it runs.
	watchOut := filepath.Join(t.TempDir(), "watch.txt")
	ctx, cancel := context.WithCancel(t.Context())
	watch := exec.CommandContext(ctx, zed, "relationship", "watch", "--endpoint", d.grpcAddr, "--token", d.key, "--insecure")
	f, err := os.Create(watchOut)
	require.NoError(t, err)
	watch.Stdout, watch.Stderr = f, f
	watch.Env = append(os.Environ(), "HOME="+home, "ZED_KEYRING_PASSWORD=spicegate-test")
	require.NoError(t, watch.Start())
	// Writes until one arrives: the watch connects in its own time.
	seen := false
	for n := 0; n < 60 && !seen; n++ {
		zedRun(t, zed, home, fmt.Sprintf("zed relationship touch organization:acme readonly user:watched%d", n))
		time.Sleep(500 * time.Millisecond)
		data, _ := os.ReadFile(watchOut)
		seen = strings.Contains(string(data), "user:watched")
	}
	if !assert.True(t, seen, "zed relationship watch reports the writes") {
		data, _ := os.ReadFile(watchOut)
		t.Logf("zed relationship watch printed:\n%s", data)
	}
	cancel()
	_ = watch.Wait()
	_ = f.Close()
}
