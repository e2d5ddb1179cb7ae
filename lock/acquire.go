package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/attempt"
	"github.com/consulkit/consulkit/internal/backoff"
	"github.com/consulkit/consulkit/internal/grace"
	"github.com/consulkit/consulkit/internal/holder"
	"github.com/consulkit/consulkit/session"
)

// errAnswerWithoutKey: an acquisition answered 200 (applied) without the
// key's read. Lock fails with it (after its cleanup) rather than retry;
// it wraps io.ErrUnexpectedEOF, which makes it retryable for the caller:
// a broken answer, not a refusal.
var errAnswerWithoutKey = fmt.Errorf("lock: transaction answered without the key: %w", io.ErrUnexpectedEOF)

// acquirer runs one Lock or TryLock call.
//
// Every acquisition attempt is one transaction that (1) checks that the key
// is as last seen (check-index on its ModifyIndex; an absent key is first
// created free, see attempt), so
// that a key with foreign flags is never overwritten, (2) locks the key with
// the lock flag, and (3) reads it back for the fencing token. Between
// attempts it waits with blocking queries on the key, or, after a refusal
// caused by lock-delay, until the delay is estimated to end.
type acquirer struct {
	l    *Lock
	sess *session.Session
	try  bool

	// guard is the key's ModifyIndex as last seen with our flag and no
	// holder (0: unknown, read first); absent means it did not exist.
	guard  uint64
	absent bool

	waitIndex   uint64        // index for the next blocking read
	holder      string        // the session last seen holding the key
	holderLock  uint64        // the key's LockIndex when holder was seen holding it
	holderDelay time.Duration // its lock delay, if known
	freedAt     time.Time     // when the key was seen free after holder held it
	delayTries  int
	uncertain   bool // an attempt failed in a way that may have applied it
	// sawNotOurs: a read of this call found the key not held by its
	// session. Only then can a hold by the session found after an
	// uncertain attempt be that attempt's: before, it may be a hold that
	// another Lock on the session left (its release failed), whose token
	// must not be reported again.
	sawNotOurs bool

	// The guard an attempt that got no answer sent (the highest such).
	// Such an attempt may still be applied later, after this call has
	// failed: cleanup makes that check fail first. (No attempt that locks
	// checks for an absent key: see attempt.)
	lateGuard uint64
}

type outcome int

const (
	acquired outcome = iota
	changed          // the key changed since it was read: read again
	held             // another session holds the key
	delayed          // a lock-delay is in force
	created          // the absent key was created free: attempt again now
)

func (a *acquirer) run(ctx context.Context) (tok Token, err error) {
	defer func() {
		if err != nil && a.uncertain {
			a.cleanup(ctx)
		}
	}()
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	haveState := a.guard != 0
	for {
		if err := ctx.Err(); err != nil {
			return Token{}, err
		}
		if err := a.sess.Err(); err != nil {
			return Token{}, fmt.Errorf("lock: session: %w", err)
		}
		if haveState {
			tok, out, err := a.attempt(ctx)
			switch {
			case err != nil && ctx.Err() != nil:
				return Token{}, ctx.Err()
			case err != nil && api.IsRetryable(err) && !errors.Is(err, errAnswerWithoutKey):
				a.logRetry(err)
				if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
					return Token{}, serr
				}
				haveState = false // re-read: the attempt may have applied
				a.waitIndex = 0   // at once: the key may not change again
				continue
			case err != nil:
				return Token{}, fmt.Errorf("lock: acquire: %w", err)
			}
			bo.Reset()
			switch out {
			case acquired:
				return tok, nil
			case held:
				if a.try {
					return Token{}, ErrLocked
				}
			case delayed:
				if a.try {
					return Token{}, fmt.Errorf("%w: lock-delay in force", ErrLocked)
				}
				if err := backoff.Sleep(ctx, a.delayWait()); err != nil {
					return Token{}, err
				}
				continue // the state is unchanged: attempt again
			case created:
				continue // guard is the created key's index
			}
			a.waitIndex = 0 // changed or held: read now
		}

		sent := time.Now()
		rctx, rcancel := attempt.Read(ctx, a.waitIndex)
		q := a.sess.QueryOptions()
		q.WaitIndex, q.WaitTime = a.waitIndex, a.l.cfg.Wait
		pair, meta, err := a.l.client.KV().Get(rctx, a.l.key, q)
		err = attempt.Err(ctx, rctx, err)
		rcancel()
		if err != nil {
			if ctx.Err() != nil {
				return Token{}, ctx.Err()
			}
			if !api.IsRetryable(err) {
				return Token{}, fmt.Errorf("lock: read: %w", err)
			}
			a.logRetry(err)
			if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
				return Token{}, serr
			}
			continue
		}
		bo.Reset()
		if a.waitIndex != 0 {
			// A blocking read (not the first, index 0, read) that came
			// back at once without a change.
			if d := holder.IdleWait(a.waitIndex, meta.LastIndex, sent); d > 0 {
				if serr := backoff.Sleep(ctx, d); serr != nil {
					return Token{}, serr
				}
			}
		}
		a.waitIndex = api.NextWaitIndex(a.waitIndex, meta.LastIndex)
		if pair == nil || pair.Session != a.sess.ID() {
			a.sawNotOurs = true
		}
		switch {
		case pair == nil:
			a.absent, a.guard, haveState = true, 0, true
			a.noteFree()
		case pair.Flags != Flag:
			return Token{}, fmt.Errorf("%w: key %q has flags %#x", ErrConflict, a.l.key, pair.Flags)
		case pair.Session == a.sess.ID() && a.uncertain && a.sawNotOurs:
			// An earlier attempt of this call whose answer was lost did
			// acquire it: this call saw the key not held by the session,
			// and the session's claim rules out another holder in this
			// process since.
			a.uncertain = false
			return Token{Key: a.l.key, Session: pair.Session, LockIndex: pair.LockIndex, ModifyIndex: pair.ModifyIndex}, nil
		case pair.Session == a.sess.ID():
			// The session holds the key, but not through this call: an
			// earlier holding whose release failed. Reporting it as held
			// would reuse its token; release it, so that this acquisition
			// is a new write with a newer token.
			if err := a.releaseLeftover(ctx, pair); err != nil {
				if ctx.Err() != nil {
					return Token{}, ctx.Err()
				}
				if !api.IsRetryable(err) {
					return Token{}, err
				}
				a.logRetry(err)
				if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
					return Token{}, serr
				}
			}
			a.waitIndex = 0 // read again
		case pair.Session != "":
			if a.try {
				return Token{}, ErrLocked
			}
			a.noteHolder(ctx, pair.Session, pair.LockIndex)
			haveState = false // block until the key changes
		default:
			if a.holder != "" && pair.LockIndex != a.holderLock {
				// Another session held the key after the one seen (a
				// blocking read shows only the latest state): a lock-delay
				// now in force is that one's, which is unknown.
				a.holder, a.holderDelay, a.freedAt = "", -1, time.Time{}
			}
			a.absent, a.guard, haveState = false, pair.ModifyIndex, true
			a.noteFree()
		}
	}
}

// acquireOps is the acquisition transaction: lock key for sid with value
// if its ModifyIndex is still guard, and read it back (the token).
func acquireOps(key string, value []byte, sid string, guard uint64) api.TxnOps {
	return api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: guard}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: value, Flags: Flag, Session: sid}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: key}},
	}
}

// attempt sends one acquisition transaction.
func (a *acquirer) attempt(ctx context.Context) (Token, outcome, error) {
	key, sid := a.l.key, a.sess.ID()
	if a.absent {
		// Never lock on check-not-exists: such an attempt that arrives
		// late would apply whenever the key is deleted again (a cleanup,
		// the official client's Destroy, consul lock). Create the key
		// free instead (harmless if late) and lock on its index.
		ops := api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}},
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Flags: Flag}},
		}
		resp, err := attempt.Txn(ctx, a.l.client, ops, a.sess.WriteOptions())
		if err == nil && len(resp.Results) > 0 && resp.Results[len(resp.Results)-1].KV != nil {
			// Created free at this index: lock on it without reading again.
			a.absent, a.guard = false, resp.Results[len(resp.Results)-1].KV.ModifyIndex
			return Token{}, created, nil
		}
		if err != nil {
			var te *api.TxnError
			if !errors.As(err, &te) {
				return Token{}, 0, err // retried: nothing that locks was sent
			}
			// Only "the key exists now" means read again; any other
			// refusal (a token that may not write the key) would repeat
			// at once, without end.
			if oe, ok := te.Op(0); !ok || !oe.Exists() || len(te.Errors) != 1 {
				return Token{}, 0, fmt.Errorf("creating the absent key free: %w", err)
			}
		}
		return Token{}, changed, nil // read the key, now free, and lock it
	}
	resp, err := attempt.Txn(ctx, a.l.client, acquireOps(key, a.l.cfg.Value, sid, a.guard), a.sess.WriteOptions())
	if err != nil {
		var te *api.TxnError
		if !errors.As(err, &te) {
			// No answer: the transaction may have been applied, or may
			// still be.
			a.uncertain = true
			a.lateGuard = max(a.lateGuard, a.guard)
			return Token{}, 0, err
		}
		if oe, ok := te.Op(1); ok {
			switch {
			case oe.LockDelayed():
				return Token{}, delayed, nil
			case oe.LockHeld():
				return Token{}, held, nil
			case oe.InvalidSession():
				// Consul no longer has the session. Its renew loop may
				// not find out for up to TTL/2: tell it now, so that its
				// Err says so to whoever else uses it.
				_ = a.sess.Renew(ctx)
				return Token{}, 0, fmt.Errorf("lock: session %s: %w: %w", sid, session.ErrInvalidated, err)
			}
			// Any other refusal of the lock itself would repeat: report it
			// rather than spin.
			return Token{}, 0, fmt.Errorf("lock: acquire: %w", err)
		}
		return Token{}, changed, nil // the check failed: the key changed
	}
	// The read is always the last result.
	if len(resp.Results) == 0 || resp.Results[len(resp.Results)-1].KV == nil {
		// Consul answered 200, so the key is locked, but the answer (a
		// broken proxy's?) lacks it: fail, and leave cleanup to release
		// it (uncertain). The failure is transient (api.IsRetryable), so
		// that a caller that retries such errors (election.Run) campaigns
		// again rather than giving up.
		a.uncertain = true
		return Token{}, 0, errAnswerWithoutKey
	}
	a.uncertain = false
	kv := resp.Results[len(resp.Results)-1].KV
	if kv.Session != sid {
		return Token{}, changed, nil
	}
	return Token{Key: key, Session: sid, LockIndex: kv.LockIndex, ModifyIndex: kv.ModifyIndex}, acquired, nil
}

// noteHolder records the session holding the key and, once per holder,
// reads its lock delay, which says how long a refusal may last after the
// holder's session is invalidated.
func (a *acquirer) noteHolder(ctx context.Context, holder string, lockIndex uint64) {
	// Seen held again: a "freed at" from before this hold says nothing
	// about when a lock-delay that follows it began.
	a.freedAt = time.Time{}
	a.holderLock = lockIndex
	if holder == a.holder {
		return
	}
	a.holder, a.holderDelay, a.freedAt = holder, -1, time.Time{}
	a.l.mu.Lock()
	if a.l.lastHolder == holder {
		a.holderDelay = a.l.lastHolderDelay
	}
	a.l.mu.Unlock()
	if a.holderDelay >= 0 {
		return
	}
	ictx, cancel := attempt.Context(ctx) // a plain read: bound it
	se, _, err := a.l.client.Session().Info(ictx, holder, a.sess.QueryOptions())
	cancel()
	if err == nil && se != nil {
		a.holderDelay = se.LockDelay
		a.l.mu.Lock()
		a.l.lastHolder, a.l.lastHolderDelay = holder, se.LockDelay
		a.l.mu.Unlock()
	}
}

// noteFree records when the key was first seen free after a holder.
func (a *acquirer) noteFree() {
	if a.holder != "" && a.freedAt.IsZero() {
		a.freedAt = time.Now()
	}
	a.delayTries = 0
}

// delayWait is how long to wait after a lock-delay refusal: until the
// delay of the last holder is estimated to end (it started no later than
// when the key was seen free), plus up to 100ms of jitter whatever the
// delay (a fraction of a long delay would break "at most a second late");
// when that is unknown or already past, a short growing pause bounded by
// one second.
func (a *acquirer) delayWait() time.Duration {
	a.delayTries++
	if a.holderDelay >= 0 && !a.freedAt.IsZero() {
		if left := time.Until(a.freedAt.Add(a.holderDelay)); left > 0 {
			return left + backoff.Jitter(100*time.Millisecond, 1)
		}
	}
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	var d time.Duration
	for range a.delayTries {
		d = b.Next()
	}
	return d
}

// releaseLeftover releases pair, held by the Lock's own session from an
// earlier holding, unless it changed since it was read.
func (a *acquirer) releaseLeftover(ctx context.Context, pair *api.KVPair) error {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: a.l.key, Index: pair.ModifyIndex}},
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: a.l.key, Value: pair.Value, Flags: pair.Flags, Session: a.sess.ID()}},
	}
	_, err := attempt.Txn(ctx, a.l.client, ops, a.sess.WriteOptions())
	var te *api.TxnError
	if errors.As(err, &te) {
		if _, failed := te.Op(0); failed {
			return nil // the key changed since it was read: read again
		}
		// The unlock itself was refused (a token that may read the key
		// but not write it): it would be refused again.
		return fmt.Errorf("lock: releasing the session's earlier hold: %w", err)
	}
	return err
}

// cleanup runs when the call fails after an attempt that got no answer.
// That attempt may have been applied, or may still be: a request held up
// in an agent (during a leader election, say) or in the network is applied
// when it arrives, after this call has returned. Either way the key must
// not end up held by the session with nobody knowing. cleanup therefore
// releases the key when the session holds it, and otherwise makes the late
// attempt's check fail before it can apply: a free key still at the
// attempt's guard is deleted (check-and-delete). It retries for up to
// grace.Timeout, also when ctx has ended.
func (a *acquirer) cleanup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace.Timeout)
	defer cancel()
	bo := backoff.Backoff{Min: 50 * time.Millisecond, Max: time.Second}
	for {
		done, err := a.fenceOnce(cctx)
		if done {
			return
		}
		if err != nil && cctx.Err() == nil && !api.IsRetryable(err) {
			a.logCleanup(err)
			return
		}
		if backoff.Sleep(cctx, bo.Next()) != nil {
			if err == nil {
				err = cctx.Err()
			}
			a.logCleanup(err)
			return
		}
	}
}

// fenceOnce reads the key and sends the write cleanup needs, if any. It
// reports done when nothing is left to do; false with a nil error when
// the key changed in between (read again).
func (a *acquirer) fenceOnce(ctx context.Context) (bool, error) {
	key, sid := a.l.key, a.sess.ID()
	pair, _, err := a.l.client.KV().Get(ctx, key, a.sess.QueryOptions())
	if err != nil {
		return false, err
	}
	var ops api.TxnOps
	switch {
	case pair != nil && pair.Session == sid:
		// An attempt was applied: release it, unless it changed since.
		ops = api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: pair.ModifyIndex}},
			{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: key, Value: pair.Value, Flags: pair.Flags, Session: sid}},
		}
	case pair != nil && pair.Session == "" && pair.ModifyIndex == a.lateGuard:
		// A late check-index would pass: the key is free and unchanged
		// since it was read. Deleting it moves it past that index
		// (rewriting it as it is would not: Consul skips a write that
		// changes nothing).
		ops = api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: key, Index: pair.ModifyIndex}}}
	default:
		// A late attempt's check fails already: the key moved past its
		// guard.
		return true, nil
	}
	_, err = attempt.Txn(ctx, a.l.client, ops, a.sess.WriteOptions())
	var te *api.TxnError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &te):
		if _, failed := te.Op(0); failed {
			return false, nil // changed since it was read
		}
		return false, err
	}
	return false, err
}

func (a *acquirer) logCleanup(err error) {
	a.l.logs.Error("consul lock: cleanup after a failed acquisition gave up; an attempt that got no answer may still hold the key for the session", "key", a.l.key, "session", a.sess.ID(), "err", err)
}

func (a *acquirer) logRetry(err error) {
	a.l.logs.Warn("consul lock: transient error; retrying", "key", a.l.key, "err", err)
}
