//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
)

// adminURI reaches PostgreSQL as a role that may create databases
// (scripts/postgres.sh makes one).
func adminURI() string {
	if uri := os.Getenv("SPICEGATE_TEST_POSTGRES_URI"); uri != "" {
		return uri
	}
	return "postgres://spicegate:spicegate@127.0.0.1:5432/spicegate?sslmode=disable"
}

var binaries struct {
	once      sync.Once
	dir       string
	spicegate string
	spicedb   string
	err       error
}

// build compiles the spicegate binary and the spicedb binary of the pinned
// module (never downloaded) once per test run.
func build(t *testing.T) (spicegate, spicedb string) {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "spicegate-it-")
		if binaries.err != nil {
			return
		}
		binaries.spicegate = filepath.Join(binaries.dir, "spicegate")
		binaries.spicedb = filepath.Join(binaries.dir, "spicedb")
		for _, b := range [][2]string{
			{binaries.spicegate, "github.com/spicegate/spicegate/cmd/spicegate"},
			{binaries.spicedb, "github.com/authzed/spicedb/cmd/spicedb"},
		} {
			out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
			if err != nil {
				binaries.err = fmt.Errorf("go build %s: %w\n%s", b[1], err, out)
				return
			}
		}
	})
	require.NoError(t, binaries.err)
	return binaries.spicegate, binaries.spicedb
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// freshDatabase creates a database for one test and drops it afterwards;
// it returns the database's URI.
func freshDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURI())
	require.NoError(t, err, "PostgreSQL must be running: bash scripts/postgres.sh")
	defer conn.Close(ctx)
	name := "spicegate_it_" + randomHex(t)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), adminURI())
		if err != nil {
			t.Logf("dropping %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	uri := adminURI()
	i := strings.LastIndex(uri, "/")
	rest := ""
	if q := strings.Index(uri[i:], "?"); q >= 0 {
		rest = uri[i+q:]
	}
	return uri[:i+1] + name + rest
}

// process is a child process whose output is kept for failure reports.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// start runs a process until the test ends (or kill), printing its output
// if the test failed.
func start(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = lockedWriter{p.mu, p.out}
	p.cmd.Stderr = lockedWriter{p.mu, p.out}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.output())
		}
	})
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// kill sends SIGKILL: no chance to flush or drain.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (then SIGKILL after 15 s).
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// waitReady polls until the SpiceDB gRPC API answers with the schema in
// place (or, for a bare spicedb, answers at all).
func waitGRPC(t *testing.T, p *process, addr, key string, needSchema bool) {
	t.Helper()
	c, err := client.New(addr, client.WithInsecure(), client.WithPresharedKey(key), client.WithRetry(1, 0, 0))
	require.NoError(t, err)
	defer c.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := c.Ready(t.Context())
		if err == nil || (!needSchema && errors.Is(err, client.ErrNotFound)) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited while starting:\n%s", p.name, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s: %v\n%s", p.name, addr, err, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, p *process, addr string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited while starting:\n%s", p.name, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not ready on %s: %v\n%s", p.name, addr, err, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string { return spicedbtest.FreeAddr(t) }
