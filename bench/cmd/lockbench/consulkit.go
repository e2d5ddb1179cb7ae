package main

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// ckClient is a consulkit client with its own counting transport.
type ckClient struct {
	c   *api.Client
	cnt *counter
	d   *dialer
	tr  interface{ CloseIdleConnections() }
}

func (e *env) consulkit() (*ckClient, error) {
	d := &dialer{rotate: e.rotate}
	tr := consulkitTransport(d)
	cnt := newCounter(tr, &d.dials)
	c, err := api.NewClient(api.Config{Address: e.addr, Token: e.token, Transport: cnt})
	if err != nil {
		return nil, err
	}
	return &ckClient{c: c, cnt: cnt, d: d, tr: tr}, nil
}

func (e *env) ckSession(ctx context.Context, c *api.Client, name string) (*session.Session, error) {
	return session.New(ctx, c, session.WithName(name), session.WithLockDelay(0))
}

func closeSession(s *session.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// ckCycler sets up lock+unlock cycles on one key: with a session created
// by the Lock at every acquisition (reuse false), or one Lock over one
// session (reuse true); the lock is held for hold in each cycle.
func (e *env) ckCycler(ctx context.Context, reuse bool, hold time.Duration) (*cycler, error) {
	cl, err := e.consulkit()
	if err != nil {
		return nil, err
	}
	cy := &cycler{cnt: cl.cnt}
	cy.add(cl.tr.CloseIdleConnections)
	key := e.key(fmt.Sprintf("cycle/consulkit-%t-%v", reuse, hold))
	var opts []lock.Option
	if reuse {
		s, err := e.ckSession(ctx, cl.c, "lockbench reused")
		if err != nil {
			cy.close()
			return nil, err
		}
		cy.add(func() { closeSession(s) })
		opts = append(opts, lock.WithSession(s))
	} else {
		opts = append(opts, lock.WithSessionOptions(session.WithName("lockbench fresh"), session.WithLockDelay(0)))
	}
	l, err := lock.New(cl.c, key, opts...)
	if err != nil {
		cy.close()
		return nil, err
	}
	cy.cycle = func() error {
		if _, err := l.Lock(ctx); err != nil {
			return fmt.Errorf("consulkit Lock: %w", err)
		}
		if err := hold0(ctx, hold); err != nil {
			return err
		}
		if err := l.Unlock(ctx); err != nil {
			return fmt.Errorf("consulkit Unlock: %w", err)
		}
		return nil
	}
	return cy, nil
}

// hold0 pauses for d, if d > 0.
func hold0(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	return pause(ctx, d)
}

// ckHandoff sets up handoffs between two consulkit Locks on one key, each
// with its own client and session, and adds to cs what undoes it.
func (e *env) ckHandoff(ctx context.Context, cs *closers) (*handoff, error) {
	key := e.key("handoff/consulkit")
	var (
		locks [2]*lock.Lock
		cls   [2]*ckClient
	)
	for i := range 2 {
		cl, err := e.consulkit()
		if err != nil {
			return nil, err
		}
		cs.add(cl.tr.CloseIdleConnections)
		s, err := e.ckSession(ctx, cl.c, fmt.Sprintf("lockbench handoff %d", i))
		if err != nil {
			return nil, err
		}
		cs.add(func() { closeSession(s) })
		if locks[i], err = lock.New(cl.c, key, lock.WithSession(s)); err != nil {
			return nil, err
		}
		cls[i] = cl
	}
	rawCl, err := e.consulkit()
	if err != nil {
		return nil, err
	}
	cs.add(rawCl.tr.CloseIdleConnections)
	rawKey := e.key("handoff/consulkit-raw")
	h := &handoff{
		n:       e.handoffs,
		path:    "/v1/kv/" + key,
		counter: func(i int) *counter { return cls[i].cnt },
		raw: pairCycle(func(v string) error {
			_, err := rawCl.c.KV().Put(ctx, &api.KVPair{Key: rawKey, Value: []byte(v)}, nil)
			return err
		}),
		lock: func(i int) error {
			_, err := locks[i].Lock(ctx)
			return err
		},
		unlock: func(i int) error { return locks[i].Unlock(ctx) },
	}
	if _, err := locks[0].Lock(ctx); err != nil {
		return nil, err
	}
	cs.addErr(func() error { return locks[h.holder].Unlock(ctx) })
	return h, nil
}

// ckRawCycler sets up pairs of sequential KV puts, back to back, with the
// consulkit client.
func (e *env) ckRawCycler(ctx context.Context) (*cycler, error) {
	cl, err := e.consulkit()
	if err != nil {
		return nil, err
	}
	key := e.key("raw/consulkit")
	put := func(v string) error {
		_, err := cl.c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte(v)}, nil)
		return err
	}
	cy := &cycler{cnt: cl.cnt, cycle: pairCycle(put)}
	cy.add(cl.tr.CloseIdleConnections)
	return cy, nil
}

// pairCycle returns a cycle of two sequential puts.
func pairCycle(put func(string) error) func() error {
	i := 0
	return func() error {
		i++
		if err := put("a" + strconv.Itoa(i)); err != nil {
			return err
		}
		return put("b" + strconv.Itoa(i))
	}
}

// ckHeld holds e.held locks over one shared session and measures the
// goroutines, heap and connections they add.
func (e *env) ckHeld(ctx context.Context) (heldResult, error) {
	cl, err := e.consulkit()
	if err != nil {
		return heldResult{}, err
	}
	defer cl.tr.CloseIdleConnections()
	s, err := e.ckSession(ctx, cl.c, "lockbench held")
	if err != nil {
		return heldResult{}, err
	}
	defer closeSession(s)
	n := e.held
	locks := make([]*lock.Lock, n)

	base := measureBase()
	d0 := cl.d.dials.Load()
	err = parallel(n, func(i int) error {
		l, err := lock.New(cl.c, e.key("held/consulkit/"+strconv.Itoa(i)), lock.WithSession(s))
		if err != nil {
			return err
		}
		if _, err := l.Lock(ctx); err != nil {
			return err
		}
		locks[i] = l
		return nil
	})
	if err != nil {
		return heldResult{}, fmt.Errorf("consulkit: holding %d locks: %w", n, err)
	}
	if err := waitParked(ctx, cl.cnt, n); err != nil {
		return heldResult{}, err
	}
	res := base.delta(n)
	res.conns = float64(cl.d.dials.Load()-d0) / float64(n)
	runtime.KeepAlive(locks)

	if err := parallel(n, func(i int) error { return locks[i].Unlock(ctx) }); err != nil {
		return res, fmt.Errorf("consulkit: unlocking: %w", err)
	}
	// The watchers return once they see the releases (as the official
	// monitors are waited for in ofHeld): one still running would be
	// counted in the official client's base, and its connection would
	// stay out of CloseIdleConnections.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for cl.cnt.blockingInFlight("") > 0 {
		if err := pause(wctx, 10*time.Millisecond); err != nil {
			return res, fmt.Errorf("consulkit: watchers still running after Unlock: %w", err)
		}
	}
	return res, nil
}

// parallel runs fn(0..n-1) on a few workers and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
