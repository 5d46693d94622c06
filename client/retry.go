package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// retryPolicy bounds the retries of reads and idempotent writes.
type retryPolicy struct {
	attempts  int
	base, max time.Duration
}

// delay is the pause before retry n (1-based): exponential from base,
// capped at max, with full jitter so that many clients do not retry in step.
func (p retryPolicy) delay(n int) time.Duration {
	d := p.base << (n - 1)
	if d <= 0 || d > p.max {
		d = p.max
	}
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// retry runs fn until it succeeds, fails with an error that is not
// retryable (see retryable), runs out of attempts, or ctx ends. It returns
// fn's last error untranslated.
func (c *Client) retry(ctx context.Context, op string, fn func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !retryable(err) || attempt >= c.cfg.retry.attempts || ctx.Err() != nil {
			return err
		}
		wait := c.cfg.retry.delay(attempt)
		c.cfg.logger.DebugContext(ctx, "retrying SpiceDB call", "op", op, "attempt", attempt, "wait", wait, "error", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}
