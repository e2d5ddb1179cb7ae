package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// releaseTimeout bounds the release after the command: long enough to ride
// out a leader election, short enough that a wrapper never hangs on exit.
const releaseTimeout = 30 * time.Second

// usageError is bad input on the command line (exit status 2), found
// before anything is sent. quiet: the flag package or the usage text has
// already said so.
type usageError struct {
	msg   string
	quiet bool
}

func (e *usageError) Error() string { return e.msg }

// parseError turns a flag parsing error, which the flag package has
// printed with the usage, into a quiet usageError; -h stays flag.ErrHelp.
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &usageError{msg: err.Error(), quiet: true}
}

// commonFlags are the flags of every command that talks to Consul.
type commonFlags struct {
	addr    string
	verbose bool
}

func (f *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "http-addr", "", "Consul HTTP address (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500); the other CONSUL_HTTP_* variables apply as for the consul CLI")
	fs.BoolVar(&f.verbose, "v", false, "log what happens (to stderr)")
}

func (f *commonFlags) client() (*api.Client, error) {
	cfg, err := api.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	if f.addr != "" {
		setAddress(&cfg, f.addr)
	}
	return api.NewClient(cfg)
}

// setAddress sets cfg's address to one given with -http-addr, which
// overrides CONSUL_HTTP_ADDR but, as in the consul CLI, does not turn off
// the TLS that CONSUL_HTTP_SSL=true asked for (ConfigFromEnv's Scheme):
// an http:// prefix is then dropped, as ConfigFromEnv drops it from the
// variable.
func setAddress(cfg *api.Config, addr string) {
	if cfg.Scheme == "https" {
		addr = strings.TrimPrefix(addr, "http://")
	}
	cfg.Address = addr
}

// logger logs warnings (a lost hold, retried faults) always and the
// library's progress with -v.
func (f *commonFlags) logger(stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// holdFlags are the flags of lock, sem and elect: the session that backs
// the hold, the value written with it, and how the command is stopped.
type holdFlags struct {
	commonFlags
	ttl       time.Duration
	lockDelay time.Duration
	value     string
	grace     time.Duration
	checks    string
}

func (f *holdFlags) register(fs *flag.FlagSet) {
	f.commonFlags.register(fs)
	host, _ := os.Hostname()
	fs.DurationVar(&f.ttl, "ttl", session.DefaultTTL, "session TTL (10s to 24h): a holder that dies is released after at most twice this")
	fs.DurationVar(&f.lockDelay, "lock-delay", 15*time.Second, "after a holder's session is lost, nobody can take the key for this long (0 to 60s)")
	fs.StringVar(&f.value, "value", fmt.Sprintf("%s:%d", host, os.Getpid()), "value stored in the key while held (who holds it)")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "when the hold is lost, consulkit is interrupted or the command exits leaving processes behind: time between SIGTERM and SIGKILL to the command's process group")
	fs.StringVar(&f.checks, "checks", "", "comma-separated IDs of health checks on the local agent's node (a consulkit heartbeat's -id, say): the hold is lost when one turns critical (serfHealth is always included)")
}

func (f *holdFlags) sessionOptions(name string) []session.Option {
	opts := []session.Option{
		session.WithTTL(f.ttl),
		session.WithLockDelay(f.lockDelay),
		session.WithName(name),
	}
	if f.checks != "" {
		opts = append(opts, session.WithNodeChecks(append([]string{"serfHealth"}, strings.Split(f.checks, ",")...)...))
	}
	return opts
}

// parseHold parses a command line of the form [flags] <key> [--] <command> [args...].
func parseHold(fs *flag.FlagSet, args []string, what string) (key string, argv []string, err error) {
	if err := fs.Parse(args); err != nil {
		return "", nil, parseError(err)
	}
	rest := fs.Args()
	if len(rest) > 2 && rest[1] == "--" {
		// "lock <key> -- <command>": the command's own flags stay its own.
		rest = append(rest[:1:1], rest[2:]...)
	}
	if len(rest) < 2 {
		return "", nil, &usageError{msg: fmt.Sprintf("%s: want a %s and a command", fs.Name(), what)}
	}
	if rest[0] == "" {
		return "", nil, &usageError{msg: fmt.Sprintf("%s: the %s is empty", fs.Name(), what)}
	}
	if rest[1] == "" {
		return "", nil, &usageError{msg: fmt.Sprintf("%s: the command is empty", fs.Name())}
	}
	if c := fs.Lookup("checks"); c != nil && c.Value.String() != "" {
		for id := range strings.SplitSeq(c.Value.String(), ",") {
			if strings.TrimSpace(id) == "" || strings.TrimSpace(id) != id {
				return "", nil, &usageError{msg: fmt.Sprintf("%s: -checks %q: want check IDs separated by commas, without spaces", fs.Name(), c.Value.String())}
			}
		}
	}
	if f := fs.Lookup("grace"); f != nil {
		if d := f.Value.(flag.Getter).Get().(time.Duration); d <= 0 {
			return "", nil, &usageError{msg: fmt.Sprintf("%s: -grace must be positive, not %s", fs.Name(), d)}
		}
	}
	if err := checkCommand(rest[1:]); err != nil {
		return "", nil, err
	}
	return rest[0], rest[1:], nil
}

// holdSignals makes consulkit ignore Ctrl-Z while it holds something for a
// command: the command, in a process group of its own, would go on
// running while a stopped consulkit stops renewing its session, which
// then lapses and lets another holder in.
// The signal is caught and dropped rather than ignored, so that the
// command, which inherits ignored signals, still gets the default.
func holdSignals() { signal.Notify(make(chan os.Signal, 1), syscall.SIGTSTP) }

// checkChecks makes sure that the health checks of -checks exist on the
// local agent and are not critical, as Consul requires of a session's
// checks: a standby that creates sessions again would otherwise retry
// forever.
func (f *holdFlags) checkChecks(ctx context.Context, client *api.Client) error {
	if f.checks == "" {
		return nil
	}
	checks, _, err := client.Agent().Checks(ctx, nil)
	if err != nil {
		return fmt.Errorf("reading the agent's checks for -checks: %w", err)
	}
	for id := range strings.SplitSeq(f.checks, ",") {
		switch hc := checks[id]; {
		case id == "serfHealth":
			// Always included, and not among the agent's checks.
		case hc == nil:
			return fmt.Errorf("-checks: check %q is not registered with the local agent", id)
		case hc.Status == api.HealthCritical:
			return fmt.Errorf("-checks: check %q is critical: a hold cannot begin until it passes", id)
		}
	}
	return nil
}

// validate checks -ttl and -lock-delay as session.New would, so that a
// bad value is refused as bad usage before anything is sent, also when
// -checks reads the agent's checks first.
func (f *holdFlags) validate() error {
	if f.ttl < api.SessionTTLMin || f.ttl > api.SessionTTLMax {
		return &api.ValidationError{Field: "-ttl", Reason: fmt.Sprintf("%s is outside %s..%s", f.ttl, api.SessionTTLMin, api.SessionTTLMax)}
	}
	if f.lockDelay < 0 || f.lockDelay > api.SessionLockDelayMax {
		return &api.ValidationError{Field: "-lock-delay", Reason: fmt.Sprintf("%s is outside 0s..%s", f.lockDelay, api.SessionLockDelayMax)}
	}
	return nil
}

// prepare makes what lock, sem and elect need once the command line is
// parsed and the lock, semaphore or election made (which validates the
// key and the other flags without sending anything): the client, Ctrl-Z
// caught, the checks of -checks verified.
func (f *holdFlags) prepare(ctx context.Context, client *api.Client) error {
	if err := f.validate(); err != nil {
		return err
	}
	holdSignals()
	return f.checkChecks(ctx, client)
}

// holder is what lock and sem hold the command under.
type holder interface {
	acquire(ctx context.Context, try bool) (context.Context, error)
	release(ctx context.Context) error
	env() []string // what the command is told of the hold
}

type lockHolder struct{ l *lock.Lock }

func (h lockHolder) acquire(ctx context.Context, try bool) (context.Context, error) {
	if try {
		return h.l.TryLock(ctx)
	}
	return h.l.Lock(ctx)
}

func (h lockHolder) release(ctx context.Context) error { return h.l.Unlock(ctx) }
func (h lockHolder) env() []string                     { return tokenEnv(h.l.Token()) }

// tokenEnv tells the command its fencing token: pass
// CONSULKIT_FENCING_TOKEN to what it writes to, and have that refuse a
// token smaller than the largest it has seen.
func tokenEnv(tok lock.Token) []string {
	return []string{
		"CONSULKIT_KEY=" + tok.Key,
		"CONSULKIT_SESSION=" + tok.Session,
		"CONSULKIT_LOCK_INDEX=" + strconv.FormatUint(tok.LockIndex, 10),
		"CONSULKIT_FENCING_TOKEN=" + strconv.FormatUint(tok.ModifyIndex, 10),
	}
}

type semHolder struct{ s *semaphore.Semaphore }

func (h semHolder) acquire(ctx context.Context, try bool) (context.Context, error) {
	if try {
		return h.s.TryAcquire(ctx)
	}
	return h.s.Acquire(ctx)
}

func (h semHolder) release(ctx context.Context) error { return h.s.Release(ctx) }
func (h semHolder) env() []string {
	return []string{
		"CONSULKIT_PREFIX=" + h.s.Prefix(),
		"CONSULKIT_LIMIT=" + strconv.Itoa(h.s.Limit()),
	}
}

func lockCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var hf holdFlags
	hf.register(fs)
	try := fs.Bool("try", false, "do not wait: fail at once when the lock is held")
	key, argv, err := parseHold(fs, args, "key")
	if err != nil {
		return err
	}
	client, err := hf.client()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	log := hf.logger(stderr)
	l, err := lock.New(client, key,
		lock.WithSessionOptions(hf.sessionOptions("consulkit lock "+key)...),
		lock.WithValue([]byte(hf.value)),
		lock.WithLogger(log))
	if err != nil {
		return err
	}
	if err := hf.prepare(ctx, client); err != nil {
		return err
	}
	return runHeld(ctx, lockHolder{l}, "lock "+key, *try, &hf, argv, log, stdout, stderr)
}

func semCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var hf holdFlags
	hf.register(fs)
	try := fs.Bool("try", false, "do not wait: fail at once when every slot is taken")
	limit := fs.Int("limit", 0, "number of slots: at most this many commands run at once under the prefix (required)")
	prefix, argv, err := parseHold(fs, args, "prefix")
	if err != nil {
		return err
	}
	if *limit < 1 {
		return &usageError{msg: fmt.Sprintf("sem: -limit must be at least 1, not %d", *limit)}
	}
	client, err := hf.client()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	log := hf.logger(stderr)
	s, err := semaphore.New(client, prefix, *limit,
		semaphore.WithSessionOptions(append(hf.sessionOptions("consulkit sem "+prefix),
			session.WithBehavior(session.Delete))...),
		semaphore.WithValue([]byte(hf.value)),
		semaphore.WithLogger(log))
	if err != nil {
		return err
	}
	if err := hf.prepare(ctx, client); err != nil {
		return err
	}
	return runHeld(ctx, semHolder{s}, "slot of "+prefix, *try, &hf, argv, log, stdout, stderr)
}

// runHeld acquires h, runs the command while it is held, and releases it.
// The command's process group is stopped (SIGTERM, then SIGKILL after
// -grace) when the hold is lost or ctx ends, and what the command left
// running in it when it exits: the hold is released only once nothing
// of the command runs. The result is the command's exit status,
// unless the hold was lost while it ran, which is an error whatever the
// command returned: what it did may have overlapped with another holder.
func runHeld(ctx context.Context, h holder, what string, try bool, hf *holdFlags, argv []string, log *slog.Logger, stdout, stderr io.Writer) error {
	log.Debug("acquiring", "what", what)
	held, err := h.acquire(ctx, try)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while waiting for the %s", what)
		}
		return err
	}
	log.Debug("acquired; starting the command", "what", what, "env", h.env())
	switch {
	case held.Err() != nil:
		// Lost already (while the line above waited on a stalled stderr,
		// say): the command is not started without the hold.
		lost := context.Cause(held)
		_ = release(ctx, h)
		return fmt.Errorf("the %s was lost before the command started: %w", what, lost)
	case ctx.Err() != nil:
		return errors.Join(errors.New("interrupted before the command started"), release(ctx, h))
	}
	c, err := startChild(argv, h.env(), stdout, stderr)
	if err != nil {
		return errors.Join(err, release(ctx, h))
	}
	var lost error
	select {
	case <-c.done:
	case <-held.Done():
		lost = context.Cause(held)
	case <-ctx.Done():
	}
	// Stopped and released before anything is logged: a write to a stderr
	// whose reader has stalled blocks, and must not keep the command
	// running without the hold, nor the hold held.
	c.stop(hf.grace)
	rerr := release(ctx, h)
	switch {
	case lost != nil:
		log.Warn("lost while the command ran; stopped it", "what", what, "cause", lost)
	case ctx.Err() != nil:
		log.Debug("interrupted; stopped the command", "what", what)
	}
	if lost != nil {
		return fmt.Errorf("the %s was lost while the command ran: %w", what, lost)
	}
	if rerr != nil {
		// Lost between the command's exit and the release, or not released:
		// either way the caller must hear of it.
		return fmt.Errorf("releasing the %s after the command: %w", what, rerr)
	}
	return c.result()
}

func release(ctx context.Context, h holder) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	return h.release(rctx)
}

func electCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("elect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var hf holdFlags
	hf.register(fs)
	key, argv, err := parseHold(fs, args, "key")
	if err != nil {
		return err
	}
	client, err := hf.client()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	log := hf.logger(stderr)
	e, err := election.New(client, key,
		election.WithSessionOptions(hf.sessionOptions("consulkit elect "+key)...),
		election.WithLogger(log))
	if err != nil {
		return err
	}
	if err := hf.prepare(ctx, client); err != nil {
		return err
	}

	// current is the command of the term that was running when Run
	// returned, if any; read once Run has returned (Run waits for fn).
	var current *child
	// lostAfter: the command ended by itself while leading, and the
	// leadership was lost before what it left running was stopped. Its
	// job is done: Run is ended (runCtx) rather than left to campaign and
	// run it again, and the loss is reported.
	var lostAfter error
	runCtx, endRun := context.WithCancelCause(ctx)
	defer endRun(nil)
	fn := func(leading context.Context) error {
		tok, _ := lock.TokenFrom(leading)
		log.Debug("elected; starting the command", "key", key, "token", tok.ModifyIndex)
		if leading.Err() != nil {
			// Deposed or interrupted already (see runHeld): campaign
			// again, or return, without starting the command.
			return nil
		}
		c, err := startChild(argv, tokenEnv(tok), stdout, stderr)
		if err != nil {
			return err
		}
		current = c
		select {
		case <-c.done:
		case <-leading.Done():
		}
		// The command's end is reported once its output is copied (up to
		// a second later when it left processes holding its pipes): one
		// that has exited by now ended by itself, not deposed.
		if c.exited() {
			// Run resigns and returns this: the command's status, once
			// nothing it left running runs any more.
			c.stop(hf.grace)
			if leading.Err() != nil && ctx.Err() == nil {
				lostAfter = context.Cause(leading)
				endRun(lostAfter)
			}
			return c.result()
		}
		// Stopped before anything is logged, as in runHeld.
		c.stop(hf.grace)
		if ctx.Err() == nil {
			log.Warn("deposed; stopped the command, campaigning again", "key", key, "cause", context.Cause(leading))
			current = nil
		}
		return nil
	}
	err = e.Run(runCtx, []byte(hf.value), fn)
	if lostAfter != nil {
		return fmt.Errorf("the command ended while leading, but leadership was lost before what it left running was stopped: %w", lostAfter)
	}
	if ee := (*exitError)(nil); errors.As(err, &ee) && err != error(ee) { //nolint:errorlint // a joined error carries the resign's failure
		// The command's status joined to a resign that failed: a failure
		// of consulkit (1), as a release that fails after lock's command
		// is, not the command's status. Not wrapped, so that exitStatus
		// does not take the command's status from it.
		return fmt.Errorf("the command exited with status %d, but resigning after it failed, and the key may stay held until the session ends: %v", ee.code, err) //nolint:errorlint // see above
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// Interrupted: a standby just stops; a leader has stopped its
		// command and resigned, and reports how the command ended, unless
		// the resign failed (Run joins that to ctx's error).
		if err != ctx.Err() { //nolint:errorlint // a joined error carries the resign's failure
			return fmt.Errorf("interrupted; resigning failed, the key may stay held until the session ends: %w", err)
		}
		if current != nil {
			return current.result()
		}
		return nil
	}
	return err
}
