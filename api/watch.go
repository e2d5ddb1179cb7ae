package api

import (
	"context"
	"time"

	"github.com/consulkit/consulkit/internal/backoff"
)

// BlockingFunc is one read of a blocking query: it must honour
// q.WaitIndex and q.WaitTime and return the QueryMeta of the answer.
type BlockingFunc[T any] func(ctx context.Context, q *QueryOptions) (T, *QueryMeta, error)

// NextWaitIndex returns the WaitIndex to send after a read that was sent
// with prev and answered with got, following Consul's rules for blocking
// queries: an index that went backwards resets the loop (0: the next read
// does not block and fetches a fresh index), and an index below 1 is sent
// as 1 so that the read still blocks.
func NextWaitIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got < 1:
		return 1
	default:
		return got
	}
}

// minIdleWake is the shortest interval between two reads that returned
// without a change; a server that answers at once without change would
// otherwise turn the loop into a busy poll.
const minIdleWake = time.Second

// Watch runs fetch as a blocking query until ctx ends or onChange returns
// an error. onChange is called with the first result and then with every
// result whose index or content hash differs from the previous one's (a
// hash that disappears too: agent/service/:id answers 404 without one
// once the service is gone). Retryable errors (see
// IsRetryable) are retried with jittered backoff; any other error of fetch
// ends the watch and is returned, as is the error of onChange. When ctx
// ends, Watch returns context.Cause(ctx).
//
// q is copied; its WaitIndex is where the watch starts (0: read at once).
//
// Only endpoints that support blocking queries can be watched: those that
// answer with X-Consul-Index (catalog, health, KV, sessions, ...) or
// X-Consul-ContentHash (agent/service/:id). Endpoints that answer with
// neither, such as Agent().Services, Agent().Checks, Agent().Members and
// Status, do not block and give Watch nothing to compare: it reports their
// first result and then reads them about once a second without ever
// reporting a change. Poll those with a ticker instead.
func Watch[T any](ctx context.Context, q *QueryOptions, fetch BlockingFunc[T], onChange func(T, *QueryMeta) error) error {
	switch {
	case ctx == nil:
		return &ValidationError{Field: "ctx", Reason: "nil context"}
	case fetch == nil:
		return &ValidationError{Field: "fetch", Reason: "nil"}
	case onChange == nil:
		return &ValidationError{Field: "onChange", Reason: "nil"}
	}
	opts := QueryOptions{}
	if q != nil {
		opts = *q
	}
	var (
		bo      = backoff.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}
		first   = true
		lastIdx = opts.WaitIndex
	)
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		start := time.Now()
		blocked := opts.WaitIndex != 0 || opts.WaitHash != ""
		v, meta, err := fetch(ctx, &opts)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if !IsRetryable(err) {
				return err
			}
			if backoff.Sleep(ctx, bo.Next()) != nil {
				return context.Cause(ctx)
			}
			continue
		}
		bo.Reset()
		if meta == nil {
			meta = &QueryMeta{}
		}
		// A hash that disappears (a hash-based endpoint answering 404)
		// is a change too.
		changed := first || meta.LastIndex != lastIdx || meta.LastContentHash != opts.WaitHash
		first = false
		opts.WaitIndex = NextWaitIndex(lastIdx, meta.LastIndex)
		lastIdx = meta.LastIndex
		// Hash-based endpoints (agent services and health) block on the
		// content hash instead of an index; none (404) means nothing to
		// block on.
		opts.WaitHash = meta.LastContentHash
		if changed {
			if err := onChange(v, meta); err != nil {
				return err
			}
			continue
		}
		// A read that did not block (the first after a reset) answers at
		// once by design; only a blocking read that woke early without a
		// change is rate-limited.
		if el := time.Since(start); blocked && el < minIdleWake {
			if backoff.Sleep(ctx, backoff.Spread(minIdleWake-el, 0.2)) != nil {
				return context.Cause(ctx)
			}
		}
	}
}

// WatchChan runs Watch in a goroutine and sends every changed result on
// the returned channel. The channel holds at most one result: a slow reader
// gets the latest, not a backlog. The channel is closed when the watch ends;
// wait then returns why (context.Cause(ctx) when ctx ended). The goroutine
// is gone once the channel is closed.
func WatchChan[T any](ctx context.Context, q *QueryOptions, fetch BlockingFunc[T]) (ch <-chan T, wait func() error) {
	out := make(chan T, 1)
	done := make(chan struct{})
	var werr error
	if ctx == nil || fetch == nil {
		close(out)
		close(done)
		werr = Watch(ctx, q, fetch, func(T, *QueryMeta) error { return nil })
		return out, func() error { return werr }
	}
	go func() {
		defer close(done)
		defer close(out)
		werr = Watch(ctx, q, fetch, func(v T, _ *QueryMeta) error {
			for {
				select {
				case out <- v:
					return nil
				default:
				}
				// Full: drop the stale value and put the new one in.
				select {
				case <-out:
				default:
				}
			}
		})
	}()
	return out, func() error { <-done; return werr }
}
