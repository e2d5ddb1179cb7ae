package election_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunPacesShortTerms deletes the key as soon as each term begins: Run
// must not start fn over and over as fast as Consul answers, but pause
// between short terms (none, none, 250 ms, 500 ms, 1 s, ... in the
// worst case of jitter half as long).
func TestRunPacesShortTerms(t *testing.T) {
	t.Parallel()
	c, key, _, e := newCandidate(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var terms atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, []byte("v"), func(leading context.Context) error {
			terms.Add(1)
			if _, err := c.KV().Delete(ctx, key, nil); err != nil && ctx.Err() == nil {
				t.Errorf("deleting the key: %v", err)
			}
			<-leading.Done()
			return nil
		})
	}()
	time.Sleep(3 * time.Second)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	// Unpaced, a term takes a few milliseconds: hundreds in 3 s. Paced,
	// the pauses (at least 125, 250, 500, 1000 ms) leave room for at most
	// six terms.
	n := terms.Load()
	t.Logf("%d terms in 3 s", n)
	assert.GreaterOrEqual(t, n, int64(2))
	assert.LessOrEqual(t, n, int64(6))
}
