package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/spf13/cobra"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/loadtest"
	"github.com/spicegate/spicegate/seed"
)

func registerLoadtestCmd(root *cobra.Command) {
	var conn connFlags
	var cfg loadtest.Config
	var httpURL, token, mix, consistency, output string
	var setup, allowRemote, findMax bool
	var fm loadtest.FindMax
	c := &cobra.Command{
		Use:   "loadtest",
		Short: "Send an open-loop load to a deployment and report latency percentiles per operation",
		Long: `Loadtest sends requests at a fixed arrival rate (or a ramp, --rate-to), whatever
the answers' speed, for --duration, then stops by itself. A request's latency
counts from the time it was due, so a slow or stalled server shows as the queue
it causes (no coordinated omission). At most --max-in-flight requests run at
once; a request due while they do waits, and the wait counts.

The requests address the data 'spicegate seed --generate' makes with the same
--orgs, --members and --datasets (--setup loads it first), with a few hot
organizations (Zipf), through the HTTP API (--http, with --token, an admin- or
act-scoped token: writes carry Spicegate-Actor) or, without --http, through the
Go facade over SpiceDB's gRPC API (--spicedb-endpoint, --preshared-key).
Targets must be on this machine unless --allow-remote is given. The report
counts errors by operation and code, with the first message of each code.

--find-max raises the rate by --factor every --step until the p99 of all
operations passes --p99, an error occurs, or the rate is not served, and reports
the highest rate that held.`,
		Example: `  spicegate loadtest --setup --http http://127.0.0.1:8080 --rate 2000 --duration 30s
  spicegate loadtest --mix check=90,add_member=5,remove_member=5 --rate 500 --rate-to 5000 --duration 1m
  spicegate loadtest --http http://127.0.0.1:8080 --find-max --p99 10ms --rate 1000 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output must be text or json, not %q", output)
			}
			var err error
			if cfg.Mix, err = loadtest.ParseMix(mix); err != nil {
				return err
			}
			if err := loadtest.CheckLoopback(conn.endpoint, allowRemote); err != nil && (httpURL == "" || setup) {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if setup || httpURL == "" {
				c, err := conn.connect()
				if err != nil {
					return err
				}
				defer c.Close()
				if setup {
					s := seed.Generate(cfg.Shape.Orgs, cfg.Shape.Members, cfg.Shape.Datasets)
					fmt.Fprintf(stderr, "loading the generated data: %d organizations, %d relationships\n", len(s.Organizations), s.Relationships())
					rev, err := seed.Load(cmd.Context(), v1.NewPermissionsServiceClient(c.Conn()), s, nil)
					if err != nil {
						return fmt.Errorf("--setup: %w", err)
					}
					c.Observe(client.Revision(rev))
				}
				if httpURL == "" {
					if cfg.Target, err = loadtest.NewGRPCTarget(c, consistency); err != nil {
						return err
					}
				}
			}
			target := "grpc " + conn.endpoint
			if httpURL != "" {
				if token == "" {
					return errors.New("--token is required with --http (the token 'spicegate serve' printed, or SPICEGATE_TOKEN)")
				}
				t, err := loadtest.NewHTTPTarget(httpURL, token, cfg.MaxInFlight, allowRemote)
				if err != nil {
					return err
				}
				t.Consistency = consistency
				cfg.Target, target = t, "http "+httpURL
			}
			cfg.Progress = stderr
			if findMax {
				best, steps, err := fm.Run(cmd.Context(), cfg, stderr)
				if err != nil {
					return err
				}
				if output == "json" {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
						Target  string          `json:"target"`
						MaxRate float64         `json:"max_rate"`
						Steps   []loadtest.Step `json:"steps"`
					}{target, best, steps})
				}
				for _, s := range steps {
					if s.Held {
						s.Result.WriteText(cmd.OutOrStdout(), target)
						fmt.Fprintln(cmd.OutOrStdout())
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "highest rate that held (p99 <= %s, no error): %.0f/s\n", fm.P99, best)
				return nil
			}
			res, err := loadtest.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					Target string `json:"target"`
					*loadtest.Result
				}{target, res})
			}
			res.WriteText(cmd.OutOrStdout(), target)
			return nil
		},
	}
	conn.register(c)
	f := c.Flags()
	f.StringVar(&httpURL, "http", "", "the HTTP API to load (http://127.0.0.1:8080); without it, SpiceDB's gRPC API through the Go facade")
	f.StringVar(&token, "token", "", "the HTTP API's bearer token (admin or act scope; SPICEGATE_TOKEN)")
	f.Float64Var(&cfg.Rate, "rate", 1000, "requests per second (the arrival rate, whatever the answers' speed)")
	f.Float64Var(&cfg.RateTo, "rate-to", 0, "ramp linearly from --rate to this rate over --duration")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send")
	f.IntVar(&cfg.MaxInFlight, "max-in-flight", 512, "cap on concurrent requests (a request due beyond it waits, and the wait counts)")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "deadline of each request")
	f.StringVar(&mix, "mix", loadtest.DefaultMix.String(), "operations and their weights")
	f.StringVar(&consistency, "consistency", "", "consistency of the reads: minimize_latency or fully_consistent (default: the service's)")
	f.IntVar(&cfg.Shape.Orgs, "orgs", 100, "organizations of the generated data")
	f.IntVar(&cfg.Shape.Members, "members", 50, "members per organization")
	f.IntVar(&cfg.Shape.Datasets, "datasets", 1000, "datasets per organization")
	f.BoolVar(&setup, "setup", false, "load the generated data first (through --spicedb-endpoint)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the requests (the same seed, the same requests)")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow a target that is not on this machine")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	f.BoolVar(&findMax, "find-max", false, "raise the rate until the p99 bound is missed; report the highest that held")
	f.DurationVar(&fm.P99, "p99", 10*time.Millisecond, "with --find-max: the bound on the p99 of all operations")
	f.DurationVar(&fm.Step, "step", 10*time.Second, "with --find-max: how long each rate runs")
	f.Float64Var(&fm.Factor, "factor", 1.25, "with --find-max: the rate's growth from one step to the next")
	f.Float64Var(&fm.MaxRate, "max-rate", 0, "with --find-max: the highest rate to try (0: no limit)")
	root.AddCommand(c)
}
