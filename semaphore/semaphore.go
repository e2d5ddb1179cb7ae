package semaphore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"path"
	"strings"
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

// Flag is the KV flag of a semaphore's keys. Consul's CLI and its
// official Go client use the same value, so that they share a semaphore
// with this package on one prefix.
const Flag uint64 = 0xe0f69a2baa414de0

// LockKey is the name, under the prefix, of the coordination key whose
// value lists the holders.
const LockKey = ".lock"

// Errors.
var (
	// ErrNoSlot: TryAcquire found every slot taken.
	ErrNoSlot = errors.New("semaphore: no free slot")
	// ErrLimitConflict: the limit stored in the coordination key differs
	// from the Semaphore's while the semaphore has live holders.
	ErrLimitConflict = errors.New("semaphore: limit conflicts with the stored one")
	// ErrConflict: the coordination key exists with other flags or a value
	// that is not a semaphore's.
	ErrConflict = errors.New("semaphore: key is not a semaphore's")
	// ErrNotHeld: Release on a Semaphore that holds no slot. The first
	// Release after a loss wraps the loss (ErrLost) too.
	ErrNotHeld = errors.New("semaphore: not held")
	// ErrHeld: Acquire or TryAcquire on a Semaphore that already holds a
	// slot, or while another Acquire or TryAcquire on it is in progress.
	ErrHeld = errors.New("semaphore: already held or being acquired")
	// ErrLost is the cause of the held context when the slot is lost: the
	// contender key was deleted or lost its session, the holder was removed
	// from the coordination key, or the session was lost.
	ErrLost = errors.New("semaphore: lost")
	// ErrUnconfirmed, wrapped in ErrLost: the watch had no answer from
	// Consul about the prefix for two session TTLs while the session
	// renewed (reads that fail or hang, say). The slot may have been taken away
	// meanwhile, so it is reported lost, and let go.
	ErrUnconfirmed = holder.ErrUnconfirmed
	// ErrReleased is the cause of the held context after Release.
	ErrReleased = errors.New("semaphore: released")
)

var (
	errContenderGone  = errors.New("contender key deleted")
	errContenderFreed = errors.New("contender key no longer held by the session")
	errLockGone       = errors.New("coordination key deleted")
	errRemoved        = errors.New("removed from the holders")
	errNotHolding     = errors.New("contender key deleted or no longer held by the session")
	// errUncertainRelease: as the lock's, a release attempt got no answer
	// and the next one found the slot gone.
	errUncertainRelease = errors.New("release: an attempt got no answer and the next found the slot gone: it released the slot, or the slot was lost before")
)

// Option configures a Semaphore.
type Option func(*config) error

// config is what Options set; it is unexported so that the options stay
// the only way to set it.
type config struct{ holder.Config }

// WithSession makes the Semaphore hold its slot through s, which the
// caller owns and may share with locks, elections and semaphores on other
// prefixes. Without it, the Semaphore creates a session at each
// acquisition (behavior Delete, so that Consul deletes the contender key
// when the session is invalidated) and destroys it at Release. Give your
// own session behavior Delete too (session.WithBehavior(session.Delete)),
// as the official client and consul lock -n do: with Release, a process
// that dies holding a slot leaves its contender key behind (free, so it
// does not count, but never removed).
//
// A caller's session lost while Acquire waits ends the wait (an error
// wrapping session.ErrInvalidated or session.ErrExpired); a session the
// Semaphore made for itself is replaced instead, and Acquire waits on.
func WithSession(s *session.Session) Option {
	return func(c *config) error { return c.SetSession(s) }
}

// WithSessionOptions sets the options of the sessions the Semaphore
// creates for itself (ignored with WithSession).
func WithSessionOptions(opts ...session.Option) Option {
	return func(c *config) error {
		c.SessionOpts = append(c.SessionOpts, opts...)
		return nil
	}
}

// WithValue sets the value of the contender key, which describes the
// holder to Consul's tools. The value travels base64-encoded in the
// acquisition's transaction, beside the coordination key, and Consul
// takes a transaction up to 512 KiB: New refuses a value that makes it
// larger with one holder (above about 380 KiB), before anything is sent.
func WithValue(v []byte) Option {
	return func(c *config) error { return c.SetValue(v) }
}

// WithLogger logs waits, retries and losses. Lines are written from a
// goroutine of their own: a handler that blocks holds up neither the
// watch nor Acquire or Release.
// While 8 lines wait for a slow handler, a new one drops the oldest; the
// next line written carries their number (dropped_before).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.Logger = l; return nil }
}

// WithWaitTime bounds each blocking query the Semaphore sends: more than
// 0, at most 10m (default 5m).
func WithWaitTime(d time.Duration) Option {
	return func(c *config) error { return c.SetWait(d) }
}

// Semaphore is a counting semaphore over a Consul prefix: at most Limit
// sessions hold a slot at once. A Semaphore holds at most one slot and is
// used by one holder at a time: Acquire and TryAcquire may not run
// concurrently on one Semaphore (the second gets ErrHeld); Release may be
// called from any goroutine. Create one Semaphore per concurrent holder.
type Semaphore struct {
	client *api.Client
	prefix string
	limit  int
	cfg    holder.Config
	// logs writes the Semaphore's lines: a handler that blocks must not
	// hold up the watch, nor Acquire or Release past their ctx.
	logs *logq.Queue

	mu   sync.Mutex
	busy bool
	held *holding
	lost *holding // the last slot lost, until Release reports it
	// after is the prefix as this Semaphore's last Release left it, for
	// the next acquisition to try without reading first.
	after *afterRelease
}

// afterRelease is a view computed from a release that was answered.
type afterRelease struct {
	v  view
	at time.Time
}

// afterReleaseTTL bounds how old a view left by Release may be for an
// acquisition to try it instead of reading. A view that turns out stale
// costs one refused transaction before the read.
const afterReleaseTTL = 2 * time.Second

// takeAfterRelease returns, once, the view the last Release left, when it
// is recent enough.
func (s *Semaphore) takeAfterRelease() *view {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar := s.after
	s.after = nil
	if ar == nil || time.Since(ar.at) > afterReleaseTTL {
		return nil
	}
	return &ar.v
}

// holding is one slot: its session, held context and watcher.
type holding struct {
	sess   *session.Session
	lease  *holder.Lease
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   context.CancelFunc
	exited chan struct{}
	// forgotten is closed when the Semaphore no longer reports h as held.
	forgotten  chan struct{}
	forgetOnce sync.Once

	// ending is set by whichever of Release and a loss first decides how
	// the slot ends (endReleased, endLost); the other stands aside. A loss
	// is decided by the watcher, or by the session's end (see hold), in
	// which case the watcher still cleans up.
	ending atomic.Int32
	gate   holder.WatchGate
	// stopSess stops the early report of the session's end (see hold);
	// the watcher calls it as it exits.
	stopSess func() bool
	// lostReason is set by the watcher's lose, for the watcher to log.
	lostReason error
	// reported: a Release has reported how h ended (guarded by the
	// Semaphore's mu), so that a loss whose cleanup ends later is not
	// kept as s.lost to report again.
	reported bool

	// late: CASes of the acquisition's attempts that got no answer.
	late pending

	mu   sync.Mutex
	last view // the watcher's last read
}

// How a slot ends (holding.ending).
const (
	endNone int32 = iota
	endReleased
	endLost
)

// lastView returns the watcher's last read.
func (h *holding) lastView() view {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// New returns a Semaphore on prefix with limit slots. It sends nothing;
// the prefix (a KV path without empty, "." or ".." segments; one trailing
// '/' is ignored), the limit (at least 1) and the options are validated
// (session options given with WithSessionOptions at Acquire).
func New(client *api.Client, prefix string, limit int, opts ...Option) (*Semaphore, error) {
	if client == nil {
		return nil, &api.ValidationError{Field: "client", Reason: "nil"}
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if err := api.ValidateKey(prefix); err != nil {
		return nil, &api.ValidationError{Field: "prefix", Reason: err.(*api.ValidationError).Reason}
	}
	if path.Clean(prefix) != prefix {
		return nil, &api.ValidationError{Field: "prefix", Reason: fmt.Sprintf("%q is not a clean path", prefix)}
	}
	if limit < 1 {
		return nil, &api.ValidationError{Field: "limit", Reason: fmt.Sprintf("%d is less than 1", limit)}
	}
	cfg := config{holder.Config{Wait: holder.DefaultWait}}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	s := &Semaphore{client: client, prefix: prefix, limit: limit, cfg: cfg.Config, logs: logq.New(cfg.Logger)}
	// The acquisition carries the value, beside the coordination key's
	// holders: measured with this one only (more make it larger).
	one, err := lockState{Limit: limit, Holders: map[string]bool{holder.PlaceholderSession: true}}.encode()
	if err != nil {
		return nil, err
	}
	if err := holder.ValueFits(cfg.Value, s.acquireOps(one, holder.PlaceholderSession, math.MaxUint64)); err != nil {
		return nil, err
	}
	return s, nil
}

// Prefix returns the semaphore's prefix, without a trailing '/'.
func (s *Semaphore) Prefix() string { return s.prefix }

// Limit returns the number of slots.
func (s *Semaphore) Limit() int { return s.limit }

func (s *Semaphore) lockKey() string                { return s.prefix + "/" + LockKey }
func (s *Semaphore) contenderKey(sid string) string { return s.prefix + "/" + sid }

// read lists the prefix once (blocking when waitIndex > 0), with the read
// options of sess, or without one, of the Semaphore's sessions.
func (s *Semaphore) read(ctx context.Context, sess *session.Session, waitIndex uint64, consistent bool) (view, error) {
	return s.readWait(ctx, sess, waitIndex, s.cfg.Wait, consistent)
}

// readWait is read with a wait of its own.
func (s *Semaphore) readWait(ctx context.Context, sess *session.Session, waitIndex uint64, wait time.Duration, consistent bool) (view, error) {
	var q *api.QueryOptions
	if sess != nil {
		q = sess.QueryOptions()
	} else {
		q = s.cfg.QueryOptions()
	}
	q.WaitIndex, q.WaitTime = waitIndex, wait
	if consistent {
		q.Consistency = api.ConsistencyConsistent
	}
	rctx, cancel := attempt.Read(ctx, waitIndex)
	pairs, meta, err := s.client.KV().List(rctx, s.prefix+"/", q)
	err = attempt.Err(ctx, rctx, err)
	cancel()
	if err != nil {
		return view{}, err
	}
	return parse(s.prefix, pairs, meta.LastIndex)
}

// Holders returns the session IDs of the live holders, sorted: those
// listed in the coordination key whose contender keys are held by their
// sessions. A semaphore nobody holds has none.
func (s *Semaphore) Holders(ctx context.Context) ([]string, error) {
	v, err := s.read(ctx, nil, 0, false)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, err
		}
		return nil, fmt.Errorf("semaphore: read: %w", err)
	}
	return v.live(), nil
}

// Acquire blocks until it holds a slot, ctx ends or an error occurs. It
// returns a context that stays alive while the slot is held and is
// cancelled, with a cause wrapping ErrLost, when the slot is lost, or with
// ErrReleased at Release. The held context does not derive from ctx. When
// ctx ends first, Acquire returns ctx.Err() and holds nothing, and leaves
// no contender key behind. Waiting is a blocking query on the prefix.
func (s *Semaphore) Acquire(ctx context.Context) (context.Context, error) {
	return s.acquire(ctx, false)
}

// TryAcquire is Acquire without waiting: it fails with ErrNoSlot when
// every slot is taken by a live holder.
func (s *Semaphore) TryAcquire(ctx context.Context) (context.Context, error) {
	return s.acquire(ctx, true)
}

// begin marks an acquisition in progress. A slot that was lost or is being
// released but whose cleanup is still running (lose, in the watcher, or
// Release) is waited for, so that an Acquire right after a loss or woken
// by the end of the held context neither fails with ErrHeld nor races the
// cleanup of the old entry.
func (s *Semaphore) begin(ctx context.Context) error {
	for {
		s.mu.Lock()
		h := s.held
		switch {
		case s.busy || h != nil && h.ctx.Err() == nil:
			s.mu.Unlock()
			return ErrHeld
		case h == nil:
			s.busy = true
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		for _, done := range []<-chan struct{}{h.exited, h.forgotten} {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (s *Semaphore) end() {
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
}

func (s *Semaphore) acquire(ctx context.Context, try bool) (context.Context, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()

	warn := func(msg string, args ...any) { s.logs.Warn(msg, append(args, "prefix", s.prefix)...) }
	type acquired struct {
		v    view
		late pending
	}
	got, lease, err := holder.Acquire(ctx, try, warn, "consul semaphore",
		func() (*holder.Lease, error) {
			lease, err := s.cfg.Take(ctx, s.client, s.contenderKey, session.WithBehavior(session.Delete))
			if err != nil {
				return nil, fmt.Errorf("semaphore: %w", err)
			}
			return lease, nil
		},
		func(lease *holder.Lease) (acquired, error) {
			v, late, err := s.acquireWith(ctx, lease, try)
			return acquired{v, late}, err
		})
	if err != nil {
		return nil, err
	}
	return s.hold(got.v, lease, got.late), nil
}

// acquireWith runs one acquisition through lease's session.
func (s *Semaphore) acquireWith(ctx context.Context, lease *holder.Lease, try bool) (view, pending, error) {
	sess := lease.Session

	// A request in flight or a pause when the session ends is abandoned:
	// the slot could not be held anyway.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sess.Context(), cancel)
	defer stop()

	a := acquirer{s: s, sess: sess, try: try}
	v, err := a.run(actx)
	if err == nil && sess.Err() != nil {
		// Acquired as the session ended (Close ends it before destroying
		// it): the slot is as good as lost already.
		s.cleanup(ctx, sess, a.late)
		err = sess.Err()
	}
	if err != nil {
		if ctx.Err() == nil && sess.Err() != nil {
			return view{}, pending{}, fmt.Errorf("semaphore: session: %w", sess.Err())
		}
		return view{}, pending{}, err
	}
	return v, a.late, nil
}

// hold records a slot and starts its watcher.
func (s *Semaphore) hold(v view, lease *holder.Lease, late pending) context.Context {
	h := &holding{sess: lease.Session, lease: lease, exited: make(chan struct{}), forgotten: make(chan struct{}), last: v, late: late}
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	var wctx context.Context
	wctx, h.stop = context.WithCancel(context.Background())
	// The session's end ends the held context at once, not only through
	// the watcher: one held up (in a logger whose handler blocks on a
	// stalled stderr, say) must not leave it live once the session is
	// gone. It is decided a loss, as the watcher would, so that a
	// Release from now on reports it; the watcher cleans up as before.
	h.stopSess = context.AfterFunc(lease.Session.Context(), func() {
		if h.ending.CompareAndSwap(endNone, endLost) {
			h.cancel(fmt.Errorf("%w: %w", ErrLost, lease.Session.Err()))
		}
	})
	s.mu.Lock()
	s.held, s.lost = h, nil
	s.mu.Unlock()
	go s.watch(wctx, h)
	return h.ctx
}

// Release gives the slot up. It first cancels the held context with
// ErrReleased, so that the slot is never taken by another process while
// this one's held context is live, then sends one transaction that checks
// that the contender key is still held by this session, removes the
// session from the coordination key (by CAS; the last holder leaves the
// key with no holders: it is never deleted, see the package doc) and
// deletes the contender key. It then waits for
// the watcher to end, and destroys the session the Semaphore created for
// itself.
//
// It returns ErrNotHeld when no slot is held, and an error wrapping
// ErrLost when the slot was lost before it could be released (what is
// left of it is then cleaned up), or when an attempt got no answer and the
// next found the slot gone: that attempt may have released it, or the
// slot was lost before, and Release cannot tell which. When the release
// finds the contender key let go before the watcher saw it (most often
// Consul, invalidating the session), or cannot tell whether an attempt
// that got no answer released the slot, Release renews the session at
// once, and cleans up what is left of the slot:
// if Consul no longer has it, the error wraps the session's cause
// (session.ErrInvalidated) too, and the session ends for all its users.
// Transient errors are retried until ctx ends or the session ends (a ctx
// that has already ended when Release is called still gets the release
// sent, within 5 seconds); a session that ends frees the slot by itself,
// which is reported as ErrLost. Any other failure leaves the slot held
// until the session ends: with WithSession, that is for as long as the
// caller keeps the session, and the error says so. The Semaphore no
// longer holds the slot after Release, whatever it returns.
//
// The watcher's blocking query is left to return by itself on the change
// the release makes, rather than cancelled: cancelling a request in flight
// makes Go's HTTP client close its connection, which would cost a new
// connection on every cycle.
func (s *Semaphore) Release(ctx context.Context) error {
	s.mu.Lock()
	h, lost := s.held, s.lost
	s.mu.Unlock()
	if h == nil {
		if lost == nil {
			return ErrNotHeld
		}
		return s.reportEnd(ctx, lost)
	}
	if !h.ending.CompareAndSwap(endNone, endReleased) {
		// The watcher saw the loss first and is cleaning up, or another
		// Release is under way.
		return s.reportEnd(ctx, h)
	}
	h.gate.Skip()

	var relErr error
	if err := h.sess.Err(); err != nil {
		relErr = fmt.Errorf("%w: %w", ErrLost, err)
		h.cancel(relErr)
		// Best effort, as after a loss seen by the watcher.
		s.cleanup(ctx, h.sess, h.late)
	} else {
		h.cancel(ErrReleased)
		relErr = s.releaseHeld(ctx, h)
	}
	holder.AwaitWatcher(h.exited, h.stop, relErr == nil)
	s.forget(h)
	h.lease.CloseOwn(ctx)
	return relErr
}

// reportEnd is Release on a slot that the watcher lost or another Release
// is giving up: it waits (within ctx, or grace.Timeout if ctx has ended)
// for that to finish, and returns ErrNotHeld, wrapping the loss if there
// was one. A loss is reported once.
func (s *Semaphore) reportEnd(ctx context.Context, h *holding) error {
	waitErr := grace.Wait(ctx, h.exited)
	s.mu.Lock()
	if s.lost == h {
		s.lost = nil
	}
	h.reported = true
	s.mu.Unlock()
	cause := context.Cause(h.ctx)
	switch lost := errors.Is(cause, ErrLost); {
	case lost && waitErr != nil:
		return fmt.Errorf("%w: %w (its cleanup is still under way: %w)", ErrNotHeld, cause, waitErr)
	case lost:
		return fmt.Errorf("%w: %w", ErrNotHeld, cause)
	case waitErr != nil:
		return fmt.Errorf("%w: being released: %w", ErrNotHeld, waitErr)
	}
	return ErrNotHeld
}

// releaseHeld sends the release of h, retrying transient errors until ctx
// ends or the session ends.
func (s *Semaphore) releaseHeld(ctx context.Context, h *holding) error {
	rctx, cancel := grace.Context(ctx)
	defer cancel()
	stopAfter := context.AfterFunc(h.sess.Context(), cancel)
	defer stopAfter()

	last := h.lastView()
	after, err := s.release(rctx, h.sess, &last, true, h.late)
	switch {
	case err == nil:
		if after != nil {
			s.mu.Lock()
			s.after = &afterRelease{v: *after, at: time.Now()}
			s.mu.Unlock()
		}
		return nil
	case errors.Is(err, errNotHolding), errors.Is(err, errUncertainRelease):
		// The transaction was refused as a whole: remove what is left.
		// Most often Consul released the contender key because it
		// invalidated the session: a renew says so, and tells the
		// session's other users (as the watcher does for a loss it sees).
		// So too when an earlier attempt got no answer: it may have
		// released the slot, or Consul may have let it go before.
		holder.RenewWithin(ctx, h.sess) // as the release was
		s.cleanup(ctx, h.sess, h.late)
		if serr := h.sess.Err(); serr != nil {
			return fmt.Errorf("%w: session: %w", err, serr)
		}
		return err
	case errors.Is(err, ErrLost):
		return err
	}
	if serr := h.sess.Err(); serr != nil {
		// The session's end freed the slot.
		s.cleanup(ctx, h.sess, h.late)
		return fmt.Errorf("%w: %w", ErrLost, serr)
	}
	return fmt.Errorf("%w (the slot may stay held until session %s ends)", err, h.sess.ID())
}

// cleanup removes, best effort and within 10 seconds even when ctx has
// ended, what is left of a slot of sess that was lost or of an
// acquisition that failed: its entry in the coordination key and its
// contender key. When sess holds no slot and an attempt in late may still
// be applied, it also makes that attempt's CAS fail (see pending.fence).
func (s *Semaphore) cleanup(ctx context.Context, sess *session.Session, late pending) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = s.release(cctx, sess, nil, false, late)
}

// release removes sid from the coordination key and deletes its contender
// key, in one transaction, starting from v when given (else a fresh
// read). With check, the transaction also checks that the contender key is
// held by sess, and is refused as a whole, with an error wrapping ErrLost
// and errNotHolding, when it is not. It returns an error wrapping ErrLost
// when sid was no longer a holder. After a release that was answered, it
// also returns the prefix as the release left it, as far as this holder
// knows: the coordination key exactly (any later change fails a CAS
// against it), the contender keys as last read.
//
// An acquisition attempt in late that may still be applied is kept from
// it: when sid is not a holder, the transaction also makes its CAS fail.
// The coordination key is never deleted (see the package doc).
func (s *Semaphore) release(ctx context.Context, sess *session.Session, v *view, check bool, late pending) (*view, error) {
	sid := sess.ID()
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	uncertain := false
	for conflicts := 0; ; {
		foreign := false
		if v == nil {
			nv, err := s.read(ctx, sess, 0, true)
			switch {
			case errors.Is(err, ErrConflict):
				nv.lockPair = nil // not ours to touch: delete the contender key only
				foreign = true
			case err != nil:
				if ctx.Err() != nil || !api.IsRetryable(err) {
					return nil, fmt.Errorf("semaphore: release: read: %w", err)
				}
				if backoff.Sleep(ctx, bo.Next()) != nil {
					return nil, fmt.Errorf("semaphore: release: %w", ctx.Err())
				}
				continue
			}
			v = &nv
		}
		_, member := v.state.Holders[sid]
		if v.lockPair == nil {
			member = false
		}
		var ops api.TxnOps
		if check {
			// Op 0, so that a refusal is told apart from the CAS's.
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: s.contenderKey(sid), Session: sid}})
		}
		var rest lockState
		var enc []byte // rest as stored, when the key is kept
		if member {
			rest = lockState{Limit: v.state.Limit, Holders: map[string]bool{}}
			for _, h := range v.live() {
				if h != sid {
					rest.Holders[h] = true
				}
			}
			// The coordination key is never deleted, even by the last
			// holder (the official client does not delete it either): an
			// unanswered attempt of any holder, past or future, that would
			// create it (CAS index 0) may still land, and only the key's
			// existence keeps it from taking a slot for a session whose
			// Acquire failed or that has since released.
			var err error
			if enc, err = rest.encode(); err != nil {
				return nil, err
			}
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.lockKey(), Value: enc, Flags: Flag, Index: v.lockIndex()}})
		}
		if !member && !foreign {
			ops = append(ops, late.fence(s, *v)...)
		}
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.contenderKey(sid)}})
		resp, err := attempt.Txn(ctx, s.client, ops, sess.WriteOptions())
		if err == nil {
			if !member {
				// Not our earlier attempt: it would have deleted the
				// contender key too, and the check would have failed.
				return nil, fmt.Errorf("%w: %w before Release", ErrLost, errRemoved)
			}
			return s.afterView(*v, sid, rest, enc, resp), nil
		}
		var te *api.TxnError
		switch {
		case errors.As(err, &te):
			if _, failed := te.Op(0); check && failed {
				if uncertain && !member {
					// An earlier attempt whose answer was lost may have
					// done it, or the slot was lost before.
					return nil, fmt.Errorf("%w: %w", ErrLost, errUncertainRelease)
				}
				return nil, fmt.Errorf("%w: %w before Release", ErrLost, errNotHolding)
			}
			// Else only the coordination key's CAS can fail: it changed.
			if conflicts++; conflicts > 100 {
				return nil, fmt.Errorf("semaphore: release: %w", err)
			}
		case ctx.Err() != nil || !api.IsRetryable(err):
			return nil, fmt.Errorf("semaphore: release: %w", err)
		default:
			uncertain = true
			if backoff.Sleep(ctx, bo.Next()) != nil {
				return nil, fmt.Errorf("semaphore: release: %w", ctx.Err())
			}
		}
		v = nil
	}
}

// afterView is the view a release computed from v left: sid gone from the
// contenders, and the coordination key holding rest, encoded as enc (nil
// when the release deleted the key).
func (s *Semaphore) afterView(v view, sid string, rest lockState, enc []byte, resp *api.TxnResponse) *view {
	nv := view{contenders: maps.Clone(v.contenders), index: v.index}
	delete(nv.contenders, sid)
	if enc == nil {
		return &nv
	}
	for _, r := range resp.Results {
		if r.KV != nil && r.KV.Key == s.lockKey() {
			nv.lockPair = &api.KVPair{Key: r.KV.Key, Flags: Flag, ModifyIndex: r.KV.ModifyIndex, Value: enc}
			nv.state = rest
			nv.index = max(nv.index, r.KV.ModifyIndex)
			return &nv
		}
	}
	return nil
}

// forget makes the Semaphore stop reporting h as held and gives up its
// claim on the contender key.
func (s *Semaphore) forget(h *holding) {
	s.mu.Lock()
	if s.held == h {
		s.held = nil
	}
	s.mu.Unlock()
	h.lease.Unclaim()
	h.forgetOnce.Do(func() { close(h.forgotten) })
}

// lose marks h lost with reason, from the watcher, and cleans up what is
// left of the slot: this session's entry in the coordination key and its
// contender key, then the session the Semaphore created. h is forgotten
// last, so that a Release meanwhile waits for all of it.
func (s *Semaphore) lose(h *holding, reason error) {
	if !h.ending.CompareAndSwap(endNone, endLost) && h.ending.Load() != endLost {
		return // Release is giving the slot up
	}
	// (endLost already: the session's end was reported, see hold; the
	// cleanup is left to the watcher, here.)
	err := fmt.Errorf("%w: %w", ErrLost, reason)
	h.cancel(err)
	if errors.Is(reason, errContenderGone) || errors.Is(reason, errContenderFreed) {
		// Consul releases (or deletes) the keys of a session it
		// invalidates before the session's renew loop can learn of it
		// (up to TTL/2 later). A renew tells whether that is why, and
		// if so makes the session report it to all its other users.
		_ = h.sess.Renew(context.Background()) // bounded by Renew
	}
	if errors.Is(reason, holder.ErrUnconfirmed) {
		// The reads failed, and the session may still hold the slot,
		// for nobody, as long as it lives: let it go from the last view,
		// as Release does (the CAS refuses it when anything changed
		// since), not from a read that the same fault would fail. As
		// the lock does, the attempts stop after a TTL (10 to 30 s).
		last := h.lastView()
		cctx, cancel := context.WithTimeout(context.Background(), min(max(h.sess.TTL(), 10*time.Second), 30*time.Second))
		_, _ = s.release(cctx, h.sess, &last, false, h.late)
		cancel()
	} else {
		s.cleanup(context.Background(), h.sess, h.late)
	}
	h.lease.CloseOwnAfterLoss()
	s.mu.Lock()
	if s.held == h && !h.reported {
		s.lost = h
	}
	s.mu.Unlock()
	s.forget(h)
	// Logged once exited is closed (watch's defer): a handler that blocks
	// must not hold up the cleanup Release waits for.
	h.lostReason = reason
}

// watch follows the prefix with consistent blocking queries while the slot
// is held. Transient errors are retried for as long as the session lives
// (the session itself reports loss at its deadline) and the slot has been
// confirmed within two session TTLs (else ErrUnconfirmed).
func (s *Semaphore) watch(ctx context.Context, h *holding) {
	defer func() {
		if h.lostReason != nil {
			s.logs.Warn("consul semaphore slot lost", "prefix", s.prefix, "session", h.sess.ID(), "err", h.lostReason)
		}
	}()
	defer close(h.exited)
	defer h.stopSess()
	if !h.gate.Start() {
		return // Release came first
	}
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopAfter := context.AfterFunc(h.sess.Context(), cancel)
	defer stopAfter()

	sid := h.sess.ID()
	idx := h.last.index
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	// As the lock's watch: each answer confirms the slot (see
	// holder.Confirmer).
	c := holder.NewConfirmer(s.cfg.Wait)
	for {
		if ctx.Err() != nil {
			return
		}
		if err := h.sess.Err(); err != nil {
			s.lose(h, err)
			return
		}
		ttl := h.sess.TTL()
		plain := c.Plain()
		waitIndex, wait, rctx, rcancel, ok := c.Next(qctx, idx, ttl)
		if !ok {
			s.lose(h, holder.ErrUnconfirmed)
			return
		}
		sent := time.Now()
		v, err := s.readWait(rctx, h.sess, waitIndex, wait, true)
		rcancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrConflict) {
			s.lose(h, err)
			return
		}
		if err != nil {
			c.Failed()
			if h.sess.Err() == nil {
				// Not waited for: a handler that blocks must not stop
				// the watch from seeing a loss, or a Release.
				s.logs.Warn("consul semaphore watch failed; retrying", "prefix", s.prefix, "err", err)
				c.Sleep(qctx, bo.Next(), ttl)
			}
			continue
		}
		c.Answered(sent)
		bo.Reset()
		if why := v.holds(sid); why != nil {
			if err := h.sess.Err(); err != nil && (errors.Is(why, errContenderGone) || errors.Is(why, errContenderFreed)) {
				// The session ended before its keys were let go (Close
				// ends it before the destroy): that is the cause.
				why = err
			}
			s.lose(h, why) // stands aside if Release made the change
			return
		}
		h.mu.Lock()
		h.last = v
		h.mu.Unlock()
		var pause time.Duration
		if !plain {
			pause = holder.IdleWait(idx, v.index, sent)
		}
		idx = api.NextWaitIndex(idx, v.index)
		if pause > 0 {
			_ = backoff.Sleep(qctx, pause)
		}
	}
}

// Do runs fn while holding a slot of the semaphore on prefix: it creates a
// Semaphore with opts, waits for a slot, calls fn with the held context
// (cancelled if the slot is lost), and releases, also when fn panics. It
// returns fn's error, joined with Release's error (an error wrapping
// ErrLost when the slot was lost while fn ran) when the release fails.
func Do(ctx context.Context, client *api.Client, prefix string, limit int, fn func(ctx context.Context) error, opts ...Option) (err error) {
	if fn == nil {
		return &api.ValidationError{Field: "fn", Reason: "nil"}
	}
	s, err := New(client, prefix, limit, opts...)
	if err != nil {
		return err
	}
	held, err := s.Acquire(ctx)
	if err != nil {
		return err
	}
	// Release even when fn panics or calls runtime.Goexit (t.FailNow).
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		// Both errors when both fail: a failed release may leave the slot
		// held (see Release).
		if rerr := s.Release(rctx); rerr != nil {
			err = errors.Join(err, rerr) // fn's error stays as it is otherwise
		}
	}()
	return fn(held)
}
