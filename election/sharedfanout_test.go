package election_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// mixedHolders is what one session holds in the mixed fan-out tests.
type mixedHolders struct {
	locks     []*lock.Lock
	lockHeld  []context.Context
	sems      []*semaphore.Semaphore
	semHeld   []context.Context
	semPrefix []string
	el        *election.Election
	leading   context.Context
}

// holdMixed takes nLocks locks, nSems semaphore slots (one per prefix) and
// one election through s, concurrently.
func holdMixed(t *testing.T, c *api.Client, s *session.Session, base string, nLocks, nSems int) *mixedHolders {
	t.Helper()
	m := &mixedHolders{
		locks: make([]*lock.Lock, nLocks), lockHeld: make([]context.Context, nLocks),
		sems: make([]*semaphore.Semaphore, nSems), semHeld: make([]context.Context, nSems), semPrefix: make([]string, nSems),
	}
	errs := make([]error, nLocks+nSems+1)
	var wg sync.WaitGroup
	for i := range nLocks {
		l, err := lock.New(c, fmt.Sprintf("%s/locks/%d", base, i), lock.WithSession(s))
		require.NoError(t, err)
		m.locks[i] = l
		wg.Go(func() { m.lockHeld[i], errs[i] = l.Lock(t.Context()) })
	}
	for i := range nSems {
		m.semPrefix[i] = fmt.Sprintf("%s/sems/%d", base, i)
		sem, err := semaphore.New(c, m.semPrefix[i], 2, semaphore.WithSession(s))
		require.NoError(t, err)
		m.sems[i] = sem
		wg.Go(func() { m.semHeld[i], errs[nLocks+i] = sem.Acquire(t.Context()) })
	}
	el, err := election.New(c, base+"/leader", election.WithSession(s))
	require.NoError(t, err)
	m.el = el
	wg.Go(func() { m.leading, errs[nLocks+nSems] = el.Campaign(t.Context(), []byte("me")) })
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return m
}

// all returns every held and leading context.
func (m *mixedHolders) all() []context.Context {
	return append(append(append([]context.Context{}, m.lockHeld...), m.semHeld...), m.leading)
}

// checkLost checks that every holder reports the loss, with the right
// causes (cause, if not nil, for the locks) and errors, and that none still reports itself held.
func (m *mixedHolders) checkLost(t *testing.T, ctx context.Context, cause error) {
	t.Helper()
	for i, h := range m.lockHeld {
		assert.ErrorIs(t, context.Cause(h), lock.ErrLost, "lock %d", i)
		if cause != nil {
			assert.ErrorIs(t, context.Cause(h), cause, "lock %d", i)
		}
		assert.True(t, m.locks[i].Token().IsZero(), "lock %d still reports a token", i)
	}
	for i, h := range m.semHeld {
		assert.ErrorIs(t, context.Cause(h), semaphore.ErrLost, "semaphore %d", i)
	}
	assert.ErrorIs(t, context.Cause(m.leading), election.ErrDeposed)
	assert.ErrorIs(t, context.Cause(m.leading), lock.ErrLost)
	assert.True(t, m.el.Token().IsZero())
	var wg sync.WaitGroup
	for i, l := range m.locks {
		wg.Go(func() {
			err := l.Unlock(ctx)
			assert.ErrorIs(t, err, lock.ErrNotHeld, "lock %d", i)
			assert.ErrorIs(t, err, lock.ErrLost, "lock %d", i)
			assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld, "lock %d, second Unlock", i)
		})
	}
	for i, sem := range m.sems {
		wg.Go(func() {
			err := sem.Release(ctx)
			assert.ErrorIs(t, err, semaphore.ErrNotHeld, "semaphore %d", i)
			assert.ErrorIs(t, err, semaphore.ErrLost, "semaphore %d", i)
			assert.ErrorIs(t, sem.Release(ctx), semaphore.ErrNotHeld, "semaphore %d, second Release", i)
		})
	}
	wg.Go(func() {
		err := m.el.Resign(ctx)
		assert.ErrorIs(t, err, election.ErrNotLeader)
		assert.ErrorIs(t, err, election.ErrDeposed)
		assert.ErrorIs(t, m.el.Proclaim(ctx, []byte("x")), election.ErrNotLeader)
	})
	wg.Wait()
}

// checkSemaphoresClean checks that no semaphore prefix lists the session
// as a holder or keeps a contender key held by it.
func (m *mixedHolders) checkSemaphoresClean(t *testing.T, c *api.Client, sid string) {
	t.Helper()
	for _, p := range m.semPrefix {
		pairs, _, err := c.KV().List(t.Context(), p+"/", nil)
		require.NoError(t, err)
		for _, pair := range pairs {
			if strings.HasSuffix(pair.Key, "/"+semaphore.LockKey) {
				var st struct{ Holders map[string]bool }
				require.NoError(t, json.Unmarshal(pair.Value, &st))
				assert.NotContains(t, st.Holders, sid, "%s still lists the session", pair.Key)
				continue
			}
			assert.NotEqual(t, sid, pair.Session, "%s still held by the session", pair.Key)
		}
	}
}

// awaitAll waits for every context and returns how long after start the
// last one ended.
func awaitAll(t *testing.T, start time.Time, ctxs []context.Context, within time.Duration) time.Duration {
	t.Helper()
	for i, h := range ctxs {
		select {
		case <-h.Done():
		case <-time.After(time.Until(start.Add(within))):
			t.Fatalf("context %d not cancelled within %s", i, within)
		}
	}
	return time.Since(start)
}

// fanoutAgent takes more connections from one address than Consul's
// default of 200: one blocking query per holder.
func fanoutAgent(t *testing.T) *integration.Agent {
	return integration.NewAgent(t, integration.WithHCL("limits { http_max_conns_per_client = 5000 }"))
}

// TestSharedSessionDestroyedEndsEveryHolder: locks, semaphore slots and an
// election held through one session; the session is destroyed from
// outside. Every holder ends with its loss, promptly.
func TestSharedSessionDestroyedEndsEveryHolder(t *testing.T) {
	c := fanoutAgent(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	m := holdMixed(t, c, s, "mixed/"+t.Name(), 150, 50)

	start := time.Now()
	_, err := c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	took := awaitAll(t, start, m.all(), 10*time.Second)
	t.Logf("150 locks, 50 slots, 1 election: every context ended %s after the destroy", took)
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated)
	// A watcher sees its key released by the invalidation before the
	// session learns of it: its cause says so, not ErrInvalidated.
	m.checkLost(t, ctx, nil)
	m.checkSemaphoresClean(t, c, s.ID())
}

// TestSharedSessionExpiredEndsEveryHolder: as above, with the agent
// unreachable until the session expires here.
func TestSharedSessionExpiredEndsEveryHolder(t *testing.T) {
	a := fanoutAgent(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	base := "mixed/" + t.Name()
	m := holdMixed(t, c, s, base, 150, 50)
	t.Cleanup(func() {
		_, _ = direct.Session().Destroy(context.Background(), s.ID(), nil)
	})

	p.Set(integration.Hang)
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not expire")
	}
	start := time.Now()
	took := awaitAll(t, start, m.all(), 10*time.Second)
	t.Logf("150 locks, 50 slots, 1 election: every context ended %s after the session expired", took)
	assert.ErrorIs(t, s.Err(), session.ErrExpired)
	p.Set(integration.Pass)
	m.checkLost(t, ctx, session.ErrExpired)
}
