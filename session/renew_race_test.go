package session_test

import (
	"context"
	"errors"
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

// renewTag marks a Renew's ctx, so that a hook tells its request apart
// from the renew goroutine's.
type renewTag struct{}

func tagged(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, renewTag{}, v)
}

func tagOf(r *http.Request) string {
	v, _ := r.Context().Value(renewTag{}).(string)
	return v
}

// Two overlapping Renews: the one sent first is answered last. The
// deadline is the later send time plus the TTL, not the earlier.
func TestOverlappingRenewsKeepTheLastSent(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	release := make(chan struct{})
	ht.Set(func(r *http.Request) error {
		if tagOf(r) == "first" {
			select {
			case <-release:
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
		return nil
	})
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	firstDone := make(chan error, 1)
	go func() { firstDone <- s.Renew(tagged(t.Context(), "first")) }()
	time.Sleep(300 * time.Millisecond) // the first is sent (and held) before the second
	before := time.Now()
	require.NoError(t, s.Renew(tagged(t.Context(), "second")))
	close(release)
	require.NoError(t, <-firstDone)
	assert.False(t, s.Deadline().Before(before.Add(time.Hour)),
		"the deadline went back to the renew sent first: %v < %v", s.Deadline(), before.Add(time.Hour))
}

// A Renew whose 404 comes from Close's own destroy leaves Err ErrClosed:
// the Renew is answered after the destroy is applied, before Close
// returns.
func TestRenewAnsweredAfterCloseKeepsErrClosed(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	plain := integration.Shared(t).Client(t)
	release := make(chan struct{})
	renewed := make(chan error, 1)
	var sid atomic.Value
	ht.Set(func(r *http.Request) error {
		switch {
		case tagOf(r) == "held":
			<-release
		case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
			// Close's destroy is applied (sent here on another client),
			// and the held Renew answered, before Close goes on.
			if _, err := plain.Session().Destroy(context.Background(), sid.Load().(string), nil); err != nil {
				return err
			}
			close(release)
			<-renewed
		}
		return nil
	})
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	sid.Store(s.ID())

	got := make(chan error, 1)
	go func() {
		err := s.Renew(tagged(t.Context(), "held"))
		renewed <- err
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, s.Close(t.Context()))
	err = <-got
	assert.ErrorIs(t, err, session.ErrClosed)
	assert.ErrorIs(t, s.Err(), session.ErrClosed)
	assert.NotErrorIs(t, s.Err(), session.ErrInvalidated)
}

// A session Renew found gone is no longer renewed by its goroutine: it has
// exited, and no renew is sent at TTL/2.
func TestRenewLossEndsTheRenewGoroutine(t *testing.T) {
	t.Parallel()
	c, count := countingSessionClient(t)
	plain := integration.Shared(t).Client(t)
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	_, err = plain.Session().Destroy(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	require.ErrorIs(t, s.Renew(t.Context()), session.ErrInvalidated)
	time.Sleep(7 * time.Second) // past the scheduled renew at TTL/2
	assert.Equal(t, int64(1), count("renew"), "the renew goroutine went on renewing a lost session")
}

// A Renew that is answered after the session was reported lost (here
// expired: the renew goroutine's renews all failed until the deadline)
// does not report success: the session is lost, Err says so, and Renew
// must not say otherwise.
func TestRenewAnsweredAfterExpiryReportsTheLoss(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	var lost atomic.Pointer[session.Session]
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		if tagOf(r) == "late" {
			// Held until the session is reported lost, then sent: Consul
			// still has the session (it drops it after twice the TTL).
			select {
			case <-lost.Load().Done():
				return nil
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
		return errors.New("renew goroutine's renew refused by the test")
	})
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	lost.Store(s)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	// Sent 2 s before the deadline, answered after it.
	time.Sleep(time.Until(s.Deadline().Add(-2 * time.Second)))
	err = s.Renew(tagged(t.Context(), "late"))
	require.ErrorIs(t, s.Err(), session.ErrExpired)
	assert.ErrorIs(t, err, session.ErrExpired, "Renew reported success on a session already reported lost")
	assert.False(t, s.Deadline().After(time.Now()), "Deadline moved past now on a lost session")
}

// A Renew in flight when the session is closed, whose request then fails
// (here the connection is reset): the session was closed before the
// answer came, so Renew returns Err, not a transport error that reads as
// a transient failure of a live session.
func TestRenewFailingAfterCloseReturnsErr(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	closed, sent := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ht.Set(func(r *http.Request) error {
		if tagOf(r) == "held" {
			once.Do(func() { close(sent) })
			select {
			case <-closed:
				return errors.New("connection reset by the test")
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
		return nil
	})
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Renew(tagged(t.Context(), "held")) }()
	<-sent // the Renew is sent (and held): Close comes after it
	require.NoError(t, s.Close(t.Context()))
	close(closed)
	err = <-done
	assert.ErrorIs(t, err, session.ErrClosed, "a failure answered after Close: %v", err)
}
