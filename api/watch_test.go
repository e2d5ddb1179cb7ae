package api

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestNextWaitIndex(t *testing.T) {
	tests := []struct {
		name      string
		prev, got uint64
		want      uint64
	}{
		{name: "first read of an empty store", prev: 0, got: 0, want: 1},
		{name: "first read", prev: 0, got: 5, want: 5},
		{name: "unchanged", prev: 5, got: 5, want: 5},
		{name: "forward", prev: 5, got: 9, want: 9},
		{name: "index one", prev: 0, got: 1, want: 1},
		{name: "backwards resets", prev: 9, got: 5, want: 0},
		{name: "backwards to zero resets", prev: 9, got: 0, want: 0},
		{name: "after reset, zero is sent as one", prev: 0, got: 0, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, NextWaitIndex(tt.prev, tt.got))
		})
	}
}

// fetchStep is one scripted answer of a fake blocking read.
type fetchStep struct {
	index uint64
	hash  string
	err   error
	block bool // wait for ctx instead of answering
}

// scriptedFetch answers with its steps in order (the last repeats) and
// records what each read asked for.
type scriptedFetch struct {
	mu    sync.Mutex
	steps []fetchStep
	seen  []QueryOptions
	times []time.Time
	calls chan int // receives the number of each call, if not nil
}

func (s *scriptedFetch) fetch(ctx context.Context, q *QueryOptions) (uint64, *QueryMeta, error) {
	s.mu.Lock()
	s.seen = append(s.seen, *q)
	s.times = append(s.times, time.Now())
	n := len(s.seen)
	st := s.steps[0]
	if len(s.steps) > 1 {
		s.steps = s.steps[1:]
	}
	s.mu.Unlock()
	if s.calls != nil {
		select {
		case s.calls <- n:
		default:
		}
	}
	if st.block {
		<-ctx.Done()
		return 0, nil, ctx.Err()
	}
	if st.err != nil {
		return 0, nil, st.err
	}
	return st.index, &QueryMeta{LastIndex: st.index, LastContentHash: st.hash}, nil
}

func (s *scriptedFetch) requests() ([]QueryOptions, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]QueryOptions(nil), s.seen...), append([]time.Time(nil), s.times...)
}

var errStop = errors.New("stop watching")

// stopAfter returns an onChange that records values and stops the watch
// after n of them.
func stopAfter(n int, got *[]uint64) func(uint64, *QueryMeta) error {
	return func(v uint64, m *QueryMeta) error {
		*got = append(*got, v)
		if len(*got) == n {
			return errStop
		}
		return nil
	}
}

func TestWatchIndexRules(t *testing.T) {
	f := &scriptedFetch{steps: []fetchStep{
		{index: 5},  // first: delivered
		{index: 5},  // woke without change: not delivered, rate-limited
		{index: 6},  // delivered
		{index: 3},  // went backwards: delivered, index reset
		{index: 3},  // the non-blocking read after the reset
		{index: 0},  // backwards again
		{index: 0},  // non-blocking, unchanged
		{index: 10}, // delivered: stop
	}}
	var got []uint64
	q := &QueryOptions{WaitTime: time.Minute, Filter: "x"}
	err := Watch(t.Context(), q, f.fetch, stopAfter(5, &got))
	require.ErrorIs(t, err, errStop)
	assert.Equal(t, []uint64{5, 6, 3, 0, 10}, got)

	seen, times := f.requests()
	var idx []uint64
	for _, s := range seen {
		idx = append(idx, s.WaitIndex)
		assert.Equal(t, time.Minute, s.WaitTime)
		assert.Equal(t, "x", s.Filter)
	}
	assert.Equal(t, []uint64{0, 5, 5, 6, 0, 3, 0, 1}, idx)
	assert.Equal(t, QueryOptions{WaitTime: time.Minute, Filter: "x"}, *q, "the caller's options are not modified")

	// Only the blocking read that woke without a change was followed by
	// a pause.
	assert.GreaterOrEqual(t, times[2].Sub(times[1]), minIdleWake-50*time.Millisecond)
	for _, i := range []int{1, 3, 4, 5, 6, 7} {
		// Under the pause (at least minIdleWake-50ms), with room for a
		// loaded machine.
		assert.Less(t, times[i].Sub(times[i-1]), minIdleWake*9/10, "read %d", i)
	}
}

func TestWatchStartIndex(t *testing.T) {
	f := &scriptedFetch{steps: []fetchStep{{index: 40}, {index: 41}}}
	var got []uint64
	err := Watch(t.Context(), &QueryOptions{WaitIndex: 40}, f.fetch, stopAfter(2, &got))
	require.ErrorIs(t, err, errStop)
	assert.Equal(t, []uint64{40, 41}, got, "the first result is always delivered")
	seen, _ := f.requests()
	assert.Equal(t, uint64(40), seen[0].WaitIndex)
	assert.Equal(t, uint64(40), seen[1].WaitIndex)
}

func TestWatchRateLimitsUnchangedWakes(t *testing.T) {
	t.Parallel()
	f := &scriptedFetch{steps: []fetchStep{{index: 7}}} // never changes
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	calls := 0
	err := Watch(ctx, nil, f.fetch, func(uint64, *QueryMeta) error { calls++; return nil })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, calls)
	seen, times := f.requests()
	// 0s: first read, then immediately a blocking read that returns at
	// once; every later read waits about minIdleWake.
	assert.LessOrEqual(t, len(seen), 4)
	assert.GreaterOrEqual(t, len(seen), 3)
	for i := 2; i < len(times); i++ {
		assert.GreaterOrEqual(t, times[i].Sub(times[i-1]), minIdleWake-50*time.Millisecond)
	}
}

func TestWatchHash(t *testing.T) {
	f := &scriptedFetch{steps: []fetchStep{{hash: "h1"}, {hash: "h1"}, {hash: "h2"}}}
	var got []uint64
	err := Watch(t.Context(), nil, f.fetch, stopAfter(2, &got))
	require.ErrorIs(t, err, errStop)
	seen, _ := f.requests()
	require.Len(t, seen, 3)
	assert.Equal(t, "", seen[0].WaitHash)
	assert.Equal(t, "h1", seen[1].WaitHash)
	assert.Equal(t, "h1", seen[2].WaitHash)
}

func TestWatchRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	unavailable := &StatusError{Method: "GET", Path: "/v1/kv/a", Code: 503, Body: "No cluster leader"}
	f := &scriptedFetch{steps: []fetchStep{
		{index: 3},
		{err: unavailable},
		{err: &transportError{err: errors.New("connection reset")}},
		{err: &StatusError{Code: 429}},
		{index: 4},
		{err: unavailable},
		{index: 5},
	}}
	var got []uint64
	err := Watch(t.Context(), nil, f.fetch, stopAfter(3, &got))
	require.ErrorIs(t, err, errStop)
	assert.Equal(t, []uint64{3, 4, 5}, got)

	seen, times := f.requests()
	require.Len(t, seen, 7)
	// A failed read is retried with the same index.
	for i := 1; i <= 4; i++ {
		assert.Equal(t, uint64(3), seen[i].WaitIndex, "read %d", i)
	}
	// Growing, jittered pauses: [125ms,250ms], [250ms,500ms], [500ms,1s].
	assert.GreaterOrEqual(t, times[2].Sub(times[1]), 125*time.Millisecond)
	assert.GreaterOrEqual(t, times[3].Sub(times[2]), 250*time.Millisecond)
	assert.GreaterOrEqual(t, times[4].Sub(times[3]), 500*time.Millisecond)
	// A success resets the backoff.
	assert.GreaterOrEqual(t, times[6].Sub(times[5]), 125*time.Millisecond)
	assert.Less(t, times[6].Sub(times[5]), 900*time.Millisecond, "not reset: the next pause is [1s,2s]")
}

func TestWatchNonRetryable(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		target error
	}{
		{name: "permission denied", err: &StatusError{Code: 403, Body: "Permission denied"}, target: ErrPermissionDenied},
		{name: "validation", err: &ValidationError{Field: "key", Reason: "empty"}, target: ErrInvalid},
		{name: "plain", err: errStop, target: errStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &scriptedFetch{steps: []fetchStep{{index: 1}, {err: tt.err}}}
			calls := 0
			err := Watch(t.Context(), nil, f.fetch, func(uint64, *QueryMeta) error { calls++; return nil })
			assert.ErrorIs(t, err, tt.target)
			assert.Equal(t, 1, calls)
			seen, _ := f.requests()
			assert.Len(t, seen, 2, "no retry")
		})
	}
}

func TestWatchContextEnds(t *testing.T) {
	cause := errors.New("service shutting down")
	tests := []struct {
		name  string
		steps []fetchStep
	}{
		{name: "during a read", steps: []fetchStep{{index: 1}, {block: true}}},
		{name: "during backoff", steps: []fetchStep{{index: 1}, {err: &StatusError{Code: 500}}}},
		{name: "during the idle pause", steps: []fetchStep{{index: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := make(chan int, 16)
			f := &scriptedFetch{steps: tt.steps, calls: calls}
			ctx, cancel := context.WithCancelCause(t.Context())
			done := make(chan error, 1)
			go func() { done <- Watch(ctx, nil, f.fetch, func(uint64, *QueryMeta) error { return nil }) }()
			for n := range calls {
				if n == 2 {
					break
				}
			}
			time.Sleep(20 * time.Millisecond) // into the read, the backoff or the pause
			cancel(cause)
			select {
			case err := <-done:
				assert.Same(t, cause, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Watch did not return after its context ended")
			}
		})
	}

	// A context already done: no read at all.
	f := &scriptedFetch{steps: []fetchStep{{index: 1}}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := Watch(ctx, nil, f.fetch, func(uint64, *QueryMeta) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
	seen, _ := f.requests()
	assert.Empty(t, seen)
}

func TestWatchChanCoalesces(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	calls := make(chan int, 16)
	f := &scriptedFetch{
		steps: []fetchStep{{index: 1}, {index: 2}, {index: 3}, {index: 4}, {index: 5}, {block: true}},
		calls: calls,
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	ch, wait := WatchChan(ctx, nil, f.fetch)

	// Let the watch run ahead of a reader that does not read.
	for n := range calls {
		if n == 6 {
			break
		}
	}
	select {
	case v := <-ch:
		assert.Equal(t, uint64(5), v, "a slow reader gets the latest value")
	case <-time.After(5 * time.Second):
		t.Fatal("no value")
	}
	select {
	case v := <-ch:
		t.Fatalf("unexpected backlog value %d", v)
	default:
	}

	cause := errors.New("done here")
	cancel(cause)
	for range ch { //nolint:revive // drain until closed
	}
	assert.Same(t, cause, wait())
	goleak.VerifyNone(t, ignore)
}

func TestWatchChanError(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	f := &scriptedFetch{steps: []fetchStep{{index: 1}, {err: &StatusError{Code: 403}}}}
	ch, wait := WatchChan(t.Context(), nil, f.fetch)
	var got []uint64
	for v := range ch {
		got = append(got, v)
	}
	assert.Equal(t, []uint64{1}, got)
	assert.ErrorIs(t, wait(), ErrPermissionDenied)
	assert.ErrorIs(t, wait(), ErrPermissionDenied, "wait may be called again")
	goleak.VerifyNone(t, ignore)
}

// TestWatchKVOverHTTP runs Watch through the real request pipeline: the
// index of each answer becomes the next request's index parameter.
func TestWatchKVOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	answers := []struct {
		index int
		value string
	}{{10, "a"}, {10, "a"}, {12, "b"}, {13, "c"}}
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(queries)
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		a := answers[min(n, len(answers)-1)]
		w.Header().Set("X-Consul-Index", strconv.Itoa(a.index))
		_, _ = w.Write([]byte(`[{"Key":"cfg","Value":"` + base64.StdEncoding.EncodeToString([]byte(a.value)) + `","ModifyIndex":` + strconv.Itoa(a.index) + `}]`))
	})
	var values []string
	err := Watch(t.Context(), &QueryOptions{WaitTime: 30 * time.Second}, func(ctx context.Context, q *QueryOptions) (*KVPair, *QueryMeta, error) {
		return c.KV().Get(ctx, "cfg", q)
	}, func(p *KVPair, _ *QueryMeta) error {
		values = append(values, string(p.Value))
		if len(values) == 3 {
			return errStop
		}
		return nil
	})
	require.ErrorIs(t, err, errStop)
	assert.Equal(t, []string{"a", "b", "c"}, values)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"wait=30s", "index=10&wait=30s", "index=10&wait=30s", "index=12&wait=30s"}, queries)
}

// A hash-based read that loses its hash (Consul's 404 for a service that
// was deregistered carries no X-Consul-ContentHash) is a change.
func TestWatchHashThatDisappearsIsAChange(t *testing.T) {
	f := &scriptedFetch{steps: []fetchStep{{hash: "h1"}, {hash: ""}, {hash: "h1"}}}
	var got []uint64
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := Watch(ctx, nil, f.fetch, stopAfter(2, &got))
	require.ErrorIs(t, err, errStop, "the answer without a hash was never delivered")
	seen, _ := f.requests()
	assert.Len(t, seen, 2, "the read answered without a hash must be delivered as the second result")
}
