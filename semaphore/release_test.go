package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// TestReleaseOfLostSlot: a slot lost before Release, while the watcher
// has not seen it, is reported lost by Release, and what is left of it is
// cleaned up.
func TestReleaseOfLostSlot(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, c *api.Client, prefix, sid string)
	}{
		{"contender key deleted", deleteContender},
		{"contender key released", releaseContender},
		{"session destroyed", func(t *testing.T, c *api.Client, prefix, sid string) {
			_, err := c.Session().Destroy(t.Context(), sid, nil)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain := newClient(t)
			c, ht := integration.Shared(t).HookedClient(t)
			prefix := semPrefix(t)
			sess := integration.NewSession(t, plain)
			s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
			require.NoError(t, err)
			ht.Set(integration.HangBlocking)
			_, err = s.Acquire(t.Context())
			require.NoError(t, err)

			tt.break_(t, plain, prefix, sess.ID())
			err = s.Release(t.Context())
			require.ErrorIs(t, err, semaphore.ErrLost)

			pair, _, err := plain.KV().Get(t.Context(), prefix+"/"+sess.ID(), nil)
			require.NoError(t, err)
			assert.Nil(t, pair, "contender key left behind")
			if _, st := readLock(t, plain, prefix); st != nil {
				assert.NotContains(t, st.Holders, sess.ID())
			}
		})
	}
}

// TestHeldEndsBeforeReleaseSent: the held context is cancelled, with
// ErrReleased, before the release reaches Consul: another process can
// take the slot only once this one's held context has ended.
func TestHeldEndsBeforeReleaseSent(t *testing.T) {
	c, ht := integration.Shared(t).HookedClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, newClient(t))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	for _, watchFirst := range []bool{false, true} {
		var watched atomic.Bool
		ht.Set(func(r *http.Request) error {
			if integration.IsBlocking(r) {
				watched.Store(true)
			}
			return nil
		})
		held, err := s.Acquire(t.Context())
		require.NoError(t, err)
		if watchFirst {
			// The watcher's query is parked: the release wakes it.
			require.Eventually(t, watched.Load, 5*time.Second, time.Millisecond)
			time.Sleep(20 * time.Millisecond)
		}
		var txns, live atomic.Int32
		ht.Set(func(r *http.Request) error {
			if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/txn") {
				txns.Add(1)
				if held.Err() == nil {
					live.Add(1)
				}
			}
			return nil
		})
		require.NoError(t, s.Release(t.Context()))
		ht.Set(nil)
		assert.NotZero(t, txns.Load(), "no release transaction seen")
		assert.Zero(t, live.Load(), "release sent while the held context was live")
		assert.ErrorIs(t, context.Cause(held), semaphore.ErrReleased)
	}
	assert.Empty(t, leftover(t, c, prefix))
}

// TestAcquireWhileReleasing: an Acquire woken by the end of the held
// context while the release is still in flight waits for it, then
// acquires.
func TestAcquireWhileReleasing(t *testing.T) {
	c, ht := integration.Shared(t).HookedClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, newClient(t))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	held, err := s.Acquire(t.Context())
	require.NoError(t, err)

	gate := make(chan struct{})
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/txn") {
			select {
			case <-gate:
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
		return nil
	})
	released := make(chan error, 1)
	go func() { released <- s.Release(t.Context()) }()
	integration.WaitDone(t, held, 5*time.Second)
	acquired := make(chan error, 1)
	var again context.Context
	go func() {
		var err error
		again, err = s.Acquire(t.Context())
		acquired <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ht.Set(nil)
	close(gate)
	require.NoError(t, <-released)
	require.NoError(t, <-acquired)
	require.NoError(t, again.Err())
	require.NoError(t, s.Release(t.Context()))
	assert.Empty(t, leftover(t, c, prefix))
}

// TestFailedReleaseWithSession: a Release that cannot reach Consul before
// its ctx ends says that the slot may stay held until the session ends;
// the next Acquire, once Consul answers again, acquires afresh.
func TestFailedReleaseWithSession(t *testing.T) {
	s, sess, c, proxy, plain, prefix := proxiedSemaphore(t)

	held, err := s.Acquire(t.Context())
	require.NoError(t, err)
	proxy.Set(integration.ServerError)
	sent := proxy.Requests()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	err = s.Release(ctx)
	require.Error(t, err)
	assert.NotErrorIs(t, err, semaphore.ErrLost)
	assert.ErrorContains(t, err, "may stay held until session "+sess.ID()+" ends")
	assert.Greater(t, proxy.Requests(), sent+1, "the release was not retried")
	integration.WaitDone(t, held, time.Second)
	holders, err := semaphore.New(plain, prefix, 1)
	require.NoError(t, err)
	hs, err := holders.Holders(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sess.ID()}, hs, "the slot is still held")

	// The failed Release gave up the Semaphore's claim on the contender
	// key: another Semaphore on the session may take the slot over.
	proxy.Set(integration.Pass)
	s2, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess), semaphore.WithValue([]byte("second")))
	require.NoError(t, err)
	held, err = s2.Acquire(t.Context())
	require.NoError(t, err)
	pair, _, err := plain.KV().Get(t.Context(), prefix+"/"+sess.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, "second", string(pair.Value), "acquired without a write")
	require.NoError(t, s2.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
	assert.Empty(t, leftover(t, plain, prefix))
}

// TestReleaseStopsWhenSessionEnds: a Release retrying through errors
// stops when the session ends (which frees the slot by itself) and
// reports the slot lost.
func TestReleaseStopsWhenSessionEnds(t *testing.T) {
	s, sess, _, proxy, plain, prefix := proxiedSemaphore(t)

	_, err := s.Acquire(t.Context())
	require.NoError(t, err)
	proxy.Set(integration.ServerError)
	released := make(chan error, 1)
	go func() { released <- s.Release(t.Context()) }()
	require.Eventually(t, func() bool { return proxy.Requests() >= 4 }, 5*time.Second, time.Millisecond)
	require.NoError(t, sess.Close(t.Context()))
	proxy.Set(integration.Pass)
	select {
	case err := <-released:
		assert.ErrorIs(t, err, semaphore.ErrLost)
		assert.ErrorIs(t, err, session.ErrClosed)
	case <-time.After(20 * time.Second):
		t.Fatal("Release still retrying after the session ended")
	}
	assert.Empty(t, leftover(t, plain, prefix), "what was left of the slot is cleaned up")
}

// TestAcquireRewritesLeftover: a slot that the prefix shows this session
// holding, left by an earlier failed release, is not taken as acquired
// as is: the acquisition writes it afresh, with this Semaphore's value,
// pruning dead holders as any acquisition does.
//
// "after an attempt with no answer": the first transaction of the
// acquisition fails without reaching Consul. The slot found held next is
// still the leftover, not that attempt's, so it is written afresh all the
// same: it was once adopted as is.
func TestAcquireRewritesLeftover(t *testing.T) {
	for _, mode := range []string{"Acquire", "TryAcquire", "after an attempt with no answer"} {
		try := mode == "TryAcquire"
		t.Run(mode, func(t *testing.T) {
			c, ht := integration.Shared(t).HookedClient(t)
			if mode == "after an attempt with no answer" {
				var failed atomic.Bool
				ht.Set(func(r *http.Request) error {
					if r.URL.Path == "/v1/txn" && failed.CompareAndSwap(false, true) {
						return errors.New("injected: connection reset")
					}
					return nil
				})
			}
			prefix := semPrefix(t)
			sess := integration.NewSession(t, c)
			ok, _, err := c.KV().Acquire(t.Context(), &api.KVPair{Key: prefix + "/" + sess.ID(), Flags: semaphore.Flag,
				Session: sess.ID(), Value: []byte("old")}, nil)
			require.NoError(t, err)
			require.True(t, ok)
			_, err = c.KV().Put(t.Context(), &api.KVPair{Key: prefix + "/.lock", Flags: semaphore.Flag,
				Value: []byte(`{"Limit":1,"Holders":{"` + sess.ID() + `":true,"0b1d7a57-0000-4000-8000-000000000003":true}}`)}, nil)
			require.NoError(t, err)
			before, _ := readLock(t, c, prefix)

			s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess), semaphore.WithValue([]byte("new")))
			require.NoError(t, err)
			acquire := s.Acquire
			if try {
				acquire = s.TryAcquire
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			held, err := acquire(ctx)
			require.NoError(t, err)
			after, st := readLock(t, c, prefix)
			assert.Greater(t, after.ModifyIndex, before.ModifyIndex, "acquired without a write")
			assert.Equal(t, map[string]bool{sess.ID(): true}, st.Holders)
			pair, _, err := c.KV().Get(t.Context(), prefix+"/"+sess.ID(), nil)
			require.NoError(t, err)
			require.NotNil(t, pair)
			assert.Equal(t, "new", string(pair.Value))
			assert.Equal(t, sess.ID(), pair.Session)

			require.NoError(t, s.Release(t.Context()))
			integration.WaitDone(t, held, time.Second)
			assert.NotErrorIs(t, context.Cause(held), semaphore.ErrLost)
			assert.Empty(t, leftover(t, c, prefix))
		})
	}
}

// Release deferred with a ctx that a shutdown has cancelled still frees
// the slot.
func TestReleaseWithEndedContextStillReleases(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	_, err = s.Acquire(ctx)
	require.NoError(t, err)
	cancel()
	require.NoError(t, s.Release(ctx))
	assert.Empty(t, leftover(t, c, prefix), "the slot and the coordination key are gone")
}

// TestDoReleasesWhenFnPanics: a panic in fn still releases the slot and
// destroys Do's own session.
func TestDoReleasesWhenFnPanics(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	var holders []string
	func() {
		defer func() { assert.Equal(t, "boom", recover()) }()
		_ = semaphore.Do(t.Context(), c, prefix, 2, func(ctx context.Context) error {
			s, err := semaphore.New(c, prefix, 2)
			require.NoError(t, err)
			holders, err = s.Holders(ctx)
			require.NoError(t, err)
			panic("boom")
		})
	}()
	require.Len(t, holders, 1)
	assert.Empty(t, leftover(t, c, prefix), "the slot is still held after the panic")
	info, _, err := c.Session().Info(t.Context(), holders[0], nil)
	require.NoError(t, err)
	assert.Nil(t, info, "Do's session outlived the panic")
}

// TestAcquireStopsWhenSessionEndsDuringBackoff: an Acquire retrying
// transient errors returns as soon as its session ends, not after the
// pause it was in.
func TestAcquireStopsWhenSessionEndsDuringBackoff(t *testing.T) {
	plain := newClient(t)
	c, ht := integration.Shared(t).HookedClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, plain)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	var failed atomic.Int32
	ht.Set(func(*http.Request) error {
		failed.Add(1)
		return syscall.ECONNRESET
	})
	done := make(chan error, 1)
	go func() {
		_, err := s.Acquire(context.Background())
		done <- err
	}()
	// Pauses double from 200ms up to 5s: by the fifth failure the next
	// pause is over a second long.
	require.Eventually(t, func() bool { return failed.Load() >= 5 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, sess.Close(t.Context()))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, session.ErrClosed)
	case <-time.After(time.Second):
		t.Fatal("Acquire still pausing after its session ended")
	}
}

// TestDoReportsALossCleanedUpBeforeFnReturned: Do reports a slot lost
// while fn ran, even when fn returns after the cleanup of the loss.
func TestDoReportsALossCleanedUpBeforeFnReturned(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	err := semaphore.Do(t.Context(), c, prefix, 2, func(held context.Context) error {
		holders, err := func() ([]string, error) {
			s, err := semaphore.New(c, prefix, 2)
			if err != nil {
				return nil, err
			}
			return s.Holders(held)
		}()
		if err != nil || len(holders) != 1 {
			return fmt.Errorf("holders %v: %v", holders, err)
		}
		deleteContender(t, c, prefix, holders[0])
		<-held.Done()
		time.Sleep(500 * time.Millisecond) // rolling back, while the cleanup ends
		return nil
	})
	assert.ErrorIs(t, err, semaphore.ErrLost)
	assert.ErrorIs(t, err, semaphore.ErrNotHeld)
	assert.Empty(t, leftover(t, c, prefix))
}

// TestLossReportedOnceWhenItsCleanupOutlastsRelease: a Release whose ctx
// ends while the watcher still cleans up after a loss reports the loss,
// and says the cleanup goes on; once the cleanup is over, the next
// Release must not report the loss again (the watcher kept it to report).
func TestLossReportedOnceWhenItsCleanupOutlastsRelease(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, direct, session.WithLockDelay(0))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	held, err := s.Acquire(t.Context())
	require.NoError(t, err)

	cleanupHung := make(chan struct{})
	var once atomic.Bool
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodPut && r.URL.Path == "/v1/txn" {
			<-r.Context().Done() // the cleanup's transaction, until it gives up
			if once.CompareAndSwap(false, true) {
				close(cleanupHung)
			}
			return r.Context().Err()
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	_, err = direct.KV().Delete(t.Context(), prefix+"/"+sess.ID(), nil) // the slot is lost
	require.NoError(t, err)
	integration.WaitDone(t, held, 5*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = s.Release(ctx)
	require.ErrorIs(t, err, semaphore.ErrLost)
	assert.Contains(t, err.Error(), "still under way")

	select {
	case <-cleanupHung:
	case <-time.After(20 * time.Second):
		t.Fatal("the cleanup's transaction was not given up")
	}
	ht.Set(nil)
	time.Sleep(500 * time.Millisecond) // the watcher ends its cleanup
	assert.Equal(t, semaphore.ErrNotHeld, s.Release(t.Context()), "the loss was reported twice")
}
