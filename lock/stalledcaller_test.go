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

// TestLockAndUnlockKeepTheirCtxWhileTheLoggerStalls: Lock and Unlock log
// their retries on the caller's goroutine; a logger that blocks must not
// hold them past their ctx.
func TestLockAndUnlockKeepTheirCtxWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, p := a.ProxiedClient(t)
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	logs := integration.NewStalledHandler(t)
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithLogger(slog.New(logs)))
	require.NoError(t, err)

	p.Set(integration.ServerError) // every attempt fails, and is logged
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = integration.Within(t, 5*time.Second, "Lock", func() error {
		_, err := l.Lock(ctx)
		return err
	}, logs.Release)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	p.Set(integration.Pass)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)
	p.Set(integration.ServerError)
	ctx2, cancel2 := context.WithTimeout(t.Context(), time.Second)
	defer cancel2()
	err = integration.Within(t, 5*time.Second, "Unlock", func() error { return l.Unlock(ctx2) }, logs.Release)
	assert.Error(t, err)
	p.Set(integration.Pass)
	logs.Release()
}
