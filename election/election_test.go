package election_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestLargeValueCampaignsAndProclaims: a value just under the
// transaction's limit is campaigned and proclaimed with.
func TestLargeValueCampaignsAndProclaims(t *testing.T) {
	c, key, _, e := newCandidate(t)
	leading, err := e.Campaign(t.Context(), bytes.Repeat([]byte{'x'}, 380<<10))
	require.NoError(t, err)
	require.NoError(t, leading.Err())
	v := bytes.Repeat([]byte{'y'}, 380<<10)
	require.NoError(t, e.Proclaim(t.Context(), v))
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, v, pair.Value)
	require.NoError(t, e.Resign(t.Context()))
}

func TestValidationBeforeAnyRequest(t *testing.T) {
	c, ct := countingClient(t)
	big := make([]byte, api.MaxValueSize+1)
	// Under 512 KiB, but base64-encoded in the acquisition it makes a
	// transaction larger than Consul takes.
	tooBigForTxn := make([]byte, 400<<10)
	fn := func(context.Context) error { return nil }

	tests := []struct {
		name string
		run  func() error
	}{
		{"nil client", func() error { _, err := election.New(nil, "k"); return err }},
		{"empty key", func() error { _, err := election.New(c, ""); return err }},
		{"leading slash", func() error { _, err := election.New(c, "/k"); return err }},
		{"control character", func() error { _, err := election.New(c, "k\x00"); return err }},
		{"nil session", func() error { _, err := election.New(c, "k", election.WithSession(nil)); return err }},
		{"zero session", func() error { _, err := election.New(c, "k", election.WithSession(&session.Session{})); return err }},
		{"wait time zero", func() error { _, err := election.New(c, "k", election.WithWaitTime(0)); return err }},
		{"wait time too long", func() error { _, err := election.New(c, "k", election.WithWaitTime(11*time.Minute)); return err }},
		{"campaign value too large", func() error {
			e, err := election.New(c, "k")
			require.NoError(t, err)
			_, err = e.Campaign(t.Context(), big)
			return err
		}},
		{"proclaim value too large", func() error {
			e, err := election.New(c, "k")
			require.NoError(t, err)
			return e.Proclaim(t.Context(), big)
		}},
		{"campaign value too large for a transaction", func() error {
			e, err := election.New(c, "k")
			require.NoError(t, err)
			_, err = e.Campaign(t.Context(), tooBigForTxn)
			return err
		}},
		{"proclaim value too large for a transaction", func() error {
			e, err := election.New(c, "k")
			require.NoError(t, err)
			return e.Proclaim(t.Context(), tooBigForTxn)
		}},
		{"run value too large for a transaction", func() error { return election.Run(t.Context(), c, "k", tooBigForTxn, fn) }},
		{"run nil fn", func() error { return election.Run(t.Context(), c, "k", nil, nil) }},
		{"run value too large", func() error { return election.Run(t.Context(), c, "k", big, fn) }},
		{"run bad key", func() error { return election.Run(t.Context(), c, "", nil, fn) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			assert.ErrorIs(t, err, api.ErrInvalid)
		})
	}
	assert.Zero(t, ct.Count(), "requests sent: %v", ct.Requests())

	// Not leading: no request either.
	e, err := election.New(c, "k")
	require.NoError(t, err)
	assert.ErrorIs(t, e.Resign(t.Context()), election.ErrNotLeader)
	assert.ErrorIs(t, e.Proclaim(t.Context(), []byte("x")), election.ErrNotLeader)
	assert.True(t, e.Token().IsZero())
	assert.Zero(t, ct.Count(), "requests sent: %v", ct.Requests())
}

func TestCampaignLeaderResign(t *testing.T) {
	c, key, s, e := newCandidate(t)

	_, err := e.Leader(t.Context())
	require.ErrorIs(t, err, election.ErrNoLeader)

	leading, err := e.Campaign(t.Context(), []byte("10.0.0.7:9000"))
	require.NoError(t, err)
	require.NoError(t, leading.Err())

	tok := e.Token()
	assert.Equal(t, key, tok.Key)
	assert.Equal(t, s.ID(), tok.Session)
	assert.NotZero(t, tok.ModifyIndex)

	l, err := e.Leader(t.Context())
	require.NoError(t, err)
	assert.Equal(t, s.ID(), l.Session)
	assert.Equal(t, []byte("10.0.0.7:9000"), l.Value)
	assert.Equal(t, tok, l.Token)

	// The key speaks Consul's lock protocol.
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, lock.Flag, pair.Flags)
	assert.Equal(t, s.ID(), pair.Session)

	_, err = e.Campaign(t.Context(), nil)
	assert.ErrorIs(t, err, election.ErrLeading)

	require.NoError(t, e.Resign(t.Context()))
	integration.WaitDone(t, leading, time.Second)
	assert.ErrorIs(t, context.Cause(leading), election.ErrResigned)
	assert.True(t, e.Token().IsZero())
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader)
	assert.ErrorIs(t, e.Resign(t.Context()), election.ErrNotLeader)

	// Campaign again on the same Election: a new term with a newer token.
	leading2, err := e.Campaign(t.Context(), []byte("again"))
	require.NoError(t, err)
	assert.True(t, e.Token().Newer(tok))
	require.NoError(t, e.Resign(t.Context()))
	integration.WaitDone(t, leading2, time.Second)
}

func TestHandoverOnResign(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	// A lock-delay does not apply to a resignation.
	sa := integration.NewSession(t, c, session.WithLockDelay(15*time.Second))
	sb := integration.NewSession(t, c)
	a, err := election.New(c, key, election.WithSession(sa))
	require.NoError(t, err)
	b, err := election.New(c, key, election.WithSession(sb))
	require.NoError(t, err)

	leadingA, err := a.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	tokA := a.Token()

	type result struct {
		ctx context.Context
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		ctx, err := b.Campaign(t.Context(), []byte("b"))
		got <- result{ctx, err, time.Now()}
	}()
	select {
	case r := <-got:
		t.Fatalf("b elected while a leads: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}

	resigned := time.Now()
	require.NoError(t, a.Resign(t.Context()))
	assert.ErrorIs(t, context.Cause(leadingA), election.ErrResigned)
	r := <-got
	require.NoError(t, r.err)
	assert.Less(t, r.at.Sub(resigned), 2*time.Second, "handover took too long")
	assert.True(t, b.Token().Newer(tokA))

	l, err := a.Leader(t.Context())
	require.NoError(t, err)
	assert.Equal(t, sb.ID(), l.Session)
	assert.Equal(t, []byte("b"), l.Value)
	require.NoError(t, b.Resign(t.Context()))
	integration.WaitDone(t, r.ctx, time.Second)
}

func TestFailoverWhenSessionDestroyed(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	sa, err := session.New(t.Context(), c, session.WithLockDelay(0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sa.Close(context.Background()) })
	sb := integration.NewSession(t, c, session.WithLockDelay(0))

	var deposed atomic.Value
	a, err := election.New(c, key, election.WithSession(sa), election.WithHooks(election.Hooks{
		OnDeposed: func(_ election.Leader, cause error) { deposed.Store(cause) },
	}))
	require.NoError(t, err)
	b, err := election.New(c, key, election.WithSession(sb))
	require.NoError(t, err)

	leadingA, err := a.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)

	done := make(chan error, 1)
	var leadingB context.Context
	go func() {
		var err error
		leadingB, err = b.Campaign(t.Context(), []byte("b"))
		done <- err
	}()

	_, err = c.Session().Destroy(t.Context(), sa.ID(), nil)
	require.NoError(t, err)

	integration.WaitDone(t, leadingA, 5*time.Second)
	cause := context.Cause(leadingA)
	assert.ErrorIs(t, cause, election.ErrDeposed)
	assert.ErrorIs(t, cause, lock.ErrLost)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("b not elected after a's session was destroyed")
	}
	l, err := b.Leader(t.Context())
	require.NoError(t, err)
	assert.Equal(t, sb.ID(), l.Session)

	// The deposed leader's Resign says so, after OnDeposed ran.
	err = a.Resign(t.Context())
	assert.ErrorIs(t, err, election.ErrNotLeader)
	assert.ErrorIs(t, deposed.Load().(error), election.ErrDeposed)
	require.NoError(t, b.Resign(t.Context()))
	integration.WaitDone(t, leadingB, time.Second)
}

func TestLockDelayRespected(t *testing.T) {
	const delay = 3 * time.Second
	c := newClient(t)
	key := electionKey(t)
	sa, err := session.New(t.Context(), c, session.WithLockDelay(delay))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sa.Close(context.Background()) })
	sb := integration.NewSession(t, c, session.WithLockDelay(0))
	a, err := election.New(c, key, election.WithSession(sa))
	require.NoError(t, err)
	b, err := election.New(c, key, election.WithSession(sb))
	require.NoError(t, err)

	leadingA, err := a.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)

	destroyed := time.Now()
	_, err = c.Session().Destroy(t.Context(), sa.ID(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, leadingA, 5*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	leadingB, err := b.Campaign(ctx, []byte("b"))
	require.NoError(t, err)
	took := time.Since(destroyed)
	t.Logf("elected %s after the leader's session was destroyed (lock-delay %s)", took, delay)
	// Consul measures the delay from the invalidation, which happens a few
	// milliseconds after our clock started.
	assert.GreaterOrEqual(t, took, delay-100*time.Millisecond)
	assert.Less(t, took, delay+3*time.Second, "waited much longer than the lock-delay")
	require.NoError(t, b.Resign(t.Context()))
	integration.WaitDone(t, leadingB, time.Second)
}

func TestCampaignCancelledHoldsNothing(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	sa := integration.NewSession(t, c, session.WithLockDelay(0))
	sb := integration.NewSession(t, c, session.WithLockDelay(0))
	a, err := election.New(c, key, election.WithSession(sa))
	require.NoError(t, err)
	b, err := election.New(c, key, election.WithSession(sb))
	require.NoError(t, err)

	_, err = a.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = b.Campaign(ctx, []byte("b"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, b.Token().IsZero())

	require.NoError(t, a.Resign(t.Context()))
	_, err = b.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader, "b must not have taken the key after its campaign was cancelled")
}

func TestConflictingKey(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: key, Value: []byte("data"), Flags: 7}, nil)
	require.NoError(t, err)
	e, err := election.New(c, key, election.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, lock.ErrConflict)
	_, err = e.Campaign(t.Context(), []byte("x"))
	assert.ErrorIs(t, err, lock.ErrConflict)
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	assert.Equal(t, []byte("data"), pair.Value, "a foreign key must not be overwritten")
}

// next reads the next value from ch or fails the test.
func next(t *testing.T, ch <-chan election.Leader, d time.Duration) election.Leader {
	t.Helper()
	select {
	case l, ok := <-ch:
		require.True(t, ok, "observe channel closed")
		return l
	case <-time.After(d):
		t.Fatalf("no leader change observed within %s", d)
		return election.Leader{}
	}
}

func TestObserveOrder(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	sa := integration.NewSession(t, c, session.WithLockDelay(0))
	sb := integration.NewSession(t, c, session.WithLockDelay(0))
	a, err := election.New(c, key, election.WithSession(sa))
	require.NoError(t, err)
	b, err := election.New(c, key, election.WithSession(sb))
	require.NoError(t, err)
	obs, err := election.New(c, key)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	ch := obs.Observe(ctx)
	first := next(t, ch, 5*time.Second)
	assert.True(t, first.IsZero(), "no leader yet")

	_, err = a.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	start := time.Now()
	la := next(t, ch, 5*time.Second)
	t.Logf("observed the election after %s", time.Since(start))
	assert.Equal(t, sa.ID(), la.Session)
	assert.Equal(t, []byte("a"), la.Value)
	assert.Equal(t, a.Token(), la.Token)

	// a hands over to b: the observer sees the vacancy (or not, when it
	// is quick) and then b, in that order.
	bDone := make(chan error, 1)
	go func() { _, err := b.Campaign(t.Context(), []byte("b")); bDone <- err }()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, a.Resign(t.Context()))
	require.NoError(t, <-bDone)
	var seen []election.Leader
	for {
		l := next(t, ch, 5*time.Second)
		seen = append(seen, l)
		if !l.IsZero() {
			break
		}
	}
	last := seen[len(seen)-1]
	assert.Equal(t, sb.ID(), last.Session)
	assert.Equal(t, []byte("b"), last.Value)
	assert.LessOrEqual(t, len(seen), 2, "only the vacancy may come between a and b: %v", seen)
	assert.True(t, last.Token.Newer(la.Token))

	require.NoError(t, b.Resign(t.Context()))
	assert.True(t, next(t, ch, 5*time.Second).IsZero())

	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			_, ok = <-ch
		}
		assert.False(t, ok, "channel not closed after ctx ended")
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after ctx ended")
	}
}

func TestObserveCoalescesForSlowReader(t *testing.T) {
	c, key, _, e := newCandidate(t)
	oc, ct := countingClient(t)
	obs, err := election.New(oc, key)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := obs.Observe(ctx)
	require.True(t, next(t, ch, 5*time.Second).IsZero())

	// Many changes while nobody reads.
	_, err = e.Campaign(t.Context(), []byte("v0"))
	require.NoError(t, err)
	for i := 1; i <= 5; i++ {
		require.NoError(t, e.Proclaim(t.Context(), []byte{'v', byte('0' + i)}))
	}
	// Wait for the observer to have read the last change: its blocking
	// query now waits on the index of v5.
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	parked := fmt.Sprintf("index=%d", pair.ModifyIndex)
	require.Eventually(t, func() bool {
		for _, r := range ct.Requests() {
			if strings.HasPrefix(r, "GET ") && strings.Contains(r, parked) {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the observer did not catch up: %v", ct.Requests())
	// Six changes: a slow reader gets the latest, or (when the observer
	// was still one round trip behind) the one before and then the latest.
	var got []string
	for {
		l := next(t, ch, 5*time.Second)
		got = append(got, string(l.Value))
		if string(l.Value) == "v5" {
			break
		}
	}
	assert.LessOrEqual(t, len(got), 2, "backlog: %v", got)
	select {
	case l := <-ch:
		t.Fatalf("got %q after the latest", l.Value)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, e.Resign(t.Context()))
}

func TestProclaimSeenByObservers(t *testing.T) {
	c, key, s, e := newCandidate(t)
	obs, err := election.New(c, key)
	require.NoError(t, err)

	leading, err := e.Campaign(t.Context(), []byte("v1"))
	require.NoError(t, err)
	tok := e.Token()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := obs.Observe(ctx)
	l := next(t, ch, 5*time.Second)
	require.Equal(t, []byte("v1"), l.Value)

	require.NoError(t, e.Proclaim(t.Context(), []byte("v2")))
	l2 := next(t, ch, 5*time.Second)
	assert.Equal(t, []byte("v2"), l2.Value)
	assert.Equal(t, s.ID(), l2.Session)
	assert.Equal(t, l.Token.LockIndex, l2.Token.LockIndex, "the same term")
	assert.Greater(t, l2.Token.ModifyIndex, l.Token.ModifyIndex)

	// Still the leader, with the same term token; the key is still held.
	assert.NoError(t, leading.Err())
	assert.Equal(t, tok, e.Token())
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	assert.Equal(t, s.ID(), pair.Session)
	assert.Equal(t, lock.Flag, pair.Flags)
	assert.Equal(t, tok.LockIndex, pair.LockIndex)

	// Not leading: Proclaim is refused.
	other, err := election.New(c, key, election.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	assert.ErrorIs(t, other.Proclaim(t.Context(), []byte("x")), election.ErrNotLeader)

	// OnDeposed sees the proclaimed value.
	require.NoError(t, e.Resign(t.Context()))
	assert.True(t, next(t, ch, 5*time.Second).IsZero())
	assert.ErrorIs(t, e.Proclaim(t.Context(), []byte("v3")), election.ErrNotLeader)
}

func TestHooksOrder(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	var (
		mu     sync.Mutex
		events []string
	)
	add := func(ev string) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	e, err := election.New(c, key, election.WithSession(s), election.WithHooks(election.Hooks{
		OnElected: func(leading context.Context, l election.Leader) {
			assert.NoError(t, leading.Err())
			add("elected " + string(l.Value))
		},
		OnDeposed: func(l election.Leader, cause error) {
			add("deposed " + string(l.Value) + ": " + cause.Error())
		},
	}))
	require.NoError(t, err)
	_, err = e.Campaign(t.Context(), []byte("one"))
	require.NoError(t, err)
	require.NoError(t, e.Proclaim(t.Context(), []byte("two")))
	require.NoError(t, e.Resign(t.Context()))

	leading, err := e.Campaign(t.Context(), []byte("three"))
	require.NoError(t, err)
	_, err = c.KV().Delete(t.Context(), key, nil) // deposed from outside
	require.NoError(t, err)
	integration.WaitDone(t, leading, 5*time.Second)
	assert.ErrorIs(t, e.Resign(t.Context()), election.ErrNotLeader) // waits for OnDeposed

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 4)
	assert.Equal(t, "elected one", events[0])
	assert.Equal(t, "deposed two: "+election.ErrResigned.Error(), events[1])
	assert.Equal(t, "elected three", events[2])
	assert.True(t, strings.HasPrefix(events[3], "deposed three: "+election.ErrDeposed.Error()), events[3])
}

// A panic in OnElected resigns: the key is free, OnDeposed is called, and
// the Election can campaign again.
func TestPanicInOnElectedResigns(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	var panicky atomic.Bool
	panicky.Store(true)
	deposed := make(chan error, 2)
	e, err := election.New(c, key, election.WithSession(s), election.WithHooks(election.Hooks{
		OnElected: func(context.Context, election.Leader) {
			if panicky.Load() {
				panic("boom")
			}
		},
		OnDeposed: func(_ election.Leader, cause error) { deposed <- cause },
	}))
	require.NoError(t, err)
	func() {
		defer func() { assert.Equal(t, "boom", recover()) }()
		_, _ = e.Campaign(t.Context(), []byte("one"))
	}()
	select {
	case cause := <-deposed:
		assert.ErrorIs(t, cause, election.ErrResigned)
	default:
		t.Fatal("OnDeposed not called before the panic went on")
	}
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session, "still leading after the panic")

	panicky.Store(false)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	leading, err := e.Campaign(ctx, []byte("two"))
	require.NoError(t, err)
	assert.NoError(t, leading.Err())
	require.NoError(t, e.Resign(t.Context()))
}

// TestPanicInOnNewLeaderEndsRunThenGoesOn: OnNewLeader runs in Run's
// observer goroutine. Its panic ends Run as ctx ending would (fn's context
// cancelled, fn awaited, a resign, the Election's own session destroyed),
// then goes on from Run's goroutine with the same value, where the caller
// can recover it, rather than ending the process with the key held.
func TestPanicInOnNewLeaderEndsRunThenGoesOn(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	name := "onnewleader " + t.Name()
	fnStarted, fnEnded := make(chan struct{}), make(chan error, 1)
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = election.Run(t.Context(), c, key, []byte("job"), func(leading context.Context) error {
			close(fnStarted)
			<-leading.Done()
			fnEnded <- context.Cause(leading)
			return nil
		}, election.WithSessionOptions(session.WithName(name)), election.WithHooks(election.Hooks{
			OnNewLeader: func(election.Leader) {
				select { // it panics while Run leads
				case <-fnStarted:
				case <-time.After(10 * time.Second):
				}
				panic("hook boom")
			},
		}))
		t.Error("Run returned instead of passing the hook's panic on")
	}()
	assert.Equal(t, "hook boom", recovered)
	select {
	case cause := <-fnEnded:
		assert.Error(t, cause, "fn's context ended with a cause")
	default:
		t.Fatal("the panic went on before fn had returned")
	}
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "still leading after the panic")
	assert.Empty(t, integration.SessionsNamed(t, c, name), "the Election's own session was left behind")
}

// fn handing leadership over with Resign ends Run: it does not campaign
// again, and another candidate can take over.
func TestRunReturnsWhenFnResigns(t *testing.T) {
	_, _, _, e := newCandidate(t)
	calls := 0
	err := e.Run(t.Context(), []byte("job"), func(leading context.Context) error {
		calls++
		if calls > 1 {
			return errors.New("campaigned again after fn resigned")
		}
		if err := e.Resign(context.Background()); err != nil {
			return err
		}
		integration.WaitDone(t, leading, 5*time.Second)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "Run campaigned again after fn resigned")
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader)
}

func TestRunReturnsWhenFnReturnsWhileLeading(t *testing.T) {
	c, key, s, e := newCandidate(t)

	ran := 0
	err := e.Run(t.Context(), []byte("job"), func(leading context.Context) error {
		ran++
		l, err := e.Leader(leading)
		require.NoError(t, err)
		assert.Equal(t, s.ID(), l.Session)
		// The term's fencing token, from the leading context alone (what
		// package-level Run gives fn).
		tok, ok := lock.TokenFrom(leading)
		require.True(t, ok, "no token in the leading context")
		assert.Equal(t, e.Token(), tok)
		assert.Equal(t, l.Token, tok)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, ran)
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader, "Run resigns after fn returns")

	boom := errors.New("boom")
	err = election.Run(t.Context(), c, key, nil, func(context.Context) error { return boom },
		election.WithSession(s))
	assert.Equal(t, boom, err, "fn's error as it is")
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader)
}

func TestRunStopsWhenCtxEnds(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	var fnCause error
	done := make(chan error, 1)
	go func() {
		done <- election.Run(ctx, c, key, []byte("x"), func(leading context.Context) error {
			close(started)
			<-leading.Done()
			fnCause = context.Cause(leading)
			return nil
		}, election.WithSession(s))
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		assert.Equal(t, context.Canceled, err, "ctx.Err() as it is")
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	assert.ErrorIs(t, fnCause, context.Canceled)
	e, err := election.New(c, key)
	require.NoError(t, err)
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader, "Run resigns when ctx ends")
}

// TestRunInvariant runs several candidates with Run and deposes the leader
// again and again by destroying its session: the function never runs in
// two candidates at once, and every deposed candidate campaigns again.
func TestRunInvariant(t *testing.T) {
	const (
		candidates = 4
		losses     = 5
	)
	c := newClient(t)
	key := electionKey(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var (
		active, maxActive, runs atomic.Int64
		newLeaders              atomic.Int64
		runsBy                  [candidates]atomic.Int64
		hookErr                 atomic.Value
		wg                      sync.WaitGroup
		results                 = make(chan error, candidates)
	)
	for i := range candidates {
		var inTerm atomic.Bool
		hooks := election.Hooks{
			OnElected: func(context.Context, election.Leader) {
				if inTerm.Swap(true) {
					hookErr.Store(errors.New("OnElected twice without OnDeposed"))
				}
			},
			OnDeposed: func(election.Leader, error) {
				if !inTerm.Swap(false) {
					hookErr.Store(errors.New("OnDeposed without OnElected"))
				}
			},
		}
		if i == 0 {
			hooks.OnNewLeader = func(election.Leader) { newLeaders.Add(1) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- election.Run(ctx, c, key, []byte{byte('a' + i)}, func(leading context.Context) error {
				n := active.Add(1)
				for {
					m := maxActive.Load()
					if n <= m || maxActive.CompareAndSwap(m, n) {
						break
					}
				}
				runs.Add(1)
				runsBy[i].Add(1)
				<-leading.Done()
				active.Add(-1)
				return leading.Err()
			},
				// Own sessions, renewed per campaign; a lock-delay gives a
				// deposed leader time to stop.
				election.WithSessionOptions(session.WithLockDelay(2*time.Second), session.WithTTL(10*time.Second)),
				election.WithHooks(hooks))
		}()
	}

	obs, err := election.New(c, key)
	require.NoError(t, err)
	var last string
	for k := 0; ; k++ {
		var l election.Leader
		require.Eventually(t, func() bool {
			var err error
			l, err = obs.Leader(t.Context())
			return err == nil && l.Session != last
		}, 20*time.Second, 20*time.Millisecond, "no new leader")
		last = l.Session
		// Wait until fn runs in the new leader before deposing it.
		require.Eventually(t, func() bool { return active.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
		if k == losses {
			break
		}
		_, err := c.Session().Destroy(t.Context(), l.Session, nil)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return runs.Load() >= losses+1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	wg.Wait()
	close(results)
	for err := range results {
		assert.ErrorIs(t, err, context.Canceled)
	}
	assert.Equal(t, int64(1), maxActive.Load(), "fn ran in two candidates at once")
	assert.Zero(t, active.Load())
	assert.GreaterOrEqual(t, runs.Load(), int64(losses+1))
	if v := hookErr.Load(); v != nil {
		t.Error(v)
	}
	assert.GreaterOrEqual(t, newLeaders.Load(), int64(2), "OnNewLeader")
	for i := range candidates {
		t.Logf("candidate %d ran %d times", i, runsBy[i].Load())
	}
	_, err = obs.Leader(context.Background())
	assert.ErrorIs(t, err, election.ErrNoLeader)
}

// TestRequestCount measures the requests of a campaign and a resignation
// with a reused session, uncontended.
func TestRequestCount(t *testing.T) {
	c, ct := countingClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, newClient(t), session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	// On a key that exists (free), as after the first term: on an absent
	// key a Campaign first creates it free, one transaction more.
	_, err = newClient(t).KV().Put(t.Context(), &api.KVPair{Key: key, Flags: lock.Flag}, nil)
	require.NoError(t, err)
	ct.Reset()
	leading, err := e.Campaign(t.Context(), []byte("x"))
	require.NoError(t, err)
	require.NoError(t, e.Resign(t.Context()))
	integration.WaitDone(t, leading, time.Second)
	reqs := ct.Requests()
	t.Logf("campaign + resign: %d requests: %v", len(reqs), reqs)
	assert.LessOrEqual(t, len(reqs), 4)
}

// TestRunEndsWhenSessionDestroyed: with WithSession, a destroyed session
// ends Run at once, without campaigning with a session Consul refuses.
// With a lock-delay, a new campaign is not refused for the session at
// once (the delay is checked first): the session itself is checked after
// the loss, with one request.
func TestRunEndsWhenSessionDestroyed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		delay  time.Duration
		within time.Duration
	}{
		{name: "no lock-delay", delay: 0, within: 5 * time.Second},
		{name: "lock-delay", delay: 15 * time.Second, within: 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, ct := countingClient(t)
			plain := newClient(t)
			// A key of this run's own: a lock-delay left on it outlives the test.
			key := fmt.Sprintf("%s/%d", electionKey(t), time.Now().UnixNano())
			s := integration.NewSession(t, plain, session.WithLockDelay(tt.delay))
			started := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- election.Run(t.Context(), c, key, nil, func(leading context.Context) error {
					close(started)
					<-leading.Done()
					return nil
				}, election.WithSession(s))
			}()
			<-started
			ct.Reset()
			_, err := plain.Session().Destroy(t.Context(), s.ID(), nil)
			require.NoError(t, err)
			select {
			case err := <-done:
				assert.ErrorIs(t, err, session.ErrInvalidated)
				assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session itself is told at once")
			case <-time.After(tt.within):
				t.Fatal("Run did not end after its session was destroyed")
			}
			assert.LessOrEqual(t, ct.Count(), int64(3), "requests: %v", ct.Requests())
		})
	}
}

// TestObserveThroughFaults: an observer keeps going through server errors
// and reports the leader once they end.
func TestObserveThroughFaults(t *testing.T) {
	a := integration.Shared(t)
	plain := newClient(t)
	c, proxy := a.ProxiedClient(t)
	key := electionKey(t)
	obs, err := election.New(c, key)
	require.NoError(t, err)
	s := integration.NewSession(t, plain, session.WithLockDelay(0))
	e, err := election.New(plain, key, election.WithSession(s))
	require.NoError(t, err)
	// The key exists, free, so that the Campaign below is one write: on
	// an absent key it is created free first, which would wake the
	// parked query with no change to report.
	_, err = e.Campaign(t.Context(), nil)
	require.NoError(t, err)
	require.NoError(t, e.Resign(t.Context()))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := obs.Observe(ctx)
	require.True(t, next(t, ch, 5*time.Second).IsZero())
	// Wait until the observer's blocking query is parked behind the proxy.
	require.Eventually(t, func() bool { return proxy.Requests() >= 2 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	proxy.Set(integration.ServerError)
	_, err = e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	l := next(t, ch, 5*time.Second) // answered by the parked query
	assert.Equal(t, s.ID(), l.Session)
	require.NoError(t, e.Proclaim(t.Context(), []byte("b")))
	time.Sleep(time.Second) // the observer now fails and backs off
	proxy.Set(integration.Pass)
	l = next(t, ch, 15*time.Second)
	assert.Equal(t, []byte("b"), l.Value)
	require.NoError(t, e.Resign(t.Context()))
}

// Two Resign calls at once: one gives leadership up, the other finds it
// already given up (ErrNotLeader), and neither says it was deposed.
func TestConcurrentResign(t *testing.T) {
	c := newClient(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	for range 20 {
		_, err := e.Campaign(t.Context(), nil)
		require.NoError(t, err)
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- e.Resign(t.Context()) }()
		}
		var nils, notLeader int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				nils++
			case errors.Is(err, election.ErrNotLeader) && !errors.Is(err, election.ErrDeposed):
				notLeader++
			default:
				t.Fatalf("unexpected Resign error: %v", err)
			}
		}
		require.Equal(t, 1, nils)
		require.Equal(t, 1, notLeader)
	}
}

// Resign deferred with a ctx that a shutdown has cancelled still gives
// leadership up at once: the next candidate does not wait for the session
// to end.
func TestResignWithEndedContext(t *testing.T) {
	c := newClient(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	leading, err := e.Campaign(ctx, nil)
	require.NoError(t, err)
	cancel()
	require.NoError(t, e.Resign(ctx))
	assert.ErrorIs(t, context.Cause(leading), election.ErrResigned)
	_, err = e.Leader(t.Context())
	assert.ErrorIs(t, err, election.ErrNoLeader)
}

// A Resign called after the term was lost and its goroutine has ended
// still reports the loss (once), as one called during OnDeposed does.
func TestResignLongAfterLossReportsDeposed(t *testing.T) {
	t.Parallel()
	c, key, _, e := newCandidate(t)
	leading, err := e.Campaign(t.Context(), nil)
	require.NoError(t, err)
	_, err = c.KV().Delete(t.Context(), key, nil)
	require.NoError(t, err)
	<-leading.Done()
	// Proclaim says plain ErrNotLeader once the term is forgotten.
	require.Eventually(t, func() bool {
		return e.Proclaim(t.Context(), nil) == election.ErrNotLeader
	}, 10*time.Second, 10*time.Millisecond)
	err = e.Resign(t.Context())
	assert.ErrorIs(t, err, election.ErrDeposed)
	err = e.Resign(t.Context())
	assert.ErrorIs(t, err, election.ErrNotLeader)
	assert.NotErrorIs(t, err, election.ErrDeposed, "a loss is reported once")
}

// Resign after Proclaim is one release transaction, even before the
// watcher has seen the Proclaim: the release checks the key's index as
// Proclaim left it, not a stale one that would need a read and a second
// attempt.
func TestResignAfterProclaimIsOneTransaction(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	var (
		mu   sync.Mutex
		sent []string
	)
	ht.Set(func(r *http.Request) error {
		if integration.IsBlocking(r) {
			return integration.HangBlocking(r) // the watcher sees nothing
		}
		mu.Lock()
		sent = append(sent, r.Method+" "+r.URL.Path)
		mu.Unlock()
		return nil
	})
	_, err = e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	require.NoError(t, e.Proclaim(t.Context(), []byte("b")))
	mu.Lock()
	sent = nil
	mu.Unlock()
	require.NoError(t, e.Resign(t.Context()))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"PUT /v1/txn"}, sent)
}

// A server that answers blocking reads at once with X-Consul-Index: 0 (a
// Consul bug the "never send an index below 1" rule is for) does not turn
// Observe into a busy poll: the index alternates 1 and 0, and every read
// that did not move it forward is followed by a pause.
func TestObserveIndexZeroIsNotABusyLoop(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Consul-Index", "0")
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	e, err := election.New(c, "observe/leader")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	ch := e.Observe(ctx)
	<-ch
	time.Sleep(2 * time.Second)
	cancel()
	for range ch {
	}
	assert.LessOrEqual(t, n.Load(), int64(8), "reads in 2s")
}

// After a deposition, Run with WithSession checks the session with a
// plain read before it campaigns again; on a connection that died without
// a reset that read is given up, and Run campaigns again.
func TestRunCampaignsAgainWhenTheSessionCheckHangs(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	ht.HangFirst(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v1/session/info/") })
	var terms atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, nil, func(leading context.Context) error {
			terms.Add(1)
			<-leading.Done()
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { return terms.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	_, err = a.Client(t).KV().Delete(t.Context(), key, nil) // deposed
	require.NoError(t, err)
	require.Eventually(t, func() bool { return terms.Load() >= 2 }, 25*time.Second, 50*time.Millisecond,
		"Run did not campaign again: stuck on the session check")
}

// TestStandbyRunSurvivesItsOwnSessionLoss: a standby Run whose own session
// is invalidated while it waits (an operator's destroy, a serfHealth flap)
// campaigns on with a new one, and takes over when the leader resigns.
func TestStandbyRunSurvivesItsOwnSessionLoss(t *testing.T) {
	c := newClient(t)
	key := electionKey(t)
	a, err := election.New(c, key, election.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	_, err = a.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	name := "standby " + t.Name()
	done := make(chan error, 1)
	ran := make(chan struct{})
	go func() {
		done <- election.Run(ctx, c, key, []byte("b"), func(leading context.Context) error {
			close(ran)
			<-leading.Done()
			return nil
		}, election.WithSessionOptions(session.WithName(name), session.WithLockDelay(0)))
	}()
	first := integration.WaitSessionNamed(t, c, name)
	time.Sleep(200 * time.Millisecond) // parked on the key
	_, err = c.Session().Destroy(t.Context(), first, nil)
	require.NoError(t, err)
	require.NoError(t, a.Resign(t.Context())) // the standby's attempt meets its invalid session
	select {
	case <-ran:
	case err := <-done:
		t.Fatalf("the standby's Run ended instead of taking over: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the standby never took over")
	}
	l, err := a.Leader(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "b", string(l.Value))
	assert.NotEqual(t, first, l.Session)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

// TestObserveGivesUpAHungFirstRead: Observe's first read is a plain read,
// bounded like every other: on a connection that died without a reset it
// is sent again on a new one instead of waiting forever.
func TestObserveGivesUpAHungFirstRead(t *testing.T) {
	c, ht := integration.Shared(t).HookedClient(t)
	obs, err := election.New(c, electionKey(t))
	require.NoError(t, err)
	ht.HangFirst(func(r *http.Request) bool { return r.Method == http.MethodGet })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	select {
	case l := <-obs.Observe(ctx):
		assert.True(t, l.IsZero(), "no leader: %+v", l)
	case <-time.After(25 * time.Second):
		t.Fatal("Observe sent nothing for 25s: its first read hangs")
	}
}

// TestUnconfirmedCleanupSparesTheNextTerm: a term lost as unconfirmed
// (its watch got no answer for two TTLs) lets the key go in the
// background. When that release is retried and the Election campaigns
// again through the same session, the old term's release must not let go
// of the new term's hold: it once found the key held by its session and
// released it. (The next term now begins once that cleanup is over.)
func TestUnconfirmedCleanupSparesTheNextTerm(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithTTL(10*time.Second), session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	leading1, err := e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)

	isRelease := func(r *http.Request) bool {
		b := integration.Body(r)
		return r.URL.Path == "/v1/txn" && strings.Contains(string(b), `"unlock"`) && strings.Contains(string(b), `"get"`)
	}
	var blind atomic.Bool
	blind.Store(true)
	var failReleases atomic.Bool
	failReleases.Store(true)
	ht.Set(func(r *http.Request) error {
		if blind.Load() && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/kv/") {
			return errors.New("injected: connection reset")
		}
		if isRelease(r) && failReleases.Load() {
			return errors.New("injected: connection reset")
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	select {
	case <-leading1.Done():
	case <-time.After(40 * time.Second):
		t.Fatal("term 1 not lost")
	}
	require.ErrorIs(t, context.Cause(leading1), lock.ErrUnconfirmed)
	blind.Store(false) // reads work again; the old term's release still fails

	leading2, err := e.Campaign(t.Context(), []byte("b"))
	require.NoError(t, err)
	failReleases.Store(false) // a retry of the old term's release would go through now
	time.Sleep(3 * time.Second)
	assert.NoError(t, leading2.Err(), "term 2 lost: %v", context.Cause(leading2))
	pair, _, err := direct.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, s.ID(), pair.Session, "the key is no longer held by term 2's session")
	require.NoError(t, e.Resign(t.Context()))
}

// TestRunAwaitsTheLostTermsCleanup: when Run returns, the cleanup of a
// term lost meanwhile is over: the session the term's campaign created is
// destroyed, even when its destroy is slow.
func TestRunAwaitsTheLostTermsCleanup(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	key := electionKey(t)
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/session/destroy/") {
			time.Sleep(2 * time.Second) // a busy agent
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	name := "run " + t.Name()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- election.Run(ctx, c, key, nil, func(leading context.Context) error {
			started <- struct{}{}
			<-leading.Done()
			cancel() // shut down after the loss
			return nil
		}, election.WithSessionOptions(session.WithName(name), session.WithLockDelay(0)))
	}()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not lead")
	}
	first := integration.WaitSessionNamed(t, direct, name)
	_, err := direct.KV().Delete(t.Context(), key, nil) // deposed
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	se, _, err := direct.Session().Info(t.Context(), first, nil)
	require.NoError(t, err)
	assert.Nil(t, se, "the session of the lost term is still there after Run returned")
}

// TestResignAfterUnconfirmedLossReportsTheLoss: a term lost as unconfirmed
// (reads of the key fail for two TTLs, and so do releases) has a cleanup
// that may take its time. A Resign with a short ctx still reports the
// loss (ErrDeposed), instead of the bare end of its ctx.
func TestResignAfterUnconfirmedLossReportsTheLoss(t *testing.T) {
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	key := electionKey(t)
	e, err := election.New(c, key, election.WithSessionOptions(session.WithTTL(10*time.Second), session.WithLockDelay(0)))
	require.NoError(t, err)
	leading, err := e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	var faulty atomic.Bool
	faulty.Store(true)
	ht.Set(func(r *http.Request) error {
		if !faulty.Load() {
			return nil
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/kv/") ||
			r.URL.Path == "/v1/txn" && strings.Contains(string(integration.Body(r)), `"unlock"`) {
			return errors.New("injected: connection reset")
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	select {
	case <-leading.Done():
	case <-time.After(40 * time.Second):
		t.Fatal("term not lost")
	}
	require.ErrorIs(t, context.Cause(leading), lock.ErrUnconfirmed)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	err = e.Resign(ctx)
	assert.ErrorIs(t, err, election.ErrDeposed, "Resign on a lost term did not report the loss")
	assert.ErrorIs(t, err, election.ErrNotLeader)

	faulty.Store(false)
	// The cleanup ends now; a second Resign waits for it and reports
	// nothing more.
	rctx, rcancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer rcancel()
	err = e.Resign(rctx)
	assert.ErrorIs(t, err, election.ErrNotLeader)
	assert.NotErrorIs(t, err, election.ErrDeposed, "the loss was reported twice")
}

// TestResignEndsLeadingBeforeRelease: the leading context has ended by
// the time the release leaves, so that what it guards stops before
// another candidate can be elected.
func TestResignEndsLeadingBeforeRelease(t *testing.T) {
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	s := integration.NewSession(t, a.Client(t), session.WithLockDelay(0))
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	for range 20 {
		leading, err := e.Campaign(t.Context(), nil)
		require.NoError(t, err)
		var released, live atomic.Int32
		ht.Set(func(r *http.Request) error {
			if r.URL.Path == "/v1/txn" && strings.Contains(string(integration.Body(r)), `"unlock"`) {
				released.Add(1)
				if leading.Err() == nil {
					live.Add(1)
				}
			}
			return nil
		})
		require.NoError(t, e.Resign(t.Context()))
		ht.Set(nil)
		require.Equal(t, int32(1), released.Load())
		require.Zero(t, live.Load(), "the release was sent while the leading context was live")
		assert.ErrorIs(t, context.Cause(leading), election.ErrResigned)
	}
}

// TestReadsUseTheSessionOptions: an Election that makes its sessions from
// options with a token (the client has none) reads the key with that
// token too: Leader and Observe were refused (403) while its campaigns
// wrote the key.
func TestReadsUseTheSessionOptions(t *testing.T) {
	a := integration.NewACLAgent(t)
	cfg := a.Config()
	cfg.Token = "" // the options carry it
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	key := "election/with-options"
	e, err := election.New(c, key, election.WithSessionOptions(
		session.WithWriteOptions(api.WriteOptions{Token: a.Token}), session.WithLockDelay(0)))
	require.NoError(t, err)
	_, err = e.Leader(t.Context())
	require.ErrorIs(t, err, election.ErrNoLeader)

	leading, err := e.Campaign(t.Context(), []byte("me"))
	require.NoError(t, err)
	defer func() { assert.NoError(t, e.Resign(context.WithoutCancel(t.Context()))) }()
	require.NoError(t, leading.Err())
	l, err := e.Leader(t.Context())
	require.NoError(t, err)
	assert.Equal(t, e.Token().Session, l.Session)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	select {
	case l := <-e.Observe(ctx):
		assert.Equal(t, e.Token().Session, l.Session)
	case <-time.After(10 * time.Second):
		t.Error("Observe reported nothing in 10 s")
	}
}
