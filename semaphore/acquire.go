package semaphore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/attempt"
	"github.com/consulkit/consulkit/internal/backoff"
	"github.com/consulkit/consulkit/internal/holder"
	"github.com/consulkit/consulkit/session"
)

// errAnswerWithoutKeys: an acquisition answered 200 (applied) without the
// keys' reads. Acquire fails with it (after its cleanup) rather than
// retry; it wraps io.ErrUnexpectedEOF, which makes it retryable for the
// caller: a broken answer, not a refusal.
var errAnswerWithoutKeys = fmt.Errorf("semaphore: transaction answered without its keys: %w", io.ErrUnexpectedEOF)

// acquirer runs one Acquire or TryAcquire call.
//
// It reads the prefix, prunes the holders whose contender keys are gone or
// free, and when a slot is free sends one transaction that (1) CASes the
// coordination key, on the ModifyIndex it read (0: it must not exist), to
// the holders plus this session, and (2) locks the contender key with the
// session. Both apply or neither does, so a contender key exists only for
// a holder, and there are never more than Limit holders: every CAS is
// checked against the state it was computed from. When every slot is
// taken, it waits with a blocking query on the prefix.
type acquirer struct {
	s    *Semaphore
	sess *session.Session
	try  bool
	// uncertain: an attempt failed without an answer and may have been
	// applied; a failed acquisition then releases before returning.
	uncertain bool
	// adoptable: that attempt was computed from a view in which this
	// session held no slot, so a slot it holds now is that attempt's.
	adoptable bool
	// late: the CASes of attempts that got no answer, which may still be
	// applied after this call returns.
	late pending
}

type outcome int

const (
	acquired outcome = iota
	changed          // the coordination key changed since it was read
)

func (a *acquirer) run(ctx context.Context) (v view, err error) {
	defer func() {
		if err != nil && a.uncertain {
			a.s.cleanup(ctx, a.sess, a.late)
		}
	}()
	// Session loss interrupts a parked blocking query at once.
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopAfter := context.AfterFunc(a.sess.Context(), cancel)
	defer stopAfter()

	// Before the attempt without a read, as before every read below: an
	// attempt through a session already lost (ctx, here, is cancelled
	// with it) fails before it is sent, yet counts as one that may have
	// applied, and the cleanup after it rewrites the coordination key.
	if err := ctx.Err(); err != nil {
		return view{}, err
	}
	if err := a.sess.Err(); err != nil {
		return view{}, fmt.Errorf("semaphore: session: %w", err)
	}
	if v, ok, err := a.tryAfterRelease(ctx); ok || err != nil {
		return v, err
	}

	sid := a.sess.ID()
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	var waitIndex uint64
	for {
		if err := ctx.Err(); err != nil {
			return view{}, err
		}
		if err := a.sess.Err(); err != nil {
			return view{}, fmt.Errorf("semaphore: session: %w", err)
		}
		start := time.Now()
		v, err := a.s.read(qctx, a.sess, waitIndex, false)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return view{}, ctx.Err()
			case a.sess.Err() != nil:
				continue
			case errors.Is(err, ErrConflict):
				return view{}, err
			case !api.IsRetryable(err):
				return view{}, fmt.Errorf("semaphore: read: %w", err)
			}
			a.logRetry(err)
			if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
				return view{}, serr
			}
			continue
		}
		bo.Reset()
		if a.uncertain && a.adoptable && v.holds(sid) == nil {
			// An earlier attempt of this call whose answer was lost did
			// acquire (the session's claim rules out another holder in
			// this process, and the attempt's view showed no slot of
			// this session).
			a.uncertain = false
			return v, nil
		}
		// Otherwise a slot that v shows this session holding is a
		// leftover (of a Release that failed, with the caller's session)
		// or a stale read: it is not taken as acquired, but written
		// afresh by the transaction below, as a free slot would be (its
		// CAS fails when the read was stale). This session is therefore
		// not counted among the live holders.
		live := others(v.live(), sid)
		if v.lockPair != nil && v.state.Limit != a.s.limit && len(live) > 0 {
			return view{}, fmt.Errorf("%w: %q has limit %d, this semaphore %d", ErrLimitConflict, a.s.lockKey(), v.state.Limit, a.s.limit)
		}
		if len(live) >= a.s.limit {
			if a.try {
				return view{}, ErrNoSlot
			}
			var pause time.Duration
			if waitIndex != 0 {
				// A blocking read that came back without the index
				// moving forward (see holder.IdleWait): wait.
				pause = holder.IdleWait(waitIndex, v.index, start)
			}
			waitIndex = api.NextWaitIndex(waitIndex, v.index)
			if pause > 0 {
				if serr := backoff.Sleep(ctx, backoff.Spread(pause, 0.2)); serr != nil {
					return view{}, serr
				}
			}
			continue
		}
		nv, out, err := a.attempt(ctx, v, live)
		switch {
		case err != nil && ctx.Err() != nil:
			return view{}, ctx.Err()
		case err != nil && api.IsRetryable(err) && !errors.Is(err, errAnswerWithoutKeys):
			a.logRetry(err)
			if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
				return view{}, serr
			}
			waitIndex = 0
			continue
		case err != nil:
			return view{}, err
		case out == acquired:
			return nv, nil
		}
		waitIndex = 0 // changed: read again at once
	}
}

// tryAfterRelease tries, without reading first, one acquisition computed
// from the view this Semaphore's last Release left, when that view shows a
// free slot. It is as safe as one from a fresh read: the transaction's CAS
// fails unless the coordination key is still what the release wrote, and
// every holder in it had a live contender key when it was written (a
// holder that died since is counted, never one too few). It reports
// whether it acquired; when it did not, and with no error, the caller
// reads and goes on as usual.
func (a *acquirer) tryAfterRelease(ctx context.Context) (view, bool, error) {
	v := a.s.takeAfterRelease()
	if v == nil {
		return view{}, false, nil
	}
	live := others(v.live(), a.sess.ID())
	if len(live) >= a.s.limit || (v.lockPair != nil && v.state.Limit != a.s.limit) {
		return view{}, false, nil
	}
	nv, out, err := a.attempt(ctx, *v, live)
	switch {
	case err != nil && ctx.Err() != nil:
		return view{}, false, ctx.Err()
	case err != nil && (!api.IsRetryable(err) || errors.Is(err, errAnswerWithoutKeys)):
		return view{}, false, err
	case err != nil:
		a.logRetry(err) // the read that follows finds out whether it applied
		return view{}, false, nil
	}
	return nv, out == acquired, nil
}

// pending records the coordination-key CASes of acquisition attempts that
// got no answer. Such an attempt may still be applied when its request
// arrives (held up in an agent during a leader election, say, or in the
// network), after its Acquire has returned; it is kept from applying by
// making its CAS fail first.
type pending struct {
	index  uint64 // the highest non-zero CAS index sent
	create bool   // an attempt sent CAS index 0 (create)
}

func (p *pending) add(index uint64) {
	if index == 0 {
		p.create = true
		return
	}
	p.index = max(p.index, index)
}

// fence returns the writes that make every pending CAS fail against v, or
// nil when they fail already: the coordination key is created (empty)
// where it is absent, or deleted and created again as it is where it is
// still at a pending index. (Consul skips a write that changes nothing,
// without moving the index: rewriting the key as it is would not do.)
func (p pending) fence(s *Semaphore, v view) api.TxnOps {
	switch {
	case v.lockPair == nil && p.create:
		enc, err := lockState{Limit: s.limit}.encode()
		if err != nil {
			return nil
		}
		return api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.lockKey(), Value: enc, Flags: Flag, Index: 0}}}
	case v.lockPair != nil && p.index != 0 && v.lockPair.ModifyIndex == p.index:
		return api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVDeleteCAS, Key: s.lockKey(), Index: p.index}},
			{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.lockKey(), Value: v.lockPair.Value, Flags: Flag, Index: 0}},
		}
	}
	return nil
}

// others returns live without sid.
func others(live []string, sid string) []string {
	return slices.DeleteFunc(live, func(h string) bool { return h == sid })
}

// acquireOps is the acquisition transaction: the coordination key set to
// enc if its ModifyIndex is still index, and the contender key of sid
// locked with the value.
func (s *Semaphore) acquireOps(enc []byte, sid string, index uint64) api.TxnOps {
	return api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.lockKey(), Value: enc, Flags: Flag, Index: index}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: s.contenderKey(sid), Value: s.cfg.Value, Flags: Flag, Session: sid}},
	}
}

// attempt sends one acquisition transaction computed from v, whose live
// holders other than this session are live.
func (a *acquirer) attempt(ctx context.Context, v view, live []string) (view, outcome, error) {
	sid := a.sess.ID()
	st := lockState{Limit: a.s.limit, Holders: make(map[string]bool, len(live)+1)}
	for _, h := range live {
		st.Holders[h] = true
	}
	st.Holders[sid] = true
	enc, err := st.encode()
	if err != nil {
		return view{}, 0, err
	}
	resp, err := attempt.Txn(ctx, a.s.client, a.s.acquireOps(enc, sid, v.lockIndex()), a.sess.WriteOptions())
	if err != nil {
		var te *api.TxnError
		if !errors.As(err, &te) {
			// No answer: the transaction may have been applied, or may
			// still be.
			a.uncertain = true
			a.adoptable = v.holds(sid) != nil
			a.late.add(v.lockIndex())
			return view{}, 0, err
		}
		if oe, ok := te.Op(0); ok && oe.IndexMismatch() {
			return view{}, changed, nil
		}
		// The contender lock failed: the session is gone, or (never with
		// a live session) its key is held by another one.
		if serr := a.sess.Err(); serr != nil {
			return view{}, 0, fmt.Errorf("semaphore: session: %w", serr)
		}
		if oe, ok := te.Op(1); ok && (oe.InvalidSession() || oe.LockDelayed()) {
			// Consul no longer has the session; its renew loop may not
			// have found out yet. A lock-delay on the contender key says
			// so too: the key is named after the session, no other
			// session locks it, and Consul puts a delay on a key only
			// when the session holding it is invalidated. Its renew loop
			// may not find out for up to TTL/2: tell it now, so that its
			// Err says so to whoever else uses it.
			rerr := a.sess.Renew(ctx)
			switch {
			case rerr == nil && oe.LockDelayed():
				// Consul renewed the session: the delay is another
				// session's, which locked this session's key.
				return view{}, 0, fmt.Errorf("semaphore: acquire: %w", err)
			case a.sess.Err() != nil:
				return view{}, 0, fmt.Errorf("semaphore: session: %w", a.sess.Err())
			case oe.LockDelayed():
				// The renew got no answer: the session may be alive.
				// Its error (transient, most often) decides whether
				// the caller tries again; the renew loop decides loss.
				return view{}, 0, fmt.Errorf("semaphore: acquire: refused with a lock delay; %w", rerr)
			}
			return view{}, 0, fmt.Errorf("semaphore: session %s: %w: %w", sid, session.ErrInvalidated, err)
		}
		return view{}, 0, fmt.Errorf("semaphore: acquire: %w", err)
	}
	if len(resp.Results) < 2 || resp.Results[0].KV == nil || resp.Results[1].KV == nil {
		// Consul answered 200, so the slot is taken, but the answer (a
		// broken proxy's?) lacks the keys: fail, and leave cleanup to
		// release the slot (uncertain). The failure is transient for the
		// caller (api.IsRetryable), as in lock.
		a.uncertain = true
		return view{}, 0, errAnswerWithoutKeys
	}
	a.uncertain = false
	lk, ck := resp.Results[0].KV, resp.Results[1].KV
	nv := view{
		lockPair:   &api.KVPair{Key: lk.Key, Flags: Flag, ModifyIndex: lk.ModifyIndex, Value: enc},
		state:      st,
		contenders: maps.Clone(v.contenders),
		index:      max(lk.ModifyIndex, ck.ModifyIndex),
	}
	nv.contenders[sid] = &api.KVPair{Key: ck.Key, Flags: Flag, Session: sid, ModifyIndex: ck.ModifyIndex}
	return nv, acquired, nil
}

func (a *acquirer) logRetry(err error) {
	a.s.logs.Warn("consul semaphore: transient error; retrying", "prefix", a.s.prefix, "err", err)
}
