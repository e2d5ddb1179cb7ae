package lock_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
