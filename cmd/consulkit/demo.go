package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
	"github.com/consulkit/consulkit/ttlcheck"
)

// Bounds of the demo's flags, so that a run stays well under 30 seconds
// and within Consul's connection limit per client (each waiting worker
// keeps a blocking query open).
const (
	demoMaxWorkers = 50
	demoMaxRounds  = 100
)

const (
	// demoSceneTimeout bounds one scene: a scene that has not finished by
	// then fails, naming what it was waiting for.
	demoSceneTimeout = 20 * time.Second
	// demoCleanupTimeout bounds the removal of what the demo wrote,
	// also after Ctrl-C.
	demoCleanupTimeout = 30 * time.Second
	// demoLockDelay is the lock-delay of the sessions in scenes 2 and 3.
	demoLockDelay = time.Second
	// demoCheckTTL is the TTL of scene 5's check.
	demoCheckTTL = 2 * time.Second
)

// demo runs the scenes of consulkit's main job against a Consul it
// provisions (as dev does) or the one given with -http-addr, and reports
// what it measured. It fails, naming the invariant, when one is broken.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "", "run against this existing Consul (host:port; the other CONSUL_HTTP_* variables apply) instead of starting a local dev agent")
	verbose := fs.Bool("v", false, "log what the library does (to stderr)")
	workers := fs.Int("workers", 4, fmt.Sprintf("workers contending for the job lock in scene 1 (1 to %d)", demoMaxWorkers))
	rounds := fs.Int("rounds", 5, fmt.Sprintf("jobs each worker runs in scene 1 (1 to %d)", demoMaxRounds))
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	switch {
	case fs.NArg() > 0:
		return &usageError{msg: fmt.Sprintf("demo: unexpected argument %q", fs.Arg(0))}
	case *workers < 1 || *workers > demoMaxWorkers:
		return &usageError{msg: fmt.Sprintf("demo: -workers must be between 1 and %d, not %d", demoMaxWorkers, *workers)}
	case *rounds < 1 || *rounds > demoMaxRounds:
		return &usageError{msg: fmt.Sprintf("demo: -rounds must be between 1 and %d, not %d", demoMaxRounds, *rounds)}
	}
	id, err := randomHex(4)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d := &demoRun{
		out:     stdout,
		log:     log,
		id:      id,
		prefix:  "consulkit-demo/" + id,
		checkID: "consulkit-demo-" + id + "-alive",
		workers: *workers,
		rounds:  *rounds,
	}

	if *addr != "" {
		cfg, err := api.ConfigFromEnv()
		if err != nil {
			return err
		}
		setAddress(&cfg, *addr)
		client, err := api.NewClient(cfg)
		if err != nil {
			return &usageError{msg: fmt.Sprintf("demo: -http-addr: %v", err)}
		}
		defer client.CloseIdleConnections()
		d.client = client
		fmt.Fprintf(stdout, "consulkit demo against Consul at %s\n", *addr)
		return d.run(ctx)
	}

	// Provisioned as dev does.
	fmt.Fprintf(stdout, "consulkit demo: starting a local Consul %s (%s mode)...\n", integration.ConsulVersion, integration.ProvisionMode())
	start := time.Now()
	a, stopAgent, err := startLocalAgent(ctx, stderr)
	defer stopAgent()
	if err != nil {
		if ctx.Err() != nil {
			// Ctrl-C while the agent was starting: what was started is
			// removed; no invariant was shown, so this is no success.
			return fmt.Errorf("demo: interrupted while starting the agent: %w", context.Cause(ctx))
		}
		return err
	}
	client, err := api.NewClient(a.Config())
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	d.client = client
	fmt.Fprintf(stdout, "Consul is running at %s (%s mode), up in %s\n", a.Addr, a.Mode, ms(time.Since(start)))
	return d.run(ctx)
}

// demoRun is one run of the demo: where it writes and how it reports.
type demoRun struct {
	client  *api.Client
	out     io.Writer
	log     *slog.Logger
	id      string // 8 hex digits, unique to the run
	prefix  string // every key and session name of the run starts with it
	checkID string
	workers int
	rounds  int
	node    string // the agent's node name
}

// invariantError is a broken invariant: what the demo is there to show
// did not hold.
type invariantError struct{ broken []string }

func (e *invariantError) Error() string {
	return "invariant broken: " + strings.Join(e.broken, "; ")
}

// invariants collects the broken invariants of a scene, from any
// goroutine.
type invariants struct {
	mu     sync.Mutex
	broken []string
}

// hold records what when ok is false, and returns ok.
func (iv *invariants) hold(ok bool, format string, args ...any) bool {
	if !ok {
		iv.mu.Lock()
		iv.broken = append(iv.broken, fmt.Sprintf(format, args...))
		iv.mu.Unlock()
	}
	return ok
}

// err joins the broken invariants with err, the scene's failure to run.
func (iv *invariants) err(err error) error {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	if len(iv.broken) > 0 {
		err = errors.Join(&invariantError{broken: slices.Clone(iv.broken)}, err)
	}
	return err
}

// run runs the scenes, removes what they left, and says whether every
// invariant held.
func (d *demoRun) run(ctx context.Context) error {
	start := time.Now()
	self, _, err := d.client.Agent().Self(ctx, nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("demo: interrupted: %w", context.Cause(ctx))
		}
		return fmt.Errorf("demo: reaching Consul: %w", err)
	}
	d.node = self.Config.NodeName
	fmt.Fprintf(d.out, "Consul %s, node %s; everything the demo writes is under %s/\n", self.Config.Version, d.node, d.prefix)

	cleaned := false
	defer func() {
		if !cleaned { // a panic in a scene: still remove what was written
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), demoCleanupTimeout)
			defer cancel()
			_ = d.cleanup(cctx, false)
		}
	}()

	scenes := []struct {
		title string
		run   func(context.Context) error
	}{
		{"Workers never run a job twice at once", d.sceneJobs},
		{"A lost lock is reported at once", d.sceneLostLock},
		{"Leader election with hot standbys", d.sceneElection},
		{"At most N holders", d.sceneSemaphore},
		{"Heartbeats release the locks of an app that stops being healthy", d.sceneHeartbeat},
	}
	var errs []error
	for i, sc := range scenes {
		fmt.Fprintf(d.out, "%d. %s\n", i+1, sc.title)
		sctx, cancel := context.WithTimeout(ctx, demoSceneTimeout)
		err := sc.run(sctx)
		timedOut := sctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			// What an interrupted scene saw proves nothing either way.
			fmt.Fprintln(d.out, "   interrupted")
			break
		}
		if err != nil {
			if timedOut {
				err = fmt.Errorf("scene timed out after %s: %w", demoSceneTimeout, err)
			}
			fmt.Fprintf(d.out, "   FAILED: %v\n", err)
			errs = append(errs, fmt.Errorf("scene %d (%s): %w", i+1, sc.title, err))
			var ie *invariantError
			if !errors.As(err, &ie) {
				break // the scene could not run: Consul is unwell, stop here
			}
		}
	}

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), demoCleanupTimeout)
	// After an interrupt, a scene cut short may not have closed what it
	// made: cleanup then removes it without calling it a broken invariant.
	cerr := d.cleanup(cctx, ctx.Err() == nil)
	cancel()
	cleaned = true
	if cerr != nil {
		errs = append(errs, fmt.Errorf("cleanup: %w", cerr))
	}
	if ctx.Err() != nil {
		return errors.Join(append([]error{fmt.Errorf("demo: interrupted: %w", context.Cause(ctx))}, errs...)...)
	}
	if len(errs) > 0 {
		fmt.Fprintf(d.out, "FAILED after %s\n", ms(time.Since(start)))
		return fmt.Errorf("demo: %w", errors.Join(errs...))
	}
	fmt.Fprintf(d.out, "all invariants held (5 scenes in %s)\n", ms(time.Since(start)))
	return nil
}

// cleanup destroys every session named under the prefix, deregisters the
// demo's check and deletes every key under the prefix. With strict, any
// session or check still there is a broken invariant: each scene that ran
// to its end closes its own.
func (d *demoRun) cleanup(ctx context.Context, strict bool) error {
	var iv invariants
	hold := iv.hold
	if !strict {
		hold = func(bool, string, ...any) bool { return true }
	}
	var errs []error
	sessions, _, err := d.client.Session().List(ctx, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing sessions: %w", err))
	}
	var leftSessions []string
	for _, se := range sessions {
		if strings.HasPrefix(se.Name, d.prefix+"/") {
			leftSessions = append(leftSessions, se.Name)
			if _, err := d.client.Session().Destroy(ctx, se.ID, nil); err != nil {
				errs = append(errs, fmt.Errorf("destroying session %s: %w", se.ID, err))
			}
		}
	}
	hold(len(leftSessions) == 0, "sessions left behind (now destroyed): %s", strings.Join(leftSessions, ", "))
	checks, _, err := d.client.Agent().Checks(ctx, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing checks: %w", err))
	}
	leftChecks := 0
	if _, ok := checks[d.checkID]; ok {
		leftChecks++
		hold(false, "check %s left registered (now deregistered)", d.checkID)
		if _, err := d.client.Agent().CheckDeregister(ctx, d.checkID, nil); err != nil {
			errs = append(errs, fmt.Errorf("deregistering check %s: %w", d.checkID, err))
		}
	}
	keys, _, err := d.client.KV().Keys(ctx, d.prefix+"/", "", nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing keys: %w", err))
	}
	if _, err := d.client.KV().DeleteTree(ctx, d.prefix+"/", nil); err != nil {
		errs = append(errs, fmt.Errorf("deleting %s/: %w", d.prefix, err))
	} else {
		left, _, err := d.client.KV().Keys(ctx, d.prefix+"/", "", nil)
		if err == nil {
			hold(len(left) == 0, "%d keys still under %s/ after deleting them", len(left), d.prefix)
		}
	}
	fmt.Fprintf(d.out, "cleanup: %d keys under %s/ deleted; sessions left: %d, checks left: %d\n", len(keys), d.prefix, len(leftSessions), leftChecks)
	return iv.err(errors.Join(errs...))
}

// sessionName names a session of the demo, so that cleanup finds it.
func (d *demoRun) sessionName(format string, args ...any) string {
	return d.prefix + "/" + fmt.Sprintf(format, args...)
}

// newSession creates a session of the demo with lock delay delay and TTL 10s.
func (d *demoRun) newSession(ctx context.Context, name string, delay time.Duration, opts ...session.Option) (*session.Session, error) {
	opts = append([]session.Option{
		session.WithTTL(10 * time.Second),
		session.WithLockDelay(delay),
		session.WithName(d.sessionName("%s", name)),
		session.WithLogger(d.log),
	}, opts...)
	s, err := session.New(ctx, d.client, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating session %s: %w", name, err)
	}
	return s, nil
}

// closeSession closes s, also once ctx has ended; a failure leaves the
// session to cleanup.
func (d *demoRun) closeSession(ctx context.Context, s *session.Session) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.Close(cctx); err != nil {
		d.log.Warn("closing session", "session", s.ID(), "err", err)
	}
}

// unlock unlocks l, also once ctx has ended.
func unlock(ctx context.Context, l *lock.Lock) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return l.Unlock(cctx)
}

// span is when one job or hold ran.
type span struct{ start, end time.Time }

// sceneJobs: -workers workers, each with its own session, run -rounds jobs
// each under one lock; no two jobs overlap, every job's fencing token is
// newer than all before it, and the output written by GuardedPut is the
// newest token's.
func (d *demoRun) sceneJobs(ctx context.Context) error {
	key := d.prefix + "/jobs/nightly-report"
	outKey := key + ".output"
	var (
		iv            invariants
		inJob, maxJob atomic.Int32
		mu            sync.Mutex
		first, newest lock.Token
		spans         []span
	)
	job := func(held context.Context, l *lock.Lock) error {
		start := time.Now()
		n := inJob.Add(1)
		defer inJob.Add(-1)
		storeMax(&maxJob, n)
		iv.hold(n <= 1, "%d jobs ran at once", n)
		tok, ok := lock.TokenFrom(held)
		if !ok {
			return errors.New("lock.TokenFrom found no token in the held context")
		}
		mu.Lock()
		if newest.IsZero() {
			first = tok
		} else {
			iv.hold(tok.Newer(newest), "token %d is not newer than token %d seen before", tok.ModifyIndex, newest.ModifyIndex)
		}
		if tok.Newer(newest) {
			newest = tok
		}
		mu.Unlock()
		err := l.GuardedPut(held, &api.KVPair{Key: outKey, Value: []byte(strconv.FormatUint(tok.ModifyIndex, 10))})
		if err != nil {
			return fmt.Errorf("guarded put of token %d: %w", tok.ModifyIndex, err)
		}
		if err := sleepCtx(held, 5*time.Millisecond); err != nil {
			return fmt.Errorf("lock lost during the job: %w", context.Cause(held))
		}
		mu.Lock()
		spans = append(spans, span{start, time.Now()})
		mu.Unlock()
		return nil
	}
	worker := func(i int) error {
		s, err := d.newSession(ctx, fmt.Sprintf("jobs/worker-%d", i), 0)
		if err != nil {
			return err
		}
		defer d.closeSession(ctx, s)
		l, err := lock.New(d.client, key, lock.WithSession(s),
			lock.WithValue(fmt.Appendf(nil, "worker-%d", i)), lock.WithLogger(d.log))
		if err != nil {
			return err
		}
		for range d.rounds {
			held, err := l.Lock(ctx)
			if err != nil {
				return fmt.Errorf("worker %d: lock: %w", i, err)
			}
			jerr := job(held, l)
			if err := errors.Join(jerr, unlock(ctx, l)); err != nil {
				return fmt.Errorf("worker %d: %w", i, err)
			}
		}
		return nil
	}

	start := time.Now()
	errs := make([]error, d.workers)
	var wg sync.WaitGroup
	for i := range d.workers {
		wg.Go(func() { errs[i] = worker(i + 1) })
	}
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return iv.err(err)
	}

	want := d.workers * d.rounds
	iv.hold(len(spans) == want, "%d jobs ran, not %d", len(spans), want)
	iv.hold(maxJob.Load() == 1, "at most %d jobs at once, not 1", maxJob.Load())
	out, _, err := d.client.KV().Get(ctx, outKey, nil)
	if err != nil {
		return iv.err(fmt.Errorf("reading %s: %w", outKey, err))
	}
	written := "nothing"
	if out != nil {
		written = string(out.Value)
	}
	iv.hold(written == strconv.FormatUint(newest.ModifyIndex, 10), "the output holds %s, not the newest token %d", written, newest.ModifyIndex)
	pair, _, err := d.client.KV().Get(ctx, key, nil)
	if err != nil {
		return iv.err(fmt.Errorf("reading %s: %w", key, err))
	}
	iv.hold(pair == nil || pair.Session == "", "the lock is still held by session %s after every Unlock", sessionOf(pair))

	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	var jobTimes, handoffs []time.Duration
	for i, s := range spans {
		jobTimes = append(jobTimes, s.end.Sub(s.start))
		if i > 0 {
			handoffs = append(handoffs, s.start.Sub(spans[i-1].end))
		}
	}
	fmt.Fprintf(d.out, "   %d jobs run (%d workers x %d rounds) in %s; at most %d in a job at once\n",
		len(spans), d.workers, d.rounds, ms(wall), maxJob.Load())
	fmt.Fprintf(d.out, "   each token newer than all before it: ModifyIndex %d..%d; output = %s (GuardedPut)\n",
		first.ModifyIndex, newest.ModifyIndex, written)
	fmt.Fprintf(d.out, "   median job %s, median handoff (job end to next job start) %s\n", ms(median(jobTimes)), ms(median(handoffs)))
	return iv.err(nil)
}

// sceneLostLock: a worker's session is destroyed from outside while it
// holds the lock; its held context ends at once with lock.ErrLost, and a
// waiting worker gets the lock only after the lock-delay.
func (d *demoRun) sceneLostLock(ctx context.Context) error {
	var iv invariants
	key := d.prefix + "/jobs/weekly-report"
	sA, err := d.newSession(ctx, "lost/worker-A", demoLockDelay)
	if err != nil {
		return err
	}
	defer d.closeSession(ctx, sA)
	sB, err := d.newSession(ctx, "lost/worker-B", demoLockDelay)
	if err != nil {
		return err
	}
	defer d.closeSession(ctx, sB)
	lA, err := lock.New(d.client, key, lock.WithSession(sA), lock.WithValue([]byte("worker-A")), lock.WithLogger(d.log))
	if err != nil {
		return err
	}
	lB, err := lock.New(d.client, key, lock.WithSession(sB), lock.WithValue([]byte("worker-B")), lock.WithLogger(d.log))
	if err != nil {
		return err
	}
	heldA, err := lA.Lock(ctx)
	if err != nil {
		return fmt.Errorf("worker A: lock: %w", err)
	}
	aUnlocked := false
	defer func() {
		if !aUnlocked {
			_ = unlock(ctx, lA)
		}
	}()
	tokA := lA.Token()

	type acquired struct {
		held context.Context
		at   time.Time
		err  error
	}
	bctx, bcancel := context.WithCancel(ctx)
	bres := make(chan acquired, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		h, err := lB.Lock(bctx)
		bres <- acquired{h, time.Now(), err}
	})
	var b acquired
	bDone := false
	defer func() {
		bcancel()
		wg.Wait()
		if !bDone {
			b = <-bres
		}
		if b.err == nil {
			_ = unlock(ctx, lB)
		}
	}()

	// Give B time to find the lock held and wait on it.
	select {
	case b = <-bres:
		bDone = true
		if b.err != nil {
			return fmt.Errorf("worker B: lock: %w", b.err)
		}
		iv.hold(false, "worker B got the lock while A held it")
		return iv.err(nil)
	case <-time.After(200 * time.Millisecond):
	}

	t0 := time.Now()
	if _, err := d.client.Session().Destroy(ctx, sA.ID(), nil); err != nil {
		return fmt.Errorf("destroying worker A's session: %w", err)
	}
	t1 := time.Now()
	var lostAt time.Time
	select {
	case <-heldA.Done():
		lostAt = time.Now()
	case <-time.After(5 * time.Second):
		iv.hold(false, "worker A's held context did not end within 5s of its session's destroy")
		return iv.err(nil)
	case <-ctx.Done():
		return fmt.Errorf("waiting for worker A to learn of its loss: %w", ctx.Err())
	}
	cause := context.Cause(heldA)
	iv.hold(errors.Is(cause, lock.ErrLost), "the held context's cause %q does not wrap lock.ErrLost", cause)
	iv.hold(lostAt.Sub(t1) < 2*time.Second, "worker A learnt of its loss %s after the destroy, not at once", ms(lostAt.Sub(t1)))
	uerr := unlock(ctx, lA)
	aUnlocked = true
	iv.hold(errors.Is(uerr, lock.ErrLost), "worker A's Unlock after the loss returned %v, not an error wrapping lock.ErrLost", uerr)
	select {
	case <-sA.Done():
	case <-time.After(2 * time.Second):
	}
	iv.hold(errors.Is(sA.Err(), session.ErrInvalidated), "worker A's session reports %v, not session.ErrInvalidated", sA.Err())

	select {
	case b = <-bres:
		bDone = true
	case <-ctx.Done():
		return iv.err(fmt.Errorf("waiting for worker B to get the lock: %w", ctx.Err()))
	}
	if b.err != nil {
		return iv.err(fmt.Errorf("worker B: lock: %w", b.err))
	}
	waited := b.at.Sub(t0)
	iv.hold(waited >= demoLockDelay, "worker B got the lock %s after the destroy, within the %s lock delay", ms(waited), ms(demoLockDelay))
	tokB, _ := lock.TokenFrom(b.held)
	iv.hold(tokB.Newer(tokA), "worker B's token %d is not newer than A's %d", tokB.ModifyIndex, tokA.ModifyIndex)

	fmt.Fprintf(d.out, "   worker A holds jobs/weekly-report (lock delay %s), worker B waits in Lock\n", ms(demoLockDelay))
	fmt.Fprintf(d.out, "   A's session destroyed through the API (Destroy took %s); A's held context ended %s\n",
		ms(t1.Sub(t0)), afterDestroy(lostAt.Sub(t1)))
	fmt.Fprintf(d.out, "   cause: %v (wraps lock.ErrLost: %t); A's session: %s\n", cause, errors.Is(cause, lock.ErrLost), sessionEnd(sA))
	fmt.Fprintf(d.out, "   B got the lock %s after the destroy began (lock delay %s), token %d > %d\n",
		ms(waited), ms(demoLockDelay), tokB.ModifyIndex, tokA.ModifyIndex)
	return iv.err(nil)
}

// afterDestroy says when something happened relative to Destroy's return.
func afterDestroy(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("%s before Destroy returned", ms(-d))
	}
	return fmt.Sprintf("%s after Destroy returned", ms(d))
}

// term is one leader's term in sceneElection.
type term struct {
	who        string
	token      lock.Token
	start, end time.Time
	cause      error
}

// observed is what the observer saw, when.
type observed struct {
	at     time.Time
	leader election.Leader
}

// sceneElection: three candidates run election.Run; never two leaders at
// once; a leader whose session is destroyed is deposed and a standby takes
// over after the lock-delay; cancelling ends every Run.
func (d *demoRun) sceneElection(ctx context.Context) error {
	var iv invariants
	key := d.prefix + "/service/report-cron/leader"
	var (
		mu                  sync.Mutex
		terms               []*term
		seen                []observed
		leadersNow, maxLead atomic.Int32
	)
	started := make(chan *term, 16)
	ended := make(chan *term, 16)
	changed := make(chan struct{}, 1)
	// candidate is the function a candidate runs while leading. A
	// candidate deposed by the loss of its session stops campaigning
	// (stop ends its Run), as a crashed node would: otherwise it
	// campaigns again with a new session, on equal terms with the
	// standbys, and wins about a third of the time.
	candidate := func(who string, stop context.CancelFunc) func(context.Context) error {
		return func(leading context.Context) error {
			n := leadersNow.Add(1)
			storeMax(&maxLead, n)
			iv.hold(n <= 1, "%d leaders at once (%s elected)", n, who)
			tok, _ := lock.TokenFrom(leading)
			t := &term{who: who, token: tok, start: time.Now()}
			mu.Lock()
			terms = append(terms, t)
			mu.Unlock()
			select { // sized for the scene; a full channel is a scene gone wrong, which times out
			case started <- t:
			default:
			}
			<-leading.Done()
			leadersNow.Add(-1)
			if errors.Is(context.Cause(leading), election.ErrDeposed) {
				stop()
			}
			mu.Lock()
			t.end, t.cause = time.Now(), context.Cause(leading)
			mu.Unlock()
			select {
			case ended <- t:
			default:
			}
			return nil
		}
	}

	obs, err := election.New(d.client, key, election.WithLogger(d.log))
	if err != nil {
		return err
	}
	var candidates []*election.Election
	for i := 1; i <= 3; i++ {
		e, err := election.New(d.client, key, election.WithLogger(d.log),
			election.WithSessionOptions(
				session.WithTTL(10*time.Second),
				session.WithLockDelay(demoLockDelay),
				session.WithName(d.sessionName("election/candidate-%d", i)),
				session.WithLogger(d.log)))
		if err != nil {
			return err
		}
		candidates = append(candidates, e)
	}

	// The observer and the candidates are awaited apart: the observer must
	// still run when the candidates' Runs have returned, to see the key
	// free.
	var obsWG, runWG sync.WaitGroup
	octx, ocancel := context.WithCancel(ctx)
	obsWG.Go(func() {
		for l := range obs.Observe(octx) {
			mu.Lock()
			seen = append(seen, observed{time.Now(), l})
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	})
	rctx, rcancel := context.WithCancel(ctx)
	runErrs := make([]error, len(candidates))
	for i, e := range candidates {
		who := fmt.Sprintf("candidate-%d", i+1)
		cctx, ccancel := context.WithCancel(rctx)
		runWG.Go(func() {
			defer ccancel()
			runErrs[i] = e.Run(cctx, []byte(who), candidate(who, ccancel))
		})
	}
	stopRuns := func() {
		rcancel()
		runWG.Wait()
	}
	stopObserver := func() {
		ocancel()
		obsWG.Wait()
	}
	defer stopObserver()
	defer stopRuns()

	// waitSeen waits until the observer's latest sighting satisfies ok.
	waitSeen := func(ok func(election.Leader) bool) (observed, bool) {
		timeout := time.After(5 * time.Second)
		for {
			mu.Lock()
			var last observed
			if n := len(seen); n > 0 {
				last = seen[n-1]
			}
			mu.Unlock()
			if !last.at.IsZero() && ok(last.leader) {
				return last, true
			}
			select {
			case <-changed:
			case <-timeout:
				return last, false
			case <-ctx.Done():
				return last, false
			}
		}
	}
	waitTerm := func(ch <-chan *term, what string) (*term, error) {
		select {
		case t := <-ch:
			return t, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}

	sceneStart := time.Now()
	first, err := waitTerm(started, "a first leader")
	if err != nil {
		return iv.err(err)
	}
	l, err := obs.Leader(ctx)
	if err != nil {
		return iv.err(fmt.Errorf("reading the leader: %w", err))
	}
	iv.hold(string(l.Value) == first.who && l.Session == first.token.Session,
		"the key names %s (session %s), not %s, whose function runs", l.Value, l.Session, first.who)
	_, ok := waitSeen(func(l election.Leader) bool { return l.Session == first.token.Session })
	iv.hold(ok, "the observer did not see %s lead", first.who)

	t0 := time.Now()
	if _, err := d.client.Session().Destroy(ctx, l.Session, nil); err != nil {
		return iv.err(fmt.Errorf("destroying the leader's session: %w", err))
	}
	t1 := time.Now()
	deposed, err := waitTerm(ended, first.who+"'s function to see leading end")
	if err != nil {
		return iv.err(err)
	}
	mu.Lock()
	deposedAt, deposedCause := deposed.end, deposed.cause
	mu.Unlock()
	iv.hold(deposed == first, "a term other than %s's ended", first.who)
	iv.hold(errors.Is(deposedCause, election.ErrDeposed) && errors.Is(deposedCause, lock.ErrLost),
		"%s's leading context ended with %v, not with election.ErrDeposed and lock.ErrLost", first.who, deposedCause)
	next, err := waitTerm(started, "a new leader after the failover")
	if err != nil {
		return iv.err(err)
	}
	failover := next.start.Sub(t0)
	iv.hold(failover >= demoLockDelay, "%s led %s after the destroy, within the %s lock delay", next.who, ms(failover), ms(demoLockDelay))
	iv.hold(next.who != first.who, "%s, deposed and stopped, led again", next.who)
	iv.hold(next.token.Newer(first.token), "the new term's token %d is not newer than %d", next.token.ModifyIndex, first.token.ModifyIndex)
	_, ok = waitSeen(func(l election.Leader) bool { return l.Session == next.token.Session })
	iv.hold(ok, "the observer did not see %s lead", next.who)

	stopRuns()
	_, ok = waitSeen(func(l election.Leader) bool { return l.IsZero() })
	iv.hold(ok, "the observer did not see the key free after every Run ended")
	stopObserver()
	for i, err := range runErrs {
		iv.hold(errors.Is(err, context.Canceled), "candidate-%d's Run returned %v, not context.Canceled", i+1, err)
	}
	iv.hold(maxLead.Load() == 1, "%d leaders at once", maxLead.Load())
	_, err = obs.Leader(ctx)
	iv.hold(errors.Is(err, election.ErrNoLeader), "after every Run returned, Leader says %v, not election.ErrNoLeader", err)

	mu.Lock()
	var order, sightings []string
	for _, t := range terms {
		order = append(order, t.who)
	}
	for _, o := range seen {
		name := "no leader"
		if !o.leader.IsZero() {
			name = string(o.leader.Value)
		}
		sightings = append(sightings, fmt.Sprintf("%s @%.1f", name, float64(o.at.Sub(sceneStart))/float64(time.Millisecond)))
	}
	mu.Unlock()
	fmt.Fprintf(d.out, "   observer saw (@ ms since start): %s\n", strings.Join(sightings, " -> "))
	fmt.Fprintf(d.out, "   %s's session destroyed: its function saw leading end %s (deposed; it stops)\n", first.who, afterDestroy(deposedAt.Sub(t1)))
	fmt.Fprintf(d.out, "   failover to %s in %s (lock delay %s); leaders in order: %s\n", next.who, ms(failover), ms(demoLockDelay), strings.Join(order, ", "))
	fmt.Fprintf(d.out, "   at most %d leader at once; all 3 Runs returned on cancel, the key is free\n", maxLead.Load())
	return iv.err(nil)
}

// sceneSemaphore: 6 workers take a slot of a semaphore of limit 2, twice
// each; never more than 2 at once, and 2 at once at some point.
func (d *demoRun) sceneSemaphore(ctx context.Context) error {
	const (
		workers = 6
		rounds  = 2
		limit   = 2
		hold    = 20 * time.Millisecond
	)
	var (
		iv            invariants
		now, maxNow   atomic.Int32
		acquisitions  atomic.Int32
		mu            sync.Mutex
		waits         []time.Duration
		prefix        = d.prefix + "/gpu-slots"
		errs          = make([]error, workers)
		wg            sync.WaitGroup
		start         = time.Now()
		semaphoreOpts = func(i int) []semaphore.Option {
			return []semaphore.Option{
				semaphore.WithValue(fmt.Appendf(nil, "worker-%d", i)),
				semaphore.WithLogger(d.log),
				semaphore.WithSessionOptions(
					session.WithTTL(10*time.Second),
					session.WithName(d.sessionName("gpu-slots/worker-%d", i)),
					session.WithLogger(d.log)),
			}
		}
	)
	for i := range workers {
		wg.Go(func() {
			for range rounds {
				asked := time.Now()
				err := semaphore.Do(ctx, d.client, prefix, limit, func(held context.Context) error {
					mu.Lock()
					waits = append(waits, time.Since(asked))
					mu.Unlock()
					n := now.Add(1)
					defer now.Add(-1)
					storeMax(&maxNow, n)
					iv.hold(n <= limit, "%d holders at once, over the limit of %d", n, limit)
					acquisitions.Add(1)
					if err := sleepCtx(held, hold); err != nil {
						return fmt.Errorf("slot lost: %w", context.Cause(held))
					}
					return nil
				}, semaphoreOpts(i+1)...)
				if err != nil {
					errs[i] = fmt.Errorf("worker %d: %w", i+1, err)
					return
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return iv.err(err)
	}
	iv.hold(acquisitions.Load() == workers*rounds, "%d acquisitions, not %d", acquisitions.Load(), workers*rounds)
	iv.hold(maxNow.Load() <= limit, "%d holders at once", maxNow.Load())
	iv.hold(maxNow.Load() == limit, "never %d holders at once (at most %d): the slots went unused", limit, maxNow.Load())
	sem, err := semaphore.New(d.client, prefix, limit)
	if err != nil {
		return iv.err(err)
	}
	holders, err := sem.Holders(ctx)
	if err != nil {
		return iv.err(fmt.Errorf("reading the holders: %w", err))
	}
	iv.hold(len(holders) == 0, "%d holders left after every release", len(holders))
	fmt.Fprintf(d.out, "   %d acquisitions (%d workers x %d, holding %s) in %s\n", acquisitions.Load(), workers, rounds, ms(hold), ms(wall))
	fmt.Fprintf(d.out, "   at most %d holders at once (limit %d); median wait for a slot %s; none left after\n", maxNow.Load(), limit, ms(median(waits)))
	return iv.err(nil)
}

// sceneHeartbeat: a session tied to a TTL check of the app's health; when
// the probe turns critical, Consul invalidates the session and the lock it
// holds is lost.
func (d *demoRun) sceneHeartbeat(ctx context.Context) error {
	var iv invariants
	var healthy atomic.Bool
	healthy.Store(true)
	const (
		healthyNote   = "demo app healthy"
		unhealthyNote = "demo app unhealthy (flipped by the demo)"
	)
	probe := func(context.Context) (ttlcheck.Status, string) {
		if healthy.Load() {
			return ttlcheck.Passing, healthyNote
		}
		return ttlcheck.Critical, unhealthyNote
	}
	hb, err := ttlcheck.New(d.client,
		ttlcheck.Check{ID: d.checkID, Name: "consulkit demo app alive", TTL: demoCheckTTL},
		ttlcheck.WithProbe(probe), ttlcheck.WithLogger(d.log))
	if err != nil {
		return err
	}
	hctx, hcancel := context.WithCancel(ctx)
	hbErr := make(chan error, 1)
	runEnded := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(runEnded)
		hbErr <- hb.Run(hctx)
	})
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		hcancel()
		wg.Wait()
		return <-hbErr
	}
	defer func() { _ = stop() }()

	// Consul refuses a session whose check is critical or not yet in the
	// catalog: wait until the agent and the catalog both say passing. The
	// agent's view must also show the probe's note: the check is
	// registered with the probe's status but no output, which the beat
	// right after sets.
	agentCheck := func() (*api.HealthCheck, error) {
		checks, _, err := d.client.Agent().Checks(ctx, nil)
		if err != nil {
			return nil, err
		}
		return checks[d.checkID], nil
	}
	waitStatus := func(status, note string, catalog bool) (*api.HealthCheck, error) {
		for {
			hc, err := agentCheck()
			if err != nil {
				return nil, err
			}
			if hc != nil && hc.Status == status && hc.Output == note {
				if !catalog {
					return hc, nil
				}
				checks, _, err := d.client.Health().Node(ctx, d.node, nil)
				if err != nil {
					return nil, err
				}
				for _, c := range checks {
					if c.CheckID == d.checkID && c.Status == status {
						return hc, nil
					}
				}
			}
			select {
			case <-runEnded:
				return nil, fmt.Errorf("the heartbeat ended: %w", <-hbErr)
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for check %s to be %s: %w", d.checkID, status, ctx.Err())
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	passing, err := waitStatus(api.HealthPassing, healthyNote, true)
	if err != nil {
		return iv.err(err)
	}
	s, err := d.newSession(ctx, "heartbeat/worker", 0, session.WithNodeChecks("serfHealth", d.checkID))
	if err != nil {
		return iv.err(err)
	}
	defer d.closeSession(ctx, s)
	l, err := lock.New(d.client, d.prefix+"/jobs/healthy-only", lock.WithSession(s), lock.WithLogger(d.log))
	if err != nil {
		return iv.err(err)
	}
	held, err := l.Lock(ctx)
	if err != nil {
		return iv.err(fmt.Errorf("lock: %w", err))
	}
	unlocked := false
	defer func() {
		if !unlocked {
			_ = unlock(ctx, l)
		}
	}()

	healthy.Store(false)
	t0 := time.Now()
	var lostAt time.Time
	select {
	case <-held.Done():
		lostAt = time.Now()
	case <-ctx.Done():
		iv.hold(false, "the lock was still held %s after the probe turned critical", ms(time.Since(t0)))
		return iv.err(nil)
	}
	lost := lostAt.Sub(t0)
	cause := context.Cause(held)
	iv.hold(errors.Is(cause, lock.ErrLost), "the held context's cause %q does not wrap lock.ErrLost", cause)
	// One beat interval (TTL/3) for the probe's result to be sent, plus
	// Consul's invalidation and the watch: well within the TTL.
	iv.hold(lost < demoCheckTTL, "the lock was lost %s after the probe turned critical, not within the check's TTL %s", ms(lost), ms(demoCheckTTL))
	critical, err := waitStatus(api.HealthCritical, unhealthyNote, false)
	if err != nil {
		return iv.err(err)
	}
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
	}
	iv.hold(errors.Is(s.Err(), session.ErrInvalidated), "the session reports %v, not session.ErrInvalidated", s.Err())
	uerr := unlock(ctx, l)
	unlocked = true
	iv.hold(errors.Is(uerr, lock.ErrLost), "Unlock after the loss returned %v, not an error wrapping lock.ErrLost", uerr)

	herr := stop()
	_, joined := herr.(interface{ Unwrap() []error }) // a failed deregistration is joined to ctx.Err()
	iv.hold(errors.Is(herr, context.Canceled) && !joined, "the heartbeat's Run returned %v, not context.Canceled", herr)
	hc, err := agentCheck()
	if err != nil {
		return iv.err(fmt.Errorf("reading the checks: %w", err))
	}
	iv.hold(hc == nil, "check %s still registered after the heartbeat stopped", d.checkID)

	fmt.Fprintf(d.out, "   check %s (TTL %s) is %s: %q\n", d.checkID, ms(demoCheckTTL), passing.Status, passing.Output)
	fmt.Fprintf(d.out, "   a session tied to serfHealth and the check holds jobs/healthy-only; the probe turns critical:\n")
	fmt.Fprintf(d.out, "   lock lost %s later (wraps lock.ErrLost: %t); session: %s\n", ms(lost), errors.Is(cause, lock.ErrLost), sessionEnd(s))
	fmt.Fprintf(d.out, "   check now %s: %q; heartbeat stopped, check deregistered\n", critical.Status, critical.Output)
	return iv.err(nil)
}

// storeMax raises m to n if n is larger.
func storeMax(m *atomic.Int32, n int32) {
	for {
		cur := m.Load()
		if n <= cur || m.CompareAndSwap(cur, n) {
			return
		}
	}
}

// sleepCtx waits d, or until ctx ends (its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// median returns the median of ds (0 for none).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// sessionEnd names why s ended, by the sentinel its Err matches.
func sessionEnd(s *session.Session) string {
	err := s.Err()
	for _, e := range []struct {
		name string
		err  error
	}{
		{"session.ErrInvalidated", session.ErrInvalidated},
		{"session.ErrExpired", session.ErrExpired},
		{"session.ErrClosed", session.ErrClosed},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	if err == nil {
		return "still alive"
	}
	return err.Error()
}

// sessionOf returns the session holding p, if any.
func sessionOf(p *api.KVPair) string {
	if p == nil {
		return ""
	}
	return p.Session
}

// randomHex returns n random bytes in hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
