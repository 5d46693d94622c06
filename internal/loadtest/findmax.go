package loadtest

import (
	"context"
	"fmt"
	"io"
	"time"
)

// FindMax raises the rate step by step until a step misses the bound, and
// reports the highest rate that held.
type FindMax struct {
	// Step is how long each rate runs.
	Step time.Duration
	// Factor multiplies the rate from one step to the next (> 1).
	Factor float64
	// MaxRate stops the search (0: no limit but the bound).
	MaxRate float64
	// P99 is the bound on the 99th percentile of every operation together.
	P99 time.Duration
}

// Step is one rate tried.
type Step struct {
	Rate float64 `json:"rate"`
	// Seed is the step's requests' seed: the run's seed plus the step's
	// index, so that no step repeats the requests of an earlier one, whose
	// answers the server may have cached.
	Seed   uint64  `json:"seed"`
	Held   bool    `json:"held"`
	Why    string  `json:"why,omitempty"`
	Result *Result `json:"result"`
}

// held says whether a step's result keeps within the bound: no error, the
// p99 within it, and the rate actually offered and served.
func (f FindMax) held(r *Result) (bool, string) {
	all := r.Op(OpAll)
	switch {
	case r.Errors > 0:
		return false, fmt.Sprintf("%d errors", r.Errors)
	case all.P99 > f.P99:
		return false, fmt.Sprintf("p99 %s above %s", ms(all.P99), ms(f.P99))
	case r.Throughput < 0.95*r.Rate:
		return false, fmt.Sprintf("served %.0f/s of %.0f/s", r.Throughput, r.Rate)
	}
	return true, ""
}

// Run searches from cfg.Rate, each step for f.Step with requests of its
// own (Step.Seed); it returns the highest rate that held (0 for none) and
// every step.
func (f FindMax) Run(ctx context.Context, cfg Config, progress io.Writer) (float64, []Step, error) {
	if f.Factor <= 1 || f.Step <= 0 || f.P99 <= 0 {
		return 0, nil, fmt.Errorf("find-max: the factor must be above 1, the step and the p99 bound above 0")
	}
	best := 0.0
	var steps []Step
	cfg.Duration, cfg.RateTo = f.Step, 0
	base := cfg.Seed
	for rate := cfg.Rate; f.MaxRate <= 0 || rate <= f.MaxRate; rate *= f.Factor {
		if ctx.Err() != nil {
			break
		}
		cfg.Rate, cfg.Seed = rate, base+uint64(len(steps))
		res, err := Run(ctx, cfg)
		if err != nil {
			return best, steps, err
		}
		held, why := f.held(res)
		steps = append(steps, Step{Rate: rate, Seed: cfg.Seed, Held: held, Why: why, Result: res})
		if progress != nil {
			verdict := "held"
			if !held {
				verdict = "missed: " + why
			}
			fmt.Fprintf(progress, "find-max: %.0f/s for %s: p99 %s, %s\n", rate, f.Step, ms(res.Op(OpAll).P99), verdict)
		}
		if !held {
			break
		}
		best = rate
	}
	return best, steps, nil
}
