package semaphore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// stored is the coordination key's value as the protocol defines it.
type stored struct {
	Limit   int
	Holders map[string]bool
}

// readLock returns the coordination key and its decoded value, or nil.
func readLock(t *testing.T, c *api.Client, prefix string) (*api.KVPair, *stored) {
	t.Helper()
	pair, _, err := c.KV().Get(t.Context(), prefix+"/.lock", nil)
	require.NoError(t, err)
	if pair == nil {
		return nil, nil
	}
	var st stored
	require.NoError(t, json.Unmarshal(pair.Value, &st), "value %q", pair.Value)
	return pair, &st
}

// leftover lists the keys under prefix that a released semaphore should
// not have: all but the coordination key, and that one too if it still
// names holders. (The coordination key stays once created: see the
// package doc.)
func leftover(t *testing.T, c *api.Client, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range keys(t, c, prefix) {
		if k == prefix+"/.lock" {
			if _, st := readLock(t, c, prefix); st != nil && len(st.Holders) == 0 {
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// keys lists the keys under prefix.
func keys(t *testing.T, c *api.Client, prefix string) []string {
	t.Helper()
	ks, _, err := c.KV().Keys(t.Context(), prefix+"/", "", nil)
	require.NoError(t, err)
	return ks
}

func TestValidationBeforeAnyRequest(t *testing.T) {
	c, ct := countingClient(t)
	fn := func(context.Context) error { return nil }
	tests := []struct {
		name string
		run  func() error
	}{
		{"nil client", func() error { _, err := semaphore.New(nil, "p", 1); return err }},
		{"empty prefix", func() error { _, err := semaphore.New(c, "", 1); return err }},
		{"only a slash", func() error { _, err := semaphore.New(c, "/", 1); return err }},
		{"leading slash", func() error { _, err := semaphore.New(c, "/p", 1); return err }},
		{"empty segment", func() error { _, err := semaphore.New(c, "a//b", 1); return err }},
		{"dot segment", func() error { _, err := semaphore.New(c, "a/./b", 1); return err }},
		{"control character", func() error { _, err := semaphore.New(c, "p\n", 1); return err }},
		{"limit zero", func() error { _, err := semaphore.New(c, "p", 0); return err }},
		{"limit negative", func() error { _, err := semaphore.New(c, "p", -2); return err }},
		{"nil session", func() error { _, err := semaphore.New(c, "p", 1, semaphore.WithSession(nil)); return err }},
		{"zero session", func() error {
			_, err := semaphore.New(c, "p", 1, semaphore.WithSession(&session.Session{}))
			return err
		}},
		{"value too large", func() error {
			_, err := semaphore.New(c, "p", 1, semaphore.WithValue(make([]byte, api.MaxValueSize+1)))
			return err
		}},
		{"value too large for a transaction", func() error {
			// Under 512 KiB, but base64-encoded in the acquisition it
			// makes a transaction larger than Consul takes.
			_, err := semaphore.New(c, "p", 1, semaphore.WithValue(make([]byte, 400<<10)))
			return err
		}},
		{"wait time", func() error { _, err := semaphore.New(c, "p", 1, semaphore.WithWaitTime(-time.Second)); return err }},
		{"do nil fn", func() error { return semaphore.Do(t.Context(), c, "p", 1, nil) }},
		{"do bad limit", func() error { return semaphore.Do(t.Context(), c, "p", 0, fn) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.run(), api.ErrInvalid)
		})
	}
	s, err := semaphore.New(c, "p/", 2)
	require.NoError(t, err)
	assert.Equal(t, "p", s.Prefix(), "one trailing slash is ignored")
	assert.Equal(t, 2, s.Limit())
	assert.ErrorIs(t, s.Release(t.Context()), semaphore.ErrNotHeld)
	assert.Zero(t, ct.Count(), "requests sent: %v", ct.Requests())
}

// TestWireFormat checks the keys against Consul's semaphore protocol.
// TestLargeValueAcquires: a value just under the transaction's limit,
// which New accepts, is acquired with and stored whole.
func TestLargeValueAcquires(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	v := bytes.Repeat([]byte{'v'}, 380<<10)
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(integration.NewSession(t, c)), semaphore.WithValue(v))
	require.NoError(t, err)
	_, err = s.Acquire(t.Context())
	require.NoError(t, err)
	holders, err := s.Holders(t.Context())
	require.NoError(t, err)
	require.Len(t, holders, 1)
	pair, _, err := c.KV().Get(t.Context(), prefix+"/"+holders[0], nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, v, pair.Value)
	require.NoError(t, s.Release(t.Context()))
}

func TestWireFormat(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c)
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess), semaphore.WithValue([]byte("worker-1")))
	require.NoError(t, err)

	held, err := s.Acquire(t.Context())
	require.NoError(t, err)

	contender, _, err := c.KV().Get(t.Context(), prefix+"/"+sess.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, contender)
	assert.Equal(t, semaphore.Flag, contender.Flags)
	assert.Equal(t, uint64(0xe0f69a2baa414de0), contender.Flags)
	assert.Equal(t, sess.ID(), contender.Session)
	assert.Equal(t, []byte("worker-1"), contender.Value)

	pair, st := readLock(t, c, prefix)
	require.NotNil(t, pair)
	assert.Equal(t, semaphore.Flag, pair.Flags)
	assert.Empty(t, pair.Session)
	assert.JSONEq(t, fmt.Sprintf(`{"Limit":2,"Holders":{%q:true}}`, sess.ID()), string(pair.Value))
	assert.Equal(t, 2, st.Limit)

	holders, err := s.Holders(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sess.ID()}, holders)

	_, err = s.Acquire(t.Context())
	assert.ErrorIs(t, err, semaphore.ErrHeld)

	require.NoError(t, s.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrReleased)
	assert.Empty(t, leftover(t, c, prefix), "contender and .lock keys removed after the last release")
	assert.ErrorIs(t, s.Release(t.Context()), semaphore.ErrNotHeld)
}

// TestRequestCount measures an uncontended acquire and release with a
// reused session.
func TestRequestCount(t *testing.T) {
	c, ct := countingClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, newClient(t))
	s, err := semaphore.New(c, prefix, 3, semaphore.WithSession(sess))
	require.NoError(t, err)
	for i := range 2 {
		ct.Reset()
		held, err := s.Acquire(t.Context())
		require.NoError(t, err)
		waitWatchSent(t, ct)
		require.NoError(t, s.Release(t.Context()))
		integration.WaitDone(t, held, time.Second)
		reqs := ct.Requests()
		t.Logf("acquire + release #%d: %d requests: %v", i+1, len(reqs), reqs)
		// The first acquisition reads the prefix first; the second tries
		// the view the first Release left.
		assert.LessOrEqual(t, len(reqs), 4-i)
	}
}

// TestHeldCycleKeepsConnections: Release lets the watch's blocking query
// end by itself instead of cancelling it (which would make net/http close
// the connection and open a new one on every cycle).
func TestHeldCycleKeepsConnections(t *testing.T) {
	c, ct := countingClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, newClient(t))
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	cycle := func() {
		ct.Reset()
		held, err := s.Acquire(t.Context())
		require.NoError(t, err)
		waitWatchSent(t, ct)
		time.Sleep(20 * time.Millisecond) // parked
		require.NoError(t, s.Release(t.Context()))
		integration.WaitDone(t, held, time.Second)
	}
	cycle()
	cycle()
	dials := ct.Dials()
	for range 5 {
		cycle()
	}
	assert.Equal(t, dials, ct.Dials(), "connections opened by held cycles: %v", ct.Requests())
}

// TestReleaseBeforeWatchStarts: back to back, Release may come before the
// watcher has sent anything; the watcher then sends nothing, and the
// slot is released all the same.
func TestReleaseBeforeWatchStarts(t *testing.T) {
	c, ct := countingClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, newClient(t))
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	for range 20 {
		ct.Reset()
		held, err := s.Acquire(t.Context())
		require.NoError(t, err)
		require.NoError(t, s.Release(t.Context()))
		integration.WaitDone(t, held, time.Second)
		assert.LessOrEqual(t, ct.Count(), int64(4), "%v", ct.Requests())
	}
	hs, err := s.Holders(t.Context())
	require.NoError(t, err)
	assert.Empty(t, hs)
}

// TestAcquireAfterReleaseSkipsRead: an Acquire right after a Release tries
// the prefix as the Release left it, without reading first.
func TestAcquireAfterReleaseSkipsRead(t *testing.T) {
	c, ct := countingClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, newClient(t))
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	_, err = s.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, s.Release(t.Context()))
	for range 5 {
		ct.Reset()
		_, err = s.Acquire(t.Context())
		require.NoError(t, err)
		require.NoError(t, s.Release(t.Context()))
		for _, r := range ct.Requests() {
			if strings.HasPrefix(r, "GET ") {
				assert.Contains(t, r, "index=", "only the watch reads: %v", ct.Requests())
			}
		}
		assert.LessOrEqual(t, ct.Count(), int64(3), "%v", ct.Requests())
	}
}

// TestStaleViewAfterRelease: when the prefix changed after a Release, the
// next acquisition's try from the view the Release left is refused by its
// CAS, and the limit holds.
func TestStaleViewAfterRelease(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	s1, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	s2, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)

	_, err = s1.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, s1.Release(t.Context())) // s1 now believes the slot free
	_, err = s2.Acquire(t.Context())
	require.NoError(t, err)
	_, err = s1.TryAcquire(t.Context())
	require.ErrorIs(t, err, semaphore.ErrNoSlot)
	hs, err := s1.Holders(t.Context())
	require.NoError(t, err)
	assert.Len(t, hs, 1)

	require.NoError(t, s2.Release(t.Context()))
	_, err = s1.TryAcquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, s1.Release(t.Context()))
}

// TestConcurrentRelease: of two Release calls at once, one releases and
// the other gets ErrNotHeld.
func TestConcurrentRelease(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	for range 10 {
		held, err := s.Acquire(t.Context())
		require.NoError(t, err)
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- s.Release(t.Context()) }()
		}
		e1, e2 := <-errs, <-errs
		if e1 != nil {
			e1, e2 = e2, e1
		}
		require.NoError(t, e1)
		require.ErrorIs(t, e2, semaphore.ErrNotHeld)
		assert.NotErrorIs(t, e2, semaphore.ErrLost)
		integration.WaitDone(t, held, time.Second)
	}
	hs, err := s.Holders(t.Context())
	require.NoError(t, err)
	assert.Empty(t, hs)
}

// TestWaitingIsBlocking: a waiter sends a blocking query and nothing else
// until the slot is freed.
func TestWaitingIsBlocking(t *testing.T) {
	plain := newClient(t)
	c, ct := countingClient(t)
	prefix := semPrefix(t)
	sa, sb := integration.NewSession(t, plain), integration.NewSession(t, plain)
	a, err := semaphore.New(plain, prefix, 1, semaphore.WithSession(sa))
	require.NoError(t, err)
	b, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sb))
	require.NoError(t, err)
	_, err = a.Acquire(t.Context())
	require.NoError(t, err)

	got := make(chan error, 1)
	var heldB context.Context
	go func() {
		var err error
		heldB, err = b.Acquire(t.Context())
		got <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	assert.LessOrEqual(t, ct.Count(), int64(2), "waiting sent: %v", ct.Requests())
	released := time.Now()
	require.NoError(t, a.Release(t.Context()))
	select {
	case err := <-got:
		require.NoError(t, err)
		t.Logf("slot handed over in %s", time.Since(released))
	case <-time.After(5 * time.Second):
		t.Fatal("b not woken by the release")
	}
	require.NoError(t, b.Release(t.Context()))
	integration.WaitDone(t, heldB, time.Second)
}

func TestTryAcquireNoSlot(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sa, sb := integration.NewSession(t, c), integration.NewSession(t, c)
	a, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sa))
	require.NoError(t, err)
	b, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sb))
	require.NoError(t, err)

	_, err = a.TryAcquire(t.Context())
	require.NoError(t, err)
	_, err = b.TryAcquire(t.Context())
	require.ErrorIs(t, err, semaphore.ErrNoSlot)
	assert.Equal(t, []string{prefix + "/.lock", prefix + "/" + sa.ID()}, keys(t, c, prefix), "no contender key for b")

	require.NoError(t, a.Release(t.Context()))
	held, err := b.TryAcquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, b.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
}

// TestNeverOverLimit runs many holders against a small limit: neither the
// holders themselves nor an independent watcher of the coordination key
// ever see more than the limit.
func TestNeverOverLimit(t *testing.T) {
	const (
		limit   = 3
		workers = 12
		rounds  = 6
	)
	c := newClient(t)
	prefix := semPrefix(t)

	// An independent checker: every version of .lock lists at most limit
	// holders.
	wctx, stopWatch := context.WithCancel(t.Context())
	var maxStored atomic.Int64
	versions := atomic.Int64{}
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- api.Watch(wctx, nil, func(ctx context.Context, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error) {
			q.Consistency = api.ConsistencyConsistent
			return c.KV().Get(ctx, prefix+"/.lock", q)
		}, func(p *api.KVPair, _ *api.QueryMeta) error {
			if p == nil {
				return nil
			}
			versions.Add(1)
			var st stored
			if err := json.Unmarshal(p.Value, &st); err != nil {
				return err
			}
			if n := int64(len(st.Holders)); n > maxStored.Load() {
				maxStored.Store(n)
			}
			return nil
		})
	}()

	var (
		active, maxActive, acquisitions atomic.Int64
		wg                              sync.WaitGroup
		errs                            = make(chan error, workers)
	)
	for range workers {
		sess := integration.NewSession(t, c)
		s, err := semaphore.New(c, prefix, limit, semaphore.WithSession(sess))
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				held, err := s.Acquire(t.Context())
				if err != nil {
					errs <- err
					return
				}
				n := active.Add(1)
				for {
					m := maxActive.Load()
					if n <= m || maxActive.CompareAndSwap(m, n) {
						break
					}
				}
				acquisitions.Add(1)
				time.Sleep(20 * time.Millisecond)
				if held.Err() != nil {
					errs <- fmt.Errorf("slot lost while held: %w", context.Cause(held))
				}
				active.Add(-1)
				if err := s.Release(t.Context()); err != nil {
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
	stopWatch()
	assert.ErrorIs(t, <-watchDone, context.Canceled)
	t.Logf("%d acquisitions, at most %d at once, %d versions of .lock seen, at most %d holders stored",
		acquisitions.Load(), maxActive.Load(), versions.Load(), maxStored.Load())
	assert.Equal(t, int64(workers*rounds), acquisitions.Load())
	assert.LessOrEqual(t, maxActive.Load(), int64(limit))
	assert.LessOrEqual(t, maxStored.Load(), int64(limit))
	assert.Empty(t, leftover(t, c, prefix), "everything removed after the last release")
}

func TestDestroyedSessionFreesSlot(t *testing.T) {
	for _, behavior := range []session.Behavior{session.Release, session.Delete} {
		t.Run(string(behavior), func(t *testing.T) {
			c := newClient(t)
			prefix := semPrefix(t)
			sa, err := session.New(t.Context(), c, session.WithBehavior(behavior))
			require.NoError(t, err)
			t.Cleanup(func() { _ = sa.Close(context.Background()) })
			sb := integration.NewSession(t, c)
			a, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sa))
			require.NoError(t, err)
			b, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sb))
			require.NoError(t, err)

			heldA, err := a.Acquire(t.Context())
			require.NoError(t, err)
			type result struct {
				ctx context.Context
				err error
			}
			got := make(chan result, 1)
			go func() {
				ctx, err := b.Acquire(t.Context())
				got <- result{ctx, err}
			}()
			select {
			case <-got:
				t.Fatal("b acquired while a holds the only slot")
			case <-time.After(200 * time.Millisecond):
			}

			_, err = c.Session().Destroy(t.Context(), sa.ID(), nil)
			require.NoError(t, err)
			integration.WaitDone(t, heldA, 5*time.Second)
			assert.ErrorIs(t, context.Cause(heldA), semaphore.ErrLost)
			var r result
			select {
			case r = <-got:
				require.NoError(t, r.err)
			case <-time.After(5 * time.Second):
				t.Fatal("b did not get the slot freed by a's destroyed session")
			}
			holders, err := b.Holders(t.Context())
			require.NoError(t, err)
			assert.Equal(t, []string{sb.ID()}, holders)
			err = a.Release(t.Context())
			assert.ErrorIs(t, err, semaphore.ErrNotHeld)

			require.NoError(t, b.Release(t.Context()))
			integration.WaitDone(t, r.ctx, time.Second)
			assert.Empty(t, leftover(t, c, prefix))
		})
	}
}

func TestLimitConflict(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sa, sb := integration.NewSession(t, c), integration.NewSession(t, c)
	a, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sa))
	require.NoError(t, err)
	b, err := semaphore.New(c, prefix, 3, semaphore.WithSession(sb))
	require.NoError(t, err)

	_, err = a.Acquire(t.Context())
	require.NoError(t, err)
	_, err = b.Acquire(t.Context())
	assert.ErrorIs(t, err, semaphore.ErrLimitConflict)
	_, err = b.TryAcquire(t.Context())
	assert.ErrorIs(t, err, semaphore.ErrLimitConflict)
	assert.Len(t, keys(t, c, prefix), 2, "b left nothing behind")

	// Without live holders, the stored limit is replaced.
	require.NoError(t, a.Release(t.Context()))
	_, err = b.Acquire(t.Context())
	require.NoError(t, err)
	_, st := readLock(t, c, prefix)
	require.NotNil(t, st)
	assert.Equal(t, 3, st.Limit)
	require.NoError(t, b.Release(t.Context()))
}

func TestLeftoverLockWithoutHoldersTakenOver(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	// What the official client leaves behind: it never deletes .lock.
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: prefix + "/.lock", Flags: semaphore.Flag,
		Value: []byte(`{"Limit":5,"Holders":{}}`)}, nil)
	require.NoError(t, err)
	sess := integration.NewSession(t, c)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	_, err = s.TryAcquire(t.Context())
	require.NoError(t, err)
	_, st := readLock(t, c, prefix)
	assert.Equal(t, 1, st.Limit)
	require.NoError(t, s.Release(t.Context()))
}

func TestStaleHoldersPruned(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sb := integration.NewSession(t, c)
	ghost := "0b1d7a57-0000-4000-8000-000000000001"
	noSession := "0b1d7a57-0000-4000-8000-000000000002"
	// A holder whose contender key is gone, and one whose contender key
	// lost its session.
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: prefix + "/" + noSession, Flags: semaphore.Flag}, nil)
	require.NoError(t, err)
	_, err = c.KV().Put(t.Context(), &api.KVPair{Key: prefix + "/.lock", Flags: semaphore.Flag,
		Value: fmt.Appendf(nil, `{"Limit":1,"Holders":{%q:true,%q:true}}`, ghost, noSession)}, nil)
	require.NoError(t, err)

	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sb))
	require.NoError(t, err)
	holders, err := s.Holders(t.Context())
	require.NoError(t, err)
	assert.Empty(t, holders, "dead holders are not counted")

	held, err := s.TryAcquire(t.Context())
	require.NoError(t, err)
	_, st := readLock(t, c, prefix)
	assert.Equal(t, map[string]bool{sb.ID(): true}, st.Holders)
	require.NoError(t, s.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
	assert.Equal(t, []string{prefix + "/" + noSession}, leftover(t, c, prefix), "the .lock key has no holders; foreign keys are left")
}

func TestCancelledAcquireLeavesNothing(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sa, sb := integration.NewSession(t, c), integration.NewSession(t, c)
	a, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sa))
	require.NoError(t, err)
	b, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sb))
	require.NoError(t, err)

	_, err = a.Acquire(t.Context())
	require.NoError(t, err)
	before, _ := readLock(t, c, prefix)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = b.Acquire(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	pair, _, err := c.KV().Get(t.Context(), prefix+"/"+sb.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, pair, "no contender key after a cancelled acquisition")
	after, st := readLock(t, c, prefix)
	assert.Equal(t, before.ModifyIndex, after.ModifyIndex)
	assert.Equal(t, map[string]bool{sa.ID(): true}, st.Holders)

	// b can try again later (the claim on its contender key was given up).
	require.NoError(t, a.Release(t.Context()))
	held, err := b.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, b.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
}

// An Acquire whose ctx has ended while it makes its own session returns
// ctx.Err() itself, as it promises, and leaves no session behind.
func TestAcquireWithEndedContextReturnsItsError(t *testing.T) {
	c := newClient(t)
	name := "own-" + t.Name()
	s, err := semaphore.New(c, semPrefix(t), 1, semaphore.WithSessionOptions(session.WithName(name)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	held, err := s.Acquire(ctx)
	assert.Nil(t, held)
	assert.Equal(t, context.Canceled, err, "ctx.Err() itself") //nolint:errorlint // the promise is ctx.Err() itself
	assert.Empty(t, integration.SessionsNamed(t, c, name))
}

func TestLockRemovedAfterLastRelease(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sa, sb := integration.NewSession(t, c), integration.NewSession(t, c)
	a, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sa))
	require.NoError(t, err)
	b, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sb))
	require.NoError(t, err)
	_, err = a.Acquire(t.Context())
	require.NoError(t, err)
	_, err = b.Acquire(t.Context())
	require.NoError(t, err)

	require.NoError(t, a.Release(t.Context()))
	_, st := readLock(t, c, prefix)
	require.NotNil(t, st)
	assert.Equal(t, map[string]bool{sb.ID(): true}, st.Holders)
	assert.Equal(t, []string{prefix + "/.lock", prefix + "/" + sb.ID()}, keys(t, c, prefix))

	require.NoError(t, b.Release(t.Context()))
	assert.Empty(t, leftover(t, c, prefix))
}

func TestLossDetected(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, c *api.Client, prefix, sid string)
	}{
		{"contender key deleted", deleteContender},
		{"contender key released", releaseContender},
		{"removed from holders", func(t *testing.T, c *api.Client, prefix, sid string) {
			pair, _, err := c.KV().Get(t.Context(), prefix+"/.lock", nil)
			require.NoError(t, err)
			pair.Value = []byte(`{"Limit":2,"Holders":{}}`)
			ok, _, err := c.KV().CAS(t.Context(), pair, nil)
			require.NoError(t, err)
			require.True(t, ok)
		}},
		{"lock key deleted", func(t *testing.T, c *api.Client, prefix, sid string) {
			_, err := c.KV().Delete(t.Context(), prefix+"/.lock", nil)
			require.NoError(t, err)
		}},
		{"lock key overwritten", func(t *testing.T, c *api.Client, prefix, sid string) {
			_, err := c.KV().Put(t.Context(), &api.KVPair{Key: prefix + "/.lock", Value: []byte("x")}, nil)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t)
			prefix := semPrefix(t)
			sess := integration.NewSession(t, c)
			s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
			require.NoError(t, err)
			held, err := s.Acquire(t.Context())
			require.NoError(t, err)
			tt.break_(t, c, prefix, sess.ID())
			integration.WaitDone(t, held, 5*time.Second)
			assert.ErrorIs(t, context.Cause(held), semaphore.ErrLost)
			assert.ErrorIs(t, s.Release(t.Context()), semaphore.ErrNotHeld)
			// What was left of the slot is cleaned up.
			pair, _, err := c.KV().Get(t.Context(), prefix+"/"+sess.ID(), nil)
			require.NoError(t, err)
			assert.Nil(t, pair, "contender key removed after the loss")
			// The semaphore can be acquired again.
			if tt.name != "lock key overwritten" {
				held, err = s.Acquire(t.Context())
				require.NoError(t, err)
				require.NoError(t, s.Release(t.Context()))
				integration.WaitDone(t, held, time.Second)
			}
		})
	}
}

func TestConflictingLockKey(t *testing.T) {
	c := newClient(t)
	for _, tt := range []struct {
		name string
		pair api.KVPair
	}{
		{"other flags", api.KVPair{Flags: 1, Value: []byte(`{"Limit":1,"Holders":{}}`)}},
		{"not JSON", api.KVPair{Flags: semaphore.Flag, Value: []byte("hello")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := semPrefix(t)
			p := tt.pair
			p.Key = prefix + "/.lock"
			_, err := c.KV().Put(t.Context(), &p, nil)
			require.NoError(t, err)
			s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, c)))
			require.NoError(t, err)
			_, err = s.Acquire(t.Context())
			assert.ErrorIs(t, err, semaphore.ErrConflict)
			_, err = s.Holders(t.Context())
			assert.ErrorIs(t, err, semaphore.ErrConflict)
			got, _, err := c.KV().Get(t.Context(), p.Key, nil)
			require.NoError(t, err)
			assert.Equal(t, p.Value, got.Value, "a foreign key is not overwritten")
		})
	}
}

func TestSharedSessionClaim(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c)
	a, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	b, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	_, err = a.Acquire(t.Context())
	require.NoError(t, err)
	_, err = b.Acquire(t.Context())
	assert.ErrorIs(t, err, session.ErrClaimed)
	require.NoError(t, a.Release(t.Context()))
}

func TestOwnSessions(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSessionOptions(session.WithName(t.Name())))
	require.NoError(t, err)
	held, err := s.Acquire(t.Context())
	require.NoError(t, err)
	holders, err := s.Holders(t.Context())
	require.NoError(t, err)
	require.Len(t, holders, 1)
	info, _, err := c.Session().Info(t.Context(), holders[0], nil)
	require.NoError(t, err)
	require.NotNil(t, info)
	assert.Equal(t, api.SessionBehaviorDelete, info.Behavior)
	require.NoError(t, s.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
	info, _, err = c.Session().Info(t.Context(), holders[0], nil)
	require.NoError(t, err)
	assert.Nil(t, info, "the own session is destroyed at Release")
}

func TestDo(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c)
	ran := false
	err := semaphore.Do(t.Context(), c, prefix, 2, func(ctx context.Context) error {
		ran = true
		holders, err := (func() ([]string, error) {
			s, err := semaphore.New(c, prefix, 2)
			if err != nil {
				return nil, err
			}
			return s.Holders(ctx)
		})()
		require.NoError(t, err)
		assert.Equal(t, []string{sess.ID()}, holders)
		return nil
	}, semaphore.WithSession(sess))
	require.NoError(t, err)
	assert.True(t, ran)
	assert.Empty(t, leftover(t, c, prefix))

	boom := errors.New("boom")
	err = semaphore.Do(t.Context(), c, prefix, 2, func(context.Context) error { return boom }, semaphore.WithSession(sess))
	assert.Equal(t, boom, err, "fn's error as it is")
	assert.Empty(t, leftover(t, c, prefix))
}

// TestTransientFaults: server errors while holding do not lose the slot,
// and Release retries through them.
func TestTransientFaults(t *testing.T) {
	a := integration.Shared(t)
	plain := newClient(t)
	c, proxy := a.ProxiedClient(t)
	prefix := semPrefix(t)
	sa, sb := integration.NewSession(t, plain), integration.NewSession(t, plain)
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sa))
	require.NoError(t, err)
	other, err := semaphore.New(plain, prefix, 2, semaphore.WithSession(sb))
	require.NoError(t, err)

	held, err := s.Acquire(t.Context())
	require.NoError(t, err)
	// Wait until the watch (the third request) is parked behind the proxy.
	require.Eventually(t, func() bool { return proxy.Requests() >= 3 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	proxy.Set(integration.ServerError)
	// Wake the watch: its next queries fail.
	_, err = other.Acquire(t.Context())
	require.NoError(t, err)
	time.Sleep(time.Second)
	assert.NoError(t, held.Err(), "slot lost on transient errors")

	proxy.Set(integration.NoLeader)
	go func() {
		time.Sleep(500 * time.Millisecond)
		proxy.Set(integration.Pass)
	}()
	require.NoError(t, s.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrReleased)
	holders, err := other.Holders(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{sb.ID()}, holders)
	require.NoError(t, other.Release(t.Context()))
	assert.Empty(t, leftover(t, plain, prefix))
}

func TestAcquireRightAfterLoss(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	sess := integration.NewSession(t, c)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	for range 3 {
		held, err := s.Acquire(t.Context())
		require.NoError(t, err)
		_, err = c.KV().Delete(t.Context(), prefix+"/"+sess.ID(), nil)
		require.NoError(t, err)
		integration.WaitDone(t, held, 5*time.Second)
		// No Release in between: the lost slot's cleanup may still be
		// running, and Acquire must wait for it rather than fail or race it.
		held, err = s.Acquire(t.Context())
		require.NoError(t, err)
		holders, err := s.Holders(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{sess.ID()}, holders)
		require.NoError(t, s.Release(t.Context()))
		integration.WaitDone(t, held, time.Second)
	}
}

// TestOwnSessionLostWhileWaiting: an Acquire waiting through a session the
// Semaphore made for itself waits on with a new one when that one is
// invalidated: nothing was held through it. A caller's session ends the
// wait with ErrInvalidated.
func TestOwnSessionLostWhileWaiting(t *testing.T) {
	c := newClient(t)
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("own=%t", own), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			prefix := semPrefix(t)
			a, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
			require.NoError(t, err)
			_, err = a.Acquire(ctx)
			require.NoError(t, err)

			name := "waiter " + t.Name()
			opt := semaphore.WithSessionOptions(session.WithName(name), session.WithTTL(10*time.Second))
			if !own {
				opt = semaphore.WithSession(integration.NewSession(t, c, session.WithName(name)))
			}
			b, err := semaphore.New(c, prefix, 1, opt)
			require.NoError(t, err)
			got := make(chan error, 1)
			go func() {
				_, err := b.Acquire(ctx)
				got <- err
			}()
			first := integration.WaitSessionNamed(t, c, name)
			time.Sleep(200 * time.Millisecond) // parked on the prefix
			_, err = c.Session().Destroy(ctx, first, nil)
			require.NoError(t, err)
			if !own {
				select {
				case err := <-got:
					assert.ErrorIs(t, err, session.ErrInvalidated)
				case <-time.After(10 * time.Second):
					t.Fatal("Acquire went on with a session Consul no longer has")
				}
				require.NoError(t, a.Release(ctx))
				return
			}
			second := integration.WaitSessionNamed(t, c, name, first)
			select {
			case err := <-got:
				t.Fatalf("Acquire ended when its own session was destroyed: %v", err)
			default:
			}
			require.NoError(t, a.Release(ctx))
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("the waiter did not acquire")
			}
			holders, err := b.Holders(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{second}, holders)
			require.NoError(t, b.Release(ctx))
			assert.Empty(t, integration.SessionsNamed(t, c, name), "the Semaphore's sessions are all destroyed")
		})
	}
}

// TestUnconfirmedSlotIsLost: a watch whose reads fail while the
// session renews reports the slot lost after two session TTLs, and lets it
// go while the reads still fail (a cleanup that read first gave up, and
// the live session kept the slot, for nobody); a quiet watch keeps
// confirming its slot.
func TestUnconfirmedSlotIsLost(t *testing.T) {
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(0))
	quiet, err := semaphore.New(c, semPrefix(t)+"/quiet", 1, semaphore.WithSession(s))
	require.NoError(t, err)
	quietHeld, err := quiet.Acquire(ctx)
	require.NoError(t, err)

	blindPrefix := semPrefix(t) + "/blind"
	blind, err := semaphore.New(c, blindPrefix, 1, semaphore.WithSession(s))
	require.NoError(t, err)
	t.Cleanup(func() { ht.Set(nil) })
	held, err := blind.Acquire(ctx)
	require.NoError(t, err)
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blind") {
			return errors.New("injected: connection reset")
		}
		return nil
	})
	select {
	case <-held.Done():
	case <-time.After(40 * time.Second):
		t.Fatal("an unconfirmed slot still reported held after 40s")
	}
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrLost)
	assert.ErrorIs(t, context.Cause(held), semaphore.ErrUnconfirmed)
	assert.NoError(t, s.Err(), "the session itself lived on")
	observer, err := semaphore.New(a.Client(t), blindPrefix, 1)
	require.NoError(t, err)
	var holders []string
	if !assert.Eventually(t, func() bool {
		holders, err = observer.Holders(ctx)
		return err == nil && len(holders) == 0
	}, 10*time.Second, 50*time.Millisecond, "the slot is not let go while the reads fail") {
		t.Logf("holders %v (session %s), err %v", holders, s.ID(), err)
	}
	ht.Set(nil)
	assert.ErrorIs(t, blind.Release(ctx), semaphore.ErrLost)

	assert.NoError(t, quietHeld.Err(), "a quiet watch confirms its slot")
	require.NoError(t, quiet.Release(ctx))
}

// TestOwnSessionAcquireFailsAtOnceOnLimitConflict: an Acquire with a
// session of its own reports a limit conflict at once, as with a caller's
// session: closing its session after the failure is not a loss to recover
// from.
func TestOwnSessionAcquireFailsAtOnceOnLimitConflict(t *testing.T) {
	c := newClient(t)
	prefix := semPrefix(t)
	a, err := semaphore.New(c, prefix, 2, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	_, err = a.Acquire(t.Context())
	require.NoError(t, err)
	name := "conflict " + t.Name()
	b, err := semaphore.New(c, prefix, 3, semaphore.WithSessionOptions(session.WithName(name)))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = b.Acquire(ctx)
	assert.ErrorIs(t, err, semaphore.ErrLimitConflict)
	assert.NoError(t, ctx.Err(), "Acquire went on after the conflict")
	assert.Empty(t, integration.SessionsNamed(t, c, name), "its session is destroyed")
	require.NoError(t, a.Release(t.Context()))
}

// TestAcquireAfterTheSessionWasDestroyedHolding: a caller's session that
// Consul invalidated while it held a slot leaves a lock-delay on its
// contender key. An Acquire through that session before its renew loop
// has found out (up to TTL/2) is refused for that delay: it must say the
// session is gone (ErrInvalidated), which a caller acts on by replacing
// it, not hand back Consul's raw refusal.
func TestAcquireAfterTheSessionWasDestroyedHolding(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	prefix := semPrefix(t)
	// The renew the watcher sends after the loss fails (transiently), so
	// that the session does not know yet when Acquire is refused.
	hc, ht := integration.Shared(t).HookedClient(t)
	var renewsPass atomic.Bool
	ht.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/session/renew/") && !renewsPass.Load() {
			return errors.New("renew failed by the test")
		}
		return nil
	})
	sess := integration.NewSession(t, hc, session.WithTTL(time.Minute), session.WithLockDelay(15*time.Second), session.WithBehavior(session.Delete))
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	held, err := s.Acquire(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, sess.ID(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 10*time.Second)
	assert.ErrorIs(t, s.Release(ctx), semaphore.ErrNotHeld)
	require.NoError(t, sess.Err(), "the renew loop must not have found out yet for this test to mean anything")
	renewsPass.Store(true)

	s2, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = s2.Acquire(actx)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.NoError(t, actx.Err(), "the refusal ends Acquire at once")
	assert.ErrorIs(t, sess.Err(), session.ErrInvalidated, "the session itself is told at once")
}

// TestHoldersUsesTheSessionOptions: a Semaphore that makes its sessions
// from options with a token (the client has none) reads the prefix with
// that token too: Holders was refused (403) while its acquisitions wrote
// the prefix.
func TestHoldersUsesTheSessionOptions(t *testing.T) {
	a := integration.NewACLAgent(t)
	cfg := a.Config()
	cfg.Token = "" // the options carry it
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	s, err := semaphore.New(c, "semaphore/with-options", 2, semaphore.WithSessionOptions(
		session.WithWriteOptions(api.WriteOptions{Token: a.Token})))
	require.NoError(t, err)
	holders, err := s.Holders(t.Context())
	require.NoError(t, err)
	assert.Empty(t, holders)

	_, err = s.Acquire(t.Context())
	require.NoError(t, err)
	holders, err = s.Holders(t.Context())
	require.NoError(t, err)
	assert.Len(t, holders, 1)
	require.NoError(t, s.Release(t.Context()))
}
