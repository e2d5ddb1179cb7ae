package lock_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// A key released by someone else before Unlock, a change the watcher has
// not seen: Unlock's release finds the key no longer held and reports the
// loss (ErrLost), rather than success.
func TestUnlockReportsAnUnseenReleaseAsLost(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	s := integration.NewSession(t, direct, session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	// The watcher's blocking query never reaches the agent: it does not
	// see the release.
	ht.Set(integration.HangBlocking)
	held, err := l.Lock(t.Context())
	require.NoError(t, err)
	ok, _, err := direct.KV().Release(t.Context(), &api.KVPair{Key: key(t), Session: s.ID(), Flags: lock.Flag}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, held.Err(), "the watcher saw the release: the Unlock below would not test an unseen one")

	err = l.Unlock(context.Background())
	assert.ErrorIs(t, err, lock.ErrLost, "Unlock of a lock released by someone else must report the loss")
}

// TryLock does not wait out a lock-delay: it fails at once with ErrLocked.
func TestTryLockInLockDelayFailsAtOnce(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	// A key of this run's own: the lock-delay left on it outlives the test.
	k := fmt.Sprintf("%s/%d", key(t), time.Now().UnixNano())
	t.Cleanup(func() { _, _ = c.KV().Delete(context.Background(), k, nil) })
	first := integration.NewSession(t, c, session.WithLockDelay(10*time.Second))
	l1, err := lock.New(c, k, lock.WithSession(first))
	require.NoError(t, err)
	held, err := l1.Lock(t.Context())
	require.NoError(t, err)
	_, err = c.Session().Destroy(t.Context(), first.ID(), nil) // the key is free, in its lock-delay
	require.NoError(t, err)
	integration.WaitDone(t, held, 5*time.Second)

	l2, err := lock.New(c, k, lock.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	start := time.Now()
	_, err = l2.TryLock(t.Context())
	assert.ErrorIs(t, err, lock.ErrLocked)
	assert.Less(t, time.Since(start), 2*time.Second, "TryLock waited for the lock-delay")
	if err == nil {
		_ = l2.Unlock(t.Context())
	}
}
