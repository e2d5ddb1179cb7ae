package lock_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestSessionLossEndsTheHoldWhileTheLoggerStalls: the Lock's logger
// blocks (its output has stalled) when the watcher logs a failed read,
// and the session then expires. The held context must end with the
// session all the same: a holder must not go on working without the
// lock because a log line could not be written.
func TestSessionLossEndsTheHoldWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	logs := integration.NewStalledHandler(t)
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithLogger(slog.New(logs)),
		lock.WithWaitTime(time.Second))
	require.NoError(t, err)
	ctx := t.Context()
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	p.Set(integration.ServerError) // the watch's reads fail, and so do the renews
	select {
	case <-logs.Entered():
	case <-time.After(15 * time.Second):
		t.Fatal("the watcher logged nothing")
	}
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not expire")
	}
	integration.WaitDone(t, held, 5*time.Second)
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
	assert.ErrorIs(t, context.Cause(held), session.ErrExpired)

	p.Set(integration.Pass)
	logs.Release()
	err = l.Unlock(ctx)
	assert.ErrorIs(t, err, lock.ErrLost)
}

// stallWatch holds a Lock whose logger blocks, through a session renewed
// on a direct client, and fails the Lock's own reads until the watcher
// has logged one: the watcher is then held up in the logger while the
// session lives on. The proxy passes again when it returns.
func stallWatch(t *testing.T) (direct *api.Client, s *session.Session, l *lock.Lock, held context.Context, logs *integration.StalledHandler) {
	t.Helper()
	a := integration.Shared(t)
	direct = a.Client(t)
	c, p := a.ProxiedClient(t)
	s = integration.NewSession(t, direct, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	logs = integration.NewStalledHandler(t)
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithLogger(slog.New(logs)),
		lock.WithWaitTime(time.Second))
	require.NoError(t, err)
	held, err = l.Lock(t.Context())
	require.NoError(t, err)

	p.Set(integration.ServerError) // the watch's reads fail; the renews do not
	select {
	case <-logs.Entered():
	case <-time.After(15 * time.Second):
		t.Fatal("the watcher logged nothing")
	}
	p.Set(integration.Pass)
	return direct, s, l, held, logs
}

// TestKeyDeletedEndsTheHoldWhileTheLoggerStalls: the watcher is held up
// logging a failed read, and the key is then deleted while the session
// lives. The watch must go on and report the loss: a log line that cannot
// be written must not leave the held context live without the lock.
func TestKeyDeletedEndsTheHoldWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	direct, _, l, held, logs := stallWatch(t)
	_, err := direct.KV().Delete(t.Context(), l.Key(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 10*time.Second)
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)

	logs.Release()
	assert.ErrorIs(t, l.Unlock(t.Context()), lock.ErrLost)
}

// TestUnlockWhileTheLoggerStalls: Unlock while the watcher is held up
// logging a failed read returns within its ctx, having released the key:
// it must not wait for a log line to be written.
func TestUnlockWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	direct, _, l, held, logs := stallWatch(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := integration.Within(t, 8*time.Second, "Unlock waited for the logger",
		func() error { return l.Unlock(ctx) }, logs.Release)
	require.NoError(t, err)
	assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
	pair, _, err := direct.KV().Get(t.Context(), l.Key(), nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "the key is still held")
}
