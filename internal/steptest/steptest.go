// Package steptest drives an operation through a fault at each of its
// requests in turn: the caller's context cancelled as the Nth request is
// sent or once its answer has come, or the Nth request failed (a 500, a
// reset connection, an answer lost after Consul applied it). It is used by
// tests only.
package steptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// Mode is the fault injected at the Nth request.
type Mode int

// Modes.
const (
	CancelBefore Mode = iota // cancel the caller's ctx, then send
	CancelAfter              // send, read the answer, then cancel the caller's ctx
	Fail500                  // answer 500 without sending
	FailConn                 // fail with a reset connection without sending
	LoseAnswer               // send, then fail with a reset connection (applied, answer lost)
)

// Modes lists every mode.
var Modes = []Mode{CancelBefore, CancelAfter, Fail500, FailConn, LoseAnswer}

func (m Mode) String() string {
	return [...]string{"CancelBefore", "CancelAfter", "Fail500", "FailConn", "LoseAnswer"}[m]
}

// Cancels reports whether the mode cancels the caller's context.
func (m Mode) Cancels() bool { return m == CancelBefore || m == CancelAfter }

// Transport injects the fault at the Nth request it sees (counting from 1).
type Transport struct {
	base *http.Transport

	mu     sync.Mutex
	n      int
	target int
	mode   Mode
	cancel context.CancelFunc
	hit    string
	log    []string
	filter func(*http.Request) bool
}

// Arm makes the target-th request (from now on) get mode's fault; cancel is
// the caller's context's cancel. filter, when not nil, restricts the count
// to the requests it accepts.
func (t *Transport) Arm(target int, mode Mode, cancel context.CancelFunc, filter func(*http.Request) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n, t.target, t.mode, t.cancel, t.hit, t.log, t.filter = 0, target, mode, cancel, "", nil, filter
}

// Disarm stops injecting and returns the request hit ("" when none) and
// the log of counted requests.
func (t *Transport) Disarm() (hit string, log []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.target = 0
	return t.hit, t.log
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	if t.target == 0 || (t.filter != nil && !t.filter(r)) {
		t.mu.Unlock()
		return t.base.RoundTrip(r)
	}
	t.n++
	desc := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
	t.log = append(t.log, desc)
	if t.n != t.target {
		t.mu.Unlock()
		return t.base.RoundTrip(r)
	}
	t.hit = desc
	mode, cancel := t.mode, t.cancel
	t.mu.Unlock()
	switch mode {
	case CancelBefore:
		cancel()
		return t.base.RoundTrip(r)
	case CancelAfter:
		resp, err := t.base.RoundTrip(r)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if rerr != nil {
				cancel()
				return nil, rerr
			}
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
		cancel()
		return resp, err
	case Fail500:
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return &http.Response{
			Status: "500 Internal Server Error", StatusCode: 500, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader("injected by steptest")),
			ContentLength: -1, Request: r,
		}, nil
	case FailConn:
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, fmt.Errorf("steptest: %w", syscall.ECONNRESET)
	case LoseAnswer:
		resp, err := t.base.RoundTrip(r)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return nil, fmt.Errorf("steptest: answer lost: %w", syscall.ECONNRESET)
	}
	panic("unreachable")
}

// Client returns a client for a whose requests go through a new Transport.
func Client(tb integration.TB, a *integration.Agent) (*api.Client, *Transport) {
	tb.Helper()
	st := &Transport{base: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := a.Config()
	cfg.Transport = st
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("steptest: client: %v", err)
	}
	tb.Cleanup(st.base.CloseIdleConnections)
	return c, st
}

// Result is what one run of an operation under a fault saw.
type Result struct {
	Hit string   // the request that got the fault ("" when the operation sent fewer)
	Log []string // the requests counted
	Err error
}

// Settle waits up to d for cond.
func Settle(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Each runs fn for every mode and n = 1, 2, ... until fn reports that the
// operation sent fewer than n requests (hit false), or n reaches max.
func Each(t *testing.T, max int, fn func(t *testing.T, mode Mode, n int) (hit bool)) {
	t.Helper()
	for _, mode := range Modes {
		for n := 1; n <= max; n++ {
			hit := true
			t.Run(fmt.Sprintf("%s/%d", mode, n), func(t *testing.T) { hit = fn(t, mode, n) })
			if !hit {
				break
			}
		}
	}
}

// LeakCheck returns a func that fails t if goroutines started since are
// still running (after goleak's retries).
func LeakCheck(t *testing.T) func() {
	opts := append(integration.LeakOptions(), goleak.IgnoreCurrent())
	return func() {
		t.Helper()
		goleak.VerifyNone(t, opts...)
	}
}

// NoSessionNamed fails t if a session named name is still there after a
// few seconds.
func NoSessionNamed(t *testing.T, c *api.Client, name string) {
	t.Helper()
	var ids []string
	if !Settle(3*time.Second, func() bool { ids = integration.SessionsNamed(t, c, name); return len(ids) == 0 }) {
		t.Errorf("sessions named %q left behind: %v", name, ids)
		for _, id := range ids {
			_, _ = c.Session().Destroy(context.Background(), id, nil)
		}
	}
}

// KeyNotHeld fails t if key is held by a session.
func KeyNotHeld(t *testing.T, c *api.Client, key string) {
	t.Helper()
	pair, _, err := c.KV().Get(context.Background(), key, nil)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if pair != nil && pair.Session != "" {
		t.Errorf("key %q left held by session %s", key, pair.Session)
	}
}

// Holder returns the session holding key ("" when none).
func Holder(t *testing.T, c *api.Client, key string) string {
	t.Helper()
	pair, _, err := c.KV().Get(context.Background(), key, nil)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if pair == nil {
		return ""
	}
	return pair.Session
}

// LostCreate reports whether the fault was a session create applied
// without an answer: such a session lapses at its TTL (documented).
func LostCreate(mode Mode, hit string) bool {
	return mode == LoseAnswer && strings.Contains(hit, "/v1/session/create")
}

// FailFirst returns a hook (integration.HookTransport.Set) that fails the
// first request whose path starts with prefix, with a reset connection,
// without sending it.
func FailFirst(prefix string) func(*http.Request) error {
	var once sync.Once
	return func(r *http.Request) error {
		var err error
		if strings.HasPrefix(r.URL.Path, prefix) {
			once.Do(func() { err = fmt.Errorf("steptest: %w", syscall.ECONNRESET) })
		}
		return err
	}
}

// Slow skips t unless CONSULKIT_STEPS_SLOW is set: the step tests that
// take a minute or more.
func Slow(t *testing.T) {
	t.Helper()
	if os.Getenv("CONSULKIT_STEPS_SLOW") == "" {
		t.Skip("slow step test: set CONSULKIT_STEPS_SLOW=1 to run it")
	}
}
