//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/loadtest"
	"github.com/spicegate/spicegate/seed"
)

// soakDuration is 60 s, or SPICEGATE_SOAK_DURATION (e.g. 10m) on demand:
//
//	SPICEGATE_SOAK_DURATION=10m go test -tags integration -run TestSoak -v -timeout 1h ./integration/
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("SPICEGATE_SOAK_DURATION")
	if s == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "SPICEGATE_SOAK_DURATION")
	return d
}

// soakRate is the soak's arrival rate: well within what this 2-core
// machine serves with the load generator beside the server (the point is
// stability over time, not the peak; `spicegate loadtest --find-max` is).
const soakRate = 150

// sample is one look at the server under load.
type sample struct {
	at         time.Duration
	rssKiB     int64
	goroutines int64
}

// TestSoak runs a bounded mixed load (the loadtest's default mix: checks,
// bulk checks, permissions, lookups, and 10% writes, at a fixed arrival
// rate through the HTTP API, loopback only) against `spicegate serve` on
// each embedded datastore, and requires zero errors, goroutines back to
// where they were once the load is over, and resident memory that levels
// off. The figures are printed.
//
// The memory engine's throwaway file keeps every revision for its GC window
// (10 min by default): the soak sets 20 s (collected every 10 s), so that it
// levels off within the run, as the default's does within ten minutes.
// SpiceDB's own memory datastore (memdb) is not soaked: it frees no
// revision, and grows with every write (BENCHMARKS.md).
func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	shape := loadtest.Shape{Orgs: 20, Members: 10, Datasets: 200}
	for _, tc := range []struct {
		name   string
		deploy func(*testing.T) *deployment
	}{
		{"sqlite", embeddedOnFile},
		{"postgres", embeddedOnPostgres},
		{"memory", func(t *testing.T) *deployment {
			return embeddedOn(t, "memory", "--datastore-engine", "memory", "--datastore-gc-window", "20s")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.deploy(t)
			c, err := client.New(d.grpcAddr, client.WithInsecure(), client.WithPresharedKey(d.key))
			require.NoError(t, err)
			defer c.Close()
			_, err = seed.Load(t.Context(), v1.NewPermissionsServiceClient(c.Conn()), seed.Generate(shape.Orgs, shape.Members, shape.Datasets), nil)
			require.NoError(t, err)
			target, err := loadtest.NewHTTPTarget("http://"+d.httpAddr, d.token, 64, false)
			require.NoError(t, err)

			pid := d.spicegate.cmd.Process.Pid
			before := goroutines(t, d.httpAddr)
			var samples []sample
			start := time.Now()
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				tick := time.NewTicker(duration / 12)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						samples = append(samples, sample{at: time.Since(start), rssKiB: rssKiB(t, pid), goroutines: goroutines(t, d.httpAddr)})
					}
				}
			}()
			res, err := loadtest.Run(t.Context(), loadtest.Config{Target: target, Shape: shape, Mix: loadtest.DefaultMix,
				Rate: soakRate, Duration: duration, MaxInFlight: 64, Timeout: 10 * time.Second})
			close(stop)
			<-sampled
			require.NoError(t, err)

			// Once the load is over and its connections closed, the
			// goroutines are back where they were.
			target.CloseIdleConnections()
			var after int64
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				if after = goroutines(t, d.httpAddr); after <= before+20 || time.Now().After(deadline) {
					break
				}
			}

			var report strings.Builder
			res.WriteText(&report, "http "+d.httpAddr+" ("+tc.name+")")
			fmt.Fprintf(&report, "\n%8s %10s %11s\n", "at", "RSS", "goroutines")
			for _, s := range samples {
				fmt.Fprintf(&report, "%8s %7d MiB %11d\n", s.at.Round(time.Second), s.rssKiB/1024, s.goroutines)
			}
			fmt.Fprintf(&report, "goroutines before the load %d, after it %d\n", before, after)
			t.Log("soak on " + tc.name + ":\n" + report.String())

			assert.Zero(t, res.Errors, "errors by code: %v, first messages: %v", res.Op(loadtest.OpAll).Codes, res.Op(loadtest.OpAll).Samples)
			assert.LessOrEqual(t, after, before+20, "goroutines back where they were once the load is over")
			assert.Less(t, res.Op(loadtest.OpAll).P99, 2*time.Second, "the server keeps up with the load")
			assert.InDelta(t, soakRate*duration.Seconds(), float64(res.Op(loadtest.OpAll).Count), 0.05*soakRate*duration.Seconds(), "the load was offered")
			require.GreaterOrEqual(t, len(samples), 8)
			// Levelling off: after a first third of warming up (caches,
			// connection pools, the GC's pacing), the last third holds no
			// more than the middle third's peak plus a margin.
			third := len(samples) / 3
			peak := func(ss []sample) int64 {
				m := int64(0)
				for _, s := range ss {
					m = max(m, s.rssKiB)
				}
				return m
			}
			middle, last := peak(samples[third:2*third]), peak(samples[2*third:])
			assert.LessOrEqual(t, last, middle*23/20+16*1024, "resident memory levels off: %d MiB, then %d MiB", middle/1024, last/1024)
		})
	}
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// goroutines returns the server's goroutines, less those it parks to keep
// goroutine stacks deep (they follow the count of the others, up to a
// bound: not a leak).
func goroutines(t *testing.T, httpAddr string) int64 {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	values := map[string]float64{}
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		for _, name := range []string{"go_goroutines", "spicegate_goroutine_stack_holders"} {
			if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
				n, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err)
				values[name] = n
			}
		}
	}
	require.NoError(t, s.Err())
	require.Contains(t, values, "go_goroutines", "/metrics")
	require.Contains(t, values, "spicegate_goroutine_stack_holders", "/metrics")
	return int64(values["go_goroutines"] - values["spicegate_goroutine_stack_holders"])
}
