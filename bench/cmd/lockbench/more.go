package main

import (
	"context"
	"fmt"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// semLimit is the limit of the benchmark's semaphores.
const semLimit = 2

// ckSemCycler sets up acquire+release cycles of a consulkit semaphore
// over a reused session, holding the slot for hold in each cycle.
func (e *env) ckSemCycler(ctx context.Context, hold time.Duration) (*cycler, error) {
	cl, err := e.consulkit()
	if err != nil {
		return nil, err
	}
	cy := &cycler{cnt: cl.cnt}
	cy.add(cl.tr.CloseIdleConnections)
	s, err := e.ckSession(ctx, cl.c, "lockbench semaphore")
	if err != nil {
		cy.close()
		return nil, err
	}
	cy.add(func() { closeSession(s) })
	sem, err := semaphore.New(cl.c, e.key(fmt.Sprintf("sem/consulkit-%v", hold)), semLimit, semaphore.WithSession(s))
	if err != nil {
		cy.close()
		return nil, err
	}
	cy.cycle = func() error {
		if _, err := sem.Acquire(ctx); err != nil {
			return fmt.Errorf("consulkit semaphore Acquire: %w", err)
		}
		if err := hold0(ctx, hold); err != nil {
			return err
		}
		if err := sem.Release(ctx); err != nil {
			return fmt.Errorf("consulkit semaphore Release: %w", err)
		}
		return nil
	}
	return cy, nil
}

// ofSemCycler sets up acquire+release cycles of an official semaphore
// with SemaphoreOptions.Session set to a session created and renewed here.
func (e *env) ofSemCycler(ctx context.Context, hold time.Duration) (*cycler, error) {
	cl, err := e.official()
	if err != nil {
		return nil, err
	}
	cy := &cycler{cnt: cl.cnt}
	cy.add(cl.tr.CloseIdleConnections)
	id, stop, err := e.ofSession(cl.c, "lockbench semaphore")
	if err != nil {
		cy.close()
		return nil, err
	}
	cy.add(stop)
	sem, err := cl.c.SemaphoreOpts(&consulapi.SemaphoreOptions{Prefix: e.key(fmt.Sprintf("sem/official-%v", hold)), Limit: semLimit, Session: id})
	if err != nil {
		cy.close()
		return nil, err
	}
	cy.cycle = func() error {
		ch, err := sem.Acquire(nil)
		if err != nil {
			return fmt.Errorf("official semaphore Acquire: %w", err)
		}
		if ch == nil {
			return errNotAcquired
		}
		if err := hold0(ctx, hold); err != nil {
			return err
		}
		if err := sem.Release(); err != nil {
			return fmt.Errorf("official semaphore Release: %w", err)
		}
		return nil
	}
	return cy, nil
}

// candidate is one consulkit election candidate.
type candidate struct {
	cl   *ckClient
	sess *session.Session
	el   *election.Election
}

func (e *env) newCandidate(ctx context.Context, cl *ckClient, key string) (*candidate, error) {
	s, err := e.ckSession(ctx, cl.c, "lockbench election")
	if err != nil {
		return nil, err
	}
	el, err := election.New(cl.c, key, election.WithSession(s))
	if err != nil {
		closeSession(s)
		return nil, err
	}
	return &candidate{cl: cl, sess: s, el: el}, nil
}

// campaignResult is what a Campaign running in a goroutine returned, and
// when.
type campaignResult struct {
	leading context.Context
	at      time.Time
	err     error
}

// campaignParked starts c's Campaign and waits until its blocking query on
// key is in flight.
func campaignParked(ctx context.Context, c *candidate, key string) (<-chan campaignResult, error) {
	res := make(chan campaignResult, 1)
	go func() {
		leading, err := c.el.Campaign(ctx, []byte(c.sess.ID()))
		res <- campaignResult{leading, time.Now(), err}
	}()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.cl.cnt.waitBlocking(wctx, "/v1/kv/"+key, 1); err != nil {
		return nil, fmt.Errorf("candidate not parked: %w", err)
	}
	return res, pause(ctx, parkSettle)
}

func waitCampaign(res <-chan campaignResult) (campaignResult, error) {
	select {
	case r := <-res:
		if r.err != nil {
			return r, fmt.Errorf("campaign: %w", r.err)
		}
		return r, nil
	case <-time.After(60 * time.Second):
		return campaignResult{}, fmt.Errorf("campaign: not elected within 60s")
	}
}

// failoverResult is a run of election failovers.
type failoverResult struct {
	resign  sample // Resign called → next Campaign returns
	destroy sample // leader's session destroyed → next Campaign returns
	deposed sample // leader's session destroyed → its leading context cancelled
}

// ckFailover measures election failovers between consulkit candidates
// (sessions with lock delay 0): by Resign, and by destroying the leader's
// session from outside, as an operator or a failing health check would.
func (e *env) ckFailover(ctx context.Context) (failoverResult, error) {
	var r failoverResult
	var cls [2]*ckClient
	for i := range cls {
		cl, err := e.consulkit()
		if err != nil {
			return r, err
		}
		defer cl.tr.CloseIdleConnections()
		cls[i] = cl
	}
	admin, err := e.consulkit()
	if err != nil {
		return r, err
	}
	defer admin.tr.CloseIdleConnections()

	// Resign: two candidates that stay.
	key := e.key("election/resign")
	var cands [2]*candidate
	for i := range cands {
		c, err := e.newCandidate(ctx, cls[i], key)
		if err != nil {
			return r, err
		}
		defer closeSession(c.sess)
		cands[i] = c
	}
	if _, err := cands[0].el.Campaign(ctx, []byte("0")); err != nil {
		return r, err
	}
	leader := 0
	for i := range warmup + e.failovers {
		w := 1 - leader
		res, err := campaignParked(ctx, cands[w], key)
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		if err := cands[leader].el.Resign(ctx); err != nil {
			return r, fmt.Errorf("resign: %w", err)
		}
		cr, err := waitCampaign(res)
		if err != nil {
			return r, err
		}
		if i >= warmup {
			r.resign = append(r.resign, cr.at.Sub(t0))
		}
		leader = w
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return r, err
		}
	}
	if err := cands[leader].el.Resign(ctx); err != nil {
		return r, err
	}

	// Session destroyed: a new candidate (and session) per term.
	key = e.key("election/destroy")
	cur, err := e.newCandidate(ctx, cls[0], key)
	if err != nil {
		return r, err
	}
	leading, err := cur.el.Campaign(ctx, []byte("first"))
	if err != nil {
		closeSession(cur.sess)
		return r, err
	}
	for i := range warmup + e.failovers {
		next, err := e.newCandidate(ctx, cls[(i+1)%2], key)
		if err != nil {
			closeSession(cur.sess)
			return r, err
		}
		res, err := campaignParked(ctx, next, key)
		if err != nil {
			closeSession(cur.sess)
			closeSession(next.sess)
			return r, err
		}
		deposed := make(chan time.Time, 1)
		go func(leading context.Context) {
			<-leading.Done()
			deposed <- time.Now()
		}(leading)
		t0 := time.Now()
		if _, err := admin.c.Session().Destroy(ctx, cur.sess.ID(), nil); err != nil {
			return r, fmt.Errorf("destroying the leader's session: %w", err)
		}
		cr, err := waitCampaign(res)
		if err != nil {
			return r, err
		}
		var deposedAt time.Time
		select {
		case deposedAt = <-deposed:
		case <-time.After(60 * time.Second):
			return r, fmt.Errorf("the old leader did not notice it was deposed within 60s")
		}
		if i >= warmup {
			r.destroy = append(r.destroy, cr.at.Sub(t0))
			r.deposed = append(r.deposed, deposedAt.Sub(t0))
		}
		closeSession(cur.sess)
		cur, leading = next, cr.leading
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return r, err
		}
	}
	_ = cur.el.Resign(ctx)
	closeSession(cur.sess)
	return r, nil
}
