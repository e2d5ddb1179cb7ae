package ttlcheck_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/ttlcheck"
)

// Pass, Warn and Fail return ErrNotRunning at once once Run is shutting
// down, even while Run waits for a probe that ignores its context.
func TestSetWhileRunShutsDown(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var calls sync.Map
	hanging := make(chan struct{})
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(200*time.Millisecond),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) {
			if _, again := calls.LoadOrStore("first", true); again {
				close(hanging)
				<-release // ignores its context
			}
			return ttlcheck.Passing, ""
		}))
	require.NoError(t, err)
	stop := startRun(t, hb)
	select {
	case <-hanging:
	case <-time.After(5 * time.Second):
		t.Fatal("the second probe did not start")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	require.Eventually(t, func() bool { return len(f.requests("/v1/agent/check/deregister/")) > 0 },
		5*time.Second, 10*time.Millisecond, "Run did not deregister")

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	assert.ErrorIs(t, hb.Fail(ctx, "draining"), ttlcheck.ErrNotRunning)
	select {
	case <-stopped:
		t.Fatal("Run returned while its probe was running")
	default:
	}
	releaseOnce.Do(func() { close(release) })
	require.ErrorIs(t, <-stopped, context.Canceled)
}

// refusingTransport records requests and refuses every connection.
type refusingTransport struct {
	mu    sync.Mutex
	paths []string
}

func (rt *refusingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.paths = append(rt.paths, r.URL.Path)
	rt.mu.Unlock()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// A Run that never reached the agent deregisters nothing: the ID may be
// another instance's check, or one kept with WithKeepCheck.
func TestNoDeregisterWhenNothingWasSent(t *testing.T) {
	rt := &refusingTransport{}
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:1"
	cfg.Transport = rt
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	hb, err := ttlcheck.New(c, unitCheck(t), ttlcheck.WithInterval(200*time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, hb.Run(ctx), context.DeadlineExceeded)

	paths := rt.take()
	require.NotEmpty(t, paths, "Run tried to register")
	for _, p := range paths {
		assert.False(t, strings.Contains(p, "deregister"), "deregistered although nothing was sent: %v", paths)
	}

	// Nor does a Run whose ctx has already ended send anything.
	ended, end := context.WithCancel(t.Context())
	end()
	assert.ErrorIs(t, hb.Run(ended), context.Canceled)
	assert.Empty(t, rt.take())
}

// take returns the paths recorded so far and forgets them.
func (rt *refusingTransport) take() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p := rt.paths
	rt.paths = nil
	return p
}

// A registration that got no answer and that the agent applies after
// Run's deregistration is deregistered too: no check is left that nobody
// beats.
func TestLateRegistrationIsDeregistered(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	deregistered := make(chan struct{})
	held := make(chan struct{})
	var once, heldOnce sync.Once
	f.mu.Lock()
	f.hang = func(r fakeReq) bool {
		if r.Path != "/v1/agent/check/register" {
			return false
		}
		heldOnce.Do(func() { close(held) })
		return true
	}
	f.late = func(fakeReq) <-chan struct{} { return deregistered }
	f.hook = func(r fakeReq) (int, string) {
		if strings.HasPrefix(r.Path, "/v1/agent/check/deregister/") {
			once.Do(func() { close(deregistered) })
		}
		return 0, ""
	}
	f.mu.Unlock()
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(200*time.Millisecond))
	require.NoError(t, err)
	stop := startRun(t, hb)
	<-held // Run's ctx ends while the registration is unanswered
	require.ErrorIs(t, stop(), context.Canceled)

	assert.Nil(t, f.check(chk.ID), "a late registration left a check behind")
	regs := f.requests("/v1/agent/check/register")
	require.Len(t, regs, 1, "the late registration was applied")
	deregs := f.requests("/v1/agent/check/deregister/")
	require.GreaterOrEqual(t, len(deregs), 2)
	assert.True(t, deregs[len(deregs)-1].At.After(regs[0].At))
}

// A deregistration that gets no answer (a dead pooled connection, an
// agent that stalled for a moment) is not the only attempt: it is given
// up on in time for another one, which removes the check. Run's
// deregistration used to wait for the first one all its 5 seconds, and
// left the check behind.
func TestDeregisterRetriesAHungRequest(t *testing.T) {
	for _, svc := range []bool{false, true} {
		name := "check"
		if svc {
			name = "service"
		}
		t.Run(name, func(t *testing.T) {
			f := newFakeAgent(t)
			chk := unitCheck(t)
			var hb *ttlcheck.Heartbeat
			var err error
			if svc {
				hb, err = ttlcheck.NewService(f.client(t), &api.AgentServiceRegistration{ID: "web-1", Name: "web"}, chk)
			} else {
				hb, err = ttlcheck.New(f.client(t), chk)
			}
			require.NoError(t, err)
			var deregs atomic.Int32
			f.mu.Lock()
			f.hang = func(r fakeReq) bool {
				return strings.Contains(r.Path, "/deregister/") && deregs.Add(1) == 1
			}
			f.mu.Unlock()
			stop := startRun(t, hb)
			f.waitCheck(t, chk.ID, 5*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
			err = stop()
			require.GreaterOrEqual(t, deregs.Load(), int32(1), "Run did not deregister")
			assert.Nil(t, f.check(chk.ID), "a deregistration that got no answer left the check behind (Run returned %v)", err)
			assert.ErrorIs(t, err, context.Canceled)
			assert.NotContains(t, err.Error(), "deregistering")
		})
	}
}
