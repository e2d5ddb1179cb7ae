package session_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// stallRenew makes a session whose logger blocks, and fails its renews
// until the renew goroutine has logged a failure: the goroutine is then
// held up in the logger. Renews pass again when it returns.
func stallRenew(t *testing.T) (direct *api.Client, s *session.Session, logs *integration.StalledHandler) {
	t.Helper()
	a := integration.Shared(t)
	direct = a.Client(t)
	c, p := a.ProxiedClient(t)
	logs = integration.NewStalledHandler(t)
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second), session.WithLockDelay(0),
		session.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	t.Cleanup(func() {
		logs.Release()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})

	p.Set(integration.ServerError)
	select {
	case <-logs.Entered():
	case <-time.After(15 * time.Second):
		t.Fatal("the renew goroutine logged nothing")
	}
	p.Set(integration.Pass)
	return direct, s, logs
}

// TestRenewsGoOnWhileTheLoggerStalls: a renew failure is logged to a
// handler that blocks, and Consul answers again a moment later. The
// renews must go on, about every second, and keep the session: a log line
// that cannot be written must not cost the session, and every lock held
// through it.
func TestRenewsGoOnWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	_, s, _ := stallRenew(t)
	deadline := time.Until(s.Deadline())
	select {
	case <-s.Done():
		t.Fatalf("the session was lost: %v", s.Err())
	case <-time.After(deadline + 3*time.Second):
	}
	assert.NoError(t, s.Err())
}

// TestCloseWhileTheLoggerStalls: Close, while the renew goroutine is held
// up in the logger, returns within its ctx and destroys the session.
func TestCloseWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	direct, s, logs := stallRenew(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := integration.Within(t, 8*time.Second, "Close waited for the logger",
		func() error { return s.Close(ctx) }, logs.Release)
	require.NoError(t, err)
	assert.ErrorIs(t, s.Err(), session.ErrClosed)
	info, _, err := direct.Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "the session is still there")
}
