package election_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// TestProclaimRefusedEndsTheTerm: a Proclaim that Consul refuses because
// the session no longer holds the key says ErrDeposed, and the leading
// context has ended when it returns, although the watch (its blocking
// queries hang, as on a connection that died) has not seen the loss. The
// Election said "deposed" while the leading context and Token said
// "leading", for up to two TTLs.
func TestProclaimRefusedEndsTheTerm(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, direct, session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	leading, err := e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	ht.Set(integration.HangBlocking)
	t.Cleanup(func() { ht.Set(nil) })

	_, err = direct.KV().Delete(t.Context(), key, nil) // deposed
	require.NoError(t, err)
	err = e.Proclaim(t.Context(), []byte("b"))
	require.ErrorIs(t, err, election.ErrDeposed)
	require.Error(t, leading.Err(), "Proclaim said deposed, and the leading context lives on")
	assert.ErrorIs(t, context.Cause(leading), election.ErrDeposed)
	assert.True(t, e.Token().IsZero(), "a token after Proclaim said deposed")
	ht.Set(nil)
	assert.ErrorIs(t, e.Resign(t.Context()), election.ErrDeposed)
}

// TestRunCampaignsAgainAfterFnFindsItWasDeposed: fn learns from Proclaim
// that it was deposed, and returns. Run must campaign again, as it does
// after any loss, whatever fn returned; it took the return for one made
// while leading, and ended with fn's error, when the leading context had
// not ended yet: for up to two TTLs with a watch on a connection that died
// (the first case), and in some runs even without a fault (the second).
func TestRunCampaignsAgainAfterFnFindsItWasDeposed(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	for _, hang := range []bool{true, false} {
		rounds := 1
		if !hang {
			rounds = 20
		}
		t.Run(fmt.Sprintf("watch hangs %v", hang), func(t *testing.T) {
			c, ht := a.HookedClient(t)
			if hang {
				ht.Set(integration.HangBlocking)
			}
			for i := range rounds {
				key := fmt.Sprintf("%s/%d", electionKey(t), i)
				s := integration.NewSession(t, direct, session.WithLockDelay(0))
				e, err := election.New(c, key, election.WithSession(s))
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				terms := 0
				err = e.Run(ctx, []byte("a"), func(leading context.Context) error {
					terms++
					if terms > 1 {
						cancel() // campaigned again, as promised
						<-leading.Done()
						return nil
					}
					if _, err := direct.KV().Delete(leading, key, nil); err != nil { // deposed
						return err
					}
					return e.Proclaim(leading, []byte("b")) // ErrDeposed: fn stops
				})
				cancel()
				require.Equal(t, 2, terms, "round %d: Run ended after a loss instead of campaigning again: %v", i, err)
				require.ErrorIs(t, err, context.Canceled)
				assert.False(t, errors.Is(err, election.ErrDeposed), "Run returned fn's ErrDeposed")
			}
		})
	}
}

// TestResignAfterLossWithSlowOnDeposed: Resign after a loss whose
// OnDeposed outlasts Resign's ctx reports the loss all the same (it said
// only "context deadline exceeded"), and says the cleanup goes on.
func TestResignAfterLossWithSlowOnDeposed(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	hookDone := make(chan struct{})
	e, err := election.New(c, key, election.WithSession(s), election.WithHooks(election.Hooks{
		OnDeposed: func(election.Leader, error) { <-hookDone }, // a slow flush, say
	}))
	require.NoError(t, err)
	leading, err := e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	_, err = c.KV().Delete(t.Context(), key, nil)
	require.NoError(t, err)
	integration.WaitDone(t, leading, 5*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = e.Resign(ctx)
	require.ErrorIs(t, err, election.ErrDeposed, "the loss was not reported")
	assert.ErrorIs(t, err, election.ErrNotLeader)
	assert.Contains(t, err.Error(), "still under way")
	close(hookDone)
	assert.Equal(t, election.ErrNotLeader, e.Resign(t.Context()), "a loss is reported once")
}
