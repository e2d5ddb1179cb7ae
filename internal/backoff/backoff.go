// Package backoff provides jittered exponential backoff and a
// context-aware sleep, shared by consulkit's packages.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields growing, jittered delays between Min and Max. The zero
// value uses 250ms and 30s. It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the next delay: Min·2^n capped at Max, with the upper half
// jittered (a value in [d/2, d]).
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	d := lo
	for i := 0; i < b.attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi {
		d = hi
	}
	b.attempt++
	return Jitter(d, 0.5)
}

// Reset starts the sequence again from Min.
func (b *Backoff) Reset() { b.attempt = 0 }

// Jitter returns d reduced by a random fraction of up to frac (0..1):
// a value in [d·(1-frac), d].
func Jitter(d time.Duration, frac float64) time.Duration {
	if d <= 0 || frac <= 0 {
		return d
	}
	if frac > 1 {
		frac = 1
	}
	span := int64(float64(d) * frac)
	if span <= 0 {
		return d
	}
	return d - time.Duration(rand.Int64N(span+1))
}

// Spread returns d plus a random amount up to frac·d, so that many waiters
// woken by one event do not all retry at the same instant.
func Spread(d time.Duration, frac float64) time.Duration {
	if d < 0 {
		d = 0
	}
	span := int64(float64(d) * frac)
	if span <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(span+1))
}

// Sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
