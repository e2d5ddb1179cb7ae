package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/session"
)

// Holder is what Contend exercises: a lock, a semaphore slot, an election.
// Acquire blocks until held and returns a context that ends when the hold
// does; Release gives it up.
type Holder interface {
	Acquire(ctx context.Context) (context.Context, error)
	Release(ctx context.Context) error
}

// Contention configures Contend.
type Contention struct {
	Workers int // processes contending, each through a fault proxy of its own
	Limit   int // holders allowed at once
	// New makes a worker's holder over its session and its client.
	New func(c *api.Client, s *session.Session) (Holder, error)
	// Acquired, when set, checks each acquisition (a fencing token, say);
	// Contend serializes its calls.
	Acquired func(held context.Context) error
	// TTL of the workers' sessions (default 10s); short faults last up to
	// 3s during ShortPhase (default 12s).
	TTL        time.Duration
	ShortPhase time.Duration
	// MinAcquisitions (default 10): the short phase goes on past
	// ShortPhase, for up to a minute, until this many acquisitions have
	// been seen, so that a slow machine still exercises the holders.
	MinAcquisitions int
}

// ContentionResult is what Contend saw.
type ContentionResult struct {
	Acquisitions int
	Losses       []error // causes of holds lost while held
	Problems     []error // broken invariants: more than Limit holders, Acquired's errors
}

// Contend runs c.Workers workers that acquire and release over and over,
// each through a FaultProxy of its own, while faults come and go: first
// short ones (hangs, 500s, "No cluster leader", shorter than the session's
// deadline) on any worker, then a hang that cuts one holder off for longer
// than its session's TTL. A worker acts as a holder from Acquire's return
// until its held context ends or it releases; at no time may more than
// c.Limit workers act as holders. Contend returns once its workers have
// stopped and closed their sessions.
//
// The holder cut off must see its loss, which it reports at its local
// deadline, while Consul frees what it held no sooner than a TTL later;
// Contend then waits for c.Limit other workers to hold at once (or fails
// tb after 5 TTLs).
func Contend(tb TB, a *Agent, c Contention) ContentionResult {
	tb.Helper()
	switch {
	case c.New == nil:
		tb.Fatalf("integration: contend: New is nil")
	case c.Limit < 1 || c.Workers <= c.Limit:
		tb.Fatalf("integration: contend: %d workers for a limit of %d: want more workers than the limit, and a limit of 1 or more", c.Workers, c.Limit)
	}
	if c.TTL == 0 {
		c.TTL = 10 * time.Second
	}
	if c.ShortPhase == 0 {
		c.ShortPhase = 12 * time.Second
	}
	if c.MinAcquisitions == 0 {
		c.MinAcquisitions = 10
	}
	// Every proxy first: a setup that fails leaves no worker running.
	clients := make([]*api.Client, c.Workers)
	proxies := make([]*FaultProxy, c.Workers)
	for w := range c.Workers {
		clients[w], proxies[w] = a.ProxiedClient(tb)
	}

	ctx, stop := context.WithCancel(tb.Context())
	r := &contention{Contention: c, ctx: ctx, cutOff: make(chan int, 1)}
	var wg sync.WaitGroup
	defer func() {
		// Also when tb fails: no worker outlives Contend.
		for _, p := range proxies {
			p.Set(Pass)
		}
		stop()
		wg.Wait()
	}()
	for w := range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(w, clients[w])
		}()
	}

	rng := rand.New(rand.NewPCG(7, 7))
	faults := []Fault{Hang, ServerError, NoLeader}
	start := time.Now()
	for ctx.Err() == nil {
		if d := time.Since(start); d >= c.ShortPhase+time.Minute || d >= c.ShortPhase && r.acquisitions() >= c.MinAcquisitions {
			break
		}
		p := proxies[rng.IntN(c.Workers)]
		p.Set(faults[rng.IntN(len(faults))])
		sleepCtx(ctx, time.Duration(300+rng.IntN(2700))*time.Millisecond)
		p.Set(Pass)
		sleepCtx(ctx, 2*time.Second)
	}

	// Cut the next holder off for longer than its TTL, and wait until,
	// once it has seen its loss, Limit others hold at once.
	r.longHold.Store(true)
	var w int
	select {
	case w = <-r.cutOff:
	case <-time.After(time.Minute):
		tb.Fatalf("integration: contend: nobody acquired after the short faults")
	}
	proxies[w].Set(Hang)
	for deadline := time.Now().Add(5 * c.TTL); time.Now().Before(deadline) && !r.full.Load(); {
		sleepCtx(ctx, 50*time.Millisecond)
	}
	proxies[w].Set(Pass)
	stop()
	wg.Wait()
	if !r.full.Load() {
		tb.Fatalf("integration: contend: after worker %d was cut off (loss seen: %v), %d others never held at once", w, r.cutLost.Load(), c.Limit)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res
}

// contention is the state of one Contend run, shared by its workers.
type contention struct {
	Contention
	ctx context.Context

	inside   atomic.Int32 // workers acting as holders
	longHold atomic.Bool  // the next holder holds until it loses
	cutOff   chan int     // who that holder is
	cutLost  atomic.Bool  // the holder cut off has seen its loss
	full     atomic.Bool  // Limit others held at once after that

	mu  sync.Mutex
	res ContentionResult
}

func (r *contention) acquisitions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res.Acquisitions
}

func (r *contention) problem(err error) {
	r.mu.Lock()
	r.res.Problems = append(r.res.Problems, err)
	r.mu.Unlock()
}

// work is worker w: a session per life (one that is lost is replaced),
// and over it, acquisitions until the run ends.
func (r *contention) work(w int, cl *api.Client) {
	rng := rand.New(rand.NewPCG(uint64(w), 42))
	for r.ctx.Err() == nil {
		s, err := session.New(r.ctx, cl, session.WithTTL(r.TTL), session.WithLockDelay(0),
			session.WithName(fmt.Sprintf("contend-%d", w)))
		if err != nil {
			sleepCtx(r.ctx, 200*time.Millisecond) // a fault
			continue
		}
		if !r.live(w, cl, s, rng) {
			return
		}
	}
}

// live acquires over s until s or the run ends; false when the worker
// must stop.
func (r *contention) live(w int, cl *api.Client, s *session.Session, rng *rand.Rand) bool {
	defer closeQuietly(s, r.TTL)
	h, err := r.New(cl, s)
	if err != nil {
		r.problem(fmt.Errorf("worker %d: %w", w, err))
		return false
	}
	for r.ctx.Err() == nil && s.Err() == nil {
		held, err := h.Acquire(r.ctx)
		if err != nil {
			// Faults are retried inside: only the session's end or ctx
			// may stop an acquisition.
			if r.ctx.Err() == nil && s.Err() == nil {
				r.problem(fmt.Errorf("worker %d: acquire: %w", w, err))
			}
			sleepCtx(r.ctx, 100*time.Millisecond)
			continue
		}
		r.hold(w, held, rng)
		rctx, cancel := context.WithTimeout(context.Background(), 2*r.TTL)
		_ = h.Release(rctx) // may fail under a fault: the session's end frees it
		cancel()
	}
	return true
}

// hold acts as a holder from the acquisition that returned held until it
// ends or its time is up.
func (r *contention) hold(w int, held context.Context, rng *rand.Rand) {
	switch n := r.inside.Add(1); {
	case n > int32(r.Limit):
		r.problem(fmt.Errorf("worker %d: %d holders at once, limit %d", w, n, r.Limit))
	case n == int32(r.Limit) && r.cutLost.Load():
		r.full.Store(true)
	}
	r.mu.Lock()
	r.res.Acquisitions++
	if r.Acquired != nil {
		if err := r.Acquired(held); err != nil {
			r.res.Problems = append(r.res.Problems, fmt.Errorf("worker %d: %w", w, err))
		}
	}
	r.mu.Unlock()

	d := time.Duration(rng.IntN(200)) * time.Millisecond
	cut := r.longHold.CompareAndSwap(true, false)
	if cut {
		d = 4 * r.TTL
		r.cutOff <- w
	}
	select {
	case <-time.After(d):
	case <-held.Done():
	}
	r.inside.Add(-1) // no longer acting as a holder
	if held.Err() != nil && r.ctx.Err() == nil {
		r.mu.Lock()
		r.res.Losses = append(r.res.Losses, context.Cause(held))
		r.mu.Unlock()
	}
	if cut {
		if held.Err() == nil {
			r.problem(fmt.Errorf("worker %d: cut off for %s without seeing a loss", w, d))
		}
		r.cutLost.Store(true) // after leaving: from now on, n == Limit means others
	}
}

func closeQuietly(s *session.Session, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
	defer cancel()
	_ = s.Close(ctx)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
