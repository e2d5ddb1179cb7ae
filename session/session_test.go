package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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

func TestMain(m *testing.M) { integration.Main(m) }

func TestNewRejectsBadOptionsBeforeSending(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = srv.Listener.Addr().String()
	c, err := api.NewClient(cfg)
	require.NoError(t, err)

	tests := []struct {
		name string
		opt  session.Option
	}{
		{"ttl too short", session.WithTTL(5 * time.Second)},
		{"ttl too long", session.WithTTL(25 * time.Hour)},
		{"negative lock delay", session.WithLockDelay(-time.Second)},
		{"lock delay too long", session.WithLockDelay(61 * time.Second)},
		{"unknown behavior", session.WithBehavior("keep")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := session.New(t.Context(), c, tt.opt)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.ErrorIs(t, err, api.ErrInvalid)
		})
	}
	_, err = session.New(t.Context(), nil)
	assert.ErrorIs(t, err, api.ErrInvalid)
	assert.Zero(t, requests.Load(), "a request was sent for bad input")
}

func TestSessionIsCreatedWithItsOptionsAndDestroyedByClose(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s, err := session.New(ctx, c, session.WithTTL(20*time.Second), session.WithLockDelay(0),
		session.WithBehavior(session.Delete), session.WithName("worker"), session.WithNodeChecks())
	require.NoError(t, err)

	info, _, err := c.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, info)
	assert.Equal(t, "worker", info.Name)
	assert.Equal(t, 20*time.Second, info.TTL)
	assert.Equal(t, time.Duration(0), info.LockDelay, "lock delay 0 must mean no delay, not Consul's default")
	assert.Equal(t, "delete", info.Behavior)
	assert.Empty(t, info.NodeChecks)
	assert.Nil(t, s.Err())

	require.NoError(t, s.Close(ctx))
	require.NoError(t, s.Close(ctx), "a second Close must be harmless")
	assert.ErrorIs(t, s.Err(), session.ErrClosed)
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	info, _, err = c.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "Close must destroy the session")
}

// A Close that could not destroy the session (Consul could not be
// reached) is not the last word: a later Close destroys it.
func TestCloseAgainAfterAFailedDestroy(t *testing.T) {
	a := integration.Shared(t)
	c, proxy := a.ProxiedClient(t)
	direct := a.Client(t)
	ctx := t.Context()
	s, err := session.New(ctx, c)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	proxy.Set(integration.ServerError)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	require.Error(t, s.Close(short))
	assert.ErrorIs(t, s.Err(), session.ErrClosed)
	info, _, err := direct.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, info, "not destroyed yet")

	// The second Close is deferred past a shutdown: its ctx has ended.
	proxy.Set(integration.Pass)
	ended, end := context.WithCancel(ctx)
	end()
	require.NoError(t, s.Close(ended))
	info, _, err = direct.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "the second Close destroyed the session")
	require.NoError(t, s.Close(ctx))
}

// Close deferred with a ctx that a shutdown has cancelled still destroys
// the session.
func TestCloseWithEndedContextStillDestroys(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := session.New(ctx, c)
	require.NoError(t, err)
	cancel()
	require.NoError(t, s.Close(ctx))
	info, _, err := c.Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "destroyed")
}

func TestSessionOutlivesItsTTLByRenewing(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s, err := session.New(ctx, c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	// Consul invalidates an unrenewed session after twice its TTL.
	time.Sleep(25 * time.Second)
	assert.Nil(t, s.Err())
	info, _, err := c.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	assert.NotNil(t, info, "the session was not kept alive")
	assert.True(t, s.Deadline().After(time.Now()))
}

func TestSessionDestroyedOutsideIsLostAtNextRenew(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s, err := session.New(ctx, c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	select {
	case <-s.Done():
	case <-time.After(8 * time.Second): // the next renew is due after TTL/2
		t.Fatal("loss not reported")
	}
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated)
	assert.ErrorIs(t, s.Err(), api.ErrNotFound, "the 404 is kept as the cause")
	assert.NoError(t, s.Close(ctx))
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "Close keeps the first cause")
}

func TestSessionSurvivesFaultsShorterThanItsDeadline(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, proxy := a.ProxiedClient(t)
	ctx := t.Context()

	s, err := session.New(ctx, c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	for _, f := range []integration.Fault{integration.ServerError, integration.NoLeader, integration.Hang} {
		// A fault of 7s spans at least one renew (every 5s) but ends
		// before the deadline (10s after the last successful renew).
		waitForRenew(t, s)
		proxy.Set(f)
		time.Sleep(7 * time.Second)
		proxy.Set(integration.Pass)
		require.Nil(t, s.Err(), "lost during a short fault %d", f)
	}
}

func TestSessionIsLostWhenFaultsOutlastItsDeadline(t *testing.T) {
	for _, f := range []integration.Fault{integration.ServerError, integration.Hang} {
		t.Run(map[integration.Fault]string{integration.ServerError: "500", integration.Hang: "hang"}[f], func(t *testing.T) {
			t.Parallel()
			a := integration.Shared(t)
			c, proxy := a.ProxiedClient(t)
			ctx := t.Context()

			s, err := session.New(ctx, c, session.WithTTL(10*time.Second))
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = a.Client(t).Session().Destroy(context.Background(), s.ID(), nil) })
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			t.Cleanup(func() { proxy.Set(integration.Pass) }) // runs first

			proxy.Set(f)
			deadline := s.Deadline()
			select {
			case <-s.Done():
			case <-time.After(15 * time.Second):
				t.Fatal("loss not reported")
			}
			lostAt := time.Now()
			assert.ErrorIs(t, s.Err(), session.ErrExpired)
			// Not to be taken for the end of a caller's context, nor for
			// a fault worth retrying: the loss is final.
			assert.NotErrorIs(t, s.Err(), context.DeadlineExceeded)
			assert.NotErrorIs(t, s.Err(), context.Canceled)
			assert.False(t, api.IsRetryable(s.Err()), "%v", s.Err())
			assert.False(t, lostAt.Before(deadline), "reported lost before its deadline")
			assert.WithinDuration(t, deadline, lostAt, 2*time.Second, "reported lost long after its deadline")
		})
	}
}

// A renew answered late (here every request takes 4.5s of a 10s TTL) must
// not push the next renew so close to the deadline that it cannot be
// answered in time: renews are timed from when the last successful one
// was sent. Timed from its answer, the second renew was sent 0.5s before
// the deadline and the session was reported expired at 15s.
func TestSessionSurvivesSlowRenews(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, proxy := a.ProxiedClient(t)

	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	// Renews timed from when the last one was answered fail with any
	// delay over TTL/4 (2.5s). An attempt may take 4s of the 5s left at a
	// renew (a second is kept for another attempt): 3s leaves one second
	// of slack for a loaded machine.
	proxy.SetDelay(3 * time.Second)
	t.Cleanup(func() { proxy.SetDelay(0) }) // runs before Close

	select {
	case <-s.Done():
		t.Fatalf("session lost although every renew was answered within its deadline: %v", s.Err())
	case <-time.After(21 * time.Second): // three renews at least
	}
	require.NoError(t, s.Err())
}

func waitForRenew(t *testing.T, s *session.Session) {
	t.Helper()
	d := s.Deadline()
	require.Eventually(t, func() bool { return s.Deadline().After(d) }, 10*time.Second, 50*time.Millisecond)
}

// fakeSessionAgent is a client for a fake agent that creates session
// id, destroys it, and answers each renew with renew: a TTL to send back
// (Consul's answer), or an error to fail it with (status 500). It returns
// the client and a count of the renews.
func fakeSessionAgent(t *testing.T, id string, renew func() (time.Duration, error)) (*api.Client, *atomic.Int64) {
	t.Helper()
	var renews atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/session/create":
			_, _ = w.Write([]byte(`{"ID":"` + id + `"}`))
		case strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
			renews.Add(1)
			ttl, err := renew()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = w.Write([]byte(`[{"ID":"` + id + `","TTL":"` + ttl.String() + `","LockDelay":0,"Behavior":"release"}]`))
		case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
			_, _ = w.Write([]byte(`true`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = srv.Listener.Addr().String()
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	return c, &renews
}

func TestSessionAdoptsTheTTLConsulAnswers(t *testing.T) {
	tests := []struct {
		name              string
		requested, answer time.Duration
	}{
		{"longer", 10 * time.Second, 30 * time.Second},
		// A shorter TTL must shorten the local deadline: Consul would
		// drop the session on its own TTL.
		{"shorter", 10 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, renews := fakeSessionAgent(t, "adc2e0b4-0000-4000-8000-000000000001", func() (time.Duration, error) { return tt.answer, nil })
			s, err := session.New(t.Context(), c, session.WithTTL(tt.requested))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return renews.Load() > 0 }, 8*time.Second, 20*time.Millisecond)
			require.Eventually(t, func() bool { return s.TTL() == tt.answer }, time.Second, 10*time.Millisecond)
			assert.WithinDuration(t, time.Now().Add(tt.answer), s.Deadline(), 2*time.Second)
			require.NoError(t, s.Close(t.Context()))
		})
	}
}

// TestShorterTTLFromRenewRetimesTheRenewLoop: a shorter TTL in the
// answer to Renew (which lock and semaphore call) moves the deadline
// closer; the renew goroutine must renew by it, not on the schedule of
// the old TTL, which would come after it: a session Consul keeps alive
// would be reported lost.
func TestShorterTTLFromRenewRetimesTheRenewLoop(t *testing.T) {
	t.Parallel()
	c, renews := fakeSessionAgent(t, "adc2e0b4-0000-4000-8000-000000000002", func() (time.Duration, error) { return 5 * time.Second, nil })
	s, err := session.New(t.Context(), c, session.WithTTL(20*time.Second)) // first renew due in 10s
	require.NoError(t, err)
	require.NoError(t, s.Renew(t.Context()))
	require.Equal(t, 5*time.Second, s.TTL())
	firstDeadline := s.Deadline()
	time.Sleep(time.Until(firstDeadline.Add(time.Second)))
	assert.NoError(t, s.Err(), "the session was lost although Consul answers every renew")
	assert.True(t, s.Deadline().After(firstDeadline), "no renew moved the deadline (%d renews)", renews.Load())
	require.NoError(t, s.Close(t.Context()))
}

// TestOutageEndingJustBeforeTheDeadlineIsSurvived: renews fail until a
// quarter of a second before the deadline, then succeed. A retry is sent
// in that last quarter second, and the session survives: a retry timed at
// the deadline itself sends nothing. (Retries a second apart, with jitter,
// missed that window more often than not.)
func TestOutageEndingJustBeforeTheDeadlineIsSurvived(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second
	created := time.Now()
	outageEnds := created.Add(ttl - 250*time.Millisecond) // the deadline comes later
	c, renews := fakeSessionAgent(t, "adc2e0b4-0000-4000-8000-000000000003", func() (time.Duration, error) {
		if time.Now().Before(outageEnds) {
			return 0, errors.New("rpc error: No cluster leader")
		}
		return ttl, nil
	})
	s, err := session.New(t.Context(), c, session.WithTTL(ttl))
	require.NoError(t, err)
	time.Sleep(time.Until(created.Add(ttl + time.Second)))
	assert.NoError(t, s.Err(), "lost after %d renews, although Consul answered in the last quarter second", renews.Load())
	require.NoError(t, s.Close(t.Context()))
}

// TestExpiredAfterRefusalsIsFinal: a session whose renews Consul refused
// (500) until the deadline is lost for good: its error, and so those of
// the locks and elections built on it, is not one to retry (a Run with
// the caller's session would campaign through it for ever).
func TestExpiredAfterRefusalsIsFinal(t *testing.T) {
	t.Parallel()
	c, renews := fakeSessionAgent(t, "adc2e0b4-0000-4000-8000-000000000004", func() (time.Duration, error) {
		return 0, errors.New("rpc error: No cluster leader")
	})
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("not lost after %d refused renews", renews.Load())
	}
	require.ErrorIs(t, s.Err(), session.ErrExpired)
	assert.Contains(t, s.Err().Error(), "No cluster leader", "the last renew's error is named")
	assert.False(t, api.IsRetryable(s.Err()), "%v", s.Err())
	require.NoError(t, s.Close(t.Context()))
}

// holdFirst counts the requests whose path starts with a prefix, and
// holds the first of them until it is cancelled, as on a connection that
// died silently.
type holdFirst struct {
	seen    atomic.Int64 // requests seen with the prefix
	hungFor atomic.Int64 // how long the first was held, in ns
}

// A renew that hangs leaves room before the deadline for another attempt,
// which keeps the session alive.
func TestSessionSurvivesAHungRenew(t *testing.T) {
	t.Parallel()
	c, tr := holdingClient(t, "/v1/session/renew/")
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	first := s.Deadline()

	require.Eventually(t, func() bool { return s.Deadline().After(first) }, 12*time.Second, 50*time.Millisecond,
		"no renew got through after the hung one: %v", s.Err())
	require.NoError(t, s.Err())
	assert.GreaterOrEqual(t, tr.seen.Load(), int64(2))
	assert.Less(t, time.Duration(tr.hungFor.Load()), 5*time.Second, "the hung renew was given the whole deadline")
}

func TestClaimRefusesASecondHolderOfOneKey(t *testing.T) {
	c := integration.Shared(t).Client(t)
	s, err := session.New(t.Context(), c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	release, err := s.Claim("k")
	require.NoError(t, err)
	_, err = s.Claim("k")
	assert.True(t, errors.Is(err, session.ErrClaimed))
	other, err := s.Claim("other")
	require.NoError(t, err)
	other()
	release()
	release() // idempotent
	again, err := s.Claim("k")
	require.NoError(t, err)
	again()
}

// holdingClient returns a client for the shared agent that holds the
// first request whose path starts with prefix.
func holdingClient(t *testing.T, prefix string) (*api.Client, *holdFirst) {
	t.Helper()
	c, ht := integration.Shared(t).HookedClient(t)
	h := &holdFirst{}
	ht.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, prefix) && h.seen.Add(1) == 1 {
			start := time.Now()
			<-r.Context().Done()
			h.hungFor.Store(int64(time.Since(start)))
			return r.Context().Err()
		}
		return nil
	})
	return c, h
}

// A destroy that hangs is sent again on a new connection: Close with a
// context that never ends returns, and the session is gone.
func TestCloseGivesUpAHungDestroy(t *testing.T) {
	t.Parallel()
	c, tr := holdingClient(t, "/v1/session/destroy/")
	s, err := session.New(t.Context(), c)
	require.NoError(t, err)
	err = integration.Within(t, 30*time.Second, "Close still waiting for a destroy that hangs",
		func() error { return s.Close(context.Background()) }, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 2, tr.seen.Load())
	info, _, err := integration.Shared(t).Client(t).Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "the session was not destroyed")
}

// One renew hangs (a connection that died without a reset) and Consul
// answers every other renew in 1.2 s: the hung renew is not waited out
// alone, another goes out beside it in time, and the session is not
// reported lost while Consul still has it.
func TestSessionSurvivesAHungRenewAndASlowConsul(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var n atomic.Int64
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		if n.Add(1) == 1 {
			<-r.Context().Done()
			return r.Context().Err()
		}
		select {
		case <-time.After(1200 * time.Millisecond):
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	})
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	select {
	case <-s.Done():
		t.Fatalf("session reported lost after %d renews while Consul answers in 1.2 s: %v", n.Load(), s.Err())
	case <-time.After(16 * time.Second):
	}
}

// One renew hangs (a connection that died without a reset) while every
// other renew fails for a while (a leader election), then Consul is back
// 3.5 s before the local deadline. The session must survive: a round once
// stopped sending after its fourth attempt and waited out the hung one
// until the deadline, reporting the session expired although Consul would
// have answered any renew in those last seconds.
func TestSessionSurvivesAHungRenewBesideAnOutage(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var n atomic.Int64
	var healthy atomic.Bool
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		if n.Add(1) == 1 {
			<-r.Context().Done()
			return r.Context().Err()
		}
		if !healthy.Load() {
			return errors.New("injected: No cluster leader")
		}
		return nil
	})
	s, err := session.New(t.Context(), c, session.WithTTL(20*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	deadline := s.Deadline()
	select {
	case <-time.After(time.Until(deadline.Add(-3500 * time.Millisecond))):
	case <-s.Done():
		t.Fatalf("lost before the outage ended: %v", s.Err())
	}
	healthy.Store(true)
	select {
	case <-s.Done():
		t.Fatalf("session reported lost although renews went through for the last 3.5 s before its deadline (%d renews): %v", n.Load(), s.Err())
	case <-time.After(time.Until(deadline) + 2*time.Second):
	}
	assert.Greater(t, n.Load(), int64(5), "renews were retried through the outage")
}

// Four renews in a row hang (connections that died without a reset) with
// a TTL long enough for them to fill every slot of a round. The oldest is
// given up once it has waited 10 s, for a fresh attempt that Consul
// answers: a round once sent nothing more until the deadline, hours away
// with a long TTL, and reported the session lost.
func TestSessionSurvivesFourHungRenews(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var n atomic.Int64
	ht.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/session/renew/") && n.Add(1) <= 4 {
			<-r.Context().Done()
			return r.Context().Err()
		}
		return nil
	})
	s, err := session.New(t.Context(), c, session.WithTTL(30*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	first := s.Deadline()
	select {
	case <-s.Done():
		t.Fatalf("lost after %d renews, four of them hung: %v", n.Load(), s.Err())
	case <-time.After(time.Until(first.Add(-time.Second))):
	}
	assert.True(t, s.Deadline().After(first), "no renew got through by a second before the deadline (%d renews)", n.Load())
	assert.Equal(t, int64(5), n.Load(), "renews sent")
}

func TestQueryOptionsForMatchesTheWriteOptions(t *testing.T) {
	w := api.WriteOptions{Datacenter: "dc2", Token: "t", Namespace: "ns", Partition: "p"}
	q := session.QueryOptionsFor(session.WithName("x"), session.WithWriteOptions(w), session.WithTTL(time.Second))
	assert.Equal(t, &api.QueryOptions{Datacenter: "dc2", Token: "t", Namespace: "ns", Partition: "p"}, q)
	assert.Equal(t, &api.QueryOptions{}, session.QueryOptionsFor())
}

// Consul (or the path to it) answers every renew, but each takes 12 s.
// The round's first renew, sent 15 s before the deadline, is answered 3 s
// before it: the session must not be reported lost while Consul renews
// it. (Attempts that had waited 10 s were once cancelled for fresh ones,
// each just before its answer came.)
func TestSessionSurvivesRenewsAnsweredIn12s(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var sent, reached atomic.Int64
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		sent.Add(1)
		select {
		case <-time.After(12 * time.Second):
			reached.Add(1)
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	})
	s, err := session.New(t.Context(), c, session.WithTTL(30*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() {
		ht.Set(nil)
		_ = s.Close(context.Background())
	})
	first := s.Deadline()
	select {
	case <-s.Done():
		t.Fatalf("session reported lost (%v) while Consul answers every renew in 12 s: %d renews sent, %d let through",
			s.Err(), sent.Load(), reached.Load())
	case <-time.After(time.Until(first.Add(2 * time.Second))):
	}
	assert.True(t, s.Deadline().After(first), "no renew got through")
}
