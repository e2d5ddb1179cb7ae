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
	if c.TTL == 0 {
		c.TTL = 10 * time.Second
	}
	if c.ShortPhase == 0 {
		c.ShortPhase = 12 * time.Second
	}
	ctx, stop := context.WithCancel(tb.Context())
	defer stop()

	var (
		inside   atomic.Int32
		mu       sync.Mutex
		res      ContentionResult
		longHold atomic.Bool // the next holder holds until it loses
		cutOff   = make(chan int, 1)
		cutLost  atomic.Bool // the holder cut off has seen its loss
		full     atomic.Bool // Limit others held at once after that
	)
	problem := func(err error) { mu.Lock(); res.Problems = append(res.Problems, err); mu.Unlock() }
	proxies := make([]*FaultProxy, c.Workers)
	var wg sync.WaitGroup
	for w := range c.Workers {
		cl, p := a.ProxiedClient(tb)
		proxies[w] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for ctx.Err() == nil {
				// A session per life: one that is lost is replaced.
				s, err := session.New(ctx, cl, session.WithTTL(c.TTL), session.WithLockDelay(0),
					session.WithName(fmt.Sprintf("contend-%d", w)))
				if err != nil {
					sleepCtx(ctx, 200*time.Millisecond) // a fault
					continue
				}
				h, err := c.New(cl, s)
				if err != nil {
					problem(err)
					closeQuietly(s, c.TTL)
					return
				}
				for ctx.Err() == nil && s.Err() == nil {
					held, err := h.Acquire(ctx)
					if err != nil {
						// The session's end or ctx: faults are retried.
						sleepCtx(ctx, 100*time.Millisecond)
						continue
					}
					switch n := inside.Add(1); {
					case n > int32(c.Limit):
						problem(fmt.Errorf("worker %d: %d holders at once, limit %d", w, n, c.Limit))
					case n == int32(c.Limit) && cutLost.Load():
						full.Store(true)
					}
					if c.Acquired != nil {
						mu.Lock()
						if err := c.Acquired(held); err != nil {
							res.Problems = append(res.Problems, fmt.Errorf("worker %d: %w", w, err))
						}
						mu.Unlock()
					}
					mu.Lock()
					res.Acquisitions++
					mu.Unlock()

					hold := time.Duration(rng.IntN(200)) * time.Millisecond
					cut := longHold.CompareAndSwap(true, false)
					if cut {
						hold = 4 * c.TTL
						cutOff <- w
					}
					select {
					case <-time.After(hold):
					case <-held.Done():
					}
					inside.Add(-1) // no longer acting as a holder
					if cut {
						if held.Err() == nil {
							problem(fmt.Errorf("worker %d: cut off for %s without seeing a loss", w, hold))
						}
						cutLost.Store(true)
					}
					if held.Err() != nil {
						if cause := context.Cause(held); cause != nil && ctx.Err() == nil {
							mu.Lock()
							res.Losses = append(res.Losses, cause)
							mu.Unlock()
						}
					}
					rctx, cancel := context.WithTimeout(context.Background(), 2*c.TTL)
					_ = h.Release(rctx) // may fail under a fault: the session's end frees it
					cancel()
				}
				closeQuietly(s, c.TTL)
			}
		}()
	}

	rng := rand.New(rand.NewPCG(7, 7))
	faults := []Fault{Hang, ServerError, NoLeader}
	for end := time.Now().Add(c.ShortPhase); time.Now().Before(end) && ctx.Err() == nil; {
		p := proxies[rng.IntN(c.Workers)]
		p.Set(faults[rng.IntN(len(faults))])
		sleepCtx(ctx, time.Duration(300+rng.IntN(2700))*time.Millisecond)
		p.Set(Pass)
		sleepCtx(ctx, 2*time.Second)
	}

	// Cut the next holder off for longer than its TTL, and wait until,
	// once it has seen its loss, Limit others hold at once.
	longHold.Store(true)
	var w int
	select {
	case w = <-cutOff:
	case <-time.After(time.Minute):
		stop()
		wg.Wait()
		tb.Fatalf("integration: contend: nobody acquired after the short faults")
	}
	proxies[w].Set(Hang)
	for deadline := time.Now().Add(5 * c.TTL); time.Now().Before(deadline) && !full.Load(); {
		sleepCtx(ctx, 50*time.Millisecond)
	}
	proxies[w].Set(Pass)
	stop()
	wg.Wait()
	if !full.Load() {
		tb.Fatalf("integration: contend: after worker %d was cut off (loss seen: %v), %d others never held at once", w, cutLost.Load(), c.Limit)
	}
	mu.Lock()
	defer mu.Unlock()
	return res
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
