package lock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// fanoutN is how many locks share one session in the fan-out tests
// (CONSULKIT_FANOUT_N overrides it, to measure larger fan-outs).
func fanoutN(t *testing.T) int {
	if v := os.Getenv("CONSULKIT_FANOUT_N"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return n
	}
	return 200
}

// fanoutAgent is an agent of the test's own that takes more blocking
// queries from one address than Consul's default limit of 200 (one per
// held lock, plus the session's renews and the test's requests).
func fanoutAgent(t *testing.T) *integration.Agent {
	return integration.NewAgent(t, integration.WithHCL("limits { http_max_conns_per_client = 5000 }"))
}

// lockMany locks n keys under prefix through s, from n goroutines.
func lockMany(t *testing.T, c *api.Client, s *session.Session, prefix string, n int) ([]*lock.Lock, []context.Context) {
	t.Helper()
	locks := make([]*lock.Lock, n)
	helds := make([]context.Context, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		l, err := lock.New(c, fmt.Sprintf("%s/%d", prefix, i), lock.WithSession(s))
		require.NoError(t, err)
		locks[i] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			helds[i], errs[i] = l.Lock(t.Context())
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return locks, helds
}

// awaitAll waits for every held context and returns how long after start
// the last one ended.
func awaitAll(t *testing.T, start time.Time, helds []context.Context, within time.Duration) time.Duration {
	t.Helper()
	for i, h := range helds {
		select {
		case <-h.Done():
		case <-time.After(time.Until(start.Add(within))):
			t.Fatalf("held context %d not cancelled within %s", i, within)
		}
	}
	return time.Since(start)
}

// TestSharedSessionDestroyedFansOutToEveryLock: many locks held through
// one session; the session is destroyed from outside. Every held context
// ends, with ErrLost, promptly; no Lock reports itself held; the keys are
// free; Unlock reports ErrNotHeld wrapping the loss.
func TestSharedSessionDestroyedFansOutToEveryLock(t *testing.T) {
	c, ct := fanoutAgent(t).CountingClient(t)
	ctx := t.Context()
	n := fanoutN(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	prefix := key(t)
	locks, helds := lockMany(t, c, s, prefix, n)

	ct.Reset()
	start := time.Now()
	_, err := c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	took := awaitAll(t, start, helds, 10*time.Second)
	t.Logf("%d locks: every held context ended %s after the destroy", n, took)
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session was not told of its invalidation")
	}
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated)
	for i, h := range helds {
		assert.ErrorIs(t, context.Cause(h), lock.ErrLost, "lock %d", i)
		assert.True(t, locks[i].Token().IsZero(), "lock %d still reports a token", i)
	}
	for i, l := range locks {
		err := l.Unlock(ctx)
		assert.ErrorIs(t, err, lock.ErrNotHeld, "lock %d", i)
		assert.ErrorIs(t, err, lock.ErrLost, "lock %d", i)
	}
	renews := 0
	for _, r := range ct.Requests() {
		if strings.Contains(r, "/v1/session/renew/") {
			renews++
		}
	}
	t.Logf("%d locks: %d renews sent after the destroy", n, renews)
	pairs, _, err := c.KV().List(ctx, prefix+"/", nil)
	require.NoError(t, err)
	for _, p := range pairs {
		assert.Empty(t, p.Session, "key %s still held", p.Key)
	}
}

// TestSharedSessionExpiredFansOutToEveryLock: as above, but the agent
// becomes unreachable (every request hangs) until the session's deadline:
// the session expires here, and every held context ends at once after.
func TestSharedSessionExpiredFansOutToEveryLock(t *testing.T) {
	a := fanoutAgent(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	ctx := t.Context()
	n := fanoutN(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	prefix := key(t)
	locks, helds := lockMany(t, c, s, prefix, n)
	t.Cleanup(func() {
		// The session may outlive the test in Consul (up to twice its TTL).
		_, _ = direct.Session().Destroy(context.Background(), s.ID(), nil)
		_, _ = direct.KV().DeleteTree(context.Background(), prefix+"/", nil)
	})

	p.Set(integration.Hang)
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session did not expire")
	}
	start := time.Now()
	took := awaitAll(t, start, helds, 10*time.Second)
	t.Logf("%d locks: every held context ended %s after the session expired", n, took)
	assert.ErrorIs(t, s.Err(), session.ErrExpired)
	for i, h := range helds {
		assert.ErrorIs(t, context.Cause(h), lock.ErrLost, "lock %d", i)
		assert.ErrorIs(t, context.Cause(h), session.ErrExpired, "lock %d", i)
		assert.True(t, locks[i].Token().IsZero(), "lock %d still reports a token", i)
	}
	p.Set(integration.Pass)
	ustart := time.Now()
	var wg sync.WaitGroup
	for i, l := range locks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Unlock(ctx)
			assert.ErrorIs(t, err, lock.ErrNotHeld, "lock %d", i)
			assert.ErrorIs(t, err, lock.ErrLost, "lock %d", i)
		}()
	}
	wg.Wait()
	t.Logf("%d Unlocks after the expiry took %s", n, time.Since(ustart))
	// The watcher of a lock whose session expired here sends one release
	// of its key, which the unreachable agent did not get: those keys stay
	// held until Consul drops the session (up to twice its TTL).
	pairs, _, err := direct.KV().List(ctx, prefix+"/", nil)
	require.NoError(t, err)
	held := 0
	for _, p := range pairs {
		if p.Session != "" {
			held++
		}
	}
	t.Logf("%d of %d keys still held by the expired session after Unlock", held, n)
}

// TestSharedSessionKeysDeletedRenews: the keys of many locks held through
// one live session are deleted at once (an operator's delete -recurse):
// every lock is lost, the session lives on, and how many renews the
// watchers send to ask whether the session is behind it is measured.
func TestSharedSessionKeysDeletedRenews(t *testing.T) {
	c, ct := fanoutAgent(t).CountingClient(t)
	ctx := t.Context()
	n := fanoutN(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	prefix := key(t)
	locks, helds := lockMany(t, c, s, prefix, n)
	ct.Reset()
	start := time.Now()
	_, err := c.KV().DeleteTree(ctx, prefix+"/", nil)
	require.NoError(t, err)
	took := awaitAll(t, start, helds, 10*time.Second)
	for _, l := range locks {
		assert.ErrorIs(t, l.Unlock(ctx), lock.ErrLost)
	}
	renews := 0
	for _, r := range ct.Requests() {
		if strings.Contains(r, "/v1/session/renew/") {
			renews++
		}
	}
	t.Logf("%d locks: every held context ended %s after the delete; %d renews sent", n, took, renews)
	assert.NoError(t, s.Err())
}

// TestSharedSessionRenew404FansOutToEveryLock: the watchers' blocking
// queries hang, so none sees its key released when the session is
// destroyed; a renew answered 404 ends the session, and with it every
// held context, at once.
func TestSharedSessionRenew404FansOutToEveryLock(t *testing.T) {
	a := fanoutAgent(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	n := fanoutN(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	prefix := key(t)
	ht.Set(integration.HangBlocking)
	defer ht.Set(nil)
	locks, helds := lockMany(t, c, s, prefix, n)
	_, err := direct.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	for i, h := range helds {
		require.NoError(t, h.Err(), "lock %d saw the loss: the test means nothing", i)
	}
	require.ErrorIs(t, s.Renew(ctx), session.ErrInvalidated)
	start := time.Now()
	took := awaitAll(t, start, helds, 10*time.Second)
	t.Logf("%d locks: every held context ended %s after the renew's 404", n, took)
	for i, h := range helds {
		assert.ErrorIs(t, context.Cause(h), session.ErrInvalidated, "lock %d", i)
		assert.True(t, locks[i].Token().IsZero())
	}
	ht.Set(nil)
	for i, l := range locks {
		assert.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld, "lock %d", i)
	}
}
