// Command lockbench compares consulkit's lock with the official Go client's
// (github.com/hashicorp/consul/api) against one real Consul agent, in the
// same run, and prints a markdown table.
//
// It starts a dev agent through consulkit's integration harness (process
// mode unless -mode or CONSULKIT_MODE says otherwise), or uses the agent at
// CONSUL_HTTP_ADDR when that is set.
//
//	cd bench && go run ./cmd/lockbench
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

const (
	warmup     = 5                      // unmeasured cycles before each measurement
	settleTime = 300 * time.Millisecond // lets background requests of a run finish before counting
	parkSettle = 20 * time.Millisecond  // after a waiter's blocking query is sent, before the holder unlocks
	// handoffSettle: after a handoff, before its requests are counted.
	handoffSettle = 50 * time.Millisecond
	workers       = 16                   // concurrency when taking many locks
	heldCycle     = 5 * time.Millisecond // how long a lock is held in the "held" cycles
	// noRotateLimit caps the held locks when connections cannot be spread
	// over several source addresses (Consul's default
	// http_max_conns_per_client is 200).
	noRotateLimit = 150
)

// env is one benchmark run's settings.
type env struct {
	addr, token string
	rotate      bool
	prefix      string
	cycles      int
	handoffs    int
	held        int
	failovers   int
	mode        string
	version     string
}

func (e *env) key(s string) string { return e.prefix + "/" + s }

// cycleResult is a run of lock+unlock cycles.
type cycleResult struct {
	lat       sample
	requests  float64 // per cycle
	dials     float64 // TCP connections opened per cycle
	breakdown string
	n         int    // cycles run in the counting window
	leads     string // median of the untimed lead cycles by previous kind
}

// handoffResult is a run of handoffs.
type handoffResult struct {
	lat       sample
	rawIdle   sample  // two raw writes after parkSettle idle, one pair between handoffs
	rawLong   sample  // the same after handoffSettle+parkSettle idle (diagnostic)
	requests  float64 // per handoff, both contenders
	dials     float64 // TCP connections opened per handoff, both contenders
	breakdown string
}

// heldResult is what one held lock adds.
type heldResult struct {
	goroutines float64
	heap       float64 // HeapAlloc
	stack      float64 // StackInuse
	conns      float64
}

func main() {
	e := &env{}
	flag.IntVar(&e.cycles, "cycles", 200, "cycles of each kind per measurement (lock+unlock, semaphore, raw write pairs)")
	flag.IntVar(&e.handoffs, "handoffs", 100, "handoffs per measurement (and raw write pairs timed between them)")
	flag.IntVar(&e.failovers, "failovers", 20, "election failovers per measurement")
	flag.IntVar(&e.held, "held", 1000, "locks held at once for the goroutine and heap measurement")
	flag.StringVar(&e.mode, "mode", "process", "harness mode when CONSUL_HTTP_ADDR and CONSULKIT_MODE are unset: process or docker")
	verbose := flag.Bool("v", false, "print the requests of each measurement by kind")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, e, os.Stdout, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "lockbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, e *env, out io.Writer, verbose bool) (err error) {
	if addr := os.Getenv(api.EnvHTTPAddr); addr != "" {
		e.addr = strings.TrimPrefix(addr, "http://")
		e.token = os.Getenv("CONSUL_HTTP_TOKEN")
		e.mode = "external (CONSUL_HTTP_ADDR)"
	} else {
		if os.Getenv(integration.EnvMode) == "" && e.mode != "" {
			if err := os.Setenv(integration.EnvMode, e.mode); err != nil {
				return err
			}
		}
		fmt.Fprintln(os.Stderr, "lockbench: starting a Consul dev agent...")
		a, err := integration.StartAgent(ctx, integration.WithName("lockbench"))
		if err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = errors.Join(err, a.Close(cctx), integration.Shutdown(cctx))
		}()
		e.addr, e.token, e.mode = a.Addr, a.Token, string(a.Mode)
	}
	e.rotate = canRotate(e.addr)
	e.prefix = fmt.Sprintf("lockbench/%d-%d", os.Getpid(), time.Now().UnixNano())
	notes := []string{}
	if !e.rotate && e.held > noRotateLimit {
		notes = append(notes, fmt.Sprintf("held locks capped at %d (not %d): the agent is not on 127.0.0.1, so connections cannot be spread over several source addresses, and Consul accepts at most 200 HTTP connections per client IP", noRotateLimit, e.held))
		e.held = noRotateLimit
	}

	oc, err := e.official()
	if err != nil {
		return err
	}
	if self, err := oc.c.Agent().Self(); err == nil {
		if cfg, ok := self["Config"]; ok {
			e.version = fmt.Sprint(cfg["Version"])
		}
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = oc.c.KV().DeleteTree(e.prefix, (&consulapi.WriteOptions{}).WithContext(cctx))
		oc.tr.CloseIdleConnections()
	}()

	step := func(name string) { fmt.Fprintf(os.Stderr, "lockbench: %s...\n", name) }
	var r results

	// Each measurement below interleaves the kinds it compares (see
	// runRounds).
	step("lock+unlock cycles, fresh session")
	rs, err := measure(ctx, e.cycles,
		func() (*cycler, error) { return e.ckCycler(ctx, false, 0) },
		func() (*cycler, error) { return e.ofCycler(ctx, false, 0) })
	if err != nil {
		return err
	}
	r.ckFresh, r.ofFresh = rs[0], rs[1]
	step("lock+unlock cycles, reused session, and raw write pairs")
	rs, err = measure(ctx, e.cycles,
		func() (*cycler, error) { return e.ckCycler(ctx, true, 0) },
		func() (*cycler, error) { return e.ofCycler(ctx, true, 0) },
		func() (*cycler, error) { return e.ckRawCycler(ctx) },
		func() (*cycler, error) { return e.ofRawCycler(ctx) })
	if err != nil {
		return err
	}
	r.ckReuse, r.ofReuse, r.ckRaw, r.ofRaw = rs[0], rs[1], rs[2], rs[3]
	step(fmt.Sprintf("lock, hold %v, unlock cycles, reused session", heldCycle))
	rs, err = measure(ctx, e.cycles,
		func() (*cycler, error) { return e.ckCycler(ctx, true, heldCycle) },
		func() (*cycler, error) { return e.ofCycler(ctx, true, heldCycle) })
	if err != nil {
		return err
	}
	r.ckHeldCycle, r.ofHeldCycle = rs[0], rs[1]
	step("handoffs")
	if r.ckHand, r.ofHand, err = e.measureHandoffs(ctx); err != nil {
		return err
	}
	step(fmt.Sprintf("%d held locks", e.held))
	if r.ckHeld, err = e.ckHeld(ctx); err != nil {
		return err
	}
	if r.ofHeld, err = e.ofHeld(ctx); err != nil {
		return err
	}

	step("semaphore cycles, reused session")
	rs, err = measure(ctx, e.cycles,
		func() (*cycler, error) { return e.ckSemCycler(ctx, 0) },
		func() (*cycler, error) { return e.ofSemCycler(ctx, 0) })
	if err != nil {
		return err
	}
	r.ckSem, r.ofSem = rs[0], rs[1]
	rs, err = measure(ctx, e.cycles,
		func() (*cycler, error) { return e.ckSemCycler(ctx, heldCycle) },
		func() (*cycler, error) { return e.ofSemCycler(ctx, heldCycle) })
	if err != nil {
		return err
	}
	r.ckSemHeld, r.ofSemHeld = rs[0], rs[1]
	step("election failovers")
	if r.failover, err = e.ckFailover(ctx); err != nil {
		return err
	}

	r.print(out, e, notes, verbose)
	return nil
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// handoff runs handoffs between two contenders, 0 and 1, on one key:
// contender holder holds; the other calls Lock and, once its blocking query
// is in flight, the holder unlocks. The latency is from the Unlock call to
// the waiter's Lock returning.
type handoff struct {
	n       int
	path    string
	counter func(i int) *counter
	lock    func(i int) error
	unlock  func(i int) error
	// raw writes twice to a key of its own through a third client of
	// the same kind: after parkSettle idle, timed between handoffs, so
	// that the baseline shares the handoffs' conditions.
	raw    func() error
	holder int

	lat, rawIdle, rawLongIdle sample
	reqs, dials               int64
	kinds                     [2]snapshot
}

// step runs handoff i (those below warmup are not measured), then one
// raw write pair after the same idle time.
func (h *handoff) step(ctx context.Context, i int) error {
	if i == warmup {
		h.kinds = [2]snapshot{h.counter(0).snap(), h.counter(1).snap()}
	}
	w := 1 - h.holder
	b0, b1 := h.counter(0).snap(), h.counter(1).snap()
	type done struct {
		at  time.Time
		err error
	}
	res := make(chan done, 1)
	go func() {
		err := h.lock(w)
		res <- done{time.Now(), err}
	}()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := h.counter(w).waitBlocking(wctx, h.path, 1)
	cancel()
	if err != nil {
		// Not parked: the Lock goes on in the background and ends
		// when the run does.
		return fmt.Errorf("handoff %d: waiter not parked: %w", i, err)
	}
	if err := pause(ctx, parkSettle); err != nil {
		return err
	}
	t0h := time.Now()
	if err := h.unlock(h.holder); err != nil {
		return fmt.Errorf("handoff %d: unlock: %w", i, err)
	}
	var d done
	select {
	case d = <-res:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("handoff %d: waiter did not acquire within 30s", i)
	}
	if d.err != nil {
		return fmt.Errorf("handoff %d: lock: %w", i, d.err)
	}
	h.holder = w
	// The new holder's watch and the old holder's monitor are sent within
	// a few ms of the acquisition; then the agent is idle. The raw pair
	// comes parkSettle after the acquisition, the idle time before the
	// holder's Unlock in a handoff (it used to come after 50ms + parkSettle,
	// three times longer, and the agent answers more slowly the longer it
	// was idle).
	if err := pause(ctx, parkSettle); err != nil {
		return err
	}
	t0 := time.Now()
	if err := h.raw(); err != nil {
		return fmt.Errorf("raw writes: %w", err)
	}
	if i >= warmup {
		h.rawIdle = append(h.rawIdle, time.Since(t0))
	}
	// The rest of the settle time before the handoff's requests are
	// counted (the raw pair goes through a client of its own).
	if err := pause(ctx, handoffSettle-parkSettle); err != nil {
		return err
	}
	if i >= warmup {
		h.lat = append(h.lat, d.at.Sub(t0h))
		r0, d0, _ := h.counter(0).since(b0)
		r1, d1, _ := h.counter(1).since(b1)
		h.reqs += r0 + r1
		h.dials += d0 + d1
	}
	// Diagnostic: a second pair after the idle time the baseline used to
	// have (handoffSettle + parkSettle since the last request, the first
	// pair), to show what that changed.
	if err := pause(ctx, (handoffSettle+parkSettle)-(handoffSettle-parkSettle)); err != nil {
		return err
	}
	t0 = time.Now()
	if err := h.raw(); err != nil {
		return fmt.Errorf("raw writes: %w", err)
	}
	if i >= warmup {
		h.rawLongIdle = append(h.rawLongIdle, time.Since(t0))
	}
	return nil
}

// result is what the measured handoffs came to.
func (h *handoff) result() handoffResult {
	_, _, k0 := h.counter(0).since(h.kinds[0])
	_, _, k1 := h.counter(1).since(h.kinds[1])
	return handoffResult{lat: h.lat, rawIdle: h.rawIdle, rawLong: h.rawLongIdle, requests: float64(h.reqs) / float64(h.n), dials: float64(h.dials) / float64(h.n), breakdown: "A: " + k0 + "; B: " + k1}
}

// measureHandoffs measures the handoffs of both clients, interleaved.
func (e *env) measureHandoffs(ctx context.Context) (ck, of handoffResult, err error) {
	var cs closers
	defer func() { err = errors.Join(err, cs.close()) }()
	ch, err := e.ckHandoff(ctx, &cs)
	if err != nil {
		return ck, of, err
	}
	oh, err := e.ofHandoff(ctx, &cs)
	if err != nil {
		return ck, of, err
	}
	rs, err := runHandoffs(ctx, ch, oh)
	if err != nil {
		return ck, of, err
	}
	return rs[0], rs[1], nil
}

// runHandoffs runs warm-up handoffs, then h.n measured ones, of each of
// hs, interleaved: one handoff of each in turn, the order alternating.
// Run one after the other, the two clients' handoffs met the agent at
// different paces.
func runHandoffs(ctx context.Context, hs ...*handoff) ([]handoffResult, error) {
	for i := range warmup + hs[0].n {
		for _, j := range balancedOrder(len(hs), i) {
			if err := hs[j].step(ctx, i); err != nil {
				return nil, err
			}
		}
	}
	out := make([]handoffResult, len(hs))
	for i, h := range hs {
		out[i] = h.result()
	}
	return out, nil
}

// memBase is the goroutine count and heap before holding locks.
type memBase struct {
	goroutines int
	heap       uint64
	stack      uint64
}

func readMem() memBase {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memBase{goroutines: runtime.NumGoroutine(), heap: m.HeapAlloc, stack: m.StackInuse}
}

func measureBase() memBase { return readMem() }

// delta returns what each of n locks added since b.
func (b memBase) delta(n int) heldResult {
	now := readMem()
	return heldResult{
		goroutines: float64(now.goroutines-b.goroutines) / float64(n),
		heap:       float64(int64(now.heap)-int64(b.heap)) / float64(n),
		stack:      float64(int64(now.stack)-int64(b.stack)) / float64(n),
	}
}

// waitParked waits until n blocking queries are in flight through cnt,
// then a little longer for the watchers to settle.
func waitParked(ctx context.Context, cnt *counter, n int) error {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := cnt.waitBlocking(wctx, "", n); err != nil {
		return err
	}
	return pause(ctx, 500*time.Millisecond)
}
