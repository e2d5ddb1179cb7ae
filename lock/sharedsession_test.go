package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestCloseSharedSessionWhileLocksHeld: Close of a session that backs many
// held locks, with Unlocks racing it: every held context ends, every
// Unlock returns nil (it got there first) or ErrNotHeld / ErrLost, never
// hangs, and the keys end up free.
func TestCloseSharedSessionWhileLocksHeld(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	const n = 50
	s, err := session.New(ctx, c, session.WithLockDelay(0))
	require.NoError(t, err)
	prefix := key(t)
	locks, helds := lockMany(t, c, s, prefix, n)

	var wg sync.WaitGroup
	wg.Go(func() { assert.NoError(t, s.Close(ctx)) })
	for i, l := range locks {
		if i%2 == 0 {
			continue // left to the Close
		}
		wg.Go(func() {
			err := l.Unlock(ctx)
			if err != nil {
				assert.True(t, errors.Is(err, lock.ErrNotHeld) || errors.Is(err, lock.ErrLost), "lock %d: %v", i, err)
			}
		})
	}
	require.NoError(t, integration.Within(t, 20*time.Second, "Close and Unlocks did not return", func() error { wg.Wait(); return nil }, nil))
	awaitAll(t, time.Now(), helds, 5*time.Second)
	for i, h := range helds {
		if i%2 == 0 {
			assert.ErrorIs(t, context.Cause(h), lock.ErrLost, "lock %d", i)
			assert.ErrorIs(t, context.Cause(h), session.ErrClosed, "lock %d", i)
		}
		assert.True(t, locks[i].Token().IsZero())
	}
	for i, l := range locks {
		err := l.Unlock(ctx)
		assert.ErrorIs(t, err, lock.ErrNotHeld, "lock %d", i)
		if i%2 == 0 {
			assert.ErrorIs(t, err, lock.ErrLost, "lock %d", i)
			assert.ErrorIs(t, err, session.ErrClosed, "lock %d", i)
		}
		assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld, "lock %d", i)
		assert.NotErrorIs(t, l.Unlock(ctx), lock.ErrLost, "lock %d: a loss is reported once", i)
		// Locking again through the closed session fails at once.
		_, err = l.TryLock(ctx)
		assert.ErrorIs(t, err, session.ErrClosed, "lock %d", i)
	}
	pairs, _, err := c.KV().List(ctx, prefix+"/", nil)
	require.NoError(t, err)
	for _, p := range pairs {
		assert.Empty(t, p.Session, "key %s still held", p.Key)
	}
}

// TestLockOnLostSharedSessionFailsAtOnce: a Lock made with a session that
// is already lost (closed, destroyed from outside, expired) fails at once
// with the session's error, sends no acquisition, and holds nothing.
func TestLockOnLostSharedSessionFailsAtOnce(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	ctx := t.Context()
	cases := map[string]struct {
		end  func(t *testing.T, s *session.Session)
		want error
	}{
		"closed": {func(t *testing.T, s *session.Session) { require.NoError(t, s.Close(ctx)) }, session.ErrClosed},
		"invalidated": {func(t *testing.T, s *session.Session) {
			_, err := direct.Session().Destroy(ctx, s.ID(), nil)
			require.NoError(t, err)
			assert.ErrorIs(t, s.Renew(ctx), session.ErrInvalidated)
		}, session.ErrInvalidated},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, ct := a.CountingClient(t)
			s := integration.NewSession(t, c, session.WithLockDelay(0))
			k := key(t)
			tc.end(t, s)
			l, err := lock.New(c, k, lock.WithSession(s))
			require.NoError(t, err)
			ct.Reset()
			for _, try := range []bool{false, true} {
				var held context.Context
				err := integration.Within(t, 2*time.Second, "Lock on a lost session did not fail at once", func() error {
					var err error
					if try {
						held, err = l.TryLock(ctx)
					} else {
						held, err = l.Lock(ctx)
					}
					return err
				}, nil)
				assert.ErrorIs(t, err, tc.want)
				assert.Nil(t, held)
				assert.True(t, l.Token().IsZero())
			}
			for _, r := range ct.Requests() {
				assert.False(t, strings.HasPrefix(r, "PUT /v1/txn"), "an acquisition was sent: %v", ct.Requests())
			}
			pair, _, err := direct.KV().Get(ctx, k, nil)
			require.NoError(t, err)
			if pair != nil {
				assert.Empty(t, pair.Session)
			}
		})
	}
}

// TestConcurrentLocksOverOneSession: many goroutines lock and unlock
// different keys through one session, while others renew it: no race, no
// deadlock, exclusion per key, and at most three requests per cycle.
func TestConcurrentLocksOverOneSession(t *testing.T) {
	c, ct := integration.Shared(t).CountingClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	const workers, cycles = 40, 10
	prefix := key(t)
	stop := make(chan struct{})
	var renewers sync.WaitGroup
	for range 3 {
		renewers.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				assert.NoError(t, s.Renew(ctx))
			}
		})
	}
	locks := make([]*lock.Lock, workers)
	for i := range workers {
		l, err := lock.New(c, fmt.Sprintf("%s/%d", prefix, i), lock.WithSession(s))
		require.NoError(t, err)
		locks[i] = l
		// The first Lock creates the key free: not part of a cycle.
		_, err = l.Lock(ctx)
		require.NoError(t, err)
		require.NoError(t, l.Unlock(ctx))
	}
	ct.Reset()
	var wg sync.WaitGroup
	for i, l := range locks {
		wg.Go(func() {
			for range cycles {
				held, err := l.Lock(ctx)
				if !assert.NoError(t, err, "lock %d", i) {
					return
				}
				assert.Equal(t, s.ID(), l.Token().Session)
				assert.NoError(t, l.Unlock(ctx), "lock %d", i)
				assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
			}
		})
	}
	err := integration.Within(t, 60*time.Second, "lock cycles did not finish", func() error { wg.Wait(); return nil }, nil)
	close(stop)
	renewers.Wait()
	require.NoError(t, err)
	other := 0
	for _, r := range ct.Requests() {
		if !strings.Contains(r, "/v1/session/renew/") {
			other++
		}
	}
	t.Logf("%d lock cycles: %d requests besides renews", workers*cycles, other)
	assert.LessOrEqual(t, other, 3*workers*cycles)
	assert.NoError(t, s.Err())
}

// TestRelockAfterLossWhileWatcherCleansUp: a Lock whose hold was lost
// (its key deleted) locks again through the same live session while the
// old watcher may still be cleaning up: the new hold is real (the key is
// the session's, with a newer token), and stays held.
func TestRelockAfterLossWhileWatcherCleansUp(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	k := key(t)
	l, err := lock.New(c, k, lock.WithSession(s))
	require.NoError(t, err)
	for i := range 20 {
		held, err := l.Lock(ctx)
		require.NoError(t, err)
		tok := l.Token()
		_, err = c.KV().Delete(ctx, k, nil)
		require.NoError(t, err)
		integration.WaitDone(t, held, 5*time.Second)
		require.ErrorIs(t, context.Cause(held), lock.ErrLost)
		held2, err := l.Lock(ctx)
		require.NoError(t, err, "round %d", i)
		tok2 := l.Token()
		assert.True(t, tok2.Newer(tok), "round %d", i)
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, held2.Err(), "round %d: the new hold was lost", i)
		pair, _, err := c.KV().Get(ctx, k, &api.QueryOptions{Consistency: api.ConsistencyConsistent})
		require.NoError(t, err)
		require.NotNil(t, pair)
		assert.Equal(t, s.ID(), pair.Session, "round %d", i)
		require.NoError(t, l.Unlock(ctx))
	}
}
