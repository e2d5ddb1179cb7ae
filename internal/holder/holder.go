// Package holder holds what lock and semaphore share about a holder: the
// options that choose its session and value, and the session it holds
// through (the caller's, or one created for one acquisition).
package holder

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/backoff"
	"github.com/consulkit/consulkit/internal/grace"
	"github.com/consulkit/consulkit/session"
)

// Config is what the holder options of lock and semaphore set.
type Config struct {
	Session     *session.Session // the caller's session, or nil
	SessionOpts []session.Option // options of sessions created per acquisition
	Value       []byte
	Logger      *slog.Logger
	Wait        time.Duration // bound of each blocking query
}

// DefaultWait is the default bound of each blocking query.
const DefaultWait = 5 * time.Minute

// SetSession sets the caller's session.
func (c *Config) SetSession(s *session.Session) error {
	if s == nil {
		return &api.ValidationError{Field: "session", Reason: "nil"}
	}
	if s.ID() == "" {
		return &api.ValidationError{Field: "session", Reason: "not made by session.New"}
	}
	c.Session = s
	return nil
}

// SetValue sets the value, copied.
func (c *Config) SetValue(v []byte) error {
	if len(v) > api.MaxValueSize {
		return &api.ValidationError{Field: "value", Reason: "larger than 512 KiB"}
	}
	c.Value = append([]byte(nil), v...)
	return nil
}

// QueryOptions returns the read options of the holder's sessions: those
// of the caller's session, or those its session options give (see
// session.QueryOptionsFor). Reads made without a session use them, so
// that they see the keys the holder's writes hold.
func (c *Config) QueryOptions() *api.QueryOptions {
	if c.Session != nil {
		return c.Session.QueryOptions()
	}
	return session.QueryOptionsFor(c.SessionOpts...)
}

// PlaceholderSession stands for a session ID where a transaction is built
// only to be measured (see ValueFits): every session ID has its length.
const PlaceholderSession = "00000000-0000-0000-0000-000000000000"

// ValueFits returns a *api.ValidationError on the value when ops, the
// largest transaction that carries it, would be refused for its size:
// values travel base64-encoded, so a value well under api.MaxValueSize
// (about 380 KiB and more) can make the transaction exceed
// api.MaxTxnSize. Checked before anything is sent, as no attempt could
// ever succeed.
func ValueFits(value []byte, ops api.TxnOps) error {
	if txnBound(ops) <= api.MaxTxnSize {
		return nil // cheap, for Campaign and Proclaim with every value
	}
	err := api.ValidateTxn(ops)
	var ve *api.ValidationError
	if errors.As(err, &ve) {
		return &api.ValidationError{Field: "value", Reason: fmt.Sprintf("%d bytes are too many for the transaction that writes it: %s", len(value), ve.Reason)}
	}
	return err
}

// txnBound is more than the encoded size of ops, all KV operations,
// without encoding them: a value travels base64-encoded, a string escaped
// at worst six bytes for one, and the rest of an operation takes under
// 256 bytes. Another kind of operation makes it unbounded.
func txnBound(ops api.TxnOps) int {
	n := 2
	for _, op := range ops {
		kv := op.KV
		if kv == nil {
			return math.MaxInt
		}
		n += 256 + base64.StdEncoding.EncodedLen(len(kv.Value)) +
			6*(len(kv.Verb)+len(kv.Key)+len(kv.Session)+len(kv.Namespace)+len(kv.Partition))
	}
	return n
}

// SetWait sets the bound of each blocking query.
func (c *Config) SetWait(d time.Duration) error {
	if d <= 0 || d > 10*time.Minute {
		return &api.ValidationError{Field: "wait time", Reason: "must be in (0, 10m]"}
	}
	c.Wait = d
	return nil
}

// Lease is the session one acquisition holds through, with its claim on
// the holder's key.
type Lease struct {
	Session *session.Session
	own     bool
	unclaim func()
}

// Own reports whether the lease's session was created for it (and is
// destroyed by CloseOwn).
func (l *Lease) Own() bool { return l.own }

// Take returns a lease on the configured session, or on a new one created
// with first followed by the configured session options, and claims
// keyFor(session ID) on it (see session.Claim).
func (c *Config) Take(ctx context.Context, client *api.Client, keyFor func(sessionID string) string, first ...session.Option) (*Lease, error) {
	l := &Lease{Session: c.Session}
	if l.Session == nil {
		s, err := session.New(ctx, client, append(first, c.SessionOpts...)...)
		if err != nil {
			return nil, err
		}
		l.Session, l.own = s, true
	}
	unclaim, err := l.Session.Claim(keyFor(l.Session.ID()))
	if err != nil {
		l.CloseOwn(ctx)
		return nil, err
	}
	l.unclaim = unclaim
	return l, nil
}

// LostWhileWaiting reports whether an acquisition through l that failed
// with err, while ctx is live, failed because l's own session was lost
// (invalidated, or expired). Nothing was held through that session, so the
// acquisition may start over with a new one: a waiting Lock, Acquire or
// Campaign must not end because a session it made for itself did (a
// serfHealth flap invalidates every session of a node). A caller's
// session is the caller's to replace.
func (l *Lease) LostWhileWaiting(ctx context.Context, err error) bool {
	if !l.own || ctx.Err() != nil {
		return false
	}
	return l.Session.Err() != nil || errors.Is(err, session.ErrInvalidated)
}

// Acquire runs one acquisition: it takes a lease and runs the acquisition
// through it, and drops the lease when that fails. When the lease's own
// session was lost while waiting (LostWhileWaiting) and try is false, it
// starts over with a new lease after a short pause, logging what to the
// logger, if any, at warning level. Once it has started over, a lease
// that could not be taken for a transient reason (a session create that
// met no leader, or a reset connection) is tried again the same way: the
// faults that end sessions are those that fail their creation for a
// while. The first lease is not: a session that cannot be created at all
// (a wrong address, a node check that does not exist) is reported at once
// rather than waited on in silence.
func Acquire[T any](ctx context.Context, try bool, warn func(msg string, args ...any), what string, take func() (*Lease, error), run func(*Lease) (T, error)) (T, *Lease, error) {
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for restarted := false; ; restarted = true {
		lease, err := take()
		if err != nil {
			var zero T
			if ctx.Err() != nil {
				// ctx ended while the session was being made: ctx.Err()
				// itself, as the callers promise, not a wrapping of it.
				return zero, nil, ctx.Err()
			}
			if !restarted || !api.IsRetryable(err) {
				return zero, nil, err
			}
			warn(what+": could not create a session; retrying", "err", err)
			if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
				return zero, nil, serr
			}
			continue
		}
		v, err := run(lease)
		if err == nil {
			return v, lease, nil
		}
		// Asked before Drop, which closes an own session (its Err is then
		// ErrClosed, whatever ended the acquisition).
		lost := !try && lease.LostWhileWaiting(ctx, err)
		lease.Drop(ctx)
		if !lost {
			return v, nil, err
		}
		warn(what+": a session made for this acquisition ended while it waited; waiting on with a new one", "session", lease.Session.ID(), "err", err)
		if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
			return v, nil, serr
		}
	}
}

// Unclaim gives up the claim on the key; it is idempotent.
func (l *Lease) Unclaim() {
	if l.unclaim != nil {
		l.unclaim()
	}
}

// CloseOwn destroys the session if it was created for this lease, within
// 10 seconds and even when ctx has ended. A destroy that fails for a
// transient reason (a 500, a reset connection) is tried again within
// that time while ctx lives: nobody else can close the session, and it
// would otherwise stay until its TTL runs out, holding whatever a failed
// release left. A caller that has given up (a Lock cancelled while the
// agent is unreachable) gets the one destroy. It returns the last failure
// (nil for a session not the lease's own).
func (l *Lease) CloseOwn(ctx context.Context) error {
	return l.closeOwn(ctx, true)
}

// CloseOwnAfterLoss sends the destroy of the session, if it was created
// for this lease, once (within 10 seconds): what a watcher does after the
// hold was lost, when no caller waits for retries and Consul drops the
// session at its TTL anyway.
func (l *Lease) CloseOwnAfterLoss() {
	_ = l.closeOwn(context.Background(), false)
}

func (l *Lease) closeOwn(ctx context.Context, retry bool) error {
	if !l.own {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	wait, wcancel := context.WithDeadline(ctx, time.Now().Add(10*time.Second))
	defer wcancel()
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for {
		err := l.Session.Close(cctx)
		if err == nil || !retry || !api.IsRetryable(err) || backoff.Sleep(wait, bo.Next()) != nil {
			return err
		}
	}
}

// Drop gives the lease up after a failed acquisition.
func (l *Lease) Drop(ctx context.Context) {
	l.Unclaim()
	l.CloseOwn(ctx)
}

// WatchGate decides, once per holding, whether its watcher sends any query.
// A holding given up before its watcher got to send its first blocking
// query needs no watch: the release itself finds out whether it was still
// held. Skipping it saves a request, and the round trip that the release
// would otherwise wait for, on short critical sections. Once the watcher
// has started, it is left to see the release and return by itself:
// cancelling a request in flight makes net/http close its connection.
// The zero value is ready to use.
type WatchGate struct{ state atomic.Int32 }

const (
	gatePending int32 = iota
	gateStarted
	gateSkipped
)

// Start is called by the watcher before its first query. It reports
// false when the holding was given up first: the watcher returns at once.
func (g *WatchGate) Start() bool { return g.state.CompareAndSwap(gatePending, gateStarted) }

// Skip is called when the holding is given up: a watcher that has not
// started never will.
func (g *WatchGate) Skip() { g.state.CompareAndSwap(gatePending, gateSkipped) }

// ErrUnconfirmed is the reason a holder's watch gives for a loss when it
// has had no answer from Consul about the key for two session TTLs (reads
// that fail or hang) while the session itself renews: the key may have
// been deleted or taken meanwhile, and a holder that cannot tell must not
// go on as if it held it.
var ErrUnconfirmed = errors.New("no answer from Consul about the key for two session TTLs")

// Confirmer times a holder's watch. Each answer confirms the hold as of
// its request's send time, and a hold not confirmed for two session TTLs
// is lost (ErrUnconfirmed): the key may have changed unseen.
//
// Two TTLs, not one: when Consul cannot be reached at all, the session
// reports its own loss first (at most a TTL after its last renew), and a
// fault the session survives costs no hold. A healthy watch confirms far
// more often: a blocking query waits at most a third of the TTL, so the
// next answer comes at most two waits (plus Consul's jitter of wait/16
// each) after the last confirmed send. A query not answered by its wait
// plus a margin is taken as stuck on a dead connection and given up, and
// after any failure the next query is a plain read, answered at once, so
// one dead connection costs a few seconds of sight, not a loss.
type Confirmer struct {
	wait      time.Duration // the configured wait
	confirmed time.Time
	plain     bool
}

// queryMargin is how long past its wait (and jitter) a watch query may
// take before it is given up as stuck.
const queryMargin = 3 * time.Second

// NewConfirmer returns a Confirmer for a hold confirmed now, whose blocking
// queries wait at most wait.
func NewConfirmer(wait time.Duration) *Confirmer {
	return &Confirmer{wait: wait, confirmed: time.Now()}
}

func (c *Confirmer) deadline(ttl time.Duration) time.Time { return c.confirmed.Add(2 * ttl) }

// Next returns what the next query sends: waitIndex (idx, or 0 for a plain
// read after a failure) and wait, and a context that ends when the query
// should have been answered or at the confirmation deadline. ok is false
// once that deadline has passed: the hold is unconfirmed.
func (c *Confirmer) Next(ctx context.Context, idx uint64, ttl time.Duration) (waitIndex uint64, wait time.Duration, qctx context.Context, cancel context.CancelFunc, ok bool) {
	deadline := c.deadline(ttl)
	now := time.Now()
	if !now.Before(deadline) {
		return 0, 0, nil, nil, false
	}
	if !c.plain {
		waitIndex, wait = idx, max(min(c.wait, ttl/3), time.Second)
	}
	if d := now.Add(wait + wait/16 + queryMargin); d.Before(deadline) {
		deadline = d
	}
	qctx, cancel = context.WithDeadline(ctx, deadline)
	return waitIndex, wait, qctx, cancel, true
}

// Plain reports whether the next query is a plain read.
func (c *Confirmer) Plain() bool { return c.plain }

// Answered records an answer to a query sent at sent.
func (c *Confirmer) Answered(sent time.Time) { c.confirmed, c.plain = sent, false }

// Failed records a query that failed or was given up.
func (c *Confirmer) Failed() { c.plain = true }

// Sleep pauses after a failure for d, at most a tenth of the TTL (so that
// the watch looks again soon after a fault ends), until ctx ends or the
// confirmation deadline passes.
func (c *Confirmer) Sleep(ctx context.Context, d, ttl time.Duration) {
	sctx, cancel := context.WithDeadline(ctx, c.deadline(ttl))
	defer cancel()
	_ = backoff.Sleep(sctx, min(d, ttl/10))
}

// minIdleWake is the shortest interval between two blocking reads whose
// index did not move.
const minIdleWake = time.Second

// IdleWait returns how long a watch loop pauses after a blocking read sent
// at sent with index prev that came back with index got: nothing when the
// index moved; otherwise what is left of a second since it was sent.
// Consul answers without a change only when the wait time runs out; a
// server or proxy that answers at once (no X-Consul-Index, say) would
// otherwise turn the loop into a busy poll.
func IdleWait(prev, got uint64, sent time.Time) time.Duration {
	if got > prev {
		return 0
	}
	return time.Until(sent.Add(minIdleWake))
}

// AwaitWatcher waits for a holding's watcher to return after the holding
// was given up. When the release was sent and answered (released), the
// watcher is given a second to see the change and return by itself;
// otherwise, or when it is parked in a backoff pause or slow to be
// answered, it is stopped.
func AwaitWatcher(exited <-chan struct{}, stop context.CancelFunc, released bool) {
	if !released {
		stop()
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		stop()
		<-exited
	}
}

// RenewWithin renews s within ctx, or within grace.Timeout when ctx has
// already ended (Renew bounds it at 10 seconds too): for an Unlock,
// Release or guarded write that found its key let go and asks whether
// Consul invalidated the session, so that s reports it to all its users.
func RenewWithin(ctx context.Context, s *session.Session) {
	rctx, cancel := grace.Context(ctx)
	defer cancel()
	_ = s.Renew(rctx)
}
