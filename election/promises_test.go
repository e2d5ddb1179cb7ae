package election_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// OnDeposed is called after the leading context is cancelled, for a
// resignation and for a loss alike.
func TestOnDeposedSeesTheLeadingContextEnded(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	var (
		mu      sync.Mutex
		leading context.Context
		ended   []bool
	)
	e, err := election.New(c, key, election.WithSession(s), election.WithHooks(election.Hooks{
		OnElected: func(ctx context.Context, _ election.Leader) { mu.Lock(); leading = ctx; mu.Unlock() },
		OnDeposed: func(election.Leader, error) {
			mu.Lock()
			ended = append(ended, leading.Err() != nil)
			mu.Unlock()
		},
	}))
	require.NoError(t, err)
	_, err = e.Campaign(t.Context(), []byte("one"))
	require.NoError(t, err)
	require.NoError(t, e.Resign(t.Context()))

	held, err := e.Campaign(t.Context(), []byte("two"))
	require.NoError(t, err)
	_, err = c.KV().Delete(t.Context(), key, nil) // deposed from outside
	require.NoError(t, err)
	integration.WaitDone(t, held, 5*time.Second)
	_ = e.Resign(t.Context()) // waits for OnDeposed

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []bool{true, true}, ended, "OnDeposed ran while the leading context was still live")
}

// A key held by a session with flags that are not a lock's is no leader
// to Observe.
func TestObserveReportsAForeignHeldKeyAsNoLeader(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	other := integration.NewSession(t, c, session.WithLockDelay(0))
	ok, _, err := c.KV().Acquire(t.Context(), &api.KVPair{Key: key, Value: []byte("data"), Flags: 7, Session: other.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	e, err := election.New(c, key, election.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	l := next(t, e.Observe(ctx), 5*time.Second)
	assert.True(t, l.IsZero(), "a key with flags %#x reported as leader %+v", 7, l)
}

// OnNewLeader is called for a new leader, itself included, but not for a
// Proclaim of the same term.
func TestOnNewLeaderIsNotCalledForProclaim(t *testing.T) {
	c, key, s, _ := newCandidate(t)
	var calls atomic.Int64
	e, err := election.New(c, key, election.WithSession(s), election.WithHooks(election.Hooks{
		OnNewLeader: func(election.Leader) { calls.Add(1) },
	}))
	require.NoError(t, err)
	err = e.Run(t.Context(), []byte("one"), func(leading context.Context) error {
		require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
		require.NoError(t, e.Proclaim(leading, []byte("two")))
		time.Sleep(time.Second) // the observer sees the change within a round trip
		return nil
	})
	require.NoError(t, err)
	assert.EqualValues(t, 1, calls.Load(), "OnNewLeader called for a Proclaim")
}
