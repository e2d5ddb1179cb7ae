package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/attempt"
	"github.com/consulkit/consulkit/internal/backoff"
	"github.com/consulkit/consulkit/internal/grace"
	"github.com/consulkit/consulkit/internal/holder"
	"github.com/consulkit/consulkit/internal/logq"
	"github.com/consulkit/consulkit/session"
)

// Flag is the KV flag that marks a key as a lock. Consul's CLI (consul
// lock) and its official Go client use the same value, so that the three
// exclude one another on one key.
const Flag uint64 = 0x2ddccbc058a50c18

// Errors.
var (
	// ErrLocked: TryLock found the lock held by another session, or in its
	// lock-delay.
	ErrLocked = errors.New("lock: held by another session")
	// ErrNotHeld: Unlock or a guarded write on a lock this Lock does not
	// hold. The first Unlock after a loss wraps the loss (ErrLost) too.
	ErrNotHeld = errors.New("lock: not held")
	// ErrHeld: Lock or TryLock on a Lock that already holds the key, or while
	// another Lock, TryLock or Unlock call on it is in progress (an Unlock
	// keeps the key the Lock's until its release is done, also when the
	// lock is found lost meanwhile).
	ErrHeld = errors.New("lock: already held or being acquired")
	// ErrLost is the cause of the held context when the lock is lost: the key
	// was deleted or taken by another session, the session was lost, or
	// the hold could not be confirmed (ErrUnconfirmed).
	ErrLost = errors.New("lock: lost")
	// ErrUnconfirmed, wrapped in ErrLost: the watch had no answer from
	// Consul about the key for two session TTLs while the session renewed
	// (reads that fail or hang, say). The key may have been deleted or taken
	// meanwhile, so the lock is reported lost, and let go.
	ErrUnconfirmed = holder.ErrUnconfirmed
	// ErrConflict: the key exists with flags that are not a lock's (it is a
	// semaphore's key, or plain data).
	ErrConflict = errors.New("lock: key is not a lock (flags mismatch)")
	// ErrUnlocked is the cause of the held context after Unlock.
	ErrUnlocked = errors.New("lock: unlocked")
)

// Token identifies one acquisition of a lock. Tokens of successive
// acquisitions of a key strictly grow: compare ModifyIndex (the Raft index of
// the acquiring write) to fence external writes. LockIndex (the number of
// acquisitions of the key) is not a fence: it restarts at 1 whenever the
// key is deleted and created again (a failed acquisition's cleanup, the
// official client's Destroy, consul lock when it exits).
type Token struct {
	Key         string
	Session     string
	LockIndex   uint64
	ModifyIndex uint64
}

// tokenKey is the key of the Token in a held context.
type tokenKey struct{}

// TokenFrom returns the fencing token of the acquisition whose held
// context ctx is, or derives from: the way to get it inside lock.Do, or
// anywhere only the held context is passed. It returns the token even once
// ctx has ended (a stale token is refused by whatever it fences); ok is
// false when ctx does not come from a Lock.
func TokenFrom(ctx context.Context) (tok Token, ok bool) {
	tok, ok = ctx.Value(tokenKey{}).(Token)
	return tok, ok
}

// IsZero reports whether t is the zero Token (no lock held).
func (t Token) IsZero() bool { return t == Token{} }

// Newer reports whether t comes from a later acquisition of the same key
// than u.
func (t Token) Newer(u Token) bool { return t.ModifyIndex > u.ModifyIndex }

// Option configures a Lock.
type Option func(*config) error

// config is what Options set; it is unexported so that the options stay
// the only way to set it.
type config struct{ holder.Config }

// WithSession makes the Lock hold the key through s, which the caller owns
// and may share with other locks on other keys. Without it, the Lock
// creates a session at each acquisition and destroys it at Unlock.
//
// A caller's session lost while Lock waits ends the wait (an error
// wrapping session.ErrInvalidated or session.ErrExpired): replacing it is
// the caller's call. A session the Lock made for itself is replaced
// instead, and Lock waits on: nothing was held through it; it also tries
// again when it cannot create that replacement for a transient reason (no
// cluster leader, a reset connection). A first session that cannot be
// created fails Lock at once.
func WithSession(s *session.Session) Option {
	return func(c *config) error { return c.SetSession(s) }
}

// WithSessionOptions sets the options of the sessions the Lock creates for
// itself (ignored with WithSession).
func WithSessionOptions(opts ...session.Option) Option {
	return func(c *config) error {
		c.SessionOpts = append(c.SessionOpts, opts...)
		return nil
	}
}

// WithValue sets the value stored in the key while it is held. Consul's
// tools show it as the holder's description. The value travels
// base64-encoded in the acquisition's transaction, which Consul takes up
// to 512 KiB: New refuses a value that makes it larger (above about 380
// KiB), before anything is sent.
func WithValue(v []byte) Option {
	return func(c *config) error { return c.SetValue(v) }
}

// WithLogger logs waits, refusals and losses. Lines are written from a
// goroutine of their own: a handler that blocks holds up neither the
// watch nor Lock or Unlock.
// While 8 lines wait for a slow handler, a new one drops the oldest; the
// next line written carries their number (dropped_before).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.Logger = l; return nil }
}

// WithWaitTime bounds each blocking query the Lock sends: more than 0, at
// most 10m (default 5m). The watch of a held lock waits at most a third
// of the session TTL whatever this says (see ErrUnconfirmed).
func WithWaitTime(d time.Duration) Option {
	return func(c *config) error { return c.SetWait(d) }
}

// Lock is a distributed mutual-exclusion lock over one Consul key. A Lock
// is used by one holder at a time: Lock and TryLock may not run
// concurrently on one Lock (the second gets ErrHeld); Unlock may be called
// from any goroutine.
type Lock struct {
	client *api.Client
	key    string
	cfg    holder.Config
	// logs writes the Lock's lines: a handler that blocks must not hold
	// up the watch, nor Lock or Unlock past their ctx.
	logs *logq.Queue

	mu        sync.Mutex
	busy      bool     // a Lock or TryLock call is in progress
	held      *holding // nil when not held
	lost      *holding // the last holding lost, until Unlock reports it
	lastIndex uint64   // the key's ModifyIndex after our last release, 0 if unknown
	// The lock delay of the last holder seen, so that contended calls do
	// not look it up again.
	lastHolder      string
	lastHolderDelay time.Duration
}

// holding is one acquisition: its token, its held context and the
// goroutine that watches it.
type holding struct {
	token  Token
	sess   *session.Session
	lease  *holder.Lease
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   context.CancelFunc // stops the watcher
	// refuse stops the watcher with a loss: Consul refused a guarded
	// write because the session no longer holds the key.
	refuse context.CancelCauseFunc
	exited chan struct{}
	// releasing is set by Unlock before it releases the key, so that the
	// watcher takes the change for the release and not for a loss.
	releasing atomic.Bool
	gate      holder.WatchGate
	// reported runs the first report of the loss (lose): the watcher's,
	// or the session's end (see hold). A later report waits for it, so
	// that the watcher cleans up only once the held context has ended.
	reported sync.Once
	// stopSess stops the report of the session's end; the watcher calls
	// it as it exits.
	stopSess func() bool
	// index is the key's ModifyIndex as last known to be this holding's
	// (acquired, followed by the watcher, written by GuardedTxn): the
	// release checks it, so that a write by someone else that the watcher
	// has not seen yet is never overwritten.
	index atomic.Uint64
}

// seen records that the key was this holding's at ModifyIndex i.
func (h *holding) seen(i uint64) {
	for {
		cur := h.index.Load()
		if i <= cur || h.index.CompareAndSwap(cur, i) {
			return
		}
	}
}

// New returns a Lock on key. It sends nothing; the key is validated.
func New(client *api.Client, key string, opts ...Option) (*Lock, error) {
	if client == nil {
		return nil, &api.ValidationError{Field: "client", Reason: "nil"}
	}
	if err := api.ValidateKey(key); err != nil {
		return nil, err
	}
	cfg := config{holder.Config{Wait: holder.DefaultWait}}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	// The acquisition is the largest transaction carrying the value.
	if err := holder.ValueFits(cfg.Value, acquireOps(key, cfg.Value, holder.PlaceholderSession, math.MaxUint64)); err != nil {
		return nil, err
	}
	return &Lock{client: client, key: key, cfg: cfg.Config, logs: logq.New(cfg.Logger)}, nil
}

// Key returns the lock's key.
func (l *Lock) Key() string { return l.key }

// Token returns the fencing token of the current acquisition, or the zero
// Token when the lock is not held: also once it was lost or Unlock began.
func (l *Lock) Token() Token {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil || l.held.ctx.Err() != nil {
		return Token{}
	}
	return l.held.token
}

// Lock blocks until it holds the lock, ctx ends or an error occurs. It
// returns a context that stays alive while the lock is held and is
// cancelled, with cause ErrLost (wrapping the reason), when the lock is lost,
// or with cause ErrUnlocked at Unlock. The held context does not derive from
// ctx. When ctx ends first, Lock returns ctx.Err() and holds nothing.
func (l *Lock) Lock(ctx context.Context) (context.Context, error) { return l.acquire(ctx, false) }

// TryLock is Lock without waiting: it fails with ErrLocked when another
// session holds the key or a lock-delay is in force.
func (l *Lock) TryLock(ctx context.Context) (context.Context, error) { return l.acquire(ctx, true) }

func (l *Lock) begin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy || l.held != nil {
		return ErrHeld
	}
	l.busy = true
	return nil
}

func (l *Lock) end() {
	l.mu.Lock()
	l.busy = false
	l.mu.Unlock()
}

func (l *Lock) acquire(ctx context.Context, try bool) (context.Context, error) {
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.end()

	warn := func(msg string, args ...any) { l.logs.Warn(msg, append(args, "key", l.key)...) }
	tok, lease, err := holder.Acquire(ctx, try, warn, "consul lock",
		func() (*holder.Lease, error) {
			lease, err := l.cfg.Take(ctx, l.client, func(string) string { return l.key })
			if err != nil {
				return nil, fmt.Errorf("lock: %w", err)
			}
			return lease, nil
		},
		func(lease *holder.Lease) (Token, error) { return l.acquireWith(ctx, lease, try) })
	if err != nil {
		return nil, err
	}
	return l.hold(tok, lease), nil
}

// acquireWith runs one acquisition through lease's session.
func (l *Lock) acquireWith(ctx context.Context, lease *holder.Lease, try bool) (Token, error) {
	sess := lease.Session

	// A request in flight when the session ends is abandoned: the
	// acquisition could not be held anyway.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sess.Context(), cancel)
	defer stop()

	a := acquirer{l: l, sess: sess, try: try}
	l.mu.Lock()
	a.guard = l.lastIndex
	l.mu.Unlock()
	tok, err := a.run(actx)
	if err == nil && sess.Err() != nil {
		// Acquired as the session ended (Close ends it before destroying
		// it): the lock is as good as lost already.
		err = sess.Err()
		if errors.Is(err, session.ErrExpired) {
			// Expired here, at its local deadline: Consul may keep the
			// session, and the key with it, for up to one more TTL, for
			// nobody. Let it go, as the watcher does for a hold whose
			// session expires (Close's destroy, or Consul's invalidation,
			// frees it otherwise).
			a.cleanup(ctx)
		}
	}
	if err != nil {
		if ctx.Err() == nil && sess.Err() != nil {
			return Token{}, fmt.Errorf("lock: session: %w", sess.Err())
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// ctx and the session ended together: actx's Canceled may
			// have come first, but ctx's own error (a deadline) is the
			// one to report.
			return Token{}, ctx.Err()
		}
		return Token{}, err
	}
	return tok, nil
}

// hold records an acquisition and starts its watcher.
func (l *Lock) hold(tok Token, lease *holder.Lease) context.Context {
	h := &holding{token: tok, sess: lease.Session, lease: lease, exited: make(chan struct{})}
	h.index.Store(tok.ModifyIndex)
	h.ctx, h.cancel = context.WithCancelCause(context.WithValue(context.Background(), tokenKey{}, tok))
	wctx, stop := context.WithCancelCause(context.Background())
	h.stop, h.refuse = func() { stop(nil) }, stop
	l.mu.Lock()
	l.held, l.lost = h, nil
	l.mu.Unlock()
	// The session's end is reported here too, not only by the watcher:
	// one held up (in a logger whose handler blocks on a stalled stderr,
	// say) must not leave the held context live once the session is
	// gone. An Unlock under way (which may end an own session) reports
	// nothing here; whichever report comes first counts. Registered once
	// h is the Lock's: a session that has ended already reports at once,
	// and lose forgets h only if it is l.held.
	h.stopSess = context.AfterFunc(lease.Session.Context(), func() {
		if !h.releasing.Load() {
			l.lose(h, lease.Session.Err())
		}
	})
	go l.watch(wctx, h)
	return h.ctx
}

// Unlock releases the lock, waits for its watcher to stop, and destroys
// the session the Lock created for itself. It returns ErrNotHeld when the
// lock is not held and an error wrapping ErrLost when it was lost before it
// could be released. After a loss the Lock has reported (its watcher saw
// it, or its session ended), Unlock waits for the Lock's cleanup (letting
// go of a key overwritten with other flags, destroying the session it
// created) and returns ErrNotHeld wrapping the
// loss: errors.Is(err, ErrLost) holds until Unlock has reported it once
// or the Lock locks again. When the release finds the key let go before
// the watcher saw it (most often Consul, invalidating the session), Unlock
// renews the session at once: if Consul no longer has it, the error wraps
// the session's cause (session.ErrInvalidated) too, and the session ends
// for all its users. A release that fails otherwise leaves the key held by
// a caller's session (the error names it) until the session ends or the
// Lock locks again; the Lock's own session is destroyed all the same, which
// frees the key, and the error says so (if that destroy fails too, the key
// stays held until Consul drops the session at its TTL).
//
// The held context is cancelled (cause ErrUnlocked) before the release is
// sent, so that whatever it guards stops before another holder can take
// the key. Transient errors are retried until ctx ends or the session
// does (Consul then frees the key itself). A ctx that has already ended
// when Unlock is called (defer l.Unlock(ctx) after a shutdown cancelled
// ctx) still gets the release sent, within 5 seconds. The release is sent
// before the watcher is stopped: its blocking query returns on its own
// because the key changed, where cancelling it would make the HTTP client
// drop its connection and dial a new one on every cycle.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	h, lost := l.held, l.lost
	// Marked under mu, where lose decides whether to forget h: once an
	// Unlock of h has begun, h stays held until its release is done, so
	// that no new acquisition through the same session can take the key
	// and then be let go by that release.
	first := h != nil && !h.releasing.Swap(true)
	if first {
		// Cancelled under mu as well: a loss the watcher reports from now
		// on finds releasing set and leaves the release to this Unlock,
		// so this Unlock must not then take the loss's path, which sends
		// nothing (an unconfirmed hold would be left held for nobody).
		h.gate.Skip()
		h.cancel(ErrUnlocked)
	}
	l.mu.Unlock()
	if h == nil {
		if lost == nil {
			return ErrNotHeld
		}
		return l.reportLoss(ctx, lost)
	}
	if !first {
		// Another Unlock is under way: once it is done, this one was
		// called on a lock not held.
		select {
		case <-h.exited:
		case <-ctx.Done():
			return ctx.Err()
		}
		return ErrNotHeld
	}
	if errors.Is(context.Cause(h.ctx), ErrLost) {
		// A guard: lose cancels h only after deciding under mu, so a
		// loss that came first has forgotten h (h is nil above).
		return l.reportLoss(ctx, h)
	}
	var relErr error
	kept := false // the release failed, leaving the key held by the session
	idx, err := l.release(ctx, h, true)
	switch {
	case err == nil:
	case errors.Is(err, errNotOurs), errors.Is(err, errUncertainRelease):
		// Most often Consul released the key because it invalidated the
		// session: a renew says so, and tells the session's other users
		// (as the watcher does for a loss it sees). So too when an
		// earlier attempt of this release got no answer: it may have
		// released the key, or Consul may have before it.
		holder.RenewWithin(ctx, h.sess) // as the release was
		uncertain := errors.Is(err, errUncertainRelease)
		if serr := h.sess.Err(); serr != nil {
			if uncertain {
				relErr = fmt.Errorf("%w: %w: session: %w", ErrLost, err, serr)
				break
			}
			relErr = fmt.Errorf("%w: released before Unlock: session: %w", ErrLost, serr)
			break
		}
		if uncertain {
			relErr = fmt.Errorf("%w: %w", ErrLost, err)
			break
		}
		relErr = fmt.Errorf("%w: released or taken by someone else before Unlock", ErrLost)
	case errors.Is(err, ErrConflict):
		relErr = fmt.Errorf("%w: %w", ErrLost, err)
	case h.sess.Err() != nil:
		relErr = fmt.Errorf("%w: session: %w", ErrLost, h.sess.Err())
		if errors.Is(h.sess.Err(), session.ErrExpired) {
			// The session expired here while the release was under way,
			// which its end cut short. Consul may keep the session, and
			// the key, for up to one more TTL, then impose its
			// lock-delay: one release, unless the key changed since the
			// holding last knew it, as the watcher sends for such a loss
			// when no Unlock is under way (it leaves it to this one).
			idx = l.releaseExpired(ctx, h)
		}
	default:
		// The key stays held until the session ends: CloseOwn ends an own
		// session now; a caller's session keeps it until it is closed, or
		// until this Lock locks again (which releases it first).
		kept = true
		relErr = fmt.Errorf("lock: release (the key stays held by session %s until it ends or this Lock locks again): %w", h.sess.ID(), err)
	}
	holder.AwaitWatcher(h.exited, h.stop, err == nil)
	l.mu.Lock()
	l.lastIndex = idx // 0 unless released
	if l.lost == h {
		l.lost = nil // the watcher saw a loss as well: reported here
	}
	l.mu.Unlock()
	l.forget(h)
	cerr := h.lease.CloseOwn(ctx)
	switch {
	case !kept || !h.lease.Own():
	case cerr == nil:
		// The Lock's own session is gone now, and its hold with it.
		relErr = fmt.Errorf("lock: release failed, but the Lock's own session %s is destroyed, which frees the key: %w", h.sess.ID(), err)
	default:
		// Locking again goes through a new session, which cannot let
		// go of this one's hold: the key stays held until Consul drops
		// the session.
		relErr = fmt.Errorf("lock: release failed, and so did the destroy of the Lock's own session %s (%v): the key stays held until Consul drops the session at its TTL: %w", h.sess.ID(), cerr, err)
	}
	return relErr
}

// releaseExpired sends one release of h, whose session expired here,
// whatever the session's state (see watch), within an attempt's bound and
// ctx (or grace.Timeout, if ctx has ended). It returns the key's
// ModifyIndex after the release, 0 if it did not release it.
func (l *Lock) releaseExpired(ctx context.Context, h *holding) uint64 {
	gctx, gcancel := grace.Context(ctx)
	defer gcancel()
	rctx, cancel := attempt.Context(gctx)
	defer cancel()
	idx, err := l.releaseOnce(rctx, h)
	if err != nil {
		return 0
	}
	return idx
}

// reportLoss is Unlock on a holding its watcher lost: it waits (within
// ctx, or grace.Timeout if ctx has ended) for the watcher to clean up, and
// returns ErrNotHeld wrapping the loss.
func (l *Lock) reportLoss(ctx context.Context, h *holding) error {
	waitErr := grace.Wait(ctx, h.exited)
	if waitErr == nil {
		h.stop()
	}
	l.forget(h) // lose leaves that to an Unlock under way
	l.mu.Lock()
	if l.lost == h {
		l.lost = nil
	}
	l.mu.Unlock()
	lost := context.Cause(h.ctx)
	if !errors.Is(lost, ErrLost) {
		lost = ErrLost // Unlock cancelled h first, with ErrUnlocked
	}
	if waitErr != nil {
		return fmt.Errorf("%w: %w (its cleanup is still under way: %w)", ErrNotHeld, lost, waitErr)
	}
	return fmt.Errorf("%w: %w", ErrNotHeld, lost)
}

// errUncertainRelease: a release attempt got no answer and the next one
// found the key not held by this session: either the first one released
// it, or the lock was lost before.
var errUncertainRelease = errors.New("lock: release: an attempt got no answer and the next found the key not held by this session")

// errNotOurs: the release found the key no longer held by this session.
var errNotOurs = errors.New("lock: release: the key is no longer held by this session")

// errChanged: the key changed since this holding last knew it.
var errChanged = errors.New("lock: release: the key changed")

// release unlocks the key, retrying transient errors until ctx ends or
// the session does, and returns the key's ModifyIndex after the release.
// It returns an error wrapping errNotOurs when the key is no longer held
// by the session, and ErrConflict when it was written with other flags
// meanwhile (the session's hold is then let go, keeping that write).
//
// With recheck false, a key changed since h last knew it counts as not
// h's: the caller no longer keeps the Lock from acquiring the key again,
// and a hold by the same session at a newer index may be a new holding's.
func (l *Lock) release(ctx context.Context, h *holding, recheck bool) (uint64, error) {
	rctx, cancel := grace.Context(ctx)
	defer cancel()
	stop := context.AfterFunc(h.sess.Context(), cancel)
	defer stop()
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	uncertain := false
	for changes := 0; ; {
		idx, err := l.releaseOnce(rctx, h)
		if errors.Is(err, errChanged) && !recheck {
			return 0, errNotOurs
		}
		if errors.Is(err, errChanged) && changes < 10 {
			// Someone wrote the key since this holding last knew it: see
			// whether it is still ours before sending anything more.
			changes++
			err = l.recheck(rctx, h)
			if err == nil {
				continue // ours, at the index just read: release it
			}
		}
		switch {
		case err == nil:
			return idx, nil
		case errors.Is(err, errNotOurs) && uncertain:
			return 0, errUncertainRelease
		case errors.Is(err, errNotOurs), errors.Is(err, ErrConflict):
			return 0, err
		case !api.IsRetryable(err) || rctx.Err() != nil:
			return 0, err
		}
		uncertain = true
		l.logs.Warn("consul lock: release failed; retrying", "key", l.key, "err", err)
		if serr := backoff.Sleep(rctx, bo.Next()); serr != nil {
			return 0, err
		}
	}
}

// releaseOnce unlocks the key, if it is still at the index h last knew,
// in a transaction that also reads it back, and returns the key's
// ModifyIndex after the release.
func (l *Lock) releaseOnce(ctx context.Context, h *holding) (uint64, error) {
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: l.key, Index: h.index.Load()}},
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: l.key, Value: l.cfg.Value, Flags: Flag, Session: h.sess.ID()}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: l.key}},
	}
	resp, err := attempt.Txn(ctx, l.client, ops, h.sess.WriteOptions())
	if err != nil {
		var te *api.TxnError
		if errors.As(err, &te) {
			if _, failed := te.Op(0); failed {
				return 0, errChanged
			}
			if oe, failed := te.Op(1); failed && oe.NotHeld() {
				return 0, errNotOurs
			}
		}
		return 0, err
	}
	for _, r := range resp.Results {
		if r.KV != nil && r.KV.Key == l.key && r.KV.Session == "" {
			return r.KV.ModifyIndex, nil
		}
	}
	return 0, nil
}

// recheck reads the key after a release found it changed: nil when it is
// still the session's with the lock's flags (h then knows its new index),
// errNotOurs when it is not, and ErrConflict when it was written with other
// flags, in which case the session's hold is let go, keeping that write.
func (l *Lock) recheck(ctx context.Context, h *holding) error {
	rctx, cancel := attempt.Context(ctx)
	q := h.sess.QueryOptions()
	q.Consistency = api.ConsistencyConsistent
	pair, _, err := l.client.KV().Get(rctx, l.key, q)
	err = attempt.Err(ctx, rctx, err)
	cancel()
	switch {
	case err != nil:
		return err
	case pair == nil || pair.Session != h.sess.ID():
		return errNotOurs
	case pair.Flags != Flag:
		l.releaseForeign(h, pair)
		return fmt.Errorf("%w: key %q was written with flags %#x while held", ErrConflict, l.key, pair.Flags)
	}
	h.seen(pair.ModifyIndex)
	return nil
}

// forget makes the Lock stop reporting h as held and gives up its claim on
// the key, so that the Lock can lock again as soon as h's context ends.
func (l *Lock) forget(h *holding) {
	l.mu.Lock()
	if l.held == h {
		l.held = nil
	}
	l.mu.Unlock()
	h.lease.Unclaim()
}

// lose marks h lost with reason, from the watcher or from hold's report of
// the session's end: the first report counts, and a later one returns once
// it is done (the held context ended). The Lock stops
// reporting itself held, and can lock again, before the held context is
// cancelled; h stays the Lock's last loss until Unlock reports it. When an
// Unlock of h is under way, h is left for it to forget: until its release
// has found the key gone, no new acquisition through the same session
// may take the key, which that release would then let go.
func (l *Lock) lose(h *holding, reason error) {
	h.reported.Do(func() { l.report(h, reason) })
}

// report is lose's first and only run for h.
func (l *Lock) report(h *holding, reason error) {
	err := fmt.Errorf("%w: %w", ErrLost, reason)
	l.mu.Lock()
	// An Unlock under way (releasing) reports the loss itself and
	// forgets h: marking h lost here would outlive that Unlock when this
	// report comes late (the session's end, reported from a goroutine of
	// its own), and make a later Unlock report the loss again.
	forget := !h.releasing.Load() // see Unlock
	if l.held == h && forget {
		l.lastIndex = 0
		l.lost, l.held = h, nil
	}
	l.mu.Unlock()
	if forget {
		h.lease.Unclaim()
	}
	h.cancel(err)
}

// releaseForeign gives up the session's hold on a key that was
// overwritten with other flags, leaving its value and flags as written; it
// does nothing if the key changed again.
func (l *Lock) releaseForeign(h *holding, pair *api.KVPair) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: l.key, Index: pair.ModifyIndex}},
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: l.key, Value: pair.Value, Flags: pair.Flags, Session: h.sess.ID()}},
	}
	_, _, _ = l.client.Txn().Do(ctx, ops, h.sess.WriteOptions())
}

var (
	errKeyDeleted = errors.New("key deleted")
	errKeyTaken   = errors.New("key held by another session")
	// Consul releases the keys of a session it invalidates (a failing
	// check, a destroy) before the session's renew can learn of it.
	errKeyReleased = errors.New("key released: by another client, or by Consul invalidating the session")
	// errRefused: GuardedTxn was refused by Consul's session check.
	errRefused = errors.New("guarded write refused: the session no longer holds the key")
)

// refusal is the loss a guarded write found, when that is why the
// watcher's ctx ended (else the watcher was stopped: nil).
func refusal(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, errRefused) {
		return err
	}
	return nil
}

// watch follows the key with consistent blocking queries while the lock
// is held. Transient errors are retried for as long as the session lives:
// the session itself reports loss at its deadline.
//
// A loss is reported (the held context cancelled) before anything is
// cleaned up: a key overwritten with other flags is let go, then a session
// the Lock created is destroyed. An Unlock called meanwhile waits for that
// cleanup.
func (l *Lock) watch(ctx context.Context, h *holding) {
	var reason error
	// Logged once exited is closed, and through logs: a handler that
	// blocks (on a caller of Unlock, say) must not hold up the cleanup
	// Unlock waits for.
	defer func() {
		if reason != nil {
			l.logs.Warn("consul lock lost", "key", l.key, "session", h.sess.ID(), "err", reason)
		}
	}()
	defer close(h.exited)
	defer h.stopSess()
	if !h.gate.Start() {
		return // Unlock came first
	}
	var foreign *api.KVPair
	reason, foreign = l.follow(ctx, h)
	if reason == nil {
		return
	}
	l.lose(h, reason)
	if errors.Is(reason, errKeyReleased) || errors.Is(reason, errKeyDeleted) || errors.Is(reason, errKeyTaken) || errors.Is(reason, errRefused) {
		// Consul releases (or deletes) the keys of a session it
		// invalidates before the session's renew loop can learn of it
		// (up to TTL/2 later). A renew tells whether that is why, and
		// if so makes the session report it to all its other users.
		// Reported after the loss: a renew must not delay that. Sent
		// before the Lock's own session is closed below, whose
		// ErrClosed would otherwise hide the invalidation (from
		// GuardedTxn, which renews too, and reports the session's Err).
		_ = h.sess.Renew(context.Background()) // bounded by Renew
	}
	if foreign != nil {
		l.releaseForeign(h, foreign)
	}
	if errors.Is(reason, session.ErrExpired) && !h.releasing.Load() {
		// The session expired here, at its local deadline; Consul drops
		// it later (it allows up to twice the TTL), and it may hold the
		// key until then, for nobody, and impose its lock-delay when it
		// goes. One release, unless the key changed since the holding
		// last knew it, lets the next holder in now. It is sent whatever
		// the session's state here (release stops when the session ends).
		_ = l.releaseExpired(context.Background(), h)
	}
	if errors.Is(reason, holder.ErrUnconfirmed) && !h.releasing.Load() {
		// The session may still hold the key, for nobody: let it go,
		// unless it changed since the holding last knew it (an Unlock
		// under way sends its own release). The Lock may lock again
		// meanwhile, so a change is not looked into (recheck false), and
		// the attempts stop after a TTL (10 to 30 s): a hold left behind
		// ends with the session, or at the next acquisition through it.
		rctx, cancel := context.WithTimeout(context.Background(), min(max(h.sess.TTL(), 10*time.Second), 30*time.Second))
		_, _ = l.release(rctx, h, false)
		cancel()
	}
	h.lease.CloseOwnAfterLoss()
}

// follow watches h until it is released (nil), or lost: it then returns
// the reason, and the key as found when it was overwritten with other
// flags.
func (l *Lock) follow(ctx context.Context, h *holding) (reason error, foreign *api.KVPair) {
	// Session loss interrupts a parked blocking query at once.
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopAfter := context.AfterFunc(h.sess.Context(), cancel)
	defer stopAfter()

	idx := h.token.ModifyIndex
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	// Each answer confirms the hold (see holder.Confirmer); the
	// acquisition confirmed it just before.
	c := holder.NewConfirmer(l.cfg.Wait)
	for {
		if ctx.Err() != nil {
			return refusal(ctx), nil
		}
		if h.sess.Err() != nil {
			return h.sess.Err(), nil
		}
		ttl := h.sess.TTL()
		plain := c.Plain()
		q := h.sess.QueryOptions()
		q.Consistency = api.ConsistencyConsistent
		var rctx context.Context
		var rcancel context.CancelFunc
		var ok bool
		q.WaitIndex, q.WaitTime, rctx, rcancel, ok = c.Next(qctx, idx, ttl)
		if !ok {
			return holder.ErrUnconfirmed, nil
		}
		sent := time.Now()
		pair, meta, err := l.client.KV().Get(rctx, l.key, q)
		rcancel()
		if ctx.Err() != nil {
			return refusal(ctx), nil
		}
		if err != nil {
			c.Failed()
			if h.sess.Err() == nil {
				// Not waited for: a handler that blocks must not stop
				// the watch from seeing a loss, or an Unlock.
				l.logs.Warn("consul lock watch failed; retrying", "key", l.key, "err", err)
				c.Sleep(qctx, bo.Next(), ttl)
			}
			continue
		}
		c.Answered(sent)
		bo.Reset()
		var pause time.Duration
		if !plain {
			pause = holder.IdleWait(idx, meta.LastIndex, sent)
		}
		idx = api.NextWaitIndex(idx, meta.LastIndex)
		still := pair != nil && pair.Session == h.sess.ID() && pair.Flags == Flag
		if !still && h.releasing.Load() {
			return nil, nil // Unlock released it
		}
		if still {
			h.seen(pair.ModifyIndex)
		}
		if err := h.sess.Err(); err != nil && (pair == nil || pair.Session != h.sess.ID()) {
			// The session ended before the key was let go (Close ends
			// it before the destroy): that is the cause.
			return err, nil
		}
		switch {
		case pair == nil:
			return errKeyDeleted, nil
		case pair.Session != h.sess.ID():
			if pair.Session == "" {
				return errKeyReleased, nil
			}
			return fmt.Errorf("%w (%s)", errKeyTaken, pair.Session), nil
		case pair.Flags != Flag:
			// Someone wrote the key without acquiring it: our session
			// still holds it. The loss is reported first, so that an
			// Unlock from now on sends nothing that would overwrite what
			// was written, then the key is let go, keeping it.
			return ErrConflict, pair
		}
		if pause > 0 {
			_ = backoff.Sleep(qctx, pause)
		}
	}
}

// Do runs fn while holding the lock on key: it creates a Lock with opts,
// waits for the lock, calls fn with the held context (cancelled if the lock
// is lost), and unlocks, also when fn panics. It returns fn's error,
// joined with Unlock's: one wrapping ErrLost when the lock was lost while
// fn ran, or a release that failed.
func Do(ctx context.Context, client *api.Client, key string, fn func(ctx context.Context) error, opts ...Option) (err error) {
	if fn == nil {
		return &api.ValidationError{Field: "fn", Reason: "nil"}
	}
	l, err := New(client, key, opts...)
	if err != nil {
		return err
	}
	held, err := l.Lock(ctx)
	if err != nil {
		return err
	}
	// Unlock even when fn panics or calls runtime.Goexit (t.FailNow).
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// Both errors when both fail: a failed release may leave the key
		// held (see Unlock).
		if rerr := l.Unlock(uctx); rerr != nil {
			err = errors.Join(err, rerr) // fn's error stays as it is otherwise
		}
	}()
	return fn(held)
}
