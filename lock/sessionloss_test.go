package lock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// A held lock whose session is destroyed from outside sees its key
// released at once; the session, shared with other holders, must be told
// too, not at its next scheduled renew (30 s away here).
func TestHeldLockLossTellsTheSession(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 10*time.Second)
	require.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)
	// Unlock has waited for the watcher's cleanup.
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session was not told its key was released by its invalidation")
}

// An Unlock that finds the key released before its watcher has seen it
// (its blocking queries fail here) must tell the session too: Consul
// releases the keys of a session it invalidates, and the session's other
// users must not wait for its next scheduled renew to learn of it.
func TestUnlockAfterUnseenInvalidationTellsTheSession(t *testing.T) {
	c := integration.Shared(t).Client(t)
	hc, ht := integration.Shared(t).HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	l, err := lock.New(hc, key(t), lock.WithSession(s))
	require.NoError(t, err)
	// Set before Lock, so that no blocking query of the watcher is under
	// way when the session is destroyed.
	ht.Set(integration.FailBlocking)
	defer ht.Set(nil)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NoError(t, held.Err(), "the watcher must not have seen the loss for this test to mean anything")
	require.NoError(t, s.Err())
	err = l.Unlock(ctx)
	assert.ErrorIs(t, err, lock.ErrLost)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session was not told its key was released by its invalidation")
}

// As above, for a guarded write (and so an election's Proclaim) refused by
// Consul's check-session before the watcher has seen the loss.
func TestGuardedWriteAfterUnseenInvalidationTellsTheSession(t *testing.T) {
	c := integration.Shared(t).Client(t)
	hc, ht := integration.Shared(t).HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	k := key(t)
	l, err := lock.New(hc, k, lock.WithSession(s))
	require.NoError(t, err)
	ht.Set(integration.FailBlocking)
	defer ht.Set(nil)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NoError(t, held.Err(), "the watcher must not have seen the loss for this test to mean anything")
	err = l.GuardedPut(ctx, &api.KVPair{Key: k + "-data", Value: []byte("x")})
	assert.ErrorIs(t, err, lock.ErrLost)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session was not told of the refusal")
	p, _, err := c.KV().Get(ctx, k+"-data", nil)
	require.NoError(t, err)
	assert.Nil(t, p, "the guarded write was applied")
	assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)
}

// As above, with the session the Lock created for itself: the Lock
// destroys it once the loss is reported, but the refusal was Consul's
// invalidation, and the error must still say so (session.ErrInvalidated,
// not session.ErrClosed).
func TestGuardedWriteAfterUnseenInvalidationOfItsOwnSession(t *testing.T) {
	c := integration.Shared(t).Client(t)
	hc, ht := integration.Shared(t).HookedClient(t)
	ctx := t.Context()
	k := key(t)
	l, err := lock.New(hc, k, lock.WithSessionOptions(session.WithLockDelay(0), session.WithTTL(time.Minute)))
	require.NoError(t, err)
	ht.Set(integration.FailBlocking)
	defer ht.Set(nil)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	tok, _ := lock.TokenFrom(held)
	_, err = c.Session().Destroy(ctx, tok.Session, nil)
	require.NoError(t, err)
	require.NoError(t, held.Err(), "the watcher must not have seen the loss for this test to mean anything")
	err = l.GuardedPut(ctx, &api.KVPair{Key: k + "-data", Value: []byte("x")})
	assert.ErrorIs(t, err, lock.ErrLost)
	assert.ErrorIs(t, err, session.ErrInvalidated, "Consul invalidated the session: %v", err)
	assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)
}
