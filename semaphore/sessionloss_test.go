package semaphore_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// A held slot whose session is destroyed from outside sees its contender
// key released at once; the session must be told too.
func TestHeldSlotLossTellsTheSession(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	sess := integration.NewSession(t, c, session.WithTTL(time.Minute), session.WithLockDelay(0))
	s, err := semaphore.New(c, semPrefix(t), 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	held, err := s.Acquire(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, sess.ID(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 10*time.Second)
	assert.ErrorIs(t, s.Release(ctx), semaphore.ErrNotHeld)
	assert.ErrorIs(t, sess.Err(), session.ErrInvalidated, "the session was not told its contender key was released by its invalidation")
}

// A lock-delay on the contender key is taken as proof that the session is
// gone. Renew now says whether it is: here the delay was left by a
// foreign session that locked <prefix>/<our session>, and our session is
// alive. Acquire must not report it invalidated.
func TestLockDelayOnContenderKeyWithALiveSession(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c, session.WithTTL(time.Minute))
	foreignLockDelay(t, c, prefix+"/"+sess.ID(), 15*time.Second)

	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = s.Acquire(actx)
	require.NoError(t, sess.Err(), "the session is alive")
	if err == nil {
		require.NoError(t, s.Release(ctx)) // acquired once the delay ended
		return
	}
	assert.NotErrorIs(t, err, session.ErrInvalidated, "a live session reported invalidated: %v", err)
}

// As above, but the renew that asks Consul whether the session is alive
// gets no answer. The session may well be alive, so Acquire must neither
// report it invalidated nor give up: it tries again and acquires once the
// foreign delay ends.
func TestLockDelayOnContenderKeyRenewFails(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	prefix := semPrefix(t)
	hc, ht := integration.Shared(t).HookedClient(t)
	var renews atomic.Int32
	ht.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			renews.Add(1)
			return errors.New("renew failed by the test")
		}
		return nil
	})
	defer ht.Set(nil)
	sess := integration.NewSession(t, hc, session.WithTTL(time.Minute))
	foreignLockDelay(t, c, prefix+"/"+sess.ID(), 5*time.Second)

	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = s.Acquire(actx)
	require.NoError(t, err, "a live session whose renew failed must go on waiting out the delay")
	assert.NoError(t, sess.Err())
	assert.Positive(t, renews.Load(), "the refusal must have asked the session")
	require.NoError(t, s.Release(ctx))
}

// A Release that finds the contender key released before its watcher has
// seen it (its blocking queries fail here) must tell the session too.
func TestReleaseAfterUnseenInvalidationTellsTheSession(t *testing.T) {
	c := newClient(t)
	hc, ht := integration.Shared(t).HookedClient(t)
	ctx := t.Context()
	sess := integration.NewSession(t, c, session.WithTTL(time.Minute), session.WithLockDelay(0))
	s, err := semaphore.New(hc, semPrefix(t), 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	// Set before Acquire, so that no blocking query of the watcher is
	// under way when the session is destroyed.
	ht.Set(integration.FailBlocking)
	defer ht.Set(nil)
	held, err := s.Acquire(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, sess.ID(), nil)
	require.NoError(t, err)
	require.NoError(t, held.Err(), "the watcher must not have seen the loss for this test to mean anything")
	require.NoError(t, sess.Err())
	err = s.Release(ctx)
	assert.ErrorIs(t, err, semaphore.ErrLost)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, sess.Err(), session.ErrInvalidated, "the session was not told its contender key was released by its invalidation")
}

// foreignLockDelay leaves a lock-delay of delay on key: a session of its
// own locks key with the semaphore's flags and is destroyed.
func foreignLockDelay(t *testing.T, c *api.Client, key string, delay time.Duration) {
	t.Helper()
	ctx := t.Context()
	foreign, _, err := c.Session().Create(ctx, &api.SessionEntry{TTL: time.Minute, LockDelay: delay, Behavior: "release"}, nil)
	require.NoError(t, err)
	ok, _, err := c.KV().Acquire(ctx, &api.KVPair{Key: key, Flags: semaphore.Flag, Session: foreign}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = c.Session().Destroy(ctx, foreign, nil)
	require.NoError(t, err)
}
