package session_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// countingSessionClient returns a client whose requests under
// /v1/session/<verb>/ are counted, by verb.
func countingSessionClient(t *testing.T) (*api.Client, func(verb string) int64) {
	c, ht := integration.Shared(t).HookedClient(t)
	var renews, destroys atomic.Int64
	ht.Set(func(r *http.Request) error {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
			renews.Add(1)
		case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
			destroys.Add(1)
		}
		return nil
	})
	return c, func(verb string) int64 {
		switch verb {
		case "renew":
			return renews.Load()
		case "destroy":
			return destroys.Load()
		}
		t.Fatalf("no count for %q", verb)
		return 0
	}
}

// A session destroyed from outside is lost as soon as Renew finds out,
// not at the next scheduled renew (half an hour away here): Done, Err and
// Renew's own error say so, and Close sends no destroy for it.
func TestRenewReportsADestroyedSessionAtOnce(t *testing.T) {
	t.Parallel()
	c, count := countingSessionClient(t)
	plain := integration.Shared(t).Client(t)
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	_, err = plain.Session().Destroy(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	require.NoError(t, s.Err(), "nothing has told the session yet")

	err = s.Renew(t.Context())
	require.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, err, api.ErrNotFound, "the 404 is kept as the cause")
	select {
	case <-s.Done():
	default:
		t.Fatal("Done is not closed after Renew found the session gone")
	}
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated)
	assert.Equal(t, int64(1), count("renew"))

	// Lost: nothing more is sent, by Renew or Close.
	assert.ErrorIs(t, s.Renew(t.Context()), session.ErrInvalidated)
	require.NoError(t, s.Close(t.Context()))
	assert.Equal(t, int64(1), count("renew"))
	assert.Zero(t, count("destroy"), "Consul no longer knows the session")
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "Close keeps the first cause")
}

// Renew on a live session renews it: the deadline moves to its send time
// plus the TTL, and the session stays alive. After Close it sends nothing.
func TestRenewExtendsTheDeadline(t *testing.T) {
	t.Parallel()
	c, count := countingSessionClient(t)
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	first := s.Deadline()
	time.Sleep(50 * time.Millisecond)
	sent := time.Now()
	require.NoError(t, s.Renew(t.Context()))
	assert.NoError(t, s.Err())
	assert.Equal(t, int64(1), count("renew"))
	assert.True(t, s.Deadline().After(first), "the deadline did not move")
	assert.WithinDuration(t, sent.Add(time.Hour), s.Deadline(), 200*time.Millisecond)

	require.NoError(t, s.Close(t.Context()))
	assert.ErrorIs(t, s.Renew(t.Context()), session.ErrClosed)
	assert.Equal(t, int64(1), count("renew"), "a closed session sends no renew")
	assert.Equal(t, int64(1), count("destroy"))
}

// A Renew that fails for another reason than a 404 changes nothing: the
// session is not lost, and the renew goroutine goes on as before.
func TestRenewFailureLeavesTheSessionAlive(t *testing.T) {
	t.Parallel()
	c, proxy := integration.Shared(t).ProxiedClient(t)
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	for _, f := range []integration.Fault{integration.ServerError, integration.NoLeader} {
		proxy.Set(f)
		err = s.Renew(t.Context())
		require.Error(t, err)
		assert.NotErrorIs(t, err, session.ErrInvalidated)
		assert.True(t, api.IsRetryable(err), "a transient failure is reported as retryable: %v", err)
		assert.NoError(t, s.Err())
	}
	proxy.Set(integration.Pass)
	first := s.Deadline()
	// The renew goroutine's own renew, due after TTL/2, still happens.
	require.Eventually(t, func() bool { return s.Deadline().After(first) }, 8*time.Second, 50*time.Millisecond)
	assert.NoError(t, s.Err())
}

// A Renew cut short by its ctx returns the ctx's error and leaves the
// session alive.
func TestRenewHonoursItsContext(t *testing.T) {
	t.Parallel()
	c, proxy := integration.Shared(t).ProxiedClient(t)
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	proxy.Set(integration.Hang)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = s.Renew(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, s.Err())
	proxy.Set(integration.Pass)
}

// answerAfterCancel sends a session create to the agent whatever becomes
// of the caller, then ends the caller's context (cancel), and gives the
// answer back only if the request's own context is still live: a create
// that Consul applied while its caller gave up.
type answerAfterCancel struct {
	base   http.RoundTripper
	cancel context.CancelFunc
}

func (a *answerAfterCancel) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/v1/session/create" {
		return a.base.RoundTrip(r)
	}
	resp, err := a.base.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
	a.cancel()
	if err == nil && r.Context().Err() != nil {
		_ = resp.Body.Close()
		return nil, r.Context().Err()
	}
	return resp, err
}

// TestNewGivenUpLeavesNoSession: New's ctx ends while Consul applies the
// create. New returns ctx's error and leaves no session behind.
func TestNewGivenUpLeavesNoSession(t *testing.T) {
	a := integration.Shared(t)
	ctx, cancel := context.WithCancel(t.Context())
	tr := &answerAfterCancel{base: http.DefaultTransport.(*http.Transport).Clone(), cancel: cancel}
	t.Cleanup(tr.base.(*http.Transport).CloseIdleConnections)
	cfg := a.Config()
	cfg.Transport = tr
	c, err := api.NewClient(cfg)
	require.NoError(t, err)

	name := "given-up-" + t.Name()
	_, err = session.New(ctx, c, session.WithName(name), session.WithTTL(time.Hour))
	require.ErrorIs(t, err, context.Canceled)
	direct := a.Client(t)
	left := integration.SessionsNamed(t, direct, name)
	for _, id := range left {
		_, _ = direct.Session().Destroy(context.Background(), id, nil)
	}
	assert.Empty(t, left, "New gave up, yet left a session behind (it would live up to twice its TTL)")
}
