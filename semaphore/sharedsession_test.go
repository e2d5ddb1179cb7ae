package semaphore_test

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

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// TestCloseSharedSessionWhileSlotsHeld: Close of a session that holds
// slots of many semaphores, with Releases racing it: every held context
// ends, every Release returns nil or ErrNotHeld / ErrLost, none hangs,
// and no slot or contender key of the session is left.
func TestCloseSharedSessionWhileSlotsHeld(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	const n = 30
	sess, err := session.New(ctx, c, session.WithLockDelay(0))
	require.NoError(t, err)
	base := semPrefix(t)
	sems := make([]*semaphore.Semaphore, n)
	helds := make([]context.Context, n)
	for i := range n {
		sems[i], err = semaphore.New(c, fmt.Sprintf("%s/%d", base, i), 2, semaphore.WithSession(sess))
		require.NoError(t, err)
		helds[i], err = sems[i].Acquire(ctx)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { assert.NoError(t, sess.Close(ctx)) })
	for i, s := range sems {
		if i%2 == 0 {
			continue
		}
		wg.Go(func() {
			if err := s.Release(ctx); err != nil {
				assert.True(t, errors.Is(err, semaphore.ErrNotHeld) || errors.Is(err, semaphore.ErrLost), "semaphore %d: %v", i, err)
			}
		})
	}
	require.NoError(t, integration.Within(t, 20*time.Second, "Close and Releases did not return", func() error { wg.Wait(); return nil }, nil))
	for i, h := range helds {
		integration.WaitDone(t, h, 5*time.Second)
		if i%2 == 0 {
			assert.ErrorIs(t, context.Cause(h), semaphore.ErrLost, "semaphore %d", i)
			assert.ErrorIs(t, context.Cause(h), session.ErrClosed, "semaphore %d", i)
		}
	}
	for i, s := range sems {
		err := s.Release(ctx)
		assert.ErrorIs(t, err, semaphore.ErrNotHeld, "semaphore %d", i)
		if i%2 == 0 {
			assert.ErrorIs(t, err, semaphore.ErrLost, "semaphore %d", i)
		}
		assert.ErrorIs(t, s.Release(ctx), semaphore.ErrNotHeld)
		_, err = s.TryAcquire(ctx)
		assert.ErrorIs(t, err, session.ErrClosed, "semaphore %d", i)
		ids, err := s.Holders(ctx)
		require.NoError(t, err)
		assert.NotContains(t, ids, sess.ID())
	}
	pairs, _, err := c.KV().List(ctx, base+"/", nil)
	require.NoError(t, err)
	for _, p := range pairs {
		assert.NotContains(t, p.Key, sess.ID(), "contender key left")
		assert.NotContains(t, string(p.Value), sess.ID(), "%s still lists the session", p.Key)
	}
}

// TestAcquireOnLostSharedSessionFailsAtOnce: an Acquire through a session
// already lost fails at once with its error and writes nothing, also right
// after a Release (which leaves a view to acquire from without reading):
// the coordination key, which every contender CASes, is left as it is.
func TestAcquireOnLostSharedSessionFailsAtOnce(t *testing.T) {
	c, ct := countingClient(t)
	ctx := t.Context()
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c, session.WithLockDelay(0))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	_, err = s.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx))
	require.NoError(t, sess.Close(ctx))
	before, _, err := c.KV().Get(ctx, prefix+"/"+semaphore.LockKey, nil)
	require.NoError(t, err)
	require.NotNil(t, before)
	ct.Reset()
	_, err = s.Acquire(ctx)
	assert.ErrorIs(t, err, session.ErrClosed)
	_, err = s.TryAcquire(ctx)
	assert.ErrorIs(t, err, session.ErrClosed)
	sent := ct.Requests()
	after, _, err := c.KV().Get(ctx, prefix+"/"+semaphore.LockKey, nil)
	require.NoError(t, err)
	require.NotNil(t, after)
	assert.Equal(t, before.ModifyIndex, after.ModifyIndex, "an Acquire through a closed session rewrote the coordination key: %v", sent)
	for _, r := range sent {
		assert.False(t, strings.HasPrefix(r, "PUT /v1/txn"), "a transaction was sent through a closed session: %v", sent)
	}
}

// TestAcquireWithEndedCtxAfterReleaseWritesNothing: as above, with a ctx
// that has ended before Acquire is called: it returns ctx.Err() and leaves
// the coordination key as it is.
func TestAcquireWithEndedCtxAfterReleaseWritesNothing(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c, session.WithLockDelay(0))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	_, err = s.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, s.Release(t.Context()))
	before, _, err := c.KV().Get(t.Context(), prefix+"/"+semaphore.LockKey, nil)
	require.NoError(t, err)
	require.NotNil(t, before)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Acquire(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	after, _, err := c.KV().Get(t.Context(), prefix+"/"+semaphore.LockKey, nil)
	require.NoError(t, err)
	require.NotNil(t, after)
	assert.Equal(t, before.ModifyIndex, after.ModifyIndex, "an Acquire with an ended ctx rewrote the coordination key")
}

// TestReacquireAfterLossWhileCleanupRuns: a slot lost (its contender key
// deleted) is acquired again at once through the same live session while
// the old watcher may still be cleaning up: the new slot is real and
// stays held, and the cleanup of the old one does not take it away.
func TestReacquireAfterLossWhileCleanupRuns(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c, session.WithLockDelay(0))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	for i := range 20 {
		held, err := s.Acquire(ctx)
		require.NoError(t, err)
		deleteContender(t, c, prefix, sess.ID())
		integration.WaitDone(t, held, 5*time.Second)
		require.ErrorIs(t, context.Cause(held), semaphore.ErrLost)
		held2, err := s.Acquire(ctx)
		require.NoError(t, err, "round %d", i)
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, held2.Err(), "round %d: the new slot was lost: %v", i, context.Cause(held2))
		ids, err := s.Holders(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{sess.ID()}, ids, "round %d", i)
		require.NoError(t, s.Release(ctx))
	}
	assert.NoError(t, sess.Err())
}
