package session_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
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

// recordingStall is a handler that blocks until free is closed, and keeps
// the messages it wrote.
type recordingStall struct {
	free chan struct{}
	mu   sync.Mutex
	msgs []string
}

func (h *recordingStall) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingStall) Handle(_ context.Context, r slog.Record) error {
	<-h.free
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *recordingStall) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingStall) WithGroup(string) slog.Handler      { return h }

// TestLossLoggedAfterRetriesWhileTheLoggerStalls: the renews fail until
// the session expires, while the logger blocks. Once it writes again, the
// loss must be among the lines written: the retries logged before it
// (more than the lines kept waiting) must not crowd it out.
func TestLossLoggedAfterRetriesWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	logs := &recordingStall{free: make(chan struct{})}
	var once sync.Once
	free := func() { once.Do(func() { close(logs.free) }) }
	t.Cleanup(free)
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second), session.WithLockDelay(0),
		session.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })

	p.Set(integration.ServerError) // every renew fails until the session expires
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the session did not expire")
	}
	require.ErrorIs(t, s.Err(), session.ErrExpired)
	p.Set(integration.Pass)
	free()
	assert.Eventually(t, func() bool {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return slices.Contains(logs.msgs, "consul session lost")
	}, 5*time.Second, 20*time.Millisecond, "the loss was never logged")
	logs.mu.Lock()
	t.Logf("%d lines written", len(logs.msgs))
	logs.mu.Unlock()
}
