package election_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// TestCloseSharedSessionWhileLeading: elections leading through one
// session that is closed: every leading context ends (ErrDeposed, with
// ErrClosed), Resign and Proclaim report it and do not hang, and the keys
// are free.
func TestCloseSharedSessionWhileLeading(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	s, err := session.New(ctx, c, session.WithLockDelay(0))
	require.NoError(t, err)
	base := electionKey(t)
	const n = 10
	els := make([]*election.Election, n)
	leads := make([]context.Context, n)
	for i := range n {
		els[i], err = election.New(c, fmt.Sprintf("%s/%d", base, i), election.WithSession(s))
		require.NoError(t, err)
		leads[i], err = els[i].Campaign(ctx, []byte("v"))
		require.NoError(t, err)
	}
	require.NoError(t, s.Close(ctx))
	for i, e := range els {
		integration.WaitDone(t, leads[i], 5*time.Second)
		assert.ErrorIs(t, context.Cause(leads[i]), election.ErrDeposed)
		assert.ErrorIs(t, context.Cause(leads[i]), session.ErrClosed)
		assert.True(t, e.Token().IsZero())
		assert.ErrorIs(t, e.Proclaim(ctx, []byte("w")), election.ErrNotLeader)
		err := e.Resign(ctx)
		assert.ErrorIs(t, err, election.ErrNotLeader)
		assert.ErrorIs(t, err, election.ErrDeposed)
		assert.ErrorIs(t, e.Resign(ctx), election.ErrNotLeader)
		_, err = e.Campaign(ctx, []byte("v"))
		assert.ErrorIs(t, err, session.ErrClosed)
		_, err = e.Leader(ctx)
		assert.ErrorIs(t, err, election.ErrNoLeader)
	}
}

// TestRunOnLostSharedSessionReturns: Run with a session already lost
// returns the session's error at once, without calling fn.
func TestRunOnLostSharedSessionReturns(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	_, err := c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	require.ErrorIs(t, s.Renew(ctx), session.ErrInvalidated)
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	called := false
	err = integration.Within(t, 5*time.Second, "Run on a lost session did not return", func() error {
		return e.Run(ctx, []byte("v"), func(context.Context) error { called = true; return nil })
	}, nil)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.False(t, called)
}

// TestRunEndsWhenSharedSessionIsDestroyed: Run leading through a shared
// session that is destroyed from outside: fn's context ends with the
// loss, and Run returns the session's error rather than campaigning
// again through it.
func TestRunEndsWhenSharedSessionIsDestroyed(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	leading := make(chan struct{})
	var cause error
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, []byte("v"), func(l context.Context) error {
			close(leading)
			<-l.Done()
			cause = context.Cause(l)
			return nil
		})
	}()
	<-leading
	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its session was destroyed")
	}
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, cause, election.ErrDeposed)
	assert.ErrorIs(t, cause, lock.ErrLost)
}

// TestCloseSharedSessionWhileWaiting: a Lock, an Acquire and a Campaign
// wait through one session (another session holds what they want); the
// session is closed. Each returns at once with ErrClosed, holding nothing.
func TestCloseSharedSessionWhileWaiting(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	base := electionKey(t)
	other := integration.NewSession(t, c, session.WithLockDelay(0))
	s, err := session.New(ctx, c, session.WithLockDelay(0))
	require.NoError(t, err)

	ol, err := lock.New(c, base+"/lock", lock.WithSession(other))
	require.NoError(t, err)
	_, err = ol.Lock(ctx)
	require.NoError(t, err)
	osem, err := semaphore.New(c, base+"/sem", 1, semaphore.WithSession(other))
	require.NoError(t, err)
	_, err = osem.Acquire(ctx)
	require.NoError(t, err)
	oel, err := election.New(c, base+"/el", election.WithSession(other))
	require.NoError(t, err)
	_, err = oel.Campaign(ctx, []byte("other"))
	require.NoError(t, err)

	l, err := lock.New(c, base+"/lock", lock.WithSession(s))
	require.NoError(t, err)
	sem, err := semaphore.New(c, base+"/sem", 1, semaphore.WithSession(s))
	require.NoError(t, err)
	el, err := election.New(c, base+"/el", election.WithSession(s))
	require.NoError(t, err)
	errs := make(chan error, 3)
	go func() { _, err := l.Lock(ctx); errs <- err }()
	go func() { _, err := sem.Acquire(ctx); errs <- err }()
	go func() { _, err := el.Campaign(ctx, []byte("me")); errs <- err }()
	time.Sleep(300 * time.Millisecond) // all three wait
	require.NoError(t, s.Close(ctx))
	for range 3 {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, session.ErrClosed)
		case <-time.After(5 * time.Second):
			t.Fatal("a wait did not end with its session")
		}
	}
	assert.True(t, l.Token().IsZero())
	ids, err := sem.Holders(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{other.ID()}, ids)
	pairs, _, err := c.KV().List(ctx, base+"/", nil)
	require.NoError(t, err)
	for _, p := range pairs {
		assert.NotEqual(t, s.ID(), p.Session, "%s held by the closed session", p.Key)
		assert.NotContains(t, p.Key, s.ID())
	}
	require.NoError(t, ol.Unlock(ctx))
	require.NoError(t, osem.Release(ctx))
	require.NoError(t, oel.Resign(ctx))
}

// TestConcurrentHoldersOverOneSession: locks, semaphores and elections on
// different keys cycle concurrently through one session while it is
// renewed from other goroutines: no race, no deadlock, no loss.
func TestConcurrentHoldersOverOneSession(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	base := electionKey(t)
	const each, cycles = 10, 8
	stop := make(chan struct{})
	var renewers sync.WaitGroup
	for range 2 {
		renewers.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				assert.NoError(t, s.Renew(ctx))
			}
		})
	}
	var wg sync.WaitGroup
	for i := range each {
		l, err := lock.New(c, fmt.Sprintf("%s/l%d", base, i), lock.WithSession(s))
		require.NoError(t, err)
		sem, err := semaphore.New(c, fmt.Sprintf("%s/s%d", base, i), 2, semaphore.WithSession(s))
		require.NoError(t, err)
		el, err := election.New(c, fmt.Sprintf("%s/e%d", base, i), election.WithSession(s))
		require.NoError(t, err)
		wg.Go(func() {
			for range cycles {
				held, err := l.Lock(ctx)
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, l.Unlock(ctx))
				assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
			}
		})
		wg.Go(func() {
			for range cycles {
				held, err := sem.Acquire(ctx)
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, sem.Release(ctx))
				assert.ErrorIs(t, context.Cause(held), semaphore.ErrReleased)
			}
		})
		wg.Go(func() {
			for range cycles {
				leading, err := el.Campaign(ctx, []byte("v"))
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, el.Proclaim(ctx, []byte("w")))
				assert.NoError(t, el.Resign(ctx))
				assert.ErrorIs(t, context.Cause(leading), election.ErrResigned)
			}
		})
	}
	err := integration.Within(t, 60*time.Second, "holder cycles did not finish", func() error { wg.Wait(); return nil }, nil)
	close(stop)
	renewers.Wait()
	require.NoError(t, err)
	assert.NoError(t, s.Err())
}
