package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/tuple"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// Environment of the child processes that the tests below start by
// re-executing the test binary.
const (
	envChildDB    = "SPICEGATE_SQLITE_CHILD_DB"
	envChildRound = "SPICEGATE_SQLITE_CHILD_ROUND"
	envChildMode  = "SPICEGATE_SQLITE_CHILD_MODE"
)

func durabilityRel(round, txn, j int) tuple.Relationship {
	return tuple.MustParse(fmt.Sprintf("doc:k%d-%d-%d#viewer@user:u%d", round, txn, j, j))
}

// TestChildProcess is not a test: it is the body of the child processes of
// TestDurabilityKill9 and TestSecondProcessIsLockedOut, and does nothing
// when run directly.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(envChildDB)
	if path == "" {
		t.Skip("only runs as a child process of another test")
	}
	ctx := context.Background()
	ds, err := sqlite.New(ctx, path)
	if os.Getenv(envChildMode) == "open" {
		// TestSecondProcessIsLockedOut: report what opening the file did.
		if err != nil {
			fmt.Println("OPEN-ERROR", err)
		} else {
			fmt.Println("OPEN-OK")
			_ = ds.Close()
		}
		return
	}
	if err != nil {
		fmt.Println("FATAL", err)
		os.Exit(2)
	}
	round, _ := strconv.Atoi(os.Getenv(envChildRound))
	// Write until killed: transaction i creates five relationships and
	// deletes the first one of transaction i-1, then acknowledges.
	for i := 0; ; i++ {
		rev, err := ds.ReadWriteTx(ctx, func(ctx context.Context, rwt datastore.ReadWriteTransaction) error {
			var updates []tuple.RelationshipUpdate
			for j := range 5 {
				updates = append(updates, tuple.Create(durabilityRel(round, i, j)))
			}
			if i > 0 {
				updates = append(updates, tuple.Delete(durabilityRel(round, i-1, 0)))
			}
			return rwt.WriteRelationships(ctx, updates)
		})
		if err != nil {
			fmt.Println("FATAL", err)
			os.Exit(2)
		}
		fmt.Printf("ACK %d %s\n", i, rev)
	}
}

func childCommand(t *testing.T, path, mode string, round int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildDB+"="+path, envChildMode+"="+mode, envChildRound+"="+strconv.Itoa(round))
	return cmd
}

// TestDurabilityKill9 kills (SIGKILL) a child process in the middle of a
// sustained write load, several times over the same file, and checks after
// each kill that the file opens again, that every write the child had
// acknowledged is there, and that the one transaction in flight was applied
// entirely or not at all. The child uses the default settings
// (synchronous=FULL).
func TestDurabilityKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "durable.sqlite")
	rounds := 3
	if testing.Short() {
		rounds = 2
	}
	for round := range rounds {
		cmd := childCommand(t, path, "write", round)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())

		lastAck, lastRev := -1, ""
		acks := make(chan [2]string)
		go func() {
			defer close(acks)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 && f[0] == "ACK" {
					acks <- [2]string{f[1], f[2]}
				} else if len(f) > 0 && f[0] == "FATAL" {
					t.Errorf("child: %s", sc.Text())
				}
			}
		}()
		// Let it write for a while (at least a few acknowledged writes),
		// then kill it at a random moment.
		killAt := time.After(time.Duration(300+rand.IntN(700)) * time.Millisecond)
	wait:
		for {
			select {
			case a, ok := <-acks:
				if !ok {
					t.Fatalf("child exited before it was killed")
				}
				lastAck, _ = strconv.Atoi(a[0])
				lastRev = a[1]
			case <-killAt:
				if lastAck >= 5 {
					break wait
				}
				killAt = time.After(50 * time.Millisecond)
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for a := range acks { // acknowledgements already written before the kill count too
			lastAck, _ = strconv.Atoi(a[0])
			lastRev = a[1]
		}
		_ = cmd.Wait()
		t.Logf("round %d: killed after %d acknowledged transactions (revision %s)", round, lastAck+1, lastRev)

		verifyAfterKill(t, path, round, lastAck, lastRev)
	}
}

func verifyAfterKill(t *testing.T, path string, round, lastAck int, lastRev string) {
	t.Helper()
	ctx := context.Background()
	ds, err := sqlite.New(ctx, path)
	require.NoError(t, err, "reopen after kill -9")
	defer func() { require.NoError(t, ds.Close()) }()

	head, err := ds.HeadRevision(ctx)
	require.NoError(t, err)
	acked, err := ds.RevisionFromString(lastRev)
	require.NoError(t, err)
	require.False(t, head.Revision.LessThan(acked), "head %s is older than the last acknowledged revision %s", head.Revision, lastRev)

	it, err := ds.SnapshotReader(head.Revision).QueryRelationships(ctx, datastore.RelationshipsFilter{
		OptionalResourceType: "doc", OptionalResourceIDPrefix: fmt.Sprintf("k%d-", round),
	})
	require.NoError(t, err)
	present := map[string]bool{}
	for rel, err := range it {
		require.NoError(t, err)
		present[tuple.MustString(rel)] = true
	}
	has := func(txn, j int) bool { return present[tuple.MustString(durabilityRel(round, txn, j))] }

	// The transaction after the last acknowledged one may have committed
	// (the kill came between its commit and its acknowledgement) or not.
	inFlight := lastAck + 1
	committed := has(inFlight, 1)
	for j := range 5 {
		require.Equal(t, committed, has(inFlight, j), "transaction %d was applied partially", inFlight)
	}
	require.NotEqual(t, committed, has(lastAck, 0), "transaction %d was applied partially (its delete)", inFlight)
	last := lastAck
	if committed {
		last = inFlight
	}
	for i := 0; i <= last; i++ {
		for j := 1; j < 5; j++ {
			require.True(t, has(i, j), "acknowledged relationship %s is missing", tuple.MustString(durabilityRel(round, i, j)))
		}
		require.Equal(t, i == last, has(i, 0), "relationship %s: wrong state", tuple.MustString(durabilityRel(round, i, 0)))
	}
	require.False(t, has(last+1, 1), "a transaction after the last one is present")
	require.Len(t, present, 4*(last+1)+1, "unexpected relationships")
}

// TestSecondProcessIsLockedOut opens a file and then has another process
// open it too: the second open must fail, with an error naming the file,
// and succeed once the first process has closed it.
func TestSecondProcessIsLockedOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locked.sqlite")
	ds, err := sqlite.New(context.Background(), path)
	require.NoError(t, err)

	out, err := childCommand(t, path, "open", 0).Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "OPEN-ERROR")
	require.Contains(t, string(out), path, "the error must name the file")
	require.Contains(t, string(out), sqlite.ErrLocked.Error())

	// In this process, a second New is refused the same way.
	_, err = sqlite.New(context.Background(), path)
	require.ErrorIs(t, err, sqlite.ErrLocked)

	require.NoError(t, ds.Close())
	out, err = childCommand(t, path, "open", 0).Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "OPEN-OK")
}
