package election

import (
	"bytes"
	"context"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/attempt"
	"github.com/consulkit/consulkit/internal/backoff"
	"github.com/consulkit/consulkit/internal/holder"
)

// Observe follows the election key and sends the current leader, then
// each change it sees: a new leader, a new value (Proclaim), or the key
// becoming free (a zero Leader, IsZero true). Changes that come within one
// blocking-query round trip of each other may arrive as one (the latest),
// and a Proclaim of the same value is not a change. The channel holds one
// value: a slow reader gets the latest, not a backlog. A change is seen
// within one blocking-query round trip. Errors are retried with backoff (and logged
// with WithLogger) until ctx ends; then the channel is closed, once the
// goroutine that feeds it is gone.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	out := make(chan Leader, 1)
	go func() {
		defer close(out)
		e.observe(ctx, func(l Leader) {
			select {
			case out <- l:
				return
			default:
			}
			// Full: replace the stale value. This goroutine is the only
			// sender, so after the drain the send cannot block.
			select {
			case <-out:
			default:
			}
			out <- l
		})
	}()
	return out
}

// observe calls emit with the current leader and every change until ctx
// ends.
func (e *Election) observe(ctx context.Context, emit func(Leader)) {
	var (
		last  Leader
		first = true
		idx   uint64
		bo    = backoff.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}
	)
	for {
		q := e.queryOptions()
		q.WaitIndex, q.WaitTime = idx, e.cfg.wait
		start := time.Now()
		// A plain read (the first, or after an index reset) is bounded:
		// on a connection that died without a reset it would never end.
		rctx, rcancel := attempt.Read(ctx, idx)
		pair, meta, err := e.client.KV().Get(rctx, e.key, q)
		err = attempt.Err(ctx, rctx, err)
		rcancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.logs.Warn("consul election: observe failed; retrying", "key", e.key, "err", err)
			if backoff.Sleep(ctx, bo.Next()) != nil {
				return
			}
			continue
		}
		bo.Reset()
		var pause time.Duration
		if idx != 0 {
			// A blocking read that came back without the index moving
			// forward (a wake without a change, or a server answering
			// index 0, which resets idx and would alternate 1 and 0
			// forever): the next one waits.
			pause = holder.IdleWait(idx, meta.LastIndex, start)
		}
		idx = api.NextWaitIndex(idx, meta.LastIndex)
		cur := leaderOf(e.key, pair)
		if first || !sameTerm(cur, last) || !bytes.Equal(cur.Value, last.Value) {
			first = false
			last = cur
			emit(cur.clone())
			continue
		}
		if pause > 0 {
			if backoff.Sleep(ctx, backoff.Spread(pause, 0.2)) != nil {
				return
			}
		}
	}
}
