package semaphore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
