package ttlcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/backoff"
)

// cleanupTimeout bounds the deregistration Run does when it returns.
const cleanupTimeout = 5 * time.Second

// Run registers the check, keeps it alive and, when ctx ends, deregisters
// it (unless WithKeepCheck was given). It blocks until ctx ends.
//
// Run sends the first status as soon as it knows it (after the first probe
// result, or at once without a probe), then a beat every interval. A
// transient error (api.IsRetryable, or a request that timed out) is
// retried with jitter, several times within the TTL; when the agent no
// longer knows the check (api.IsUnknownCheck: the check was deregistered
// or the agent restarted), Run registers it again, with the current
// status, and keeps beating.
//
// Run returns early only if the very first registration is refused with
// an error that is not transient (for example api.ErrPermissionDenied, or
// an unknown check.ServiceID): the error is returned. After the check has
// been registered once, Run never gives up: every failure is logged and
// retried, backing off up to one interval.
//
// When ctx ends Run deregisters the check, or for NewService the service,
// with a context that is not cancelled (bounded to 5s; transient errors
// and attempts that get no answer are retried within it), waits for a probe
// that is still running, and returns ctx.Err(), joined with the
// deregistration error if there was one. A Run that never reached the
// agent deregisters nothing (the ID may be another instance's); one whose
// last registration got no answer deregisters again a second later, in
// case the agent applied it late. Only one Run of a Heartbeat may
// run at a time (ErrRunning otherwise); a Heartbeat may be Run again after
// Run returned.
func (h *Heartbeat) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return ErrRunning
	}
	h.running = true
	select {
	case <-h.kick: // left over from an earlier Run
	default:
	}
	done := make(chan struct{})
	h.done = done
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running = false
		h.mu.Unlock()
	}()

	r := &runner{
		h:       h,
		results: make(chan probeResult, 1),
		bo:      backoff.Backoff{Min: retryMin(h.interval), Max: h.interval},
	}
	lctx, cancel := context.WithCancel(ctx)
	err := r.loop(lctx)
	cancel()
	// From here on Pass, Warn and Fail return ErrNotRunning at once, while
	// running stays set until the deregistration is done.
	h.mu.Lock()
	close(done)
	h.mu.Unlock()
	if r.attempted && !h.keep {
		if derr := r.deregister(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	// A probe that ignores its context keeps Run here until it returns,
	// and a handler that blocks, until what was logged is written.
	r.wg.Wait()
	h.logs.Wait()
	return err
}

// retryMin is the first retry delay: an eighth of the interval, between
// 50ms and 1s.
func retryMin(interval time.Duration) time.Duration {
	return min(max(interval/8, 50*time.Millisecond), time.Second, interval)
}

// runner is the state of one Run.
type runner struct {
	h       *Heartbeat
	results chan probeResult
	wg      sync.WaitGroup
	bo      backoff.Backoff

	// Probe state.
	cycle      uint64    // the beat cycle; a new one starts after each beat
	probed     bool      // a probe was started (or skipped as hung) for this cycle
	hung       bool      // this cycle's probe was skipped: the last one has not returned
	gotResult  bool      // this cycle's probe result arrived
	inflight   bool      // a probe goroutine has not reported yet
	probeStart time.Time // when the in-flight probe started
	probeEnd   time.Time // the in-flight probe's deadline
	probeFor   uint64    // the cycle whose status the in-flight probe's result is
	probeGen   uint64    // the explicit generation when this cycle's probe started (or was skipped)
	rearmed    bool      // the probe of cycle rearmedFor replaces one skipped while a hung one ran: keep the due time
	rearmedFor uint64

	// Beat state.
	due         time.Time // when the next beat must be sent
	beatQueued  bool      // this cycle's beat is waiting to be sent
	needSend    bool      // an update must be sent
	retryAt     time.Time // not before this time
	registered  bool      // the agent is believed to have the check
	established bool      // an update succeeded during this Run
	attempted   bool      // a registration may have taken effect: deregister on return
	unanswered  bool      // the last registration got no answer: it may still apply
	lastStatus  Status    // the last status the agent accepted, "" before any
	acceptedAt  time.Time // when the last accepted update was sent: the agent reset the TTL after it
	refreshing  bool      // a beat waiting out an outage waits for a new probe's result
	kickAt      time.Time // when Pass, Warn or Fail last set a status
}

type probeResult struct {
	setGen uint64 // the explicit generation when the probe started
	status Status
	note   string
}

func (r *runner) loop(ctx context.Context) error {
	h := r.h
	if h.probe != nil {
		r.due = time.Now().Add(h.probeTimeout)
	} else {
		r.due = time.Now()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		if h.probe != nil && !r.probed && !now.Before(r.due.Add(-h.probeTimeout)) {
			r.startProbe(ctx, now)
		}
		if !r.beatQueued && !now.Before(r.due) {
			if h.probe != nil && !r.gotResult {
				r.probeMissed(now)
			}
			r.queueBeat()
		}
		if r.needSend && !now.Before(r.retryAt) {
			if r.refreshing && !r.gotResult && !now.Before(r.due) {
				// The new probe of a beat waiting out an outage did not
				// answer by its deadline: as for any beat, that is
				// Critical, not the status from before the outage.
				r.refreshing = false
				r.probeMissed(now)
			}
			// Else, before the deadline, the check is about to lapse: this
			// attempt carries the status from before the outage, and the
			// probe's result, if it comes first, the next.
			if err := r.send(ctx); err != nil {
				return err
			}
			continue
		}

		var wake time.Time
		consider := func(t time.Time) {
			if wake.IsZero() || t.Before(wake) {
				wake = t
			}
		}
		if h.probe != nil && !r.probed {
			consider(r.due.Add(-h.probeTimeout))
		}
		if !r.beatQueued {
			consider(r.due)
		}
		if r.needSend {
			consider(r.retryAt)
		}
		var tc <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tc:
		case <-h.kick:
			r.kickAt = time.Now()
			if r.refreshing {
				// A status set by Pass, Warn or Fail is newer than what
				// the refresh probe will say: send it, and let the
				// probe's result go as late.
				r.refreshing = false
				r.gotResult = true
				r.retryAt = time.Time{}
			}
			if !r.needSend {
				r.needSend = true
				r.retryAt = time.Time{}
			}
		case res := <-r.results:
			r.inflight = false
			// Only one probe runs at a time: this is the in-flight one.
			if r.probeFor != r.cycle || r.gotResult {
				h.logs.Debug("ttlcheck: late probe result discarded", "check", h.check.ID, "status", string(res.status))
				if r.hung && !r.gotResult {
					// This cycle's probe was skipped because that one
					// was in flight: it has returned, so probe now.
					// Within the beat's own deadline: the beat is
					// not delayed for it.
					r.probed, r.hung = false, false
					r.rearmed, r.rearmedFor = true, r.cycle
				}
				continue
			}
			r.gotResult = true
			if !h.setProbeReport(res.status, res.note, res.setGen) {
				h.logs.Debug("ttlcheck: probe result older than an explicit status discarded", "check", h.check.ID, "status", string(res.status))
			}
			if r.refreshing {
				// The beat waiting out an outage takes the fresh status
				// with its next attempt, now.
				r.refreshing = false
				r.retryAt = time.Time{}
			}
			if !r.established && !r.beatQueued {
				// The first status goes out as soon as it is known.
				r.queueBeat()
			}
		}
	}
}

func (r *runner) queueBeat() {
	r.beatQueued = true
	if !r.needSend {
		r.needSend = true
		r.retryAt = time.Time{}
	}
}

// probeMissed records Critical when the cycle's probe has not answered by
// the time the beat is due.
func (r *runner) probeMissed(now time.Time) {
	h := r.h
	var note string
	if r.hung {
		note = fmt.Sprintf("probe has not returned for %s (it ignores its context)", now.Sub(r.probeStart).Round(time.Millisecond))
	} else {
		note = fmt.Sprintf("probe timed out after %s", now.Sub(r.probeStart).Round(time.Millisecond))
	}
	r.gotResult = true
	// Like a probe's result, the timeout is dropped when Pass, Warn or Fail
	// set a status after the probe started: that status is newer.
	if !h.setProbeReport(Critical, note, r.probeGen) {
		h.logs.Debug("ttlcheck: probe timeout older than an explicit status discarded", "check", h.check.ID)
	}
}

// startProbe runs the probe for the current cycle in a goroutine, under a
// deadline at the beat's due time. When the previous probe has not
// returned yet, no new one is started.
func (r *runner) startProbe(ctx context.Context, now time.Time) {
	r.probed = true
	r.probeGen = r.h.explicitGen()
	if r.inflight {
		r.hung = true
		return
	}
	r.inflight = true
	r.probeStart = now
	r.probeFor = r.cycle
	deadline := r.due
	rearmed := r.rearmed && r.rearmedFor == r.cycle // not a later cycle's
	r.rearmed = false
	if !rearmed && deadline.Sub(now) < r.h.probeTimeout/2 {
		// Started late (the loop was busy sending): give it a fair chance.
		deadline = now.Add(r.h.probeTimeout / 2)
		r.due = deadline
	}
	r.probeEnd = deadline
	pctx, cancel := context.WithDeadline(ctx, deadline)
	h := r.h
	setGen := r.probeGen
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		// What a probe that ends its goroutine with runtime.Goexit
		// (t.FailNow in a test) reports: the result is sent however the
		// goroutine ends, or that probe would count as in flight for
		// ever and no probe would run again.
		s, note, returned := Critical, "probe did not return (runtime.Goexit)", false
		defer func() {
			if !returned {
				h.logs.Error("ttlcheck: probe called runtime.Goexit", "check", h.check.ID)
			}
			if pctx.Err() != nil && ctx.Err() == nil {
				reason := fmt.Sprintf("probe timed out after %s", time.Since(now).Round(time.Millisecond))
				if note != "" {
					reason += ": " + note
				}
				s, note = Critical, reason
			}
			r.results <- probeResult{setGen: setGen, status: s, note: note}
		}()
		s, note = h.callProbe(pctx)
		returned = true
	}()
}

// callProbe runs the probe, turning a panic or an unknown status into
// Critical.
func (h *Heartbeat) callProbe(ctx context.Context) (s Status, note string) {
	defer func() {
		if v := recover(); v != nil {
			h.logs.Error("ttlcheck: probe panicked", "check", h.check.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s, note = Critical, fmt.Sprintf("probe panicked: %v", v)
		}
	}()
	s, note = h.probe(ctx)
	if !s.valid() {
		reason := fmt.Sprintf("probe returned an unknown status %q", string(s))
		if note != "" {
			reason += ": " + note
		}
		return Critical, reason
	}
	return s, note
}

// minAttempt is the shortest bound attemptTimeout gives a request.
const minAttempt = 200 * time.Millisecond

// attemptTimeout bounds one request sent at now. The base bound is the
// interval, between 1s and 10s. While the TTL the agent last reset is
// still running, a request may take at most half of what is left of it
// (but not less than minAttempt), so that a request that hangs (a dead
// pooled connection, a stalled agent) times out early enough for a retry
// to reach the agent before the check turns critical. Once the TTL has
// run out there is nothing left to save, and a slow agent gets the base
// bound, so that it can be reached at all.
func (r *runner) attemptTimeout(now time.Time) time.Duration {
	base := min(max(r.h.interval, time.Second), 10*time.Second)
	if r.acceptedAt.IsZero() {
		return base
	}
	left := r.acceptedAt.Add(r.h.check.TTL).Sub(now)
	if left <= 0 {
		return base
	}
	return min(base, max(left/2, minAttempt))
}

// send makes one attempt to update the check (registering it first if
// needed). It returns an error only when Run must stop.
func (r *runner) send(ctx context.Context) error {
	h := r.h
	start := time.Now()
	rep := h.current()
	actx, cancel := context.WithTimeout(ctx, r.attemptTimeout(start))
	err := r.update(actx, rep)
	cancel()
	if err == nil {
		h.markSent(rep)
		r.acceptedAt = start
		r.refreshing = false
		r.established = true
		r.bo.Reset()
		r.needSend = false
		if rep.status != r.lastStatus {
			level := slog.LevelInfo
			if rep.status != Passing {
				level = slog.LevelWarn
			}
			h.logs.Log(level, "ttlcheck: status changed", "check", h.check.ID, "from", string(r.lastStatus), "to", string(rep.status), "note", rep.note)
			r.lastStatus = rep.status
		}
		if r.beatQueued {
			// The beat of this cycle went out (or an update made it
			// unnecessary); the next one is due an interval after this
			// request started, which is no later than when the agent reset
			// the TTL.
			r.beatQueued = false
			r.due = start.Add(h.interval)
			r.cycle++
			r.probed, r.hung, r.gotResult = false, false, false
			r.refreshing = false
			if r.inflight && time.Now().Before(r.probeEnd) && r.due.Add(-h.probeTimeout).Before(r.probeEnd) {
				// A refresh probe, started less than a probe timeout ago,
				// still within its deadline when this cycle's probe is
				// due to start (a probe timeout over half the interval):
				// starting that one would find it in flight and take it
				// for hung. Its result, due before this beat, is this
				// cycle's status. Without the overlap, this cycle probes
				// afresh, so that its beat is no older than the timeout.
				r.probed, r.probeFor = true, r.cycle
			}
		}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	timedOut := errors.Is(err, context.DeadlineExceeded)
	if !r.established && !timedOut && !api.IsRetryable(err) {
		return fmt.Errorf("ttlcheck: registering check %q: %w", h.check.ID, err)
	}
	d := r.bo.Next()
	if !r.acceptedAt.IsZero() {
		d = retryDelay(d, r.acceptedAt.Add(h.check.TTL).Sub(time.Now()), retryMin(h.interval))
	}
	r.retryAt = time.Now().Add(d)
	h.logs.Warn("ttlcheck: update failed; retrying", "check", h.check.ID, "retry_in", d, "error", err)
	r.refreshStale(time.Now())
	return nil
}

// retryDelay bounds the backoff delay d of a retry to half of what is left
// of the TTL (left), but not below floor: near the end of the TTL,
// attempts come closer together, so that an agent that answers again just
// before the check would lapse is reached in time.
func retryDelay(d, left, floor time.Duration) time.Duration {
	if left <= 0 {
		return d
	}
	return min(d, max(left/2, floor))
}

// refreshStale starts a new probe for a beat that has waited for the agent
// for an interval or more: the status it carries is that old, and the
// agent would otherwise get it, once it answers again, for one more
// interval (a Passing from before an outage, say, while the application
// has failed since). The next attempt waits for the probe's result (at
// most the probe timeout: a probe that does not answer by then is
// Critical), which replaces the status of the beat, but no later than
// shortly before the check would lapse: an attempt then carries the status
// from before (a lapse would make the check critical whatever the
// application's state), and the probe's result, if it comes first, the
// next one. A status set by Pass,
// Warn or Fail less than an interval ago is kept, not probed over, as
// without an outage (the probe's next result replaces it at most an
// interval later).
func (r *runner) refreshStale(now time.Time) {
	h := r.h
	if h.probe == nil || !r.beatQueued || !r.gotResult || r.inflight || now.Sub(r.due) < h.interval {
		return
	}
	if !r.kickAt.IsZero() && now.Sub(r.kickAt) < h.interval {
		return
	}
	r.cycle++ // a result of the old cycle's probe, if any, is now late
	r.probed, r.hung, r.gotResult = false, false, false
	r.due = now.Add(h.probeTimeout) // the new probe's deadline
	r.refreshing = true
	r.retryAt = r.due
	if end := r.acceptedAt.Add(h.check.TTL); !r.acceptedAt.IsZero() && now.Before(end) {
		// Only while the TTL still runs: once it has, the check is
		// critical already and nothing is saved by sending the old status.
		if last := end.Add(-minAttempt); last.Before(r.retryAt) {
			r.retryAt = last
		}
	}
}

// update registers the check when needed and sends rep; when the agent
// does not know the check, it registers it again and sends rep once more.
func (r *runner) update(ctx context.Context, rep report) error {
	h := r.h
	if !r.registered {
		if err := r.register(ctx, rep.status); err != nil {
			return err
		}
	}
	_, err := h.client.Agent().UpdateTTL(ctx, h.check.ID, rep.note, string(rep.status), nil)
	if err == nil || !api.IsUnknownCheck(err) {
		return err
	}
	r.registered = false
	h.logs.Info("ttlcheck: the agent does not know the check; registering it again", "check", h.check.ID, "error", err)
	if err := r.register(ctx, rep.status); err != nil {
		return err
	}
	_, err = h.client.Agent().UpdateTTL(ctx, h.check.ID, rep.note, string(rep.status), nil)
	return err
}

// register registers the check (or the service with the check) with
// status as its initial status.
func (r *runner) register(ctx context.Context, status Status) error {
	h := r.h
	c := h.check
	if err := ctx.Err(); err != nil {
		return err // nothing sent
	}
	def := api.AgentServiceCheck{
		TTL:                            api.Duration(c.TTL),
		Status:                         string(status),
		DeregisterCriticalServiceAfter: api.Duration(c.DeregisterCriticalServiceAfter),
	}
	var err error
	if h.service != nil {
		reg := *h.service
		def.CheckID, def.Name, def.Notes = c.ID, c.Name, c.Notes
		reg.Checks = append(append(api.AgentServiceChecks{}, h.service.Checks...), &def)
		_, err = h.client.Agent().ServiceRegister(ctx, &reg, nil)
	} else {
		_, err = h.client.Agent().CheckRegister(ctx, &api.AgentCheckRegistration{
			ID: c.ID, Name: c.Name, Notes: c.Notes, ServiceID: c.ServiceID,
			AgentServiceCheck: def,
		}, nil)
	}
	var se *api.StatusError
	answered := err == nil || errors.As(err, &se) && se.Code < 500
	if !answered && !notSent(err) {
		// No answer: the agent may have the check now, or later.
		r.attempted, r.unanswered = true, true
	}
	if err != nil {
		return err
	}
	r.attempted, r.unanswered = true, false
	r.registered = true
	if !r.established {
		h.logs.Info("ttlcheck: check registered", "check", c.ID, "service", c.ServiceID, "ttl", c.TTL, "interval", h.interval)
	}
	return nil
}

// deregister removes the check, or the service, when Run returns. A check
// or service that is already gone is not an error.
func (r *runner) deregister(ctx context.Context) error {
	h := r.h
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var timedOut bool
	deregister := func() error {
		// An attempt that gets no answer (a dead pooled connection, a
		// stalled agent) is given half of what is left, so that another
		// one still fits: deregistering twice is harmless.
		actx, cancel := context.WithTimeout(ctx, max(time.Until(deadline)/2, minDeregisterAttempt))
		defer cancel()
		var err error
		if h.service != nil {
			_, err = h.client.Agent().ServiceDeregister(actx, h.serviceID, nil)
		} else {
			_, err = h.client.Agent().CheckDeregister(actx, h.check.ID, nil)
		}
		timedOut = err != nil && actx.Err() != nil && ctx.Err() == nil
		return err
	}
	err := deregister()
	// A passing fault (a 500 during an election, an agent restarting, a
	// stale connection) does not end the cleanup while its time lasts.
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for timedOut || api.IsRetryable(err) {
		if backoff.Sleep(ctx, bo.Next()) != nil {
			break
		}
		err = deregister()
	}
	if r.unanswered && (err == nil || errors.Is(err, api.ErrNotFound)) {
		// A registration that got no answer may still be applied by the
		// agent after this deregistration (Consul deregisters an unknown
		// check without complaint): deregister again a moment later,
		// rather than leave a check that nobody beats.
		t := time.NewTimer(lateRegistration)
		select {
		case <-t.C:
			err = deregister()
		case <-ctx.Done():
		}
		t.Stop()
	}
	if err != nil && !errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("ttlcheck: deregistering check %q: %w", h.check.ID, err)
	}
	return nil
}

// minDeregisterAttempt is the shortest bound a deregistration attempt
// gets.
const minDeregisterAttempt = 500 * time.Millisecond

// lateRegistration is how long after the deregistration a registration
// that got no answer is deregistered again.
const lateRegistration = time.Second

// notSent reports whether err says a request never reached the agent: no
// connection could be made, or the api client refused it before sending.
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial" || errors.Is(err, api.ErrInvalid)
}
