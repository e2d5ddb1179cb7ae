package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// ofClient is an official client with its own counting transport: the
// client's default pooled transport (go-cleanhttp), with the benchmark's
// dialer.
type ofClient struct {
	c   *consulapi.Client
	cnt *counter
	d   *dialer
	tr  *http.Transport
}

func (e *env) official() (*ofClient, error) {
	d := &dialer{rotate: e.rotate}
	cfg := consulapi.DefaultConfig() // pooled transport, the client's default
	tr := cfg.Transport
	tr.DialContext = d.DialContext
	cnt := newCounter(tr, &d.dials)
	cfg.Address = e.addr
	cfg.Scheme = "http"
	cfg.Token = e.token
	cfg.HttpClient = &http.Client{Transport: cnt}
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &ofClient{c: c, cnt: cnt, d: d, tr: tr}, nil
}

// ofSession creates a session for the official client and renews it the
// way the official client does for its own locks (RenewPeriodic). Calling
// the returned func stops renewing and destroys the session.
func (e *env) ofSession(c *consulapi.Client, name string) (string, func(), error) {
	id, _, err := c.Session().Create(&consulapi.SessionEntry{Name: name, TTL: "15s", LockDelay: 0}, nil)
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = c.Session().RenewPeriodic("15s", id, nil, done)
	}()
	return id, func() { close(done); <-exited }, nil
}

// errNotAcquired: the official Lock returned nil, nil.
var errNotAcquired = errors.New("official Lock returned without the lock")

// ofCycler sets up lock+unlock cycles with the official client: one Lock
// that creates a session at every acquisition (reuse false), or one Lock
// with LockOptions.Session set to a session created and renewed here; the
// lock is held for hold in each cycle.
func (e *env) ofCycler(ctx context.Context, reuse bool, hold time.Duration) (*cycler, error) {
	cl, err := e.official()
	if err != nil {
		return nil, err
	}
	cy := &cycler{cnt: cl.cnt}
	cy.add(cl.tr.CloseIdleConnections)
	opts := &consulapi.LockOptions{Key: e.key(fmt.Sprintf("cycle/official-%t-%v", reuse, hold)), SessionName: "lockbench fresh"}
	if reuse {
		id, stop, err := e.ofSession(cl.c, "lockbench reused")
		if err != nil {
			cy.close()
			return nil, err
		}
		cy.add(stop)
		opts.Session = id
	}
	l, err := cl.c.LockOpts(opts)
	if err != nil {
		cy.close()
		return nil, err
	}
	cy.cycle = func() error {
		ch, err := l.Lock(nil)
		if err != nil {
			return fmt.Errorf("official Lock: %w", err)
		}
		if ch == nil {
			return errNotAcquired
		}
		if err := hold0(ctx, hold); err != nil {
			return err
		}
		if err := l.Unlock(); err != nil {
			return fmt.Errorf("official Unlock: %w", err)
		}
		return nil
	}
	return cy, nil
}

// ofHandoff sets up handoffs between two official Locks on one key, each
// with its own client and session, and adds to cs what undoes it.
func (e *env) ofHandoff(ctx context.Context, cs *closers) (*handoff, error) {
	key := e.key("handoff/official")
	var (
		locks [2]*consulapi.Lock
		cls   [2]*ofClient
	)
	for i := range 2 {
		cl, err := e.official()
		if err != nil {
			return nil, err
		}
		cs.add(cl.tr.CloseIdleConnections)
		id, stop, err := e.ofSession(cl.c, fmt.Sprintf("lockbench handoff %d", i))
		if err != nil {
			return nil, err
		}
		cs.add(stop)
		if locks[i], err = cl.c.LockOpts(&consulapi.LockOptions{Key: key, Session: id}); err != nil {
			return nil, err
		}
		cls[i] = cl
	}
	lockFn := func(i int) error {
		ch, err := locks[i].Lock(nil)
		if err == nil && ch == nil {
			err = errNotAcquired
		}
		return err
	}
	rawCl, err := e.official()
	if err != nil {
		return nil, err
	}
	cs.add(rawCl.tr.CloseIdleConnections)
	rawKey := e.key("handoff/official-raw")
	h := &handoff{
		n:       e.handoffs,
		path:    "/v1/kv/" + key,
		counter: func(i int) *counter { return cls[i].cnt },
		raw: pairCycle(func(v string) error {
			_, err := rawCl.c.KV().Put(&consulapi.KVPair{Key: rawKey, Value: []byte(v)}, (&consulapi.WriteOptions{}).WithContext(ctx))
			return err
		}),
		lock:   lockFn,
		unlock: func(i int) error { return locks[i].Unlock() },
	}
	if err := lockFn(0); err != nil {
		return nil, err
	}
	cs.addErr(func() error { return locks[h.holder].Unlock() })
	return h, nil
}

// ofRawCycler sets up pairs of sequential KV puts, back to back, with the
// official client.
func (e *env) ofRawCycler(ctx context.Context) (*cycler, error) {
	cl, err := e.official()
	if err != nil {
		return nil, err
	}
	key := e.key("raw/official")
	put := func(v string) error {
		_, err := cl.c.KV().Put(&consulapi.KVPair{Key: key, Value: []byte(v)}, (&consulapi.WriteOptions{}).WithContext(ctx))
		return err
	}
	cy := &cycler{cnt: cl.cnt, cycle: pairCycle(put)}
	cy.add(cl.tr.CloseIdleConnections)
	return cy, nil
}

// ofHeld holds e.held official locks that share one session through
// LockOptions.Session.
func (e *env) ofHeld(ctx context.Context) (heldResult, error) {
	cl, err := e.official()
	if err != nil {
		return heldResult{}, err
	}
	defer cl.tr.CloseIdleConnections()
	id, stop, err := e.ofSession(cl.c, "lockbench held")
	if err != nil {
		return heldResult{}, err
	}
	defer stop()
	n := e.held
	locks := make([]*consulapi.Lock, n)

	base := measureBase()
	d0 := cl.d.dials.Load()
	err = parallel(n, func(i int) error {
		l, err := cl.c.LockOpts(&consulapi.LockOptions{Key: e.key("held/official/" + strconv.Itoa(i)), Session: id})
		if err != nil {
			return err
		}
		ch, err := l.Lock(nil)
		if err == nil && ch == nil {
			err = errNotAcquired
		}
		if err != nil {
			return err
		}
		locks[i] = l
		return nil
	})
	if err != nil {
		return heldResult{}, fmt.Errorf("official: holding %d locks: %w", n, err)
	}
	if err := waitParked(ctx, cl.cnt, n); err != nil {
		return heldResult{}, err
	}
	res := base.delta(n)
	res.conns = float64(cl.d.dials.Load()-d0) / float64(n)
	runtime.KeepAlive(locks)

	if err := parallel(n, func(i int) error { return locks[i].Unlock() }); err != nil {
		return res, fmt.Errorf("official: unlocking: %w", err)
	}
	// The monitors return once they see the releases.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for cl.cnt.blockingInFlight("") > 0 {
		if err := pause(wctx, 10*time.Millisecond); err != nil {
			return res, fmt.Errorf("official: monitors still running after Unlock: %w", err)
		}
	}
	return res, nil
}
