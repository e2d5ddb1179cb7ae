package semaphore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// TestSessionLossEndsTheSlotWhileTheLoggerStalls: as the lock's test of
// the same name, for a slot: the watcher's logger blocks, the session
// expires, and the held context must end with it.
func TestSessionLossEndsTheSlotWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	logs := integration.NewStalledHandler(t)
	l, err := semaphore.New(c, semPrefix(t), 2, semaphore.WithSession(s), semaphore.WithLogger(slog.New(logs)),
		semaphore.WithWaitTime(time.Second))
	require.NoError(t, err)
	ctx := t.Context()
	held, err := l.Acquire(ctx)
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
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrLost)
	assert.ErrorIs(t, context.Cause(held), session.ErrExpired)

	p.Set(integration.Pass)
	logs.Release()
	err = l.Release(ctx)
	assert.ErrorIs(t, err, semaphore.ErrLost)
}

// stallWatch holds a slot of a Semaphore whose logger blocks, through a
// session renewed on a direct client, and fails the Semaphore's own reads
// until the watcher has logged one: the watcher is then held up in the
// logger while the session lives on. The proxy passes again when it
// returns.
func stallWatch(t *testing.T) (direct *api.Client, prefix string, l *semaphore.Semaphore, held context.Context, logs *integration.StalledHandler) {
	t.Helper()
	a := integration.Shared(t)
	direct = a.Client(t)
	c, p := a.ProxiedClient(t)
	s := integration.NewSession(t, direct, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	logs = integration.NewStalledHandler(t)
	prefix = semPrefix(t)
	l, err := semaphore.New(c, prefix, 2, semaphore.WithSession(s), semaphore.WithLogger(slog.New(logs)),
		semaphore.WithWaitTime(time.Second))
	require.NoError(t, err)
	held, err = l.Acquire(t.Context())
	require.NoError(t, err)

	p.Set(integration.ServerError) // the watch's reads fail; the renews do not
	select {
	case <-logs.Entered():
	case <-time.After(15 * time.Second):
		t.Fatal("the watcher logged nothing")
	}
	p.Set(integration.Pass)
	return direct, prefix, l, held, logs
}

// TestPrefixDeletedEndsTheSlotWhileTheLoggerStalls: as the lock's
// TestKeyDeletedEndsTheHoldWhileTheLoggerStalls, for a slot whose prefix
// is deleted while the watcher is held up in the logger.
func TestPrefixDeletedEndsTheSlotWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	direct, prefix, l, held, logs := stallWatch(t)
	_, err := direct.KV().DeleteTree(t.Context(), prefix+"/", nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 10*time.Second)
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrLost)

	logs.Release()
	assert.ErrorIs(t, l.Release(t.Context()), semaphore.ErrLost)
}

// TestReleaseWhileTheLoggerStalls: Release while the watcher is held up
// logging a failed read returns within its ctx, having given the slot up.
func TestReleaseWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	direct, prefix, l, held, logs := stallWatch(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := integration.Within(t, 8*time.Second, "Release waited for the logger",
		func() error { return l.Release(ctx) }, logs.Release)
	require.NoError(t, err)
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrReleased)
	assert.Empty(t, leftover(t, direct, prefix), "the slot is still held")
}

// TestReleaseAfterSessionLossWhileTheLoggerStalls: the held context has
// ended with the session's end while the watcher is held up in the logger,
// and the holder, told so, releases: Release must report the loss within
// its ctx (as the lock's Unlock does: the watcher's cleanup still under
// way), not wait for the logger to be let through.
func TestReleaseAfterSessionLossWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	logs := integration.NewStalledHandler(t)
	l, err := semaphore.New(c, semPrefix(t), 2, semaphore.WithSession(s), semaphore.WithLogger(slog.New(logs)),
		semaphore.WithWaitTime(time.Second))
	require.NoError(t, err)
	held, err := l.Acquire(t.Context())
	require.NoError(t, err)

	p.Set(integration.ServerError)
	select {
	case <-logs.Entered():
	case <-time.After(15 * time.Second):
		t.Fatal("the watcher logged nothing")
	}
	integration.WaitDone(t, held, 30*time.Second)
	require.ErrorIs(t, context.Cause(held), session.ErrExpired)

	err = integration.Within(t, 20*time.Second, "Release waited on the stalled logger past its ctx", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		return l.Release(ctx)
	}, logs.Release)
	assert.ErrorIs(t, err, semaphore.ErrLost)
	p.Set(integration.Pass)
	logs.Release()
	// Waits for the watcher's cleanup, now let through.
	assert.ErrorIs(t, l.Release(t.Context()), semaphore.ErrNotHeld)
}
