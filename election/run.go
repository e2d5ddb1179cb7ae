package election

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/backoff"
)

// resignTimeout bounds the Resign that Run sends after fn returns.
const resignTimeout = 30 * time.Second

// shortTerm is how soon after it was won a lost term counts as short: Run
// paces its campaigns after short terms in a row.
const shortTerm = 10 * time.Second

// errOnNewLeaderPanicked is the cause of fn's context when Run ends
// because Hooks.OnNewLeader panicked.
var errOnNewLeaderPanicked = errors.New("election: OnNewLeader panicked")

// Run campaigns with value, calls fn while leading, and campaigns again
// when leadership is lost, until ctx ends or fn returns while still
// leading.
//
// fn gets a context cancelled when leadership ends (cause wrapping
// ErrDeposed) or ctx ends (ctx's cause). Run waits for fn to return before
// it does anything else, so one Run never runs two calls of fn at once,
// and it resigns after fn returns, so another candidate takes over at
// once.
//
//   - fn returns while still leading: Run resigns and returns fn's error
//     (nil included). A job meant to run for as long as it leads waits on
//     its context. fn may also hand leadership over with Resign: Run
//     then returns fn's error as well, without campaigning again. A
//     resign that fails (the key may stay held by the session until it
//     ends) is joined to what Run returns.
//   - leadership is lost: Run waits for fn, then campaigns again,
//     whatever fn returned. After two or more terms in a row that each
//     took less than 10 seconds, from being won to fn's return (a fn slow
//     to stop makes a long term), it pauses before campaigning,
//     from 250 ms doubling up to 10 s (jittered), so that a key deleted in
//     a loop or a session that keeps failing does not start fn over and
//     over; a term that lasts longer resets the pause.
//   - ctx ends: Run cancels fn's context, waits for fn, resigns and
//     returns ctx.Err().
//
// A campaign that fails with a transient error (api.IsRetryable) is
// retried with backoff; any other error ends Run, as does the loss of a
// session given with WithSession (checked after every loss, with one
// request). A session the Election made for itself that is lost while
// Run waits to lead is replaced (see WithSessionOptions): a standby stays
// a standby. With Hooks.OnNewLeader set, Run observes
// the key for as long as it runs (one more blocking query); a panic in
// that hook ends Run as ctx ending would, then goes on from Run.
//
// Between candidates on several machines, "never two at once" holds only
// as well as the lease does (see the package doc): give the sessions a
// lock-delay longer than fn takes to stop, and fence what fn writes with
// the term's token: lock.TokenFrom(leading), or Election.Token.
func (e *Election) Run(ctx context.Context, value []byte, fn func(leading context.Context) error) error {
	if fn == nil {
		return &api.ValidationError{Field: "fn", Reason: "nil"}
	}
	if err := e.validateValue(value); err != nil {
		return err
	}
	if h := e.cfg.hooks.OnNewLeader; h != nil {
		// A panic in the hook, in the observer's goroutine, ends Run as
		// ctx ending would (fn's context cancelled, a resign), then goes
		// on from Run's goroutine, where the caller can recover it: a
		// panic there would end the process with the key still held.
		var (
			hookPanic any
			panicked  bool
		)
		rctx, rcancel := context.WithCancelCause(ctx)
		ctx = rctx
		octx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				if v := recover(); v != nil {
					hookPanic, panicked = v, true
					e.logs.Error("consul election: OnNewLeader panicked; Run ends and passes the panic on",
						"key", e.key, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
					rcancel(errOnNewLeaderPanicked)
				}
			}()
			var last Leader
			e.observe(octx, func(l Leader) {
				if !l.IsZero() && !sameTerm(l, last) {
					h(l)
				}
				last = l
			})
		}()
		defer func() {
			stop()
			<-done
			rcancel(nil)
			if panicked {
				panic(hookPanic)
			}
		}()
	}
	bo := backoff.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
	// Paces campaigns after short terms in a row.
	pace := backoff.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}
	short := 0
	for {
		leading, err := e.Campaign(ctx, value)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !api.IsRetryable(err) {
				return err
			}
			e.logs.Warn("consul election: campaign failed; retrying", "key", e.key, "err", err)
			if backoff.Sleep(ctx, bo.Next()) != nil {
				return ctx.Err()
			}
			continue
		}
		bo.Reset()
		won := time.Now()
		fnErr, lost, resignErr := e.lead(ctx, leading, fn)
		term := time.Since(won) // before sessionGone, whose renew may take a while
		if ctx.Err() != nil {
			return joinResign(ctx.Err(), resignErr)
		}
		if !lost {
			// fn returned while leading, or resigned itself.
			return joinResign(fnErr, resignErr)
		}
		if err := e.sessionGone(ctx); err != nil {
			return err
		}
		var wait time.Duration
		if term < shortTerm {
			if short++; short > 1 {
				wait = pace.Next()
			}
		} else {
			short = 0
			pace.Reset()
		}
		e.logs.Info("consul election: deposed; campaigning again", "key", e.key,
			"cause", context.Cause(leading), "fn_err", fnErr, "after", wait)
		if backoff.Sleep(ctx, wait) != nil {
			return ctx.Err()
		}
	}
}

// sessionGone checks, after a loss, that the session given with
// WithSession still exists. A session destroyed from outside is only
// noticed by its renew loop up to TTL/2 later, and a campaign with it
// meanwhile would be refused by Consul over and over. A renew finds out
// and, when the session is gone, makes it report so: Err and Done tell
// whoever else uses it. Unanswered (Renew gives up after 10 seconds), the
// session is taken as alive: a campaign through a dead one fails anyway.
func (e *Election) sessionGone(ctx context.Context) error {
	s := e.cfg.sess
	if s == nil {
		return nil
	}
	_ = s.Renew(ctx)
	if err := s.Err(); err != nil {
		return fmt.Errorf("election: session: %w", err)
	}
	return nil
}

// lead runs fn for one term, then resigns (or waits for the term's end).
// It reports whether leadership was lost (not resigned) before fn
// returned, and a resign that failed: the key may then stay held by the
// session, and Run's caller must know.
func (e *Election) lead(ctx, leading context.Context, fn func(context.Context) error) (fnErr error, lost bool, resignErr error) {
	fctx, cancel := context.WithCancelCause(leading)
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	// A term fn ended itself with Resign is a hand-over, not a loss.
	lostNow := func() bool {
		e.syncTerm() // a loss the lock has seen and follow not yet passed on
		return leading.Err() != nil && !errors.Is(context.Cause(leading), ErrResigned)
	}
	returned := false
	defer func() {
		stop()
		if !returned {
			lost = lostNow() // fn panicked
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), resignTimeout)
		// On a term already over, Resign only waits for its end
		// (OnDeposed), and says ErrNotLeader or ErrDeposed.
		if err := e.Resign(rctx); err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrDeposed) {
			resignErr = err
			e.logs.Warn("consul election: resign failed", "key", e.key, "err", err)
		}
		rcancel()
		cancel(nil)
	}()
	fnErr = fn(fctx)
	// Asked as fn returns: a loss after that is not one fn ran into, and
	// must not make Run run fn again.
	lost, returned = lostNow(), true
	return fnErr, lost, nil
}

// Run campaigns for key with value and runs fn while leading, campaigning
// again after a loss: see Election.Run. opts configure the Election.
func Run(ctx context.Context, client *api.Client, key string, value []byte, fn func(leading context.Context) error, opts ...Option) error {
	e, err := New(client, key, opts...)
	if err != nil {
		return err
	}
	return e.Run(ctx, value, fn)
}

// joinResign returns err as it is when the resign succeeded (so that
// err == context.Canceled, or a type assertion on fn's error, holds), and
// both joined when it failed.
func joinResign(err, resignErr error) error {
	if resignErr == nil {
		return err
	}
	return errors.Join(err, resignErr)
}
