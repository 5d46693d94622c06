//go:build integration

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The README's "On PostgreSQL" lines, as written (the connection URI in
// SPICEGATE_DATASTORE_CONN_URI, `migrate`, then `serve --datastore-engine
// postgres` with the demo seed): what users change survives a restart,
// because the seed loads only into an empty store (issue #12: it once
// brought a removed member back).
func TestREADMEPostgresKeepsWhatUsersDid(t *testing.T) {
	spicegate, _ := build(t)
	env := []string{"SPICEGATE_DATASTORE_CONN_URI=" + freshDatabase(t)}
	migrate := start(t, "spicegate migrate", spicegate, env, "migrate")
	<-migrate.done
	require.Zero(t, migrate.cmd.ProcessState.ExitCode(), "spicegate migrate failed:\n%s", migrate.output())

	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	serve := func() *process {
		p := start(t, "spicegate serve --datastore-engine postgres", spicegate, env, "serve", "--datastore-engine", "postgres",
			"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--preshared-key", testKey, "--http-token", testToken)
		waitHTTP(t, p, httpAddr)
		return p
	}
	call := func(method, path, actor string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), method, "http://"+httpAddr+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if actor != "" {
			req.Header.Set("Spicegate-Actor", actor)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	members := func() []string {
		status, body := call(http.MethodGet, "/v1/organizations/acme/members?consistency=fully_consistent", "")
		require.Equal(t, http.StatusOK, status, body)
		var out struct{ Members []struct{ User string } }
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		var users []string
		for _, m := range out.Members {
			users = append(users, m.User)
		}
		return users
	}

	first := serve()
	require.Contains(t, members(), "rita", "the demo seed was not loaded into the empty database")
	status, body := call(http.MethodDelete, "/v1/organizations/acme/members/rita", "user:support")
	require.Equal(t, http.StatusOK, status, body)
	require.NotContains(t, members(), "rita")
	first.stop()

	second := serve()
	assert.NotContains(t, members(), "rita", "a restart brought a removed member back")
	assert.Contains(t, members(), "alice")
	assert.True(t, strings.Contains(second.output(), "the seed is not loaded"), "serve did not say why it skipped the seed:\n%s", second.output())
}
