package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/holder"
)

// GuardedTxn applies ops in one transaction only if this Lock still holds
// the key: a check-session operation on the lock's key is put first, so
// Consul itself refuses the transaction once the lock has changed hands,
// however late this process learns of it. The check is of the session,
// not of one acquisition: when the same session holds the key again (this
// Lock locking again, or another Lock on the key sharing the session), a
// guarded write of the earlier holding that arrives late still passes.
// Where that matters, give each Lock its own session, or fence with the
// token. It returns ErrNotHeld, sending nothing, when the Lock does not
// hold the key as the call begins (also once the held context has ended:
// from the start of an Unlock, or a loss the Lock has seen, whose held
// context has ended when ErrNotHeld comes; a call already sent is still
// checked by Consul), an error wrapping ErrLost when Consul says
// the session no longer holds it (the session is then renewed at once: if
// Consul no longer has it, the error wraps session.ErrInvalidated too, and
// the session ends for all its users; and the Lock reports the loss at
// once, if its watcher has not yet: the held context has ended when
// GuardedTxn returns, unless ctx ended first), and a *api.TxnError for a
// failure of one of ops (whose OpIndex values are shifted by one).
// Results do not include the check.
func (l *Lock) GuardedTxn(ctx context.Context, ops api.TxnOps) (*api.TxnResponse, error) {
	l.mu.Lock()
	h, lost := l.held, l.lost
	l.mu.Unlock()
	if h == nil || h.ctx.Err() != nil {
		if lost != nil {
			// The watcher is reporting a loss: the Lock stops reporting
			// itself held a moment before the held context ends. Wait
			// for that, so that ErrNotHeld never comes while the held
			// context still lives.
			select {
			case <-lost.ctx.Done():
			case <-ctx.Done():
			}
		}
		return nil, ErrNotHeld
	}
	all := make(api.TxnOps, 0, len(ops)+1)
	all = append(all, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: l.key, Session: h.token.Session}})
	all = append(all, ops...)
	resp, _, err := l.client.Txn().Do(ctx, all, h.sess.WriteOptions())
	if err != nil {
		var te *api.TxnError
		if errors.As(err, &te) {
			if oe, ok := te.Op(0); ok {
				if (oe.NotHeld() || oe.InvalidSession()) && !h.releasing.Load() {
					// The hold is over (an Unlock's own release aside):
					// the watcher, which may not have seen it yet (or
					// may never, on a connection that died), reports
					// the loss now, so that the held context has ended
					// when the caller learns of it.
					h.refuse(errRefused)
					select {
					case <-h.ctx.Done():
					case <-ctx.Done():
					}
				}
				// Most often the session was invalidated: a renew says
				// so, and tells the session's other users. Sent once the
				// loss is reported (a renew must not delay that).
				holder.RenewWithin(ctx, h.sess)
				if serr := h.sess.Err(); serr != nil {
					return nil, fmt.Errorf("%w: Consul refused a guarded write: %w: session: %w", ErrLost, err, serr)
				}
				return nil, fmt.Errorf("%w: Consul refused a guarded write: %w", ErrLost, err)
			}
		}
		return nil, err
	}
	// The check-session operation yields the lock key as its result.
	if len(resp.Results) > 0 && resp.Results[0].KV != nil && resp.Results[0].KV.Key == l.key {
		resp.Results = resp.Results[1:]
	}
	// A write of the lock's own key (Proclaim's, say) that keeps it held
	// moves the index the release checks.
	for _, r := range resp.Results {
		if kv := r.KV; kv != nil && kv.Key == l.key && kv.Session == h.token.Session && kv.Flags == Flag {
			h.seen(kv.ModifyIndex)
		}
	}
	return resp, nil
}

// GuardedPut writes p only if this Lock still holds the key (see
// GuardedTxn).
func (l *Lock) GuardedPut(ctx context.Context, p *api.KVPair) error {
	if p == nil {
		return &api.ValidationError{Field: "pair", Reason: "nil"}
	}
	_, err := l.GuardedTxn(ctx, api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: p.Key, Value: p.Value, Flags: p.Flags}}})
	return err
}
