package session_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// The local deadline is the send time of the last successful renew plus
// the TTL, not its answer time: a renew answered 1.5 s late must not push
// the deadline 1.5 s past what Consul counts from.
func TestDeadlineCountsFromTheRenewsSendTime(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var mu sync.Mutex
	var sends []time.Time
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		mu.Lock()
		sends = append(sends, time.Now())
		mu.Unlock()
		select { // answered 1.5 s late (below the 2 s hedge)
		case <-time.After(1500 * time.Millisecond):
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	})
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	first := s.Deadline()
	require.Eventually(t, func() bool { return s.Deadline().After(first) }, 12*time.Second, 20*time.Millisecond)
	mu.Lock()
	require.Len(t, sends, 1)
	sent := sends[0]
	mu.Unlock()
	assert.WithinDuration(t, sent.Add(s.TTL()), s.Deadline(), 300*time.Millisecond,
		"the deadline must be the renew's send time plus the TTL")
}

// A session reported ErrExpired may still be held by Consul (up to one
// more TTL): Close must destroy it, so that the keys it holds are
// released now rather than when Consul drops it.
func TestCloseAfterExpiredDestroysTheSession(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, proxy := a.ProxiedClient(t)
	direct := a.Client(t)
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	proxy.Set(integration.ServerError)
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("loss not reported")
	}
	require.ErrorIs(t, s.Err(), session.ErrExpired)
	proxy.Set(integration.Pass)
	info, _, err := direct.Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, info, "Consul still holds the session (it waits twice the TTL)")
	require.NoError(t, s.Close(t.Context()))
	info, _, err = direct.Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "Close must destroy a session Consul still holds")
}

// Close waits for the renew goroutine: once it returns, no renew of the
// session is still in flight.
func TestCloseWaitsForARenewInFlight(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var active atomic.Int64
	started := make(chan struct{}, 10)
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		active.Add(1)
		defer active.Add(-1)
		started <- struct{}{}
		time.Sleep(3 * time.Second) // a transport slow to give the request up
		return r.Context().Err()
	})
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	select {
	case <-started:
	case <-time.After(8 * time.Second):
		t.Fatal("no renew sent")
	}
	require.NoError(t, s.Close(t.Context()))
	assert.Zero(t, active.Load(), "Close returned while a renew of its goroutine was still in flight")
}
