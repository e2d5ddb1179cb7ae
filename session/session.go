package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/attempt"
	"github.com/consulkit/consulkit/internal/backoff"
	"github.com/consulkit/consulkit/internal/grace"
	"github.com/consulkit/consulkit/internal/logq"
)

// Errors reported by Err.
var (
	// ErrExpired: renewing failed until the session's local deadline.
	ErrExpired = errors.New("session: expired")
	// ErrInvalidated: Consul no longer knows the session (destroyed from
	// outside, or invalidated by a health check).
	ErrInvalidated = errors.New("session: invalidated")
	// ErrClosed: Close was called.
	ErrClosed = errors.New("session: closed")
)

// ErrClaimed is returned by Claim, and so by a second Lock, Campaign or
// Acquire on one key through one session while the first holds it.
var (
	// ErrClaimed: another holder of this session already uses the key.
	ErrClaimed = errors.New("session: key already claimed by a holder of this session")
)

// Behavior is what Consul does with the keys a session holds when the
// session is invalidated.
type Behavior string

// Behaviors.
const (
	Release Behavior = api.SessionBehaviorRelease // the keys are released
	Delete  Behavior = api.SessionBehaviorDelete  // the keys are deleted
)

// Defaults.
const (
	DefaultTTL       = 15 * time.Second
	DefaultLockDelay = 15 * time.Second
)

// retryInterval is the pause between attempts to renew after a failure.
const retryInterval = time.Second

// minRetryGap is the shortest wait between renew rounds as the deadline
// nears (see renewLoop): they come at half of what is left, down to this.
const minRetryGap = 25 * time.Millisecond

type config struct {
	entry  api.SessionEntry
	write  api.WriteOptions
	logger *slog.Logger
}

// Option configures New.
type Option func(*config) error

// WithTTL sets the session's TTL, between 10s and 24h. Default 15s.
func WithTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < api.SessionTTLMin || d > api.SessionTTLMax {
			return &api.ValidationError{Field: "session TTL", Reason: fmt.Sprintf("%s is outside 10s..24h", d)}
		}
		c.entry.TTL = d
		return nil
	}
}

// WithLockDelay sets the lock delay, between 0 and 60s: after the session
// is invalidated, the keys it held cannot be acquired for this long. Zero
// means no delay. Default 15s, Consul's own default.
func WithLockDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > api.SessionLockDelayMax {
			return &api.ValidationError{Field: "session lock delay", Reason: fmt.Sprintf("%s is outside 0..60s", d)}
		}
		c.entry.LockDelay = d
		return nil
	}
}

// WithBehavior sets what happens to held keys on invalidation. Default
// Release.
func WithBehavior(b Behavior) Option {
	return func(c *config) error {
		if b != Release && b != Delete {
			return &api.ValidationError{Field: "session behavior", Reason: fmt.Sprintf("%q is neither release nor delete", b)}
		}
		c.entry.Behavior = string(b)
		return nil
	}
}

// WithName sets the session's name.
func WithName(name string) Option {
	return func(c *config) error { c.entry.Name = name; return nil }
}

// WithNode sets the node the session belongs to. Default: the agent's node.
func WithNode(node string) Option {
	return func(c *config) error { c.entry.Node = node; return nil }
}

// WithNodeChecks ties the session to node health checks: the session is
// invalidated when one of them goes critical. Default: Consul's serfHealth.
// WithNodeChecks() with no IDs ties it to none.
func WithNodeChecks(ids ...string) Option {
	return func(c *config) error {
		c.entry.NodeChecks = append([]string{}, ids...)
		return nil
	}
}

// WithServiceChecks ties the session to service health checks.
func WithServiceChecks(ids ...string) Option {
	return func(c *config) error {
		for _, id := range ids {
			c.entry.ServiceChecks = append(c.entry.ServiceChecks, api.ServiceCheck{ID: id})
		}
		return nil
	}
}

// WithWriteOptions sets the datacenter, token, namespace and partition of
// the session's requests.
func WithWriteOptions(w api.WriteOptions) Option {
	return func(c *config) error { c.write = w; return nil }
}

// WithLogger logs renew failures and loss. Default: no logging. Lines are
// written from a goroutine of their own: a handler that blocks holds up
// neither the renews nor Close.
// While 8 lines wait for a slow handler, a new one drops the oldest; the
// next line written carries their number (dropped_before).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// Session is a Consul session kept alive by a goroutine of its own.
type Session struct {
	client    *api.Client
	id        string
	lockDelay time.Duration
	write     api.WriteOptions
	// logs writes the session's lines, never waited for: a handler that
	// blocks must not stop the renews, nor hold up Close or a Renew.
	logs *logq.Queue

	ctx    context.Context // cancelled with the reason when lost or closed
	cancel context.CancelCauseFunc
	stop   context.CancelFunc // stops the renew goroutine
	exited chan struct{}
	// retimed tells the renew goroutine that a Renew changed the TTL, and
	// with it when the next renew is due.
	retimed chan struct{}

	mu       sync.Mutex
	ttl      time.Duration
	deadline time.Time
	lastSent time.Time // send time of the last successful renew (or the create)
	// watchdog reports the loss at the deadline, whatever the renew
	// goroutine is waiting for (attempts slow to end, a round timed by an
	// older, later deadline). Reset whenever the deadline moves.
	watchdog *time.Timer
	lastErr  error // the renew goroutine's last renew error, for ErrExpired
	closed   bool
	closeErr error
	closing  chan struct{} // closed when the first Close has finished
	claims   map[string]struct{}
}

// New creates a session and starts renewing it. ctx bounds the creation
// only (which also gives up after 10 seconds without an answer, with a
// retryable error); the session lives until Close or loss. When ctx ends
// while the create is in flight, Consul may still apply it: New then
// waits up to 5 seconds more for the answer and destroys a session it
// made before returning ctx.Err(). A creation that got no answer at all
// may still have been applied: that session, which nobody renews or holds
// anything with, lapses at its TTL (Consul removes it within twice the
// TTL).
func New(ctx context.Context, client *api.Client, opts ...Option) (*Session, error) {
	if client == nil {
		return nil, &api.ValidationError{Field: "client", Reason: "nil"}
	}
	cfg := config{entry: api.SessionEntry{TTL: DefaultTTL, LockDelay: DefaultLockDelay, Behavior: string(Release)}}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sent := time.Now()
	id, err := create(ctx, client, &cfg)
	if err != nil {
		return nil, err
	}
	s := &Session{
		client:    client,
		id:        id,
		lockDelay: cfg.entry.LockDelay,
		write:     cfg.write,
		logs:      logq.New(cfg.logger),
		exited:    make(chan struct{}),
		closing:   make(chan struct{}),
		retimed:   make(chan struct{}, 1),
		claims:    map[string]struct{}{},
		ttl:       cfg.entry.TTL,
		deadline:  sent.Add(cfg.entry.TTL),
		lastSent:  sent,
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	// Assigned under mu: a deadline already past (a create answered after
	// the TTL) fires the watchdog at once, and its callback, which takes
	// mu first, must find the timer it stops.
	s.mu.Lock()
	s.watchdog = time.AfterFunc(time.Until(s.deadline), s.expireIfDue)
	s.mu.Unlock()
	var runCtx context.Context
	runCtx, s.stop = context.WithCancel(context.Background())
	go s.renewLoop(runCtx)
	return s, nil
}

// create creates the session. The request is bounded like every other
// request of a session (on a connection that died without a reset it
// would hang as long as ctx allows), and outlives ctx by up to
// grace.Timeout: a create answered after ctx ended is destroyed, so that
// an abandoned New leaves no session behind.
func create(ctx context.Context, client *api.Client, cfg *config) (string, error) {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	exited := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(exited)
		t := time.NewTimer(grace.Timeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelBase()
		case <-base.Done():
		}
	})
	defer func() {
		cancelBase()
		if !stop() {
			<-exited
		}
	}()
	cctx, cancel := attempt.Context(base)
	id, _, err := client.Session().Create(cctx, &cfg.entry, &cfg.write)
	err = attempt.Err(base, cctx, err)
	cancel()
	if ctx.Err() != nil {
		if err == nil {
			dctx, dcancel := grace.Context(ctx)
			_, _ = client.Session().Destroy(dctx, id, &cfg.write)
			dcancel()
		}
		return "", ctx.Err()
	}
	if err != nil {
		return "", fmt.Errorf("session: create: %w", err)
	}
	return id, nil
}

// ID returns the Consul session ID.
func (s *Session) ID() string { return s.id }

// LockDelay returns the session's lock delay.
func (s *Session) LockDelay() time.Duration { return s.lockDelay }

// TTL returns the session's TTL as Consul last reported it.
func (s *Session) TTL() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttl
}

// Deadline returns the local deadline: the send time of the last
// successful renew plus the TTL. Past it, the session is reported lost.
func (s *Session) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// Done returns a channel closed when the session is lost or closed.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Err returns nil while the session is alive, and afterwards why it ended:
// an error matching ErrExpired, ErrInvalidated or ErrClosed.
func (s *Session) Err() error {
	if s.ctx.Err() == nil {
		return nil
	}
	return context.Cause(s.ctx)
}

// Context returns a context that is cancelled when the session is lost or
// closed; context.Cause gives the same error as Err.
func (s *Session) Context() context.Context { return s.ctx }

// Client returns the client the session was created with.
func (s *Session) Client() *api.Client { return s.client }

// WriteOptions returns the write options of the session's requests.
func (s *Session) WriteOptions() *api.WriteOptions {
	w := s.write
	return &w
}

// QueryOptions returns read options that match WriteOptions (datacenter,
// token, namespace, partition), for reads of what the session's writes
// hold: a read elsewhere would see another key. On a nil Session it
// returns empty options.
func (s *Session) QueryOptions() *api.QueryOptions {
	q := &api.QueryOptions{}
	if s != nil {
		q.Datacenter, q.Token, q.Namespace, q.Partition = s.write.Datacenter, s.write.Token, s.write.Namespace, s.write.Partition
	}
	return q
}

// QueryOptionsFor returns the read options that match the write options
// opts give a session (WithWriteOptions): what QueryOptions would return
// for a session New made with opts. A holder that makes its sessions from
// options reads with them while it has no session. Options New would
// refuse are passed over here.
func QueryOptionsFor(opts ...Option) *api.QueryOptions {
	var cfg config
	for _, o := range opts {
		if o != nil {
			_ = o(&cfg)
		}
	}
	return (&Session{write: cfg.write}).QueryOptions()
}

func (s *Session) lose(err error) {
	s.cancel(err)
	s.stopWatchdog()
	if errors.Is(context.Cause(s.ctx), err) {
		s.logs.Warn("consul session lost", "session", s.id, "err", err)
	}
}

// renewed records a successful renew sent at sent. Renews may overlap
// (the renew goroutine's and Renew's): the one sent last sets the
// deadline, whenever its answer comes. A renew answered once the session
// is lost or closed changes nothing: renewed reports false. retimed: the
// answer changed the TTL.
func (s *Session) renewed(entry *api.SessionEntry, sent time.Time) (ok, retimed bool) {
	s.mu.Lock()
	if s.ctx.Err() == nil && !time.Now().Before(s.deadline) {
		// Answered past the deadline, which the watchdog is about to
		// report: the session was lost there, and stays so.
		err := s.expireLocked()
		s.mu.Unlock()
		if err != nil {
			s.lose(err)
		}
		return false, false
	}
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false, false
	}
	if sent.Before(s.lastSent) {
		return true, false
	}
	if entry != nil && entry.TTL > 0 && entry.TTL != s.ttl {
		// Consul's TTL rules: it may answer with a longer one, and a
		// shorter one must shorten the local deadline.
		s.ttl, retimed = entry.TTL, true
	}
	s.lastSent, s.deadline = sent, sent.Add(s.ttl)
	s.lastErr = nil // a later expiry is not this renew's predecessor's
	s.watchdog.Reset(time.Until(s.deadline))
	return true, retimed
}

// stopWatchdog stops the watchdog of a session that has ended. Under mu,
// where renewed re-arms it only for a live session: a renew answered as
// the session ends cannot re-arm it after this.
func (s *Session) stopWatchdog() {
	s.mu.Lock()
	s.watchdog.Stop()
	s.mu.Unlock()
}

// expireIfDue is the watchdog's: it reports the session expired once its
// deadline has passed.
func (s *Session) expireIfDue() {
	s.mu.Lock()
	err := s.expireLocked()
	s.mu.Unlock()
	if err != nil {
		s.lose(err) // logs it
	}
}

// expireLocked, with mu held, ends the session with ErrExpired when its
// deadline has passed and returns the cause; else it re-arms the watchdog
// and returns nil.
func (s *Session) expireLocked() error {
	if s.ctx.Err() != nil {
		return nil
	}
	if left := time.Until(s.deadline); left > 0 {
		s.watchdog.Reset(left)
		return nil
	}
	err := expiredErr(s.lastErr)
	s.cancel(err)
	return err
}

// Renew renews the session at once, outside its renew goroutine's
// schedule, and reports what came of it. When Consul no longer knows the
// session, the session is lost there and then: Done is closed, and Err
// and the returned error match ErrInvalidated (or ErrClosed, when Close
// came first). Call it when a request through the session was refused
// with "invalid session", so that the loss shows in Err at once rather
// than at the next scheduled renew, up to TTL/2 later (lock, semaphore
// and election do so themselves, and when a key they hold is released
// or deleted). Any other failure is returned and changes nothing: the
// renew goroutine goes on trying until the deadline. ctx bounds the call,
// which also gives up after 10 seconds without an answer. A session
// already lost or closed sends nothing, and one lost or closed before
// the answer came stays so: Renew then returns Err.
func (s *Session) Renew(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	sent := time.Now()
	actx, cancel := attempt.Context(ctx)
	entry, _, err := s.client.Session().Renew(actx, s.id, &s.write)
	err = attempt.Err(ctx, actx, err)
	cancel()
	switch {
	case err == nil:
		ok, retimed := s.renewed(entry, sent)
		if !ok {
			// Lost (expired) or closed before the answer came.
			return s.Err()
		}
		if retimed {
			// The renew goroutine's next renew was timed by the old
			// TTL: with a shorter one it would come after the deadline.
			select {
			case s.retimed <- struct{}{}:
			default:
			}
		}
		return nil
	case errors.Is(err, api.ErrNotFound):
		// A Close that destroyed the session meanwhile wins: its cause
		// stands.
		s.lose(fmt.Errorf("%w: %w", ErrInvalidated, err))
		return s.Err()
	}
	if lost := s.Err(); lost != nil {
		// Lost or closed before the failure came: that is final, and
		// the failure (most often transient) must not say otherwise.
		return lost
	}
	return fmt.Errorf("session: renew: %w", err)
}

func (s *Session) renewLoop(ctx context.Context) {
	defer close(s.exited)
	// Renews are timed from when the last successful one was sent (its
	// deadline minus the TTL), not from when its answer came: a renew
	// answered late must not push the next one to the edge of the
	// deadline, where it would have no time left to be answered.
	wait := time.Until(s.Deadline().Add(-s.TTL() / 2))
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.ctx.Done():
			// Lost through Renew.
			t.Stop()
			return
		case <-s.retimed:
			// A Renew succeeded with another TTL: time the next renew
			// from it.
			t.Stop()
			wait = time.Until(s.Deadline().Add(-s.TTL() / 2))
			continue
		case <-t.C:
		}
		r := s.renewRound(ctx, s.Deadline())
		err := r.err
		switch {
		case err == nil:
			_, _ = s.renewed(r.entry, r.sent)
			// From the last renew sent, which may be a Renew's.
			wait = time.Until(s.Deadline().Add(-s.TTL() / 2))
			continue
		case ctx.Err() != nil || s.ctx.Err() != nil:
			return
		case errors.Is(err, api.ErrNotFound):
			s.lose(fmt.Errorf("%w: %w", ErrInvalidated, err))
			return
		}
		// Decided under mu, so that a Renew answered meanwhile either
		// moves the deadline first or finds the session lost. The last
		// error is kept there too, where a success clears it.
		s.mu.Lock()
		if s.lastErr == nil || !errors.Is(err, context.DeadlineExceeded) {
			// A round cut short by the deadline says less than the
			// failure Consul answered before it.
			s.lastErr = err
		}
		left := time.Until(s.deadline)
		var expired error
		if left <= 0 {
			expired = s.expireLocked()
		}
		s.mu.Unlock()
		if left <= 0 {
			if expired != nil {
				s.lose(expired) // logs it
			}
			return
		}
		s.logs.Warn("consul session renew failed; retrying", "session", s.id, "err", err, "deadline_in", left)
		// Half of what is left at most: a retry due at the deadline
		// itself would send nothing, and an outage that ends in the last
		// second would cost the session. Retries closer than minRetryGap
		// are not worth their requests: then the deadline is awaited.
		wait = min(backoff.Spread(retryInterval, 0.3), left/2)
		if wait < minRetryGap {
			wait = left
		}
	}
}

// expiredErr is the cause of a session that expired after lastErr, which
// it names but does not wrap: a lost session is final, and what failed
// the last renew (a 500, a timeout) must not make the loss, or the errors
// of the locks built on it, look retryable (api.IsRetryable), nor like
// the end of a caller's context (errors.Is context.DeadlineExceeded).
func expiredErr(lastErr error) error {
	if lastErr == nil {
		return fmt.Errorf("%w: no renew answered", ErrExpired)
	}
	return fmt.Errorf("%w: last renew error: %v", ErrExpired, lastErr) //nolint:errorlint // see above
}

// maxHedges bounds the renews of one round waiting for an answer at once.
const maxHedges = 4

// renewAttempt is one renew of a round, in flight.
type renewAttempt struct {
	sent      time.Time
	cancel    context.CancelFunc
	cancelled bool // by the round, to bound the attempts in flight
}

// renewResult is one renew attempt's outcome, with its send time.
type renewResult struct {
	entry *api.SessionEntry
	sent  time.Time
	err   error
	a     *renewAttempt
}

// renewRound renews the session once. A renew that has not been answered
// after hedgeAfter is not given up: another one goes out beside it (on
// another connection, as the first holds its own), and so on, with at
// most maxHedges waited for at once, until one succeeds or the deadline
// passes. So one renew stuck on a connection that died without a reset
// costs no false loss, nor does a Consul that answers slowly (cutting the
// slow attempt short would). When maxHedges attempts wait and the oldest
// has waited attempt.Timeout, which no other request of the library
// waits, it is given up waiting for, to make room for a fresh one: with a
// long TTL, four hung renews would otherwise keep the round from sending
// anything for hours, until the deadline. It stays in flight, as its
// answer may yet come, until maxHedges more have been given up: then it
// is cancelled, so that at most twice maxHedges are in flight. A failure
// that was answered while another attempt hangs is retried at the usual
// pace, so that a hung renew does not keep the round from trying again
// once Consul is back. The first success wins, with its own send time; a
// failure ends the round when no other attempt is left in flight, and the
// round then reports the last failure Consul answered rather than the
// deadline. Every attempt has ended when renewRound returns.
func (s *Session) renewRound(ctx context.Context, deadline time.Time) renewResult {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	// A session lost meanwhile (the watchdog, a Renew's 404) ends the
	// round: its renews would be for nothing.
	stopLost := context.AfterFunc(s.ctx, cancel)
	defer stopLost()
	var wg sync.WaitGroup
	quit := make(chan struct{}) // the round is over: results go unread
	defer func() {
		cancel()
		close(quit)
		wg.Wait()
	}()
	results := make(chan renewResult, maxHedges)
	var (
		live    []*renewAttempt // in flight, oldest first, at most maxHedges
		stale   []*renewAttempt // given up waiting for, still in flight: a late answer counts
		pending int             // attempts whose result has not come
	)
	launch := func() {
		actx, acancel := context.WithCancel(rctx)
		a := &renewAttempt{sent: time.Now(), cancel: acancel}
		live = append(live, a)
		pending++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer acancel()
			entry, _, err := s.client.Session().Renew(actx, s.id, &s.write)
			select {
			case results <- renewResult{entry: entry, sent: a.sent, err: err, a: a}:
			case <-quit:
			}
		}()
	}
	launch()
	var (
		answered *renewResult // the last failure Consul (or the network) answered
		last     *renewResult // the last failure of an attempt the round did not cancel
	)
	hedge := time.NewTimer(hedgeAfter(time.Until(deadline)))
	defer hedge.Stop()
	for {
		select {
		case r := <-results:
			pending--
			live = slices.DeleteFunc(live, func(a *renewAttempt) bool { return a == r.a })
			stale = slices.DeleteFunc(stale, func(a *renewAttempt) bool { return a == r.a })
			if r.err == nil || errors.Is(r.err, api.ErrNotFound) {
				return r
			}
			if !r.a.cancelled {
				last = &r
				if rctx.Err() == nil {
					answered = &r
				}
				if pending > 0 {
					// An answered failure beside an attempt that hangs:
					// retry at the usual pace rather than wait the hung
					// one out, which can take until the deadline.
					hedge.Reset(min(backoff.Spread(retryInterval, 0.3), hedgeAfter(time.Until(deadline))))
				}
			}
			if pending == 0 {
				if answered != nil && rctx.Err() != nil {
					// Keep what Consul said rather than the deadline.
					return *answered
				}
				if last == nil {
					// Only cancelled attempts ended, which cannot be
					// (each was cancelled while a fresh one was in
					// flight): their own failure, never a success.
					return r
				}
				return *last
			}
		case <-hedge.C:
			// maxHedges bounds the attempts in flight, not the attempts
			// of a round: one that hung must not use up the retries.
			if rctx.Err() == nil {
				if len(live) == maxHedges && time.Since(live[0].sent) >= staleRenew {
					// Given up waiting for, to make room for a fresh
					// attempt, but left in flight: a slow answer is still
					// an answer. Cancelled only once maxHedges more wait.
					stale = append(stale, live[0])
					live = live[1:]
					if len(stale) > maxHedges {
						stale[0].cancelled = true
						stale[0].cancel()
						stale = stale[1:]
					}
				}
				if len(live) < maxHedges {
					launch()
				}
			}
			hedge.Reset(hedgeAfter(time.Until(deadline)))
		}
	}
}

// staleRenew is how long a renew may wait for its answer before it is
// given up waiting for (see renewRound), when maxHedges wait at once.
const staleRenew = attempt.Timeout

// hedgeAfter is how long a renew waits for its answer before another goes
// out beside it, when left is the time to the deadline: half of it, at
// most two seconds, at least 50ms.
func hedgeAfter(left time.Duration) time.Duration {
	return max(min(left/2, 2*time.Second), 50*time.Millisecond)
}

// destroy sends the destroy, in attempts of at most attempt.Timeout: one
// that hangs (on a connection that died without a reset) is sent once
// more, at once, on a new connection. Errors are returned: a later Close
// tries again.
func (s *Session) destroy(ctx context.Context) error {
	var err error
	for range 2 {
		actx, cancel := attempt.Context(ctx)
		_, err = s.client.Session().Destroy(actx, s.id, &s.write)
		err = attempt.Err(ctx, actx, err)
		cancel()
		if !attempt.TimedOut(err) {
			return err
		}
	}
	return err
}

// Claim records that one holder (a lock, an election, a semaphore slot)
// uses key through this session, and fails with ErrClaimed when another
// holder already does: Consul lets a session acquire a key it already
// holds, so two holders sharing a session on one key would not exclude
// each other. The returned func gives the claim up.
func (s *Session) Claim(key string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.claims[key]; ok {
		return nil, fmt.Errorf("%w: %q", ErrClaimed, key)
	}
	s.claims[key] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.claims, key)
			s.mu.Unlock()
		})
	}, nil
}

// Close stops renewing, waits for the renew goroutine and destroys the
// session, releasing (or deleting) the keys it holds. A ctx that has
// already ended when Close is called (defer s.Close(ctx) after a shutdown
// cancelled ctx) still gets the destroy sent, within 5 seconds. It is safe
// to call more than once and from several goroutines; later calls wait
// for the first (or for their ctx). When the first could not destroy the
// session (Consul could not be reached), a later call tries again, so that
// the keys are not left held until the TTL runs out. A session that Consul
// already invalidated is not destroyed again.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		select {
		case <-s.closing:
		default:
			select {
			case <-s.closing:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		s.mu.Lock()
		failed := s.closeErr != nil
		s.mu.Unlock()
		if !failed {
			return nil
		}
		dctx, cancel := grace.Context(ctx)
		defer cancel()
		if derr := s.destroy(dctx); derr != nil {
			return fmt.Errorf("session: destroy: %w", derr)
		}
		s.mu.Lock()
		s.closeErr = nil
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.stop()
	<-s.exited
	// Whichever comes first, a Renew's 404 or this, is the cause: a
	// session found gone is not destroyed again, and a 404 caused by the
	// destroy below finds the cause set.
	s.cancel(ErrClosed)
	s.stopWatchdog()

	var err error
	if !errors.Is(s.Err(), ErrInvalidated) {
		dctx, cancel := grace.Context(ctx)
		if derr := s.destroy(dctx); derr != nil {
			err = fmt.Errorf("session: destroy: %w", derr)
		}
		cancel()
	}
	s.mu.Lock()
	s.closeErr = err
	s.mu.Unlock()
	close(s.closing)
	return err
}
