package client

// Hooks into the client's internals for its external tests.

// BeforeFencedWrite makes every role change of c call hook before each of
// its writes behind the fence (step 0, 1, ...), where a real change may
// stall.
func BeforeFencedWrite(c *Client, hook func(step int)) { c.beforeFencedWrite = hook }

// SetMaxWriteSize lowers the number of updates c puts in one write, so that
// tests split moves across writes with a few tokens.
func SetMaxWriteSize(c *Client, n int) { c.cfg.maxWriteSize = n }
