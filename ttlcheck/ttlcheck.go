package ttlcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/internal/logq"
)

// Status is the state a heartbeat reports for its check.
type Status string

// The states of a TTL check.
const (
	Passing  Status = api.HealthPassing
	Warning  Status = api.HealthWarning
	Critical Status = api.HealthCritical
)

func (s Status) valid() bool { return s == Passing || s == Warning || s == Critical }

// Limits.
const (
	// MinTTL is the shortest TTL New accepts.
	MinTTL = time.Second
	// MinDeregisterCriticalServiceAfter is the shortest
	// Check.DeregisterCriticalServiceAfter New accepts (Consul's own
	// minimum; its reaper runs about every 30 seconds).
	MinDeregisterCriticalServiceAfter = time.Minute
	// MaxNoteSize bounds the note sent as the check's output, in bytes. A
	// longer note is cut at a character boundary and ends with
	// TruncatedMarker. Consul keeps 4 KiB of a check's output by default.
	MaxNoteSize = 4 << 10
	// TruncatedMarker ends a note that was cut to MaxNoteSize.
	TruncatedMarker = " ...[truncated]"
)

// Errors. Match them with errors.Is.
var (
	// ErrInvalid is matched by every *ConfigError (and so is
	// api.ErrInvalid).
	ErrInvalid = errors.New("ttlcheck: invalid configuration")
	// ErrRunning: Run was called while another Run of the same Heartbeat
	// had not returned.
	ErrRunning = errors.New("ttlcheck: already running")
	// ErrNotRunning: Pass, Warn or Fail was called while Run was not
	// running, or Run's loop stopped (its ctx ended) before the status was
	// sent. The status is
	// kept: the next Run registers the check with it, unless a probe result
	// replaces it first.
	ErrNotRunning = errors.New("ttlcheck: not running")
)

// ConfigError is bad input found by New or NewService, before any request
// is sent. It matches ErrInvalid and api.ErrInvalid.
type ConfigError struct {
	Field  string // the field or option at fault
	Reason string
}

func (e *ConfigError) Error() string { return "ttlcheck: invalid " + e.Field + ": " + e.Reason }

// Is makes a ConfigError match ErrInvalid and api.ErrInvalid.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalid || target == api.ErrInvalid }

// Check describes the TTL check a Heartbeat keeps alive.
type Check struct {
	// ID is the check's ID on the agent. Required.
	ID string
	// Name is the check's name. Required.
	Name string
	// TTL is how long the check stays in its last status without a beat
	// before the agent marks it critical. At least MinTTL.
	TTL time.Duration
	// ServiceID attaches the check to a service registered with the same
	// agent. Empty registers a node-level (standalone) check. With
	// NewService it may be empty (it is then the service's ID) or must be
	// the service's ID.
	ServiceID string
	// Notes is a human-readable description stored with the check (not
	// the beat's note, which becomes the check's output).
	Notes string
	// DeregisterCriticalServiceAfter makes Consul remove the service (and
	// all of its checks) once this check has been critical this long. Zero
	// disables it; otherwise at least MinDeregisterCriticalServiceAfter,
	// and only for a check attached to a service.
	DeregisterCriticalServiceAfter time.Duration
}

// Probe reports the application's health: its status and a note that
// becomes the check's output. It runs under a deadline (WithProbeTimeout)
// and must return when ctx ends; see WithProbe for what happens when it
// does not, when it panics or when it returns an unknown status.
type Probe func(ctx context.Context) (Status, string)

// ErrorProbe adapts a function that returns an error, such as
// (*sql.DB).PingContext, into a Probe: nil is Passing with an empty note,
// an error is Critical with the error's text as the note.
func ErrorProbe(f func(ctx context.Context) error) Probe {
	return func(ctx context.Context) (Status, string) {
		if err := f(ctx); err != nil {
			return Critical, err.Error()
		}
		return Passing, ""
	}
}

// Option configures New and NewService.
type Option func(*config)

type config struct {
	probe        Probe
	interval     time.Duration
	probeTimeout time.Duration
	logger       *slog.Logger
	keep         bool
	errs         []error
}

func (c *config) fail(field, reason string) {
	c.errs = append(c.errs, &ConfigError{Field: field, Reason: reason})
}

// WithProbe sets the function whose result each beat reports. Without a
// probe every beat re-sends the last status set by Pass, Warn or Fail
// (Passing with an empty note until one is called).
//
// Before each beat the probe runs in a goroutine that Run owns, under a
// deadline that ends when the beat is due (WithProbeTimeout after it
// starts). A probe that panics, returns an unknown status or misses its
// deadline is reported as Critical with the reason in the note, and the
// beats go on. A probe that ignores its context and hangs does not delay
// the beats: until it returns, each beat reports Critical and no new probe
// is started; Run waits for it before returning.
func WithProbe(p Probe) Option {
	return func(c *config) {
		if p == nil {
			c.fail("WithProbe", "nil probe")
		}
		c.probe = p
	}
}

// WithInterval sets the time between beats. It must be positive and
// shorter than the TTL; the default is TTL/3. A beat is sent at most one
// interval after the previous successful one (plus the time a request
// takes), so the TTL minus the interval is the margin left for retries.
func WithInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithInterval", fmt.Sprintf("%s is not positive", d))
		}
		c.interval = d
	}
}

// WithProbeTimeout sets how long a probe may run. It must be positive and
// shorter than the interval; the default is half the interval. The probe
// starts this long before its beat is due, so its result is at most this
// old when it is sent.
func WithProbeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithProbeTimeout", fmt.Sprintf("%s is not positive", d))
		}
		c.probeTimeout = d
	}
}

// WithLogger sends the heartbeat's events to l: status changes (Info when
// passing, Warn otherwise), registrations after the agent forgot the
// check, failed requests being retried, and probe panics (Error, with the
// stack). The default is to log nothing. Lines are written from a
// goroutine of their own, so that a handler that blocks does not stop
// the beats; Run waits for them last, once the check is deregistered.
// While 8 lines wait for a slow handler, a new one drops the oldest; the
// next line written carries their number (dropped_before).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger", "nil logger")
		}
		c.logger = l
	}
}

// WithKeepCheck leaves the check (and, for NewService, the service)
// registered when Run returns. Without beats the agent marks it critical
// once the TTL passes, which is what sessions tied to the check react to.
func WithKeepCheck() Option { return func(c *config) { c.keep = true } }

// Heartbeat keeps one TTL check alive. Create it with New or NewService,
// then call Run. Its methods are safe for concurrent use.
type Heartbeat struct {
	client       *api.Client
	check        Check
	service      *api.AgentServiceRegistration // our copy, nil unless NewService
	serviceID    string                        // the service to deregister (NewService)
	probe        Probe
	interval     time.Duration
	probeTimeout time.Duration
	log          *slog.Logger
	// logs writes what log is given from a goroutine of its own: a handler
	// that blocks must not stop the beats. Run waits for it last.
	logs *logq.Queue
	keep bool

	kick chan struct{} // wakes Run after Pass, Warn or Fail

	mu      sync.Mutex
	running bool
	done    chan struct{} // closed when the current Run returns
	cur     report        // the status the next update carries
	gen     uint64        // generation of cur
	sentGen uint64        // highest generation sent successfully
	setGen  uint64        // generation of the last Pass, Warn or Fail
	sent    chan struct{} // closed and replaced after every successful update
}

// report is a status and note, with a generation that grows with every
// change.
type report struct {
	status Status
	note   string
	gen    uint64
}

// New returns a Heartbeat for check. It validates the check and the
// options and sends nothing; check is copied. Run registers the check (on
// its own, or attached to check.ServiceID, which must already be
// registered with the agent).
func New(client *api.Client, check Check, opts ...Option) (*Heartbeat, error) {
	return newHeartbeat(client, check, nil, opts)
}

// NewService returns a Heartbeat that registers a service together with
// its TTL check: Run registers reg with check added to its checks, keeps
// the check alive, registers both again whenever the agent has forgotten
// them (an agent restart), and deregisters the service (with all of its
// checks) when it returns, unless WithKeepCheck is given.
//
// reg is deep-copied and never modified. Its other checks, if any, are
// registered with it; a single one without an ID keeps the ID Consul gives
// a service's only check, "service:<service ID>" (Consul would otherwise
// number it, as the service now has two). check.ServiceID may be empty (it
// becomes the service's ID, reg.ID or else reg.Name) or must equal it.
func NewService(client *api.Client, reg *api.AgentServiceRegistration, check Check, opts ...Option) (*Heartbeat, error) {
	if reg == nil {
		return nil, &ConfigError{Field: "service", Reason: "nil registration"}
	}
	return newHeartbeat(client, check, reg, opts)
}

func newHeartbeat(client *api.Client, check Check, reg *api.AgentServiceRegistration, opts []Option) (*Heartbeat, error) {
	if client == nil {
		return nil, &ConfigError{Field: "client", Reason: "nil"}
	}
	cfg := config{}
	for _, o := range opts {
		if o == nil {
			cfg.fail("option", "nil")
			continue
		}
		o(&cfg)
	}
	h := &Heartbeat{
		client: client,
		check:  check,
		probe:  cfg.probe,
		log:    cfg.logger,
		keep:   cfg.keep,
		kick:   make(chan struct{}, 1),
		cur:    report{status: Passing},
		sent:   make(chan struct{}),
	}
	if reg != nil {
		svc, err := copyService(reg)
		if err != nil {
			return nil, err
		}
		nameErr := checkName("service Name", svc.Name)
		if nameErr != nil {
			cfg.errs = append(cfg.errs, nameErr)
		}
		h.serviceID = svc.ID
		if h.serviceID == "" {
			h.serviceID = svc.Name
		}
		field := "service ID"
		if svc.ID == "" {
			field = "service Name" // it is the ID, and goes into request paths
		}
		if err := checkID(field, h.serviceID); err != nil {
			if svc.ID != "" || nameErr == nil {
				cfg.errs = append(cfg.errs, err) // else reported above
			}
		} else {
			switch h.check.ServiceID {
			case "":
				h.check.ServiceID = h.serviceID
			case h.serviceID:
			default:
				cfg.fail("Check.ServiceID", fmt.Sprintf("%q is not the service's ID %q", check.ServiceID, h.serviceID))
			}
		}
		if svc.Check != nil && svc.Check.CheckID == check.ID && check.ID != "" {
			cfg.fail("Check.ID", fmt.Sprintf("%q is already a check of the service", check.ID))
		}
		var own []*api.AgentServiceCheck
		for _, c := range append([]*api.AgentServiceCheck{svc.Check}, svc.Checks...) {
			if c != nil {
				own = append(own, c)
			}
		}
		if svc.Check != nil {
			if err := svc.Check.Validate(); err != nil {
				cfg.fail("service Check", err.Error())
			}
		}
		for i, c := range svc.Checks {
			if err := c.Validate(); err != nil {
				cfg.fail(fmt.Sprintf("service Checks[%d]", i), err.Error())
			}
			if c != nil && c.CheckID == check.ID && check.ID != "" {
				cfg.fail("Check.ID", fmt.Sprintf("%q is already a check of the service", check.ID))
			}
		}
		if len(own) == 1 && own[0].CheckID == "" && h.serviceID != "" {
			// Consul names a service's only check without an ID
			// "service:<id>", but numbers them ("service:<id>:1") when
			// there are several: adding the heartbeat's check must not
			// rename it (a session tied to it, say).
			own[0].CheckID = "service:" + h.serviceID
			if own[0].CheckID == check.ID {
				cfg.fail("Check.ID", fmt.Sprintf("%q is the ID of the service's own check", check.ID))
			}
		}
		for i, c := range own {
			// Consul numbers the others, the heartbeat's check included.
			if c.CheckID == "" && h.serviceID != "" && fmt.Sprintf("service:%s:%d", h.serviceID, i+1) == check.ID {
				cfg.fail("Check.ID", fmt.Sprintf("%q is the ID Consul gives one of the service's checks", check.ID))
			}
		}
		h.service = svc
	}
	h.interval = cfg.interval
	if h.interval == 0 {
		h.interval = check.TTL / 3
	}
	h.probeTimeout = cfg.probeTimeout
	if h.probeTimeout == 0 {
		h.probeTimeout = h.interval / 2
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.logs = logq.New(h.log)
	if err := h.validate(&cfg); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Heartbeat) validate(cfg *config) error {
	c := h.check
	if err := checkID("Check.ID", c.ID); err != nil {
		cfg.errs = append(cfg.errs, err)
	}
	if err := checkName("Check.Name", c.Name); err != nil {
		cfg.errs = append(cfg.errs, err)
	}
	if c.ServiceID != "" {
		if err := checkID("Check.ServiceID", c.ServiceID); err != nil {
			cfg.errs = append(cfg.errs, err)
		}
	}
	if c.TTL < MinTTL {
		cfg.fail("Check.TTL", fmt.Sprintf("%s is shorter than %s", c.TTL, MinTTL))
	}
	if c.DeregisterCriticalServiceAfter != 0 {
		if c.DeregisterCriticalServiceAfter < MinDeregisterCriticalServiceAfter {
			cfg.fail("Check.DeregisterCriticalServiceAfter", fmt.Sprintf("%s is shorter than %s", c.DeregisterCriticalServiceAfter, MinDeregisterCriticalServiceAfter))
		}
		if c.ServiceID == "" {
			cfg.fail("Check.DeregisterCriticalServiceAfter", "needs a check attached to a service")
		}
	}
	if c.TTL >= MinTTL && h.interval > 0 && h.interval >= c.TTL {
		cfg.fail("WithInterval", fmt.Sprintf("%s is not shorter than the TTL %s", h.interval, c.TTL))
	}
	if h.interval > 0 && h.probeTimeout == 0 && cfg.probeTimeout == 0 {
		cfg.fail("WithInterval", fmt.Sprintf("%s is too short (its default probe timeout, half of it, is zero)", h.interval))
	}
	if h.interval > 0 && h.probeTimeout > 0 && h.probeTimeout >= h.interval {
		cfg.fail("WithProbeTimeout", fmt.Sprintf("%s is not shorter than the interval %s", h.probeTimeout, h.interval))
	}
	return errors.Join(cfg.errs...)
}

// checkName rejects empty names (also all spaces, which the api refuses
// in paths: such a check could be registered, and never updated or
// removed) and names with control characters.
func checkName(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return &ConfigError{Field: field, Reason: "empty"}
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return &ConfigError{Field: field, Reason: "contains a control character"}
		}
	}
	if !utf8.ValidString(v) {
		return &ConfigError{Field: field, Reason: "is not valid UTF-8"}
	}
	return nil
}

// checkID is checkName for an ID that goes into request paths, with
// api.ValidateKey's rules for a path: an empty, "." or ".." segment would
// make the agent redirect the request elsewhere, after the check was
// registered (the ID travels in the body there).
func checkID(field, v string) error {
	if err := checkName(field, v); err != nil {
		return err
	}
	var ve *api.ValidationError
	if err := api.ValidateKey(v); errors.As(err, &ve) {
		return &ConfigError{Field: field, Reason: ve.Reason}
	}
	return nil
}

// copyService deep-copies a registration through its JSON form, which is
// all that is ever sent.
func copyService(reg *api.AgentServiceRegistration) (*api.AgentServiceRegistration, error) {
	b, err := json.Marshal(reg)
	if err != nil {
		return nil, &ConfigError{Field: "service", Reason: err.Error()}
	}
	var out api.AgentServiceRegistration
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, &ConfigError{Field: "service", Reason: err.Error()}
	}
	return &out, nil
}

// Check returns the check the heartbeat keeps alive (for NewService, with
// ServiceID set to the service's ID).
func (h *Heartbeat) Check() Check { return h.check }

// Interval returns the time between beats.
func (h *Heartbeat) Interval() time.Duration { return h.interval }

// ProbeTimeout returns how long a probe may run.
func (h *Heartbeat) ProbeTimeout() time.Duration { return h.probeTimeout }

// Pass sets the status to Passing with note and sends it at once. See
// Fail for the semantics.
func (h *Heartbeat) Pass(ctx context.Context, note string) error { return h.set(ctx, Passing, note) }

// Warn sets the status to Warning with note and sends it at once. See
// Fail for the semantics.
func (h *Heartbeat) Warn(ctx context.Context, note string) error { return h.set(ctx, Warning, note) }

// Fail sets the status to Critical with note and sends it at once.
//
// The status sticks until the next explicit call or probe result,
// whichever comes later: without a probe every beat re-sends it; with a
// probe, the next result of a probe started after the call replaces it (a
// probe already running when Fail is called looked before it, and its
// result is dropped). Run's goroutine sends the update; Fail waits until a
// status at least as recent has been accepted by the agent (transient
// errors are retried by Run), and returns ctx.Err() if ctx ends first (the
// status is still sent). If Run is not running, or returns before sending it, Fail
// returns ErrNotRunning at once; the status is never lost: it is kept and
// the next Run registers the check with it (unless a probe result
// replaces it first). So a call that races with the start of Run in
// another goroutine may return ErrNotRunning, and may ignore it; calling
// Warn before Run sets the status the check is first registered with.
func (h *Heartbeat) Fail(ctx context.Context, note string) error { return h.set(ctx, Critical, note) }

func (h *Heartbeat) set(ctx context.Context, s Status, note string) error {
	h.mu.Lock()
	gen := h.setLocked(s, note)
	h.setGen = gen
	running, done := h.running, h.done
	h.mu.Unlock()
	if !running {
		return ErrNotRunning
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
	for {
		h.mu.Lock()
		ok, sent := h.sentGen >= gen, h.sent
		h.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-sent:
		case <-done:
			h.mu.Lock()
			ok := h.sentGen >= gen
			h.mu.Unlock()
			if ok {
				return nil
			}
			return ErrNotRunning
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setLocked records a new status and returns its generation.
func (h *Heartbeat) setLocked(s Status, note string) uint64 {
	h.gen++
	h.cur = report{status: s, note: truncateNote(note), gen: h.gen}
	return h.gen
}

// setProbeReport records a probe's result unless Pass, Warn or Fail set a
// status after the probe started (setGen then differs from setGenAtStart):
// that status is newer than what the probe observed.
func (h *Heartbeat) setProbeReport(s Status, note string, setGenAtStart uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.setGen != setGenAtStart {
		return false
	}
	h.setLocked(s, note)
	return true
}

func (h *Heartbeat) explicitGen() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.setGen
}

func (h *Heartbeat) current() report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

// markSent records that r was accepted by the agent and wakes the callers
// of Pass, Warn and Fail.
func (h *Heartbeat) markSent(r report) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.gen > h.sentGen {
		h.sentGen = r.gen
	}
	close(h.sent)
	h.sent = make(chan struct{})
}

// truncateNote bounds a note to MaxNoteSize bytes, cutting at a character
// boundary and appending TruncatedMarker.
func truncateNote(s string) string {
	// encoding/json sends each invalid byte as U+FFFD (3 bytes): count
	// what the agent will get.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxNoteSize {
		return s
	}
	cut := MaxNoteSize - len(TruncatedMarker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + TruncatedMarker
}
