package lock_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestExpiredHoldIsLetGoByAnUnlockUnderWay: as TestExpiredHoldIsLetGo, but
// an Unlock is under way when the session expires here: its release got no
// answer (a connection that died without a reset), and the session's end
// stops it. The watcher leaves the release to an Unlock under way, so that
// Unlock must let the key go itself; otherwise the key stays held, for
// nobody, until Consul drops the session (up to one more TTL), and then
// its lock-delay keeps the next holder out for longer still.
func TestExpiredHoldIsLetGoByAnUnlockUnderWay(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	k := key(t)
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(15*time.Second))
	l, err := lock.New(c, k, lock.WithSession(s))
	require.NoError(t, err)
	_, err = l.Lock(ctx)
	require.NoError(t, err)

	// Start right after a renew: the session has its whole TTL left.
	d := s.Deadline()
	require.Eventually(t, func() bool { return s.Deadline().After(d) }, 15*time.Second, 20*time.Millisecond, "no renew")
	var hung atomic.Bool
	ht.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return errors.New("injected: renew refused")
		}
		if isReleaseTxn(r) && hung.CompareAndSwap(false, true) {
			// The first release hangs: it is given up after 10s, well
			// after the session's deadline.
			<-r.Context().Done()
			return r.Context().Err()
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	// Unlock about 6s before the deadline: its hung release would be
	// given up 4s after the session has expired.
	time.Sleep(4 * time.Second)
	require.NoError(t, s.Err(), "the session expired early: the machine is too slow for this test")
	err = l.Unlock(ctx)
	require.ErrorIs(t, err, lock.ErrLost)
	require.ErrorIs(t, s.Err(), session.ErrExpired)
	require.True(t, hung.Load(), "no release was sent")
	info, _, err := direct.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, info, "Consul dropped the session already: this test needs it kept")

	pair, _, err := direct.KV().Get(ctx, k, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "the key is still held by a session that expired during Unlock")
}

// TestUnlockAfterUnseenInvalidationAndAFailedReleaseTellsTheSession: as
// TestUnlockAfterUnseenInvalidationTellsTheSession, when the first release
// attempt failed without an answer (so the next one, finding the key no
// longer held, cannot tell whether the first released it): the key was
// let go by Consul invalidating the session all the same, and Unlock must
// renew the session to find out, and tell the session's other users.
func TestUnlockAfterUnseenInvalidationAndAFailedReleaseTellsTheSession(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, direct, session.WithLockDelay(0), session.WithTTL(time.Minute))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	// The watcher's blocking queries never reach the agent (set before
	// Lock, so that none is under way when the session is destroyed), and
	// the first release fails with a reset connection.
	var failed atomic.Bool
	ht.Set(func(r *http.Request) error {
		if isReleaseTxn(r) && failed.CompareAndSwap(false, true) {
			return syscall.ECONNRESET
		}
		return integration.HangBlocking(r)
	})
	t.Cleanup(func() { ht.Set(nil) })
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	_, err = direct.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NoError(t, held.Err(), "the watcher must not have seen the loss for this test to mean anything")
	require.NoError(t, s.Err())

	err = l.Unlock(ctx)
	require.True(t, failed.Load(), "no release was sent")
	assert.ErrorIs(t, err, lock.ErrLost)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session was not told its key was released by its invalidation")
}
