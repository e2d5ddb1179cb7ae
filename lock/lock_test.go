package lock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

func TestMain(m *testing.M) { integration.Main(m) }

func key(t *testing.T) string { return "locktest/" + t.Name() }

func TestNewValidatesBeforeSending(t *testing.T) {
	c := integration.Shared(t).Client(t)
	tests := []struct {
		name string
		key  string
		opts []lock.Option
	}{
		{"empty key", "", nil},
		{"leading slash", "/a", nil},
		{"control character", "a\nb", nil},
		{"value too large", "a", []lock.Option{lock.WithValue(make([]byte, api.MaxValueSize+1))}},
		// Under 512 KiB, but base64-encoded in the acquisition it makes
		// a transaction larger than Consul takes.
		{"value too large for a transaction", "a", []lock.Option{lock.WithValue(make([]byte, 400<<10))}},
		{"nil session", "a", []lock.Option{lock.WithSession(nil)}},
		{"zero session", "a", []lock.Option{lock.WithSession(&session.Session{})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := lock.New(c, tt.key, tt.opts...)
			assert.Nil(t, l)
			assert.ErrorIs(t, err, api.ErrInvalid)
		})
	}
}

// TestLargeValueLocks: a value just under the transaction's limit, which
// New accepts, is locked with and stored whole.
func TestLargeValueLocks(t *testing.T) {
	c := integration.Shared(t).Client(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	v := bytes.Repeat([]byte{'v'}, 380<<10)
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithValue(v))
	require.NoError(t, err)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)
	pair, _, err := c.KV().Get(t.Context(), key(t), nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, v, pair.Value)
	require.NoError(t, l.Unlock(t.Context()))
}

func TestLockUnlockAndErrors(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithValue([]byte("me")))
	require.NoError(t, err)

	assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)
	assert.True(t, l.Token().IsZero())

	held, err := l.Lock(ctx)
	require.NoError(t, err)
	tok := l.Token()
	assert.Equal(t, key(t), tok.Key)
	assert.Equal(t, s.ID(), tok.Session)
	assert.NotZero(t, tok.ModifyIndex)

	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Equal(t, lock.Flag, pair.Flags)
	assert.Equal(t, s.ID(), pair.Session)
	assert.Equal(t, []byte("me"), pair.Value)

	_, err = l.Lock(ctx)
	assert.ErrorIs(t, err, lock.ErrHeld)
	other, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	_, err = other.TryLock(ctx)
	assert.ErrorIs(t, err, session.ErrClaimed, "two Locks on one key must not share a session")

	require.NoError(t, l.Unlock(ctx))
	<-held.Done()
	assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
	assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)
	pair, _, err = c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session)
}

func TestTryLockOnHeldKeyAndCancelWhileWaiting(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	a, err := lock.New(c, key(t), lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	bName := "own-" + t.Name()
	b, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithLockDelay(0), session.WithName(bName)))
	require.NoError(t, err)

	_, err = a.Lock(ctx)
	require.NoError(t, err)
	_, err = b.TryLock(ctx)
	assert.ErrorIs(t, err, lock.ErrLocked)

	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	held, err := b.Lock(wctx)
	cancel()
	assert.Nil(t, held)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, b.Token().IsZero())
	assert.ErrorIs(t, b.Unlock(ctx), lock.ErrNotHeld)

	// b's own sessions were destroyed: nothing of it is left.
	sessions, _, err := c.Session().List(ctx, nil)
	require.NoError(t, err)
	for _, se := range sessions {
		assert.NotEqual(t, bName, se.Name, "a session of the failed Lock was left behind")
	}
	require.NoError(t, a.Unlock(ctx))
}

func TestMutualExclusionUnderContention(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	const workers, rounds = 6, 8
	var (
		inside    atomic.Int32
		mu        sync.Mutex
		lastToken lock.Token
		tokens    int
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := session.New(ctx, c, session.WithLockDelay(0), session.WithName(fmt.Sprintf("worker-%d", w)))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close(context.Background())
			l, err := lock.New(c, key(t), lock.WithSession(s))
			if err != nil {
				errs <- err
				return
			}
			for range rounds {
				held, err := l.Lock(ctx)
				if err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- fmt.Errorf("%d holders at once", n)
				}
				tok := l.Token()
				mu.Lock()
				if !tok.Newer(lastToken) {
					errs <- fmt.Errorf("token %+v not newer than %+v", tok, lastToken)
				}
				lastToken = tok
				tokens++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				if held.Err() != nil {
					errs <- fmt.Errorf("lost while holding: %v", context.Cause(held))
				}
				inside.Add(-1)
				if err := l.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, workers*rounds, tokens)
}

func TestLostWhenSessionDestroyedOrKeyDeleted(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	tests := []struct {
		name    string
		breakIt func(k string, s *session.Session) error
		relock  bool   // the session survives: the Lock can lock again
		cause   string // what the cause says
	}{
		{"session destroyed", func(_ string, s *session.Session) error {
			_, err := c.Session().Destroy(ctx, s.ID(), nil)
			return err
		}, false, "invalidat"}, // the released key, or the session's own loss, says so
		{"key deleted", func(k string, _ *session.Session) error {
			_, err := c.KV().Delete(ctx, k, nil)
			return err
		}, true, "key deleted"},
		{"key released by someone else", func(k string, s *session.Session) error {
			_, _, err := c.KV().Release(ctx, &api.KVPair{Key: k, Session: s.ID(), Flags: lock.Flag}, nil)
			return err
		}, true, "key released"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := integration.NewSession(t, c, session.WithLockDelay(0))
			l, err := lock.New(c, key(t), lock.WithSession(s))
			require.NoError(t, err)
			held, err := l.Lock(ctx)
			require.NoError(t, err)

			require.NoError(t, tt.breakIt(key(t), s))
			select {
			case <-held.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("loss not reported")
			}
			assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
			assert.Contains(t, context.Cause(held).Error(), tt.cause)
			assert.True(t, l.Token().IsZero())
			assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)

			if tt.relock {
				// A lost Lock can lock again.
				_, err = l.Lock(ctx)
				require.NoError(t, err)
				require.NoError(t, l.Unlock(ctx))
			}
		})
	}
}

func TestConflictWithNonLockKey(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	_, err := c.KV().Put(ctx, &api.KVPair{Key: key(t), Value: []byte("data"), Flags: 0xe0f69a2baa414de0}, nil)
	require.NoError(t, err)
	l, err := lock.New(c, key(t), lock.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	_, err = l.Lock(ctx)
	assert.ErrorIs(t, err, lock.ErrConflict)
	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Equal(t, []byte("data"), pair.Value, "a foreign key must not be overwritten")
	assert.Equal(t, uint64(0xe0f69a2baa414de0), pair.Flags)
	assert.Empty(t, pair.Session)
}

func TestReusedSessionCycleCostsThreeRequests(t *testing.T) {
	c, ct := integration.Shared(t).CountingClient(t)
	ctx := t.Context()
	// The session renews through a client of its own: its renewals are
	// not the lock's requests.
	s := integration.NewSession(t, integration.Shared(t).Client(t), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	// Prime: the first acquisition of a Lock reads the key first.
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))

	for range 5 {
		before := ct.Count()
		_, err = l.Lock(ctx)
		require.NoError(t, err)
		require.NoError(t, l.Unlock(ctx))
		assert.LessOrEqual(t, ct.Count()-before, int64(3), "requests per lock+unlock cycle: %v", ct.Requests())
	}
}

// TestHeldCycleKeepsConnections: a lock held long enough for its watch to
// be in flight costs three requests per cycle, and Unlock lets the watch
// end by itself instead of cancelling it (which would make net/http close
// the connection and open a new one on the next cycle).
func TestHeldCycleKeepsConnections(t *testing.T) {
	a := integration.Shared(t)
	c, ct := a.CountingClient(t)
	ctx := t.Context()
	// The session renews through another client, so that only the lock's
	// requests are counted.
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	cycle := func() int64 {
		before := ct.Count()
		_, err := l.Lock(ctx)
		require.NoError(t, err)
		// Hold until the watch query has been sent and is parked.
		require.Eventually(t, func() bool { return ct.Count()-before >= 2 }, 5*time.Second, time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, l.Unlock(ctx))
		return ct.Count() - before
	}
	// Warm up: the first acquisition reads the key first, and the pool
	// gets its connections.
	cycle()
	cycle()
	dials := ct.Dials()
	for range 5 {
		assert.Equal(t, int64(3), cycle(), "requests per held cycle: %v", ct.Requests())
	}
	assert.Equal(t, dials, ct.Dials(), "connections opened by held cycles")
}

// TestConcurrentUnlock: of two Unlock calls at once, one releases and the
// other gets ErrNotHeld, not a report of a lost lock.
func TestConcurrentUnlock(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	l, err := lock.New(c, key(t), lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	for range 10 {
		held, err := l.Lock(ctx)
		require.NoError(t, err)
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- l.Unlock(ctx) }()
		}
		e1, e2 := <-errs, <-errs
		if e1 != nil {
			e1, e2 = e2, e1
		}
		require.NoError(t, e1)
		require.ErrorIs(t, e2, lock.ErrNotHeld)
		assert.NotErrorIs(t, e2, lock.ErrLost)
		assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
	}
	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session)
}

func TestLockDelayIsWaitedOutPrecisely(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	for _, delay := range []time.Duration{0, 3 * time.Second} {
		t.Run(delay.String(), func(t *testing.T) {
			holderSess, err := session.New(ctx, c, session.WithLockDelay(delay))
			require.NoError(t, err)
			t.Cleanup(func() { _ = holderSess.Close(context.Background()) })
			holder, err := lock.New(c, key(t), lock.WithSession(holderSess))
			require.NoError(t, err)
			_, err = holder.Lock(ctx)
			require.NoError(t, err)

			wc, counter := integration.Shared(t).CountingClient(t)
			waiter, err := lock.New(wc, key(t), lock.WithSession(integration.NewSession(t, c)))
			require.NoError(t, err)
			got := make(chan time.Time, 1)
			go func() {
				if _, err := waiter.Lock(ctx); err == nil {
					got <- time.Now()
				}
				close(got)
			}()
			// The waiter is parked on the key: it has sent its blocking
			// query (and so has seen the holder).
			require.Eventually(t, func() bool {
				for _, r := range counter.Requests() {
					if strings.HasPrefix(r, "GET ") && strings.Contains(r, "index=") {
						return true
					}
				}
				return false
			}, 10*time.Second, 5*time.Millisecond, "the waiter did not park: %v", counter.Requests())
			time.Sleep(50 * time.Millisecond) // its query reaches Consul

			// Invalidate the holder's session: the key is released with a
			// lock-delay.
			// Consul starts the delay when it applies the destroy, which is
			// after the request is sent and before it is answered: the
			// lower bound counts from the send, the upper from the answer.
			sent := time.Now()
			_, err = c.Session().Destroy(ctx, holderSess.ID(), nil)
			require.NoError(t, err)
			answered := time.Now()
			at, ok := <-got
			require.True(t, ok, "waiter failed")
			t.Logf("lock delay %s: acquired %s after the destroy was sent, %s after it was answered", delay, at.Sub(sent), at.Sub(answered))
			assert.GreaterOrEqual(t, at.Sub(sent), delay)
			assert.LessOrEqual(t, at.Sub(answered), delay+time.Second)
			require.NoError(t, waiter.Unlock(ctx))
		})
	}
}

// TestLockDelayOfAHolderNotSeen: the waiter saw a holder with a long
// lock-delay and parked; before its blocking read was answered, that
// holder released the key (no delay), and another session with a short
// delay took it and lost it. The read shows only a free key. The waiter
// must not wait out the first holder's delay, which is not in force: it
// gets the key within the second one's delay plus a second.
func TestLockDelayOfAHolderNotSeen(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	k := key(t)
	const shortDelay = 2 * time.Second

	first := integration.NewSession(t, c, session.WithLockDelay(30*time.Second))
	ok, _, err := c.KV().Acquire(ctx, &api.KVPair{Key: k, Flags: lock.Flag, Session: first.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)

	// The waiter's blocking reads wait at the gate until it opens.
	wc, ht := a.HookedClient(t)
	parked := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	ht.Set(func(r *http.Request) error {
		if !integration.IsBlocking(r) {
			return nil
		}
		once.Do(func() { close(parked) })
		select {
		case <-gate:
			return nil
		case <-r.Context().Done():
			return r.Context().Err()
		}
	})
	waiter, err := lock.New(wc, k, lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	got := make(chan time.Time, 1)
	t.Cleanup(func() {
		for range got { // the Lock ends with the test's context
		}
	})
	go func() {
		defer close(got)
		if _, err := waiter.Lock(ctx); err != nil {
			t.Logf("waiter: %v", err)
			return
		}
		got <- time.Now()
	}()
	select {
	case <-parked:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not park on the key")
	}

	ok, _, err = c.KV().Release(ctx, &api.KVPair{Key: k, Flags: lock.Flag, Session: first.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	second, err := session.New(ctx, c, session.WithLockDelay(shortDelay))
	require.NoError(t, err)
	ok, _, err = c.KV().Acquire(ctx, &api.KVPair{Key: k, Flags: lock.Flag, Session: second.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	sent := time.Now()
	_, err = c.Session().Destroy(ctx, second.ID(), nil)
	require.NoError(t, err)
	answered := time.Now()
	_ = second.Close(ctx) // already destroyed: stops its renew loop
	close(gate)

	select {
	case at, ok := <-got:
		require.True(t, ok, "the waiter failed")
		t.Logf("acquired %s after the destroy was sent", at.Sub(sent))
		assert.GreaterOrEqual(t, at.Sub(sent), shortDelay)
		require.NoError(t, waiter.Unlock(ctx))
	case <-time.After(time.Until(answered.Add(shortDelay + time.Second))):
		t.Fatalf("no lock %s after the destroy: the waiter waits out a lock-delay not in force", shortDelay+time.Second)
	}
}

func TestLockSurvivesShortFaultsAndIsLostAfterLongOnes(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, proxy := a.ProxiedClient(t)
	ctx := t.Context()
	s, err := session.New(ctx, c, session.WithTTL(10*time.Second), session.WithLockDelay(0))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = a.Client(t).Session().Destroy(context.Background(), s.ID(), nil) })
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	t.Cleanup(func() { proxy.Set(integration.Pass) }) // runs first

	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	for _, f := range []integration.Fault{integration.ServerError, integration.NoLeader, integration.Hang} {
		// Each fault starts right after a successful renew and lasts 4s,
		// well inside the session's deadline (10s after that renew). The
		// watch query and the renewals both fail during it.
		d := s.Deadline()
		require.Eventually(t, func() bool { return s.Deadline().After(d) }, 15*time.Second, 20*time.Millisecond, "no renew")
		proxy.Set(f)
		time.Sleep(4 * time.Second)
		proxy.Set(integration.Pass)
		require.NoError(t, held.Err(), "lost during a short fault")
	}
	require.NoError(t, held.Err())

	proxy.Set(integration.ServerError)
	select {
	case <-held.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("loss not reported after a long fault")
	}
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
	assert.ErrorIs(t, context.Cause(held), session.ErrExpired)
	proxy.Set(integration.Pass)
}

// TestExpiredHoldIsLetGo: renews fail until the session's local deadline
// (reads still work): the lock is reported lost there, while Consul keeps
// the session, and the key, for up to one more TTL. The Lock lets the key
// go at once, so that the next holder need not wait for Consul to drop
// the session and its lock-delay.
func TestExpiredHoldIsLetGo(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	k := key(t)
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(15*time.Second))
	l, err := lock.New(c, k, lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	ht.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return errors.New("injected: renew refused")
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	select {
	case <-held.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("loss not reported at the session's deadline")
	}
	require.ErrorIs(t, context.Cause(held), session.ErrExpired)
	info, _, err := direct.Session().Info(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, info, "Consul dropped the session already: this test needs it kept")

	require.ErrorIs(t, l.Unlock(ctx), lock.ErrLost)
	pair, _, err := direct.KV().Get(ctx, k, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "the key is still held by a session reported lost")
	other, err := lock.New(direct, k, lock.WithSession(integration.NewSession(t, direct)))
	require.NoError(t, err)
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = other.Lock(tctx)
	require.NoError(t, err, "the next holder waits")
	require.NoError(t, other.Unlock(ctx))
}

func TestLockSurvivesLeaderLossInCluster(t *testing.T) {
	cl := integration.NewCluster(t, 3)
	ctx := t.Context()
	leader, err := cl.Leader(ctx)
	require.NoError(t, err)
	follower := (leader + 1) % 3
	c := cl.Client(t, follower)
	s := integration.NewSession(t, c, session.WithTTL(15*time.Second), session.WithLockDelay(0))
	l, err := lock.New(c, "cluster/job", lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	tok := l.Token()

	require.NoError(t, cl.Stop(ctx, leader))
	_, err = cl.WaitLeader(ctx, follower, (leader+2)%3)
	require.NoError(t, err)
	// A renew goes through the new leader, and Consul still sees the key
	// held by the session: a guarded write applies.
	d0 := s.Deadline()
	require.Eventually(t, func() bool { return s.Deadline().After(d0) }, 20*time.Second, 50*time.Millisecond, "no renew after the election")
	require.NoError(t, l.GuardedPut(ctx, &api.KVPair{Key: "cluster/fenced", Value: []byte("x")}))
	require.NoError(t, held.Err(), "the lock must survive a leader election shorter than the session TTL")
	assert.Equal(t, tok, l.Token())
	require.NoError(t, l.Unlock(ctx))

	// And the next holder gets a newer token.
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	assert.True(t, l.Token().Newer(tok))
	require.NoError(t, l.Unlock(ctx))
}

func TestRestartedDevAgentLosesTheLock(t *testing.T) {
	a := integration.NewAgent(t)
	c := a.Client(t)
	ctx := t.Context()
	s, err := session.New(ctx, c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	// A dev agent keeps its state in memory: a restart forgets the session
	// and the key.
	require.NoError(t, a.Restart(ctx))
	select {
	case <-held.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("loss not reported after the agent restarted")
	}
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
}

func TestGuardedWrites(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	target := key(t) + "-data"

	assert.ErrorIs(t, l.GuardedPut(ctx, &api.KVPair{Key: target, Value: []byte("x")}), lock.ErrNotHeld)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, l.GuardedPut(ctx, &api.KVPair{Key: target, Value: []byte("v1")}))
	resp, err := l.GuardedTxn(ctx, api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGet, Key: target}}})
	require.NoError(t, err)
	require.Len(t, resp.Results, 1)
	assert.Equal(t, []byte("v1"), resp.Results[0].KV.Value)

	// Consul refuses the write once the session no longer holds the key,
	// even before the watcher has noticed.
	_, _, err = c.KV().Release(ctx, &api.KVPair{Key: key(t), Session: s.ID(), Flags: lock.Flag}, nil)
	require.NoError(t, err)
	err = l.GuardedPut(ctx, &api.KVPair{Key: target, Value: []byte("v2")})
	require.Error(t, err)
	assert.True(t, errors.Is(err, lock.ErrLost) || errors.Is(err, lock.ErrNotHeld), "got %v", err)
	pair, _, err := c.KV().Get(ctx, target, nil)
	require.NoError(t, err)
	assert.Equal(t, []byte("v1"), pair.Value)
}

// TestRefusedGuardedWriteEndsTheHold: a guarded write that Consul refuses
// because the session no longer holds the key ends the hold before it
// returns, although the watcher, whose blocking queries hang, has not seen
// the loss: the held context ended, the token is zero, and the Lock can
// lock again. It said ErrLost while the held context lived on, up to two
// TTLs with a watch on a dead connection.
func TestRefusedGuardedWriteEndsTheHold(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	hc, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	l, err := lock.New(hc, key(t), lock.WithSession(s))
	require.NoError(t, err)
	// Set before Lock, so that no blocking query of the watcher is under
	// way (one sent before would see the release, and the loss would come
	// first).
	ht.Set(integration.HangBlocking)
	t.Cleanup(func() { ht.Set(nil) })
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	_, _, err = c.KV().Release(ctx, &api.KVPair{Key: key(t), Session: s.ID(), Flags: lock.Flag}, nil)
	require.NoError(t, err)
	err = l.GuardedPut(ctx, &api.KVPair{Key: key(t) + "-data", Value: []byte("v")})
	require.ErrorIs(t, err, lock.ErrLost)
	require.Error(t, held.Err(), "Consul refused the guarded write, and the held context lives on")
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
	assert.True(t, l.Token().IsZero())
	assert.ErrorIs(t, l.Unlock(ctx), lock.ErrLost)

	ht.Set(nil)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
}

// TestGuardedWriteRefusedOnceUnlockBegan: from the start of an Unlock the
// held context has ended and Token is zero; a guarded write is refused
// then too, before anything is sent, and not passed by Consul because the
// release has not been applied yet.
func TestGuardedWriteRefusedOnceUnlockBegan(t *testing.T) {
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	target := key(t) + "-data"
	var guarded atomic.Int32
	ht.Set(func(r *http.Request) error {
		switch {
		case isReleaseTxn(r):
			time.Sleep(2 * time.Second) // a slow release
		case r.URL.Path == "/v1/txn" && bytes.Contains(integration.Body(r), []byte(target)):
			guarded.Add(1)
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	unlocked := make(chan error, 1)
	go func() { unlocked <- l.Unlock(ctx) }()
	<-held.Done()
	assert.ErrorIs(t, l.GuardedPut(ctx, &api.KVPair{Key: target, Value: []byte("late")}), lock.ErrNotHeld)
	assert.Zero(t, guarded.Load(), "the guarded write was sent")
	require.NoError(t, <-unlocked)
}

func TestDoRunsWhileHolding(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	ran := false
	err := lock.Do(ctx, c, key(t), func(held context.Context) error {
		ran = true
		pair, _, err := c.KV().Get(held, key(t), nil)
		require.NoError(t, err)
		assert.NotEmpty(t, pair.Session)
		tok, ok := lock.TokenFrom(held)
		require.True(t, ok, "no token in the held context")
		assert.Equal(t, lock.Token{Key: key(t), Session: pair.Session, LockIndex: pair.LockIndex, ModifyIndex: pair.ModifyIndex}, tok)
		return nil
	}, lock.WithSessionOptions(session.WithLockDelay(0)))
	require.NoError(t, err)
	assert.True(t, ran)
	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session)

	boom := errors.New("boom")
	assert.Equal(t, boom, lock.Do(ctx, c, key(t), func(context.Context) error { return boom }), "fn's error as it is")
	_, ok := lock.TokenFrom(ctx)
	assert.False(t, ok, "a token in a context that is not held")
}

func TestInteropWithConsulLockCLI(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	bin, err := integration.ConsulBinary(ctx)
	require.NoError(t, err)
	prefix := "cli/" + t.Name()
	k := prefix + "/.lock"
	dir := t.TempDir()

	// The CLI holds: we cannot.
	cli := exec.Command(bin, "lock", "-http-addr="+a.Addr, prefix, "sleep", "60")
	cli.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cli.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cli.Process.Pid, syscall.SIGKILL); _ = cli.Wait() })
	require.Eventually(t, func() bool {
		p, _, err := c.KV().Get(ctx, k, nil)
		return err == nil && p != nil && p.Session != ""
	}, 20*time.Second, 50*time.Millisecond)
	l, err := lock.New(c, k, lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	_, err = l.TryLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)

	// The CLI releases on SIGTERM: we get it.
	require.NoError(t, syscall.Kill(cli.Process.Pid, syscall.SIGTERM))
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = l.Lock(lctx)
	cancel()
	require.NoError(t, err)

	// We hold: the CLI cannot and does not run its command.
	marker := filepath.Join(dir, "ran")
	out, err := exec.CommandContext(ctx, bin, "lock", "-http-addr="+a.Addr, "-timeout=2s", prefix, "touch "+marker).CombinedOutput()
	require.Error(t, err, "consul lock ran while we held the lock: %s", out)
	assert.NoFileExists(t, marker)

	require.NoError(t, l.Unlock(ctx))
	out, err = exec.CommandContext(ctx, bin, "lock", "-http-addr="+a.Addr, "-timeout=10s", prefix, "touch "+marker).CombinedOutput()
	require.NoError(t, err, "%s", out)
	_, statErr := os.Stat(marker)
	assert.NoError(t, statErr)
}

// proxied returns a client that reaches the shared agent through a fault
// proxy, and a session created over a direct client (so that faults hit
// the lock's requests only).
func proxied(t *testing.T) (*api.Client, *integration.FaultProxy, *session.Session, *api.Client) {
	t.Helper()
	a := integration.Shared(t)
	c, proxy := a.ProxiedClient(t)
	direct := a.Client(t)
	s := integration.NewSession(t, direct, session.WithLockDelay(0))
	t.Cleanup(func() { proxy.Set(integration.Pass) })
	return c, proxy, s, direct
}

// The held context ends before the release is sent, so that what it
// guards stops before anyone else can take the key; a release that fails
// transiently is retried.
func TestUnlockEndsHeldContextFirstAndRetries(t *testing.T) {
	t.Parallel()
	c, proxy, s, direct := proxied(t)
	ctx := t.Context()
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	for _, f := range []integration.Fault{integration.Hang, integration.ServerError} {
		proxy.Set(f)
		done := make(chan error, 1)
		go func() { done <- l.Unlock(ctx) }()
		select {
		case <-held.Done():
		case err := <-done:
			t.Fatalf("Unlock returned %v during the fault", err)
		case <-time.After(5 * time.Second):
			t.Fatal("held context still live while the release is failing")
		}
		assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
		assert.True(t, l.Token().IsZero(), "no token once Unlock began")
		pair, _, err := direct.KV().Get(ctx, key(t), nil)
		require.NoError(t, err)
		assert.Equal(t, s.ID(), pair.Session, "not released yet")

		time.Sleep(500 * time.Millisecond)
		proxy.Set(integration.Pass)
		select {
		case err := <-done:
			require.NoError(t, err, "the release is retried once the fault ends (fault %d)", f)
		case <-time.After(10 * time.Second):
			t.Fatal("Unlock did not return after the fault ended")
		}
		pair, _, err = direct.KV().Get(ctx, key(t), nil)
		require.NoError(t, err)
		assert.Empty(t, pair.Session, "released")

		held, err = l.Lock(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, l.Unlock(ctx))
}

// When a release fails for good, the key stays held by the caller's
// session; the next Lock releases that hold first, so that its token is
// newer than the one of the holding that was never released.
func TestLockAfterFailedReleaseGetsANewerToken(t *testing.T) {
	t.Parallel()
	c, proxy, s, direct := proxied(t)
	ctx := t.Context()
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	first := l.Token()

	proxy.Set(integration.ServerError)
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = l.Unlock(short)
	require.Error(t, err)
	assert.NotErrorIs(t, err, lock.ErrLost)
	assert.ErrorContains(t, err, "stays held by session "+s.ID())
	pair, _, err := direct.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	require.Equal(t, s.ID(), pair.Session, "the failed release left the key held")

	proxy.Set(integration.Pass)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	second := l.Token()
	assert.True(t, second.Newer(first), "token %+v must be newer than %+v", second, first)
	assert.Greater(t, second.LockIndex, first.LockIndex)
	require.NoError(t, l.Unlock(ctx))
}

// Unlock deferred with a ctx that a shutdown has cancelled still releases
// the key: otherwise it stays held until the session ends, and the next
// holder waits out the lock-delay.
func TestUnlockWithEndedContextStillReleases(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	s := integration.NewSession(t, c)
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	cancel()
	require.NoError(t, l.Unlock(ctx))
	pair, _, err := c.KV().Get(t.Context(), key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session, "released")
}

// A plain write over a held lock key (flags of another kind) is a loss
// with ErrConflict; the session lets go of the key and keeps what was
// written, so that the key does not stay locked until the session ends.
func TestOverwrittenKeyIsLetGo(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	t.Cleanup(func() { _, _ = c.KV().Delete(context.Background(), key(t), nil) })
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // the watch is parked
	_, err = c.KV().Put(ctx, &api.KVPair{Key: key(t), Value: []byte("plain")}, nil)
	require.NoError(t, err)
	select {
	case <-held.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("overwrite not reported")
	}
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
	assert.ErrorIs(t, context.Cause(held), lock.ErrConflict)
	// Unlock reports the loss once the key has been let go.
	err = l.Unlock(ctx)
	assert.ErrorIs(t, err, lock.ErrNotHeld)
	assert.ErrorIs(t, err, lock.ErrConflict)
	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session, "the session still holds the overwritten key")
	assert.Equal(t, []byte("plain"), pair.Value)
	assert.Zero(t, pair.Flags)
	err = l.Unlock(ctx)
	assert.ErrorIs(t, err, lock.ErrNotHeld)
	assert.NotErrorIs(t, err, lock.ErrLost, "the loss was reported already")
}

// Do's own session is gone, and the key let go, when Do returns after a
// loss; Do reports the loss.
func TestDoCleansUpALossBeforeReturning(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	t.Cleanup(func() { _, _ = c.KV().Delete(context.Background(), key(t), nil) })
	var id string
	err := lock.Do(ctx, c, key(t), func(held context.Context) error {
		pair, _, err := c.KV().Get(ctx, key(t), nil)
		require.NoError(t, err)
		id = pair.Session
		time.Sleep(50 * time.Millisecond) // the watch is parked
		_, err = c.KV().Put(ctx, &api.KVPair{Key: key(t), Value: []byte("plain")}, nil)
		require.NoError(t, err)
		<-held.Done()
		return nil
	}, lock.WithSessionOptions(session.WithLockDelay(0)))
	assert.ErrorIs(t, err, lock.ErrLost)
	assert.ErrorIs(t, err, lock.ErrConflict)
	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session)
	assert.Equal(t, []byte("plain"), pair.Value)
	info, _, err := c.Session().Info(ctx, id, nil)
	require.NoError(t, err)
	assert.Nil(t, info, "Do returned before destroying its session")
}

// A panic in fn still unlocks and destroys Do's own session.
func TestDoUnlocksWhenFnPanics(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	var id string
	func() {
		defer func() { assert.Equal(t, "boom", recover()) }()
		_ = lock.Do(ctx, c, key(t), func(context.Context) error {
			pair, _, err := c.KV().Get(ctx, key(t), nil)
			require.NoError(t, err)
			id = pair.Session
			panic("boom")
		})
	}()
	require.NotEmpty(t, id)
	pair, _, err := c.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session, "the lock is still held after the panic")
	info, _, err := c.Session().Info(ctx, id, nil)
	require.NoError(t, err)
	assert.Nil(t, info, "Do's session outlived the panic")
}

// A Lock whose session ends while its request hangs returns the session's
// error instead of waiting for its ctx.
func TestLockReturnsWhenSessionEndsDuringARequest(t *testing.T) {
	t.Parallel()
	c, proxy, s, _ := proxied(t)
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	proxy.Set(integration.Hang)
	done := make(chan error, 1)
	go func() {
		_, err := l.Lock(context.Background())
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, s.Close(t.Context()))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, session.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Lock still waiting after its session ended")
	}
}

// A hold of the Lock's session that the Lock may not release (its token
// may read the key but not write it) is an error, not a loop that reads
// and refuses until ctx ends.
func TestLeftoverHoldThatCannotBeReleased(t *testing.T) {
	t.Parallel()
	a := integration.NewACLAgent(t)
	admin := a.Client(t)
	ctx := t.Context()
	k := key(t)
	reader := readOnlyClient(t, a, nil)

	s := integration.NewSession(t, admin, session.WithLockDelay(0))
	ok, _, err := admin.KV().Acquire(ctx, &api.KVPair{Key: k, Flags: lock.Flag, Session: s.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)

	l, err := lock.New(reader, k, lock.WithSession(s))
	require.NoError(t, err)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = l.Lock(lctx)
	require.Error(t, err)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "it looped until ctx ended")
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
}

// blockingHandler is a slog.Handler whose Handle blocks until release is
// closed.
type blockingHandler struct{ release chan struct{} }

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) Handle(context.Context, slog.Record) error {
	<-h.release
	return nil
}
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h blockingHandler) WithGroup(string) slog.Handler      { return h }

// A logger that blocks does not hold up Unlock after a loss: the loss is
// logged once the cleanup Unlock waits for is done.
func TestUnlockAfterLossDoesNotWaitForTheLogger(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithLogger(slog.New(blockingHandler{release})))
	require.NoError(t, err)
	held, err := l.Lock(t.Context())
	require.NoError(t, err)
	_, err = c.KV().Delete(t.Context(), key(t), nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 5*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	err = l.Unlock(ctx)
	assert.ErrorIs(t, err, lock.ErrLost)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "Unlock waited for the logger")
	once.Do(func() { close(release) })
}

// An Unlock whose wait for the cleanup after a loss runs out still says
// the lock was lost.
func TestUnlockAfterLossWithSlowCleanup(t *testing.T) {
	t.Parallel()
	c, proxy := integration.Shared(t).ProxiedClient(t)
	t.Cleanup(func() { proxy.Set(integration.Pass) })
	l, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithTTL(10*time.Second), session.WithLockDelay(0)))
	require.NoError(t, err)
	held, err := l.Lock(t.Context())
	require.NoError(t, err)
	// Cut off: the session expires locally, and destroying it hangs.
	proxy.Set(integration.Hang)
	integration.WaitDone(t, held, 20*time.Second)
	require.ErrorIs(t, context.Cause(held), lock.ErrLost)

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = l.Unlock(ctx)
	assert.ErrorIs(t, err, lock.ErrNotHeld)
	assert.ErrorIs(t, err, lock.ErrLost)
	proxy.Set(integration.Pass)
	// Reported once.
	assert.NotErrorIs(t, l.Unlock(t.Context()), lock.ErrLost)
}

// An Unlock whose release hangs gives that attempt up and releases on a
// new connection, even with a context that never ends.
func TestUnlockGivesUpAHungRelease(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	s := integration.NewSession(t, integration.Shared(t).Client(t), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)

	// Hold the next transaction (the release) until it is cancelled, as
	// on a connection that died without a reset.
	var armed atomic.Bool
	armed.Store(true)
	var held atomic.Int64
	ht.Set(func(r *http.Request) error {
		if r.URL.Path == "/v1/txn" && armed.CompareAndSwap(true, false) {
			held.Add(1)
			<-r.Context().Done()
			return r.Context().Err()
		}
		return nil
	})
	err = integration.Within(t, 30*time.Second, "Unlock still waiting for a release that hangs",
		func() error { return l.Unlock(context.Background()) }, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 1, held.Load())
	pair, _, err := c.KV().Get(t.Context(), key(t), nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session, "not released")
}

// A Lock cancelled while its acquisition is on its way leaves nothing
// held, even when that request still reaches Consul after Lock returned
// (held up in a busy agent, say): the key is never left held by the
// session with nobody holding the Lock. Both kinds of attempt are covered:
// on an absent key (check-not-exists) and on a free one (check-index).
func TestCancelledLockAppliedLate(t *testing.T) {
	t.Parallel()
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			t.Parallel()
			a := integration.Shared(t)
			plain := a.Client(t)
			if existing {
				_, err := plain.KV().Put(t.Context(), &api.KVPair{Key: key(t), Flags: lock.Flag}, nil)
				require.NoError(t, err)
			}
			c, ht := a.HookedClient(t)
			s := integration.NewSession(t, plain, session.WithLockDelay(0))
			l, err := lock.New(c, key(t), lock.WithSession(s))
			require.NoError(t, err)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			late := make(chan (<-chan struct{}), 1)
			var armed atomic.Bool
			armed.Store(true)
			ht.Set(func(r *http.Request) error {
				if r.URL.Path != "/v1/txn" || !bytes.Contains(integration.Body(r), []byte(`"Verb":"lock"`)) || !armed.CompareAndSwap(true, false) {
					return nil
				}
				late <- ht.DeliverLate(r, 500*time.Millisecond)
				cancel()
				<-r.Context().Done()
				return r.Context().Err()
			})
			_, err = l.Lock(ctx)
			require.ErrorIs(t, err, context.Canceled)
			<-<-late // the acquisition has now reached Consul

			pair, _, err := plain.KV().Get(t.Context(), key(t), nil)
			require.NoError(t, err)
			if pair != nil {
				require.Empty(t, pair.Session, "the key is held by the session of a Lock that does not hold it")
			}
			other, err := lock.New(plain, key(t), lock.WithSession(integration.NewSession(t, plain)))
			require.NoError(t, err)
			_, err = other.TryLock(t.Context())
			require.NoError(t, err)
			require.NoError(t, other.Unlock(t.Context()))
		})
	}
}

// failTxns makes the first n transactions sent through ht fail with a
// connection reset before they are sent (they are never applied).
func failTxns(ht *integration.HookTransport, n int64) {
	var seen atomic.Int64
	ht.Set(func(r *http.Request) error {
		if r.URL.Path == "/v1/txn" && seen.Add(1) <= n {
			return syscall.ECONNRESET
		}
		return nil
	})
}

// After an acquisition that got no answer, the key is read at once, not
// with a blocking query that waits for a change that may never come.
func TestTryLockAfterUnansweredAttemptDoesNotWait(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithWaitTime(time.Minute))
	require.NoError(t, err)
	failTxns(ht, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = l.TryLock(ctx)
	require.NoError(t, err, "TryLock waited on a blocking query for a key that did not change")
	require.NoError(t, l.Unlock(t.Context()))
}

// A plain read that hangs (a connection that died without a reset) is
// given up and sent again, even with a context that never ends.
func TestTryLockGivesUpAHungRead(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	ht.HangFirst(func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/kv/")
	})
	err = integration.Within(t, 40*time.Second, "TryLock still waiting on a hung read",
		func() error { _, err := l.TryLock(context.Background()); return err },
		func() { require.NoError(t, s.Close(t.Context())) }) // ends TryLock
	require.NoError(t, err)
	require.NoError(t, l.Unlock(t.Context()))
}

// A Lock whose attempt got no answer, on a key that another Lock on the
// same session left held (its release failed), does not take that hold
// for its own acquisition: its token is newer than the other's.
func TestUnansweredAttemptDoesNotAdoptAnotherLocksHold(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	la, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	lb, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)

	// B locks and unlocks, so it knows the key's index and will skip its
	// first read next time.
	_, err = lb.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, lb.Unlock(ctx))

	// A locks, and its release fails for good.
	_, err = la.Lock(ctx)
	require.NoError(t, err)
	tokA := la.Token()
	failTxns(ht, 1<<30)
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	require.Error(t, la.Unlock(short))
	pair, _, err := a.Client(t).KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	require.Equal(t, s.ID(), pair.Session, "A's failed release left the key held")

	// B locks again; its first transaction gets no answer.
	failTxns(ht, 1)
	_, err = lb.Lock(ctx)
	require.NoError(t, err)
	tokB := lb.Token()
	require.True(t, tokB.Newer(tokA), "B reported A's hold as its own: A %+v, B %+v", tokA, tokB)
	require.NoError(t, lb.Unlock(ctx))
}

// An acquisition applied without an answer, on a key then overwritten by
// a plain write (other flags: Consul keeps the session on it), fails with
// ErrConflict and lets go of the key, keeping what was written.
func TestConflictAfterUnansweredAttemptKeepsTheWrite(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	// The test leaves the key as data (flags 7): remove it, or a second
	// run on the same agent (-count=2, CONSUL_HTTP_ADDR) finds a non-lock key.
	t.Cleanup(func() { _, _ = direct.KV().Delete(context.Background(), key(t), nil) })
	s := integration.NewSession(t, direct, session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithValue([]byte("lock")))
	require.NoError(t, err)
	var armed atomic.Bool
	armed.Store(true)
	ht.Set(func(r *http.Request) error {
		if r.URL.Path != "/v1/txn" || !armed.CompareAndSwap(true, false) {
			return nil
		}
		// Applied, its answer lost; then the key is written as data.
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if _, err := direct.KV().Put(context.Background(), &api.KVPair{Key: key(t), Value: []byte("data"), Flags: 7}, nil); err != nil {
			return err
		}
		return syscall.ECONNRESET
	})
	_, err = l.TryLock(t.Context())
	require.ErrorIs(t, err, lock.ErrConflict)
	pair, _, err := direct.KV().Get(t.Context(), key(t), nil)
	require.NoError(t, err)
	assert.EqualValues(t, 7, pair.Flags, "the plain write was overwritten")
	assert.Equal(t, []byte("data"), pair.Value)
	assert.Empty(t, pair.Session, "the session still holds the key")
}

// A plain write over the held key (other flags; Consul keeps the session
// on it) that Unlock comes to before the watcher has seen it is not
// overwritten by the release: the release checks the index it last knew,
// lets go keeping the write, and reports the loss.
func TestUnlockDoesNotOverwriteAnUnseenWrite(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	// The test leaves the key as data (flags 7): remove it, or a second
	// run on the same agent (-count=2, CONSUL_HTTP_ADDR) finds a non-lock key.
	t.Cleanup(func() { _, _ = direct.KV().Delete(context.Background(), key(t), nil) })
	s := integration.NewSession(t, direct, session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s), lock.WithValue([]byte("lock")))
	require.NoError(t, err)
	// The watcher's blocking query never reaches the agent: it does not
	// see the write.
	ht.Set(integration.HangBlocking)
	held, err := l.Lock(t.Context())
	require.NoError(t, err)
	_, err = direct.KV().Put(t.Context(), &api.KVPair{Key: key(t), Value: []byte("data"), Flags: 7}, nil)
	require.NoError(t, err)

	err = l.Unlock(t.Context())
	require.ErrorIs(t, err, lock.ErrLost)
	assert.ErrorIs(t, err, lock.ErrConflict)
	assert.Error(t, held.Err())
	pair, _, err := direct.KV().Get(t.Context(), key(t), nil)
	require.NoError(t, err)
	assert.EqualValues(t, 7, pair.Flags, "the write was overwritten")
	assert.Equal(t, []byte("data"), pair.Value)
	assert.Empty(t, pair.Session, "the session still holds the key")
}

// TestOwnSessionLostWhileWaiting: a Lock waiting through a session it made
// for itself waits on with a new session when that one is invalidated (an
// operator's destroy, a serfHealth flap): nothing was held through it.
// Both ways of finding out are covered: the acquisition refused for an
// invalid session (the holder unlocks at once), and the renew loop's 404.
// Creating the new session may fail for a transient reason (the faults
// that flap sessions): that does not end the wait either.
func TestOwnSessionLostWhileWaiting(t *testing.T) {
	c := integration.Shared(t).Client(t)
	for _, tt := range []struct {
		name        string
		viaRenew    bool // the holder unlocks only once the renew loop has found out
		createFails int32
	}{
		{name: "refused attempt"},
		{name: "renew 404", viaRenew: true},
		{name: "refused attempt, then failed creates", createFails: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			hc, ht := integration.Shared(t).HookedClient(t)
			a, err := lock.New(c, key(t), lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
			require.NoError(t, err)
			_, err = a.Lock(ctx)
			require.NoError(t, err)

			name := "waiter " + t.Name()
			b, err := lock.New(hc, key(t), lock.WithSessionOptions(session.WithLockDelay(0), session.WithTTL(10*time.Second), session.WithName(name)))
			require.NoError(t, err)
			got := make(chan error, 1)
			go func() {
				_, err := b.Lock(ctx)
				got <- err
			}()
			first := integration.WaitSessionNamed(t, c, name)
			time.Sleep(200 * time.Millisecond) // parked on the key
			var creates atomic.Int32
			ht.Set(func(r *http.Request) error {
				if r.URL.Path == "/v1/session/create" && creates.Add(1) <= tt.createFails {
					return errors.New("injected: connection reset")
				}
				return nil
			})
			_, err = c.Session().Destroy(ctx, first, nil)
			require.NoError(t, err)
			if tt.viaRenew {
				// The renew loop (every 5s) finds the session gone, and
				// the Lock makes a new one while the key is still held.
				integration.WaitSessionNamed(t, c, name, first)
			}
			select {
			case err := <-got:
				t.Fatalf("Lock ended when its own session was destroyed: %v", err)
			default:
			}
			require.NoError(t, a.Unlock(ctx))
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("the waiter did not acquire")
			}
			assert.Greater(t, creates.Load(), tt.createFails, "a session was created after the failures")
			tok := b.Token()
			assert.NotEqual(t, first, tok.Session, "acquired through a new session")
			assert.Equal(t, name, sessionName(t, c, tok.Session))
			require.NoError(t, b.Unlock(ctx))
			assert.Empty(t, integration.SessionsNamed(t, c, name), "the Lock's sessions are all destroyed")
		})
	}
}

// TestCallerSessionLostWhileWaiting: a caller's session is the caller's to
// replace: Lock ends with ErrInvalidated.
func TestCallerSessionLostWhileWaiting(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	a, err := lock.New(c, key(t), lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	_, err = a.Lock(ctx)
	require.NoError(t, err)
	// A TTL whose scheduled renew (at TTL/2) comes long after the test.
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	b, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		_, err := b.Lock(ctx)
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.NoError(t, a.Unlock(ctx)) // b's attempt is refused: invalid session
	select {
	case err := <-got:
		assert.ErrorIs(t, err, session.ErrInvalidated)
		assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session itself is told at once")
	case <-time.After(10 * time.Second):
		t.Fatal("Lock went on with a session Consul no longer has")
	}
}

func sessionName(t *testing.T, c *api.Client, id string) string {
	t.Helper()
	se, _, err := c.Session().Info(t.Context(), id, nil)
	require.NoError(t, err)
	require.NotNil(t, se, "session %s", id)
	return se.Name
}

// TestUnconfirmedHoldIsLost: a watch that gets no answer (its reads fail
// while the session renews through other requests) cannot see the key
// taken: after two session TTLs without a confirmation the lock is reported
// lost and let go. A quiet watch, on the other hand, keeps confirming the
// hold (its queries wait at most TTL/3) and loses nothing.
func TestUnconfirmedHoldIsLost(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(0))
	quiet, err := lock.New(c, key(t)+"/quiet", lock.WithSession(s))
	require.NoError(t, err)
	quietHeld, err := quiet.Lock(ctx)
	require.NoError(t, err)

	blind, err := lock.New(c, key(t)+"/blind", lock.WithSession(s))
	require.NoError(t, err)
	// Once held, no read of the blind key is answered; renewals and
	// transactions pass. Installed before Lock, failing every blocking
	// read: the watcher's first query may be sent before Lock returns,
	// and must not see the delete below.
	var locked atomic.Bool
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blind") && (locked.Load() || integration.IsBlocking(r)) {
			return errors.New("injected: connection reset")
		}
		return nil
	})
	held, err := blind.Lock(ctx)
	require.NoError(t, err)
	locked.Store(true)
	acquired := time.Now()
	t.Cleanup(func() { ht.Set(nil) })
	// Meanwhile the key is deleted and taken by another session.
	_, err = direct.KV().Delete(ctx, key(t)+"/blind", nil)
	require.NoError(t, err)
	other, err := lock.New(direct, key(t)+"/blind", lock.WithSessionOptions(session.WithLockDelay(0)))
	require.NoError(t, err)
	_, err = other.TryLock(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Unlock(context.Background()) })

	select {
	case <-held.Done():
	case <-time.After(40 * time.Second):
		t.Fatalf("still reported held 40s after the key was taken (token %+v)", blind.Token())
	}
	ht.Set(nil)
	t.Logf("reported lost %s after the acquisition", time.Since(acquired))
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
	assert.ErrorIs(t, context.Cause(held), lock.ErrUnconfirmed)
	assert.NoError(t, s.Err(), "the session itself lived on")
	assert.True(t, blind.Token().IsZero())
	assert.ErrorIs(t, blind.Unlock(ctx), lock.ErrLost)
	// Letting go of the key left the new holder's hold alone.
	pair, _, err := direct.KV().Get(ctx, key(t)+"/blind", nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, other.Token().Session, pair.Session)

	// The quiet lock has been held for more than a TTL by now.
	assert.NoError(t, quietHeld.Err(), "a quiet watch confirms its hold")
	require.NoError(t, quiet.Unlock(ctx))
}

// TestHungWatchQueryIsSentAgain: a watch query stuck on a connection that
// died without a reset is given up once its wait is well past, and the
// watch reads again on a new connection: it sees the key deleted long
// before two session TTLs, and reports that, not an unconfirmed hold.
func TestHungWatchQueryIsSentAgain(t *testing.T) {
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	ht.HangFirst(integration.IsBlocking)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond) // the watch's first query is stuck
	_, err = a.Client(t).KV().Delete(ctx, key(t), nil)
	require.NoError(t, err)
	deleted := time.Now()
	select {
	case <-held.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the deletion was not seen")
	}
	t.Logf("loss reported %s after the deletion", time.Since(deleted))
	assert.ErrorIs(t, context.Cause(held), lock.ErrLost)
	assert.NotErrorIs(t, context.Cause(held), lock.ErrUnconfirmed, "the hung query was replaced in time")
	assert.ErrorIs(t, l.Unlock(ctx), lock.ErrLost)
}

// TestOwnSessionLockFailsAtOnceOnConflict: a Lock with a session of its
// own reports a non-lock key as ErrConflict at once. Only the loss of that
// session while waiting makes it start over; closing the session after
// any other failure must not look like one.
func TestOwnSessionLockFailsAtOnceOnConflict(t *testing.T) {
	c := integration.Shared(t).Client(t)
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: key(t), Value: []byte("data"), Flags: 0xe0f69a2baa414de0}, nil)
	require.NoError(t, err)
	name := "conflict " + t.Name()
	l, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithName(name)))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = l.Lock(ctx)
	assert.ErrorIs(t, err, lock.ErrConflict)
	assert.NoError(t, ctx.Err(), "Lock went on after the conflict")
	assert.Empty(t, integration.SessionsNamed(t, c, name), "its session is destroyed")
}

// isReleaseTxn reports whether r is a release's transaction: a check-index,
// an unlock and a read of the key (the watcher's and Unlock's alike).
func isReleaseTxn(r *http.Request) bool {
	if r.URL.Path != "/v1/txn" {
		return false
	}
	b := integration.Body(r)
	return bytes.Contains(b, []byte(`"unlock"`)) && bytes.Contains(b, []byte(`"get"`))
}

// TestUnconfirmedReleaseSparesTheNextHold: after an ErrUnconfirmed loss
// the watcher lets the key go in the background, and the Lock may lock
// again meanwhile through the same session. That release, still retrying,
// must not let go of the new hold: it once read the key again, found it
// held by its session with the lock's flags, and released it.
func TestUnconfirmedReleaseSparesTheNextHold(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(0))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)

	// Reads of the key fail (the watch goes blind), and so do releases.
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, key(t)) || isReleaseTxn(r) {
			return errors.New("injected: connection reset")
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	select {
	case <-held.Done():
	case <-time.After(40 * time.Second):
		t.Fatal("not reported unconfirmed")
	}
	require.ErrorIs(t, context.Cause(held), lock.ErrUnconfirmed)

	// Reads pass again; the watcher's release still fails. The Lock
	// locks again, as it may after a loss.
	ht.Set(func(r *http.Request) error {
		if isReleaseTxn(r) {
			return errors.New("injected: connection reset")
		}
		return nil
	})
	held2, err := l.Lock(ctx)
	require.NoError(t, err)

	// The fault ends: the old release goes through, and must find the
	// key changed.
	var releases atomic.Int32
	ht.Set(func(r *http.Request) error {
		if isReleaseTxn(r) {
			releases.Add(1)
		}
		return nil
	})
	require.Eventually(t, func() bool { return releases.Load() > 0 }, 8*time.Second, 50*time.Millisecond,
		"the old holding's release was not sent again")
	time.Sleep(time.Second) // its answer, and anything it would do next
	pair, _, err := direct.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, s.ID(), pair.Session, "the new hold was let go by the old holding's release")
	assert.NoError(t, held2.Err(), "the new hold was reported lost: %v", context.Cause(held2))
	require.NoError(t, l.Unlock(ctx))
}

// TestFirstSessionThatCannotBeCreatedFailsAtOnce: a Lock that cannot
// create its first session (no agent at the address, a node check that
// does not exist) reports why at once, rather than waiting in silence
// until ctx ends.
func TestFirstSessionThatCannotBeCreatedFailsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	cfg := api.DefaultConfig()
	cfg.Address = addr
	dead, err := api.NewClient(cfg)
	require.NoError(t, err)
	live := integration.Shared(t).Client(t)
	for _, tt := range []struct {
		name string
		c    *api.Client
		opts []session.Option
	}{
		{name: "no agent", c: dead},
		{name: "missing node check", c: live, opts: []session.Option{session.WithNodeChecks("serfHealth", "no-such-check")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := lock.New(tt.c, key(t), lock.WithSessionOptions(tt.opts...))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			_, err = l.Lock(ctx)
			require.Error(t, err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "Lock waited until ctx ended")
			assert.Contains(t, err.Error(), "session", "the error says what failed")
		})
	}
}

func isLockTxn(r *http.Request) bool {
	return r.URL.Path == "/v1/txn" && bytes.Contains(integration.Body(r), []byte(`"Verb":"lock"`))
}

// A waiter that saw the key freed by a holder, and then saw the same
// session take it again, once kept the old "freed at" time: when that
// session was later invalidated, the lock-delay estimate was in the past
// and the waiter retried at pauses of up to a second for the whole delay,
// instead of once when it ends.
func TestLockDelayAfterTheSameHolderLockedAgain(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	const delay = 4 * time.Second
	hs := integration.NewSession(t, c, session.WithLockDelay(delay))
	h, err := lock.New(c, key(t), lock.WithSession(hs))
	require.NoError(t, err)
	_, err = h.Lock(ctx)
	require.NoError(t, err)

	wc, ht := a.HookedClient(t)
	w, err := lock.New(wc, key(t), lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)

	// blocking counts W's blocking queries; parked is signalled on each.
	var blocking atomic.Int64
	parked := make(chan struct{}, 16)
	intercepted := make(chan struct{})
	proceed := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	var counting atomic.Bool
	var lockTxns atomic.Int64
	ht.Set(func(r *http.Request) error {
		if integration.IsBlocking(r) {
			blocking.Add(1)
			select {
			case parked <- struct{}{}:
			default:
			}
		}
		if isLockTxn(r) {
			if counting.Load() {
				lockTxns.Add(1)
			}
			if first.CompareAndSwap(true, false) {
				close(intercepted)
				<-proceed
			}
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { _, err := w.Lock(ctx); done <- err }()

	<-parked
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, h.Unlock(ctx)) // W sees the key free: freedAt = now
	<-intercepted                     // W's attempt is on its way
	_, err = h.Lock(ctx)              // the same session takes it again first
	require.NoError(t, err)
	// W is held in its attempt: it sends no blocking query until proceed
	// is closed. Wait for one sent after that, by count: draining parked
	// after close(proceed) could swallow that very query's signal when
	// this goroutine is descheduled for a round trip, and then wait for
	// the next one, which comes only when W's 5-minute wait runs out.
	before := blocking.Load()
	close(proceed) // W's attempt is refused; W waits on the same holder again
	require.Eventually(t, func() bool { return blocking.Load() > before }, 10*time.Second, time.Millisecond,
		"W did not park on the key again")
	time.Sleep(delay + time.Second) // the old freedAt + delay is now past

	counting.Store(true)
	sent := time.Now()
	_, err = c.Session().Destroy(ctx, hs.ID(), nil) // lock-delay starts now
	require.NoError(t, err)
	require.NoError(t, <-done)
	took := time.Since(sent)
	t.Logf("acquired %s after the destroy, with %d lock transactions", took, lockTxns.Load())
	require.NoError(t, w.Unlock(ctx))
	require.LessOrEqual(t, lockTxns.Load(), int64(3), "polled through the lock-delay instead of waiting for its end")
}

// An attempt on an absent key that got no answer but reaches Consul late,
// after the call succeeded with a later attempt, once locked on
// check-not-exists: when the key was deleted again (here by another
// Lock's cleanup, which deletes a free key; the official client's Destroy
// and consul lock do the same), it applied and the session held the key
// for nobody. An absent key is now created free first, and locked on its
// index.
func TestLateAttemptOnAnAbsentKey(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	ctx := t.Context()

	xc, xht := a.HookedClient(t)
	s1 := integration.NewSession(t, plain, session.WithLockDelay(0))
	x, err := lock.New(xc, key(t), lock.WithSession(s1))
	require.NoError(t, err)
	var late <-chan struct{}
	var armed atomic.Bool
	armed.Store(true)
	xht.Set(func(r *http.Request) error {
		if isLockTxn(r) && armed.CompareAndSwap(true, false) {
			late = xht.DeliverLate(r, 2*time.Second)
			return syscall.ECONNRESET
		}
		return nil
	})
	_, err = x.Lock(ctx) // first attempt "lost", second succeeds
	require.NoError(t, err)
	require.NoError(t, x.Unlock(ctx))

	// Another Lock's attempt gets no answer and its ctx ends: its cleanup
	// deletes the free key.
	yc, yht := a.HookedClient(t)
	y, err := lock.New(yc, key(t), lock.WithSession(integration.NewSession(t, plain, session.WithLockDelay(0))))
	require.NoError(t, err)
	yctx, cancel := context.WithCancel(ctx)
	defer cancel()
	yht.Set(func(r *http.Request) error {
		if isLockTxn(r) {
			cancel()
			return context.Canceled
		}
		return nil
	})
	_, err = y.Lock(yctx)
	require.Error(t, err)
	p, _, err := plain.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	t.Logf("after Y's cleanup: %+v", p)

	<-late // X's first attempt reaches Consul now
	pair, _, err := plain.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	if pair != nil {
		require.Empty(t, pair.Session, "the key is held by session %s, whose Lock does not hold it (X.Token()=%+v)", s1.ID(), x.Token())
	}
}

type countingRT struct{ n atomic.Int64 }

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// A token that may read a key but not write it, on a key that does not
// exist: the transaction that creates the key free is refused (permission
// denied). That must end Lock and TryLock with ErrPermissionDenied, as on
// a key that exists; it was once taken for "the key changed", and read,
// refused create, read... went on without a pause until ctx ended.
func TestAbsentKeyCreateRefused(t *testing.T) {
	t.Parallel()
	a := integration.NewACLAgent(t)
	admin := a.Client(t)
	ctx := t.Context()
	k := key(t)
	rt := &countingRT{}
	reader := readOnlyClient(t, a, rt)

	s := integration.NewSession(t, admin, session.WithLockDelay(0))
	for _, try := range []bool{false, true} {
		l, err := lock.New(reader, k, lock.WithSession(s))
		require.NoError(t, err)
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		before := rt.n.Load()
		if try {
			_, err = l.TryLock(lctx)
		} else {
			_, err = l.Lock(lctx)
		}
		cancel()
		t.Logf("try=%v: %d requests, err=%v", try, rt.n.Load()-before, err)
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "it looped until ctx ended (try=%v)", try)
		assert.ErrorIs(t, err, api.ErrPermissionDenied)
	}
}

// readOnlyClient returns a client of a (an ACL agent) whose token may read
// every key but write none, and write sessions, through rt if not nil.
func readOnlyClient(t *testing.T, a *integration.Agent, rt http.RoundTripper) *api.Client {
	t.Helper()
	admin := a.Client(t)
	pol, _, err := admin.ACL().PolicyCreate(t.Context(), &api.ACLPolicy{Name: "read-" + strings.ReplaceAll(t.Name(), "/", "-"), Rules: `key_prefix "" { policy = "read" }
session_prefix "" { policy = "write" }`}, nil)
	require.NoError(t, err)
	tok, _, err := admin.ACL().TokenCreate(t.Context(), &api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	require.NoError(t, err)
	cfg := a.Config()
	cfg.Token = tok.SecretID
	if rt != nil {
		cfg.Transport = rt
	}
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// cancelAfterCreate is a transport that sends every request, and cancels
// the caller's work once a session create has been applied and before its
// answer is handed back: the answer then arrives for a ctx that has ended,
// as when a Lock is cancelled while its create is in flight.
type cancelAfterCreate struct {
	base    http.RoundTripper
	cancel  context.CancelFunc
	creates atomic.Int64 // session creates sent
}

func (c *cancelAfterCreate) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/v1/session/create") {
		c.creates.Add(1)
	}
	resp, err := c.base.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/v1/session/create") {
		return resp, err
	}
	c.cancel()
	if cerr := r.Context().Err(); cerr != nil {
		_ = resp.Body.Close()
		return nil, cerr
	}
	return resp, nil
}

// TestCancelledWhileCreatingItsSessionLeavesNone: a Lock cancelled while
// the session it creates for itself is on its way gets that session's
// answer all the same and destroys it, rather than leave it to lapse
// (up to twice its TTL) as a session nobody holds anything with.
func TestCancelledWhileCreatingItsSessionLeavesNone(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tr := &cancelAfterCreate{base: http.DefaultTransport.(*http.Transport).Clone(), cancel: cancel}
	t.Cleanup(tr.base.(*http.Transport).CloseIdleConnections)
	cfg := a.Config()
	cfg.Transport = tr
	c, err := api.NewClient(cfg)
	require.NoError(t, err)

	name := "own-" + t.Name()
	l, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithName(name)))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	assert.Nil(t, held)
	assert.Equal(t, ctx.Err(), err, "ctx.Err() itself, as Lock promises") //nolint:errorlint // the promise is ctx.Err() itself
	assert.Empty(t, integration.SessionsNamed(t, direct, name), "the session created for the cancelled Lock was left behind")

	creates := tr.creates.Load()
	err = lock.Do(ctx, c, key(t), func(context.Context) error { return nil }, lock.WithSessionOptions(session.WithName(name)))
	assert.ErrorIs(t, err, context.Canceled)
	// Not "no session named so": a session created and then destroyed
	// leaves none either.
	assert.Equal(t, creates, tr.creates.Load(), "lock.Do called with an ended ctx sent a session create")
}

// A release that fails for good through the Lock's own session: the
// session is destroyed, which frees the key, and the error says so rather
// than that the key stays held.
func TestFailedReleaseWithOwnSessionSaysTheDestroyFreedTheKey(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	l, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithLockDelay(0)))
	require.NoError(t, err)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	sid := l.Token().Session

	ht.Set(func(r *http.Request) error {
		if isReleaseTxn(r) {
			return errors.New("injected: release refused")
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = l.Unlock(short)
	require.Error(t, err)
	assert.NotErrorIs(t, err, lock.ErrLost)
	assert.ErrorContains(t, err, "own session "+sid+" is destroyed, which frees the key")
	assert.NotContains(t, err.Error(), "stays held")
	pair, _, err := direct.KV().Get(ctx, key(t), nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "the destroy freed the key")
}
