package election

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/grace"
	"github.com/consulkit/consulkit/internal/logq"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// Errors.
var (
	// ErrNoLeader: Leader found nobody holding the election key.
	ErrNoLeader = errors.New("election: no leader")
	// ErrNotLeader: Resign or Proclaim on an Election that does not lead.
	ErrNotLeader = errors.New("election: not the leader")
	// ErrLeading: Campaign on an Election that already leads, or while
	// another Campaign call on it is in progress.
	ErrLeading = errors.New("election: already leading or campaigning")
	// ErrDeposed: leadership was lost (the key was deleted or taken by
	// another session, or the session was lost). The leading context's
	// cause wraps it, lock.ErrLost and the reason.
	ErrDeposed = errors.New("election: deposed")
	// ErrResigned is the cause of the leading context after Resign.
	ErrResigned = errors.New("election: resigned")
)

// Leader describes the holder of the election key.
type Leader struct {
	// Session is the Consul session holding the key; empty when there is
	// no leader (Observe sends such a value when the key becomes free).
	Session string
	// Value is the value the leader campaigned with, or proclaimed since.
	Value []byte
	// Token is the fencing token as read from the key: Key, Session,
	// LockIndex (the number of acquisitions of the key) and ModifyIndex
	// (the Raft index of the key's last write: the election, or a later
	// Proclaim). Any token of a leader is greater than every token of the
	// leaders before it. The leader's own Election.Token is the token of
	// its election and stays fixed for the term.
	Token lock.Token

	// created is the key's CreateIndex as read (0 when not read): a key
	// deleted and created again starts its LockIndex over.
	created uint64
}

// IsZero reports whether l describes no leader.
func (l Leader) IsZero() bool { return l.Session == "" }

func (l Leader) clone() Leader {
	l.Value = bytes.Clone(l.Value)
	return l
}

// sameTerm reports whether a and b, as read from the key, are the same
// leadership (or both none): the same session, acquisition (LockIndex)
// and key (CreateIndex: LockIndex starts over when the key is deleted and
// created again, and the same session may win again).
func sameTerm(a, b Leader) bool {
	return a.Session == b.Session &&
		(a.Session == "" || a.Token.LockIndex == b.Token.LockIndex && a.created == b.created)
}

// Hooks are called on leadership events. They run synchronously
// (OnElected in Campaign's caller, OnDeposed in the goroutine that follows
// the term, OnNewLeader in Run's observer) and must return promptly:
// Resign waits for OnDeposed, and a campaign does not begin before the
// previous term has ended: its OnDeposed has returned and, after a loss,
// the lock's cleanup is over (a session made for the campaign destroyed,
// the key let go if it may still be held: bounded, up to about 45 s
// when Consul keeps failing). A hook must not call Resign or Campaign on
// its own Election (that would wait for the hook itself). A nil hook is
// not called. A panic in OnNewLeader ends Run as ctx ending would (fn's
// context is cancelled, fn awaited, leadership resigned), then goes on
// from Run with the same value. OnDeposed runs in the goroutine that
// follows the term, where no caller can recover a panic: one there ends
// the process (the term is over by then); a hook that may panic must
// recover itself.
type Hooks struct {
	// OnElected is called when this Election becomes leader, before
	// Campaign returns, with the leading context. If it panics, the
	// Election resigns (OnDeposed gets ErrResigned) before the panic goes
	// on.
	OnElected func(leading context.Context, l Leader)
	// OnDeposed is called once for every term when it ends, after the
	// leading context is cancelled; cause is ErrResigned or wraps
	// ErrDeposed.
	OnDeposed func(l Leader, cause error)
	// OnNewLeader is called by Run for every new leader it observes,
	// including itself: a new session on the key or a new acquisition by
	// the same session. It is not called for Proclaim, nor while the key
	// is free.
	OnNewLeader func(l Leader)
}

type config struct {
	sess     *session.Session
	sessOpts []session.Option
	read     *api.QueryOptions // the read options of the sessions Campaign makes
	logger   *slog.Logger
	wait     time.Duration
	hooks    Hooks
}

// Option configures an Election.
type Option func(*config) error

// WithSession makes the Election campaign and lead through s, which the
// caller owns and may share with locks, semaphores and other elections on
// other keys. When s is lost, leadership ends and Campaign fails (Run
// returns). Without WithSession, every campaign creates a session of its
// own and destroys it when the term ends.
func WithSession(s *session.Session) Option {
	return func(c *config) error {
		if s == nil {
			return &api.ValidationError{Field: "session", Reason: "nil"}
		}
		if s.ID() == "" {
			return &api.ValidationError{Field: "session", Reason: "not made by session.New"}
		}
		c.sess = s
		return nil
	}
}

// WithSessionOptions sets the options of the sessions the Election
// creates for itself (ignored with WithSession); session.WithLockDelay
// decides how long a deposed leader's key stays blocked. Such a session
// lost while Campaign waits is replaced, and Campaign waits on.
func WithSessionOptions(opts ...session.Option) Option {
	return func(c *config) error {
		c.sessOpts = append(c.sessOpts, opts...)
		return nil
	}
}

// WithLogger logs losses and retries. Lines are written from a
// goroutine of their own: a handler that blocks holds up no term,
// observer, campaign or Run.
// While 8 lines wait for a slow handler, a new one drops the oldest; the
// next line written carries their number (dropped_before).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithWaitTime bounds each blocking query the Election sends: more than
// 0, at most 10m (default 5m).
func WithWaitTime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 || d > 10*time.Minute {
			return &api.ValidationError{Field: "wait time", Reason: "must be in (0, 10m]"}
		}
		c.wait = d
		return nil
	}
}

// WithHooks sets the hooks called on leadership events.
func WithHooks(h Hooks) Option {
	return func(c *config) error { c.hooks = h; return nil }
}

// Election is one candidate in the election over one Consul key. It holds
// at most one term at a time: Campaign may not run concurrently on one
// Election (the second call gets ErrLeading). Resign, Proclaim, Leader,
// Token and Observe may be called from any goroutine.
type Election struct {
	client *api.Client
	key    string
	cfg    config
	// logs writes the Election's lines: a handler that blocks must not
	// hold up OnDeposed, a campaign, Resign, or Run.
	logs *logq.Queue

	mu   sync.Mutex
	busy bool  // a Campaign call is in progress
	term *term // the current or last term until its goroutine ends
	// lost: the last term, once deposed and ended, until Resign has
	// reported it or a new term starts.
	lost *term
}

// term is one leadership: the lock that holds the key, the leading
// context and the goroutine that follows it.
type term struct {
	lk     *lock.Lock
	held   context.Context // the lock's held context
	leader Leader
	ctx    context.Context
	cancel context.CancelCauseFunc
	exited chan struct{}
	// deposed is closed once OnDeposed has returned; exited, once the
	// lock's cleanup after a loss is over as well.
	deposed chan struct{}
	// reported: a Resign has reported this term's loss (guarded by the
	// Election's mu), so that it is not kept as e.lost to report again.
	reported bool
	// why is how the term ended, as OnDeposed is told; written before
	// deposed is closed. It differs from the leading context's cause
	// when a loss raced a Resign, which ends that context first.
	why error

	mu       sync.Mutex
	proclaim []byte // the value of the last Proclaim, nil if none
}

// New returns an Election on key. It sends nothing; the key and options
// are validated (session options given with WithSessionOptions at
// Campaign).
func New(client *api.Client, key string, opts ...Option) (*Election, error) {
	if client == nil {
		return nil, &api.ValidationError{Field: "client", Reason: "nil"}
	}
	if err := api.ValidateKey(key); err != nil {
		return nil, err
	}
	cfg := config{wait: 5 * time.Minute}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	cfg.read = session.QueryOptionsFor(cfg.sessOpts...)
	return &Election{client: client, key: key, cfg: cfg, logs: logq.New(cfg.logger)}, nil
}

// Key returns the election key.
func (e *Election) Key() string { return e.key }

// validateValue refuses, before anything is sent, a value the Election
// could not campaign with: the lock it campaigns through would refuse it
// (its acquisition's transaction, where the value travels
// base64-encoded, would be too large for Consul). Proclaim's transaction
// is no larger.
func (e *Election) validateValue(v []byte) error {
	_, err := lock.New(e.client, e.key, lock.WithValue(v))
	return err
}

func (e *Election) lockOptions(value []byte) []lock.Option {
	opts := []lock.Option{lock.WithValue(value), lock.WithWaitTime(e.cfg.wait)}
	if e.cfg.sess != nil {
		opts = append(opts, lock.WithSession(e.cfg.sess))
	} else {
		opts = append(opts, lock.WithSessionOptions(e.cfg.sessOpts...))
	}
	if e.cfg.logger != nil {
		opts = append(opts, lock.WithLogger(e.cfg.logger))
	}
	return opts
}

// queryOptions returns the read options of the Election's sessions, so
// that Leader and Observe read the key its campaigns write (with their
// token, in their datacenter and namespace).
func (e *Election) queryOptions() *api.QueryOptions {
	if e.cfg.sess != nil {
		return e.cfg.sess.QueryOptions()
	}
	q := *e.cfg.read
	return &q
}

// begin reserves the Election for a campaign. A term that has ended but
// whose goroutine still runs (OnDeposed) is waited for.
func (e *Election) begin(ctx context.Context) error {
	for {
		e.mu.Lock()
		if e.busy {
			e.mu.Unlock()
			return ErrLeading
		}
		t := e.term
		if t == nil {
			e.busy = true
			e.mu.Unlock()
			return nil
		}
		e.mu.Unlock()
		if t.ctx.Err() == nil {
			return ErrLeading
		}
		select {
		case <-t.exited:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Campaign blocks until this Election leads with value stored in the key
// (see lock.WithValue for its limit, checked before anything is sent),
// ctx ends or an error occurs. It returns a context that stays alive
// while leading and is cancelled when leadership ends:
// with cause ErrResigned after Resign, or with a cause wrapping ErrDeposed
// (and lock.ErrLost) when the key is deleted or taken, or the session is
// lost. The leading context does not derive from ctx; lock.TokenFrom gives
// the term's fencing token from it. When ctx ends first, Campaign returns
// ctx.Err() and leads nothing.
//
// Waiting is a blocking query on the key; a deposed leader's key is
// blocked for its session's lock-delay (see package lock).
func (e *Election) Campaign(ctx context.Context, value []byte) (context.Context, error) {
	// lock.New validates the value (see validateValue), sending nothing.
	lk, err := lock.New(e.client, e.key, e.lockOptions(value)...)
	if err != nil {
		return nil, err
	}
	if err := e.begin(ctx); err != nil {
		return nil, err
	}
	defer func() {
		e.mu.Lock()
		e.busy = false
		e.mu.Unlock()
	}()

	held, err := lk.Lock(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("election: campaign: %w", err)
	}
	tok, _ := lock.TokenFrom(held) // lk.Token() is zero if already lost
	t := &term{
		lk:      lk,
		held:    held,
		leader:  Leader{Session: tok.Session, Value: bytes.Clone(value), Token: tok},
		exited:  make(chan struct{}),
		deposed: make(chan struct{}),
	}
	// The leading context carries the held context's values (the
	// token, for lock.TokenFrom), not its end: it ends with the term.
	t.ctx, t.cancel = context.WithCancelCause(context.WithoutCancel(held))
	elected := make(chan struct{})
	e.mu.Lock()
	e.term, e.lost = t, nil
	e.mu.Unlock()
	go e.follow(t, held, elected)
	panicked := true
	defer func() {
		close(elected)
		if panicked {
			// OnElected panicked: nobody has the leading context, so
			// lead no longer before the panic goes on.
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = e.Resign(rctx)
		}
	}()
	if h := e.cfg.hooks.OnElected; h != nil {
		h(t.ctx, t.leader.clone())
	}
	panicked = false
	return t.ctx, nil
}

// follow waits for the term to end, cancels the leading context with the
// reason, calls OnDeposed and forgets the term.
func (e *Election) follow(t *term, held context.Context, elected <-chan struct{}) {
	defer close(t.exited)
	<-held.Done()
	cause := context.Cause(held)
	var why error
	if errors.Is(cause, lock.ErrUnlocked) {
		why = ErrResigned
	} else {
		why = fmt.Errorf("%w: %w", ErrDeposed, cause)
	}
	t.cancel(why) // first: the leading context ends at once (unless Resign ended it)
	t.why = why
	if why != ErrResigned {
		e.logs.Warn("consul election: deposed", "key", e.key, "session", t.leader.Session, "err", cause)
	}
	<-elected
	if h := e.cfg.hooks.OnDeposed; h != nil {
		h(t.currentLeader(), why)
	}
	close(t.deposed)
	if why != ErrResigned {
		// Wait for the lock's own cleanup after the loss (its watcher
		// destroys a session made for the campaign, lets go of the key):
		// Unlock on a lost lock only waits for it and reports the loss.
		_ = t.lk.Unlock(context.Background())
	}
	e.mu.Lock()
	if e.term == t {
		e.term = nil
		if why != ErrResigned && !t.reported {
			e.lost = t
		}
	}
	e.mu.Unlock()
}

// sync ends the leading context at once when the lock's held context has
// ended with a loss that follow has not passed on yet, so that the
// leading context agrees with what the Election says: a Proclaim that
// Consul refused, a zero Token, Run deciding whether fn ran into a loss.
// (follow's own cancel then changes nothing; it still calls OnDeposed.)
func (t *term) sync() {
	if t.ctx.Err() != nil || t.held.Err() == nil {
		return
	}
	cause := context.Cause(t.held)
	if errors.Is(cause, lock.ErrUnlocked) {
		return // Resign, which has ended the leading context itself
	}
	t.cancel(fmt.Errorf("%w: %w", ErrDeposed, cause))
}

// syncTerm syncs the current term, if any (see term.sync).
func (e *Election) syncTerm() {
	e.mu.Lock()
	t := e.term
	e.mu.Unlock()
	if t != nil {
		t.sync()
	}
}

func (t *term) currentLeader() Leader {
	l := t.leader.clone()
	t.mu.Lock()
	if t.proclaim != nil {
		l.Value = bytes.Clone(t.proclaim)
	}
	t.mu.Unlock()
	return l
}

// current returns the live term, or an error saying why there is none.
func (e *Election) current() (*term, error) {
	e.mu.Lock()
	t := e.term
	e.mu.Unlock()
	if t == nil {
		return nil, ErrNotLeader
	}
	t.sync()
	if t.ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotLeader, context.Cause(t.ctx))
	}
	return t, nil
}

// Token returns the fencing token of the current term (the election's
// acquisition of the key), or the zero Token when not leading. It does not
// change with Proclaim. Pass it to the resources the leader writes to and
// make them refuse tokens older than the newest they have seen.
func (e *Election) Token() lock.Token {
	t, err := e.current()
	if err != nil {
		return lock.Token{}
	}
	return t.lk.Token()
}

// Resign gives up leadership: it releases the key, so that another
// candidate can be elected at once (no lock-delay applies to a release),
// and waits until the leading context is cancelled (cause ErrResigned)
// and OnDeposed has returned. A ctx that has already ended when Resign is
// called still gets the release sent and waited for, within 5 seconds.
//
// It returns ErrNotLeader when not leading, and an error wrapping
// ErrDeposed when leadership was lost before it could be given up: a loss
// is reported so once, by the first Resign after it (however long after),
// unless a new term has started since. Resign after a loss waits for the
// term's cleanup within ctx (see Hooks); when ctx ends first, the loss is
// reported all the same, and the error says the cleanup is still under
// way. When it is the release that finds the key already lost, the
// leading context's cause is ErrResigned all the same (it ends before the
// release is sent, so that what it guards stops first), and Resign's
// error is the one to trust.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	t, lost := e.term, e.lost
	if t == nil {
		e.lost = nil
	}
	e.mu.Unlock()
	if t == nil {
		if lost != nil {
			return fmt.Errorf("%w: %w", ErrNotLeader, context.Cause(lost.ctx))
		}
		return ErrNotLeader
	}
	t.sync() // a loss the lock has seen is reported as one
	// A ctx that has already ended (Resign deferred past a shutdown) still
	// gets the release sent and waited for, within a few seconds.
	ctx, cancel := grace.Context(ctx)
	defer cancel()
	if t.ctx.Err() != nil {
		// The loss is reported once OnDeposed has returned; the lock's
		// cleanup after it (a release retried for up to 30 s, a session
		// destroy) is waited for within ctx, and not reported as a
		// failure of Resign when ctx runs out first.
		var waitErr error
		select {
		case <-t.deposed:
			waitErr = grace.Wait(ctx, t.exited)
		case <-ctx.Done():
			waitErr = ctx.Err() // OnDeposed still runs: reported all the same
		}
		e.mu.Lock()
		if e.lost == t {
			e.lost = nil // reported here
		}
		already := t.reported
		t.reported = true
		e.mu.Unlock()
		err := fmt.Errorf("%w: %w", ErrNotLeader, context.Cause(t.ctx))
		if already {
			err = ErrNotLeader // the loss was reported once
		}
		if waitErr != nil {
			return fmt.Errorf("%w (its cleanup is still under way: %w)", err, waitErr)
		}
		return err
	}
	// The leading context ends before the release is sent: what it
	// guards stops before another candidate can be elected. (The term's
	// goroutine ends it too, but only once it has seen the lock's
	// context end, which may be after the release has left.)
	t.cancel(ErrResigned)
	err := t.lk.Unlock(ctx)
	// Unlock has cancelled the lock's context, whatever it returned: wait
	// for the term to end (OnDeposed to return), within ctx.
	select {
	case <-t.exited:
	case <-ctx.Done():
		if err == nil {
			return ctx.Err()
		}
	}
	e.mu.Lock()
	if e.lost == t {
		e.lost = nil // reported below
	}
	t.reported = true
	e.mu.Unlock()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lock.ErrLost):
		return fmt.Errorf("%w: %w", ErrDeposed, err)
	case errors.Is(err, lock.ErrNotHeld):
		// Either another Resign got there first, or the term was lost
		// just before: how the term ended says which.
		select {
		case <-t.deposed:
			if errors.Is(t.why, ErrDeposed) {
				return t.why
			}
		default:
		}
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	default:
		// The release may not have happened; the session (or its end)
		// still holds the key until then.
		return fmt.Errorf("election: resign: %w", err)
	}
}

// Proclaim replaces the leader's value with value (limited as Campaign's)
// while leading. Consul applies it only if this Election's session still
// holds the key (a check-session in the same transaction), and the key
// stays held: the session, the lock and LockIndex are unchanged, while
// the key's ModifyIndex grows. Observers see the new value. It returns
// ErrNotLeader when not leading and an error wrapping ErrDeposed when
// Consul says the key is no longer held. The check is of the session, not
// of the term: with a session of the caller's that leads again, a
// Proclaim of the earlier term that reaches Consul late still applies.
func (e *Election) Proclaim(ctx context.Context, value []byte) error {
	if err := e.validateValue(value); err != nil {
		return err
	}
	t, err := e.current()
	if err != nil {
		return err
	}
	// A "lock" by the session that already holds the key keeps the lock
	// and its LockIndex and sets the value; a plain "set" would keep the
	// session but reset LockIndex to zero.
	_, err = t.lk.GuardedTxn(ctx, api.TxnOps{{KV: &api.KVTxnOp{
		Verb: api.KVLock, Key: e.key, Value: value, Flags: lock.Flag, Session: t.leader.Session,
	}}})
	switch {
	case err == nil:
		t.mu.Lock()
		t.proclaim = bytes.Clone(value)
		if t.proclaim == nil {
			t.proclaim = []byte{}
		}
		t.mu.Unlock()
		return nil
	case errors.Is(err, lock.ErrNotHeld):
		// The lock has seen a loss (or a Resign began): the leading
		// context ends now if it has not.
		t.sync()
		if t.ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrNotLeader, context.Cause(t.ctx))
		}
		return ErrNotLeader
	case errors.Is(err, lock.ErrLost):
		// Consul refused it for the session check: the lock has ended
		// its hold, and the leading context ends with it.
		t.sync()
		return fmt.Errorf("%w: %w", ErrDeposed, err)
	default:
		return fmt.Errorf("election: proclaim: %w", err)
	}
}

// leaderOf describes the holder of pair, or no leader.
func leaderOf(key string, pair *api.KVPair) Leader {
	if pair == nil || pair.Session == "" || pair.Flags != lock.Flag {
		return Leader{}
	}
	return Leader{
		Session: pair.Session,
		Value:   pair.Value,
		Token:   lock.Token{Key: key, Session: pair.Session, LockIndex: pair.LockIndex, ModifyIndex: pair.ModifyIndex},
		created: pair.CreateIndex,
	}
}

// Leader returns the current leader, ErrNoLeader when the key is free or
// missing, or an error wrapping lock.ErrConflict when the key is not an
// election's (its flags are not a lock's). It reads from the Consul leader
// (default consistency).
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	pair, _, err := e.client.KV().Get(ctx, e.key, e.queryOptions())
	if err != nil {
		return Leader{}, fmt.Errorf("election: read: %w", err)
	}
	if pair != nil && pair.Flags != lock.Flag {
		return Leader{}, fmt.Errorf("election: %w: key %q has flags %#x", lock.ErrConflict, e.key, pair.Flags)
	}
	l := leaderOf(e.key, pair)
	if l.IsZero() {
		return Leader{}, ErrNoLeader
	}
	return l, nil
}
