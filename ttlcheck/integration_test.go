package ttlcheck_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/ttlcheck"
)

// Tests against a real Consul (the integration harness). Statuses are read
// through the health endpoints (the catalog); outputs through the agent's
// own view, because the agent syncs output-only changes to the catalog at
// most every check_update_interval (5m).

// uniq returns a name unique to the test.
func uniq(t *testing.T, suffix string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, strings.TrimPrefix(t.Name(), "TestIntegration"))
	return "ttlcheck-" + name + "-" + suffix
}

// healthCheck returns a check as the health endpoints show it, or nil.
func healthCheck(ctx context.Context, t *testing.T, c *api.Client, id string) *api.HealthCheck {
	t.Helper()
	checks, _, err := c.Health().State(ctx, api.HealthAny, nil)
	require.NoError(t, err)
	for _, ch := range checks {
		if ch.CheckID == id {
			return ch
		}
	}
	return nil
}

// agentCheck returns a check as the agent shows it, or nil.
func agentCheck(ctx context.Context, t *testing.T, c *api.Client, id string) *api.HealthCheck {
	t.Helper()
	checks, _, err := c.Agent().Checks(ctx, nil)
	if err != nil {
		return nil // the agent may be restarting
	}
	return checks[id]
}

// waitHealth waits until the health endpoints show the check with status.
func waitHealth(t *testing.T, c *api.Client, id, status string, within time.Duration) *api.HealthCheck {
	t.Helper()
	var last *api.HealthCheck
	ok := assert.Eventually(t, func() bool {
		checks, _, err := c.Health().State(t.Context(), api.HealthAny, nil)
		if err != nil {
			return false
		}
		last = nil
		for _, ch := range checks {
			if ch.CheckID == id {
				last = ch
			}
		}
		return last != nil && last.Status == status
	}, within, 50*time.Millisecond, "check %s: health status %s", id, status)
	if !ok {
		t.FailNow()
	}
	return last
}

// waitAgent waits until the agent shows the check with status and an
// output for which out returns true.
func waitAgent(t *testing.T, c *api.Client, id, status string, within time.Duration, out func(string) bool) *api.HealthCheck {
	t.Helper()
	var last *api.HealthCheck
	ok := assert.Eventually(t, func() bool {
		last = agentCheck(t.Context(), t, c, id)
		return last != nil && last.Status == status && (out == nil || out(last.Output))
	}, within, 50*time.Millisecond, "check %s: agent status %s", id, status)
	if !ok {
		t.Logf("last seen: %+v", last)
		t.FailNow()
	}
	return last
}

func deregisterAtCleanup(t *testing.T, c *api.Client, checkID string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = c.Agent().CheckDeregister(ctx, checkID, nil)
	})
}

// switchProbe is a probe whose answer the test sets.
type switchProbe struct {
	mu     sync.Mutex
	status ttlcheck.Status
	note   string
	calls  atomic.Int64
}

func (p *switchProbe) set(s ttlcheck.Status, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.note = s, note
}

func (p *switchProbe) probe(context.Context) (ttlcheck.Status, string) {
	p.calls.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.note
}

func TestIntegrationTransitionsWithProbe(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "alive")
	p := &switchProbe{status: ttlcheck.Passing, note: "ok"}
	logs := &logRecorder{}
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "app alive", TTL: 2 * time.Second, Notes: "heartbeat test"},
		ttlcheck.WithProbe(p.probe), ttlcheck.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	started := time.Now()
	stop := startRun(t, hb)
	deregisterAtCleanup(t, c, id)

	for _, step := range []struct {
		status ttlcheck.Status
		note   string
	}{
		{ttlcheck.Passing, "ok"},
		{ttlcheck.Warning, "queue backlog 1200"},
		{ttlcheck.Critical, "database unreachable"},
		{ttlcheck.Passing, "recovered"},
	} {
		p.set(step.status, step.note)
		hc := waitHealth(t, c, id, string(step.status), 3*time.Second)
		assert.Equal(t, "app alive", hc.Name)
		assert.Equal(t, "heartbeat test", hc.Notes)
		assert.Empty(t, hc.ServiceID)
		assert.Equal(t, "ttl", hc.Type)
		waitAgent(t, c, id, string(step.status), 3*time.Second, func(o string) bool { return o == step.note })
	}
	// The beats keep the check passing across several TTLs.
	time.Sleep(5 * time.Second)
	waitAgent(t, c, id, api.HealthPassing, time.Second, func(o string) bool { return o == "recovered" })
	// One probe per beat: one at once, then a beat per interval (TTL/3).
	// Late beats on a loaded machine push the later ones back, so the
	// count is held to what beats each a third of an interval late would
	// give (three quarters of the pace: nominally ~12 calls, at least ~9);
	// a probe every other beat (half the pace), or beats at the TTL (a
	// third), stay below it.
	elapsed := time.Since(started)
	minCalls := 1 + int64(elapsed*3/4/hb.Interval())
	assert.GreaterOrEqual(t, p.calls.Load(), minCalls, "one probe per beat (TTL/3) over %s", elapsed)

	require.ErrorIs(t, stop(), context.Canceled)
	assert.Nil(t, agentCheck(t.Context(), t, c, id), "deregistered when Run returns")
	assert.Equal(t, []string{"passing", "warning", "critical", "passing"}, logs.transitions())
}

func TestIntegrationServiceExplicitStatus(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	svc := uniq(t, "svc")
	id := svc + "-alive"
	hb, err := ttlcheck.NewService(c, &api.AgentServiceRegistration{ID: svc + "-1", Name: svc, Port: 8080, Tags: []string{"v1"}},
		// Consul accepts DeregisterCriticalServiceAfter (it does not show it
		// in the check's Definition; reaping takes over a minute and is not
		// waited for here).
		ttlcheck.Check{ID: id, Name: "service alive", TTL: 2 * time.Second, DeregisterCriticalServiceAfter: 10 * time.Minute})
	require.NoError(t, err)
	require.ErrorIs(t, hb.Warn(t.Context(), "starting"), ttlcheck.ErrNotRunning)
	stop := startRun(t, hb)
	t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), svc+"-1", nil) })

	// The service and its check are registered together, with the status
	// set before Run.
	require.Eventually(t, func() bool {
		checks, _, err := c.Health().Checks(t.Context(), svc, nil)
		return err == nil && len(checks) == 1 && checks[0].Status == api.HealthWarning
	}, 3*time.Second, 50*time.Millisecond)
	entries, _, err := c.Health().Service(t.Context(), svc, nil, nil)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, svc+"-1", entries[0].Service.ID)
	assert.Equal(t, 8080, entries[0].Service.Port)

	for _, step := range []struct {
		call   func(context.Context, string) error
		status string
	}{
		{hb.Pass, api.HealthPassing},
		{hb.Warn, api.HealthWarning},
		{hb.Fail, api.HealthCritical},
		{hb.Pass, api.HealthPassing},
	} {
		note := "explicit " + step.status
		require.NoError(t, step.call(t.Context(), note))
		// Sent when the call returns.
		ac := agentCheck(t.Context(), t, c, id)
		require.NotNil(t, ac)
		assert.Equal(t, step.status, ac.Status)
		assert.Equal(t, note, ac.Output)
		assert.Equal(t, svc+"-1", ac.ServiceID)
		hc := waitHealth(t, c, id, step.status, 3*time.Second)
		assert.Equal(t, svc+"-1", hc.ServiceID)
	}
	// Without a probe, the last explicit status sticks across beats.
	require.NoError(t, hb.Warn(t.Context(), "degraded"))
	time.Sleep(3 * time.Second) // more than a TTL: several beats
	ac := waitAgent(t, c, id, api.HealthWarning, time.Second, func(o string) bool { return o == "degraded" })
	assert.Equal(t, "degraded", ac.Output)

	require.ErrorIs(t, stop(), context.Canceled)
	services, _, err := c.Agent().Services(t.Context(), nil)
	require.NoError(t, err)
	assert.NotContains(t, services, svc+"-1", "the service is deregistered when Run returns")
	assert.Nil(t, agentCheck(t.Context(), t, c, id))
	require.Eventually(t, func() bool {
		entries, _, err := c.Health().Service(t.Context(), svc, nil, nil)
		return err == nil && len(entries) == 0
	}, 3*time.Second, 50*time.Millisecond, "gone from the catalog")
}

func TestIntegrationCriticalWhenBeatsStop(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "alive")
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second}, ttlcheck.WithKeepCheck())
	require.NoError(t, err)
	stop := startRun(t, hb)
	deregisterAtCleanup(t, c, id)
	waitHealth(t, c, id, api.HealthPassing, 3*time.Second)
	// The TTL runs from the last update the agent accepted, which may be
	// up to an interval (and any lateness) before Run stops. Pass gives a
	// known one: it returns once an update sent after this moment was
	// accepted, so the agent reset the TTL at or after it (a later beat
	// only resets it later).
	passed := time.Now()
	require.NoError(t, hb.Pass(t.Context(), ""))
	require.ErrorIs(t, stop(), context.Canceled)

	// Still there and passing until the TTL runs out, then critical.
	ac := agentCheck(t.Context(), t, c, id)
	require.NotNil(t, ac, "kept on return")
	assert.Equal(t, api.HealthPassing, ac.Status)
	hc := waitHealth(t, c, id, api.HealthCritical, 5*time.Second)
	// Exact, not a margin: the agent cannot expire the check before a
	// full TTL after the update accepted after passed.
	assert.GreaterOrEqual(t, time.Since(passed), 2*time.Second, "not before the TTL passed since the last accepted update")
	ac = agentCheck(t.Context(), t, c, id)
	require.NotNil(t, ac)
	assert.Contains(t, ac.Output, "TTL expired")
	_ = hc
}

func TestIntegrationRegistersAgainAfterExternalDeregister(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	t.Run("check", func(t *testing.T) {
		t.Parallel()
		id := uniq(t, "alive")
		logs := &logRecorder{}
		hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second}, ttlcheck.WithLogger(slog.New(logs)))
		require.NoError(t, err)
		startRun(t, hb)
		deregisterAtCleanup(t, c, id)
		waitHealth(t, c, id, api.HealthPassing, 3*time.Second)
		require.NoError(t, hb.Warn(t.Context(), "before"))
		waitHealth(t, c, id, api.HealthWarning, 3*time.Second)

		_, err = c.Agent().CheckDeregister(t.Context(), id, nil)
		require.NoError(t, err)
		// The next beat may register it again at any moment, so its
		// absence is not asserted; once CheckDeregister returned, the
		// agent only shows it again after a registration, which the
		// waits and the log record below require.
		waitAgent(t, c, id, api.HealthWarning, 3*time.Second, func(o string) bool { return o == "before" })
		waitHealth(t, c, id, api.HealthWarning, 3*time.Second)
		assert.NotEmpty(t, logs.records("ttlcheck: the agent does not know the check; registering it again"))
	})
	t.Run("service", func(t *testing.T) {
		t.Parallel()
		svc := uniq(t, "svc")
		id := svc + "-alive"
		hb, err := ttlcheck.NewService(c, &api.AgentServiceRegistration{Name: svc}, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second})
		require.NoError(t, err)
		startRun(t, hb)
		t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), svc, nil) })
		waitHealth(t, c, id, api.HealthPassing, 3*time.Second)

		_, err = c.Agent().ServiceDeregister(t.Context(), svc, nil)
		require.NoError(t, err)
		waitAgent(t, c, id, api.HealthPassing, 3*time.Second, nil)
		services, _, err := c.Agent().Services(t.Context(), nil)
		require.NoError(t, err)
		assert.Contains(t, services, svc, "the service is registered again with its check")
	})
}

func TestIntegrationRegistersAgainAfterAgentRestart(t *testing.T) {
	t.Parallel()
	a := integration.NewAgent(t)
	c := a.Client(t)
	id := uniq(t, "alive")
	svc := uniq(t, "svc")
	svcCheck := svc + "-alive"
	logs := &logRecorder{}
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second},
		ttlcheck.WithLogger(slog.New(logs)),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Warning, "probe says warning" }))
	require.NoError(t, err)
	hbSvc, err := ttlcheck.NewService(c, &api.AgentServiceRegistration{ID: svc + "-1", Name: svc, Port: 9000},
		ttlcheck.Check{ID: svcCheck, Name: "service alive", TTL: 2 * time.Second})
	require.NoError(t, err)
	stop := startRun(t, hb)
	stopSvc := startRun(t, hbSvc)
	waitHealth(t, c, id, api.HealthWarning, 5*time.Second)
	waitHealth(t, c, svcCheck, api.HealthPassing, 5*time.Second)

	require.NoError(t, a.Restart(t.Context()))
	// A dev agent restarts empty; the heartbeats register again.
	waitAgent(t, c, id, api.HealthWarning, 20*time.Second, func(o string) bool { return o == "probe says warning" })
	waitAgent(t, c, svcCheck, api.HealthPassing, 20*time.Second, nil)
	services, _, err := c.Agent().Services(t.Context(), nil)
	require.NoError(t, err)
	require.Contains(t, services, svc+"-1")
	assert.Equal(t, 9000, services[svc+"-1"].Port)
	waitHealth(t, c, id, api.HealthWarning, 10*time.Second)
	waitHealth(t, c, svcCheck, api.HealthPassing, 10*time.Second)
	assert.NotEmpty(t, logs.records("ttlcheck: the agent does not know the check; registering it again"), "the restarted agent was empty")

	require.ErrorIs(t, stop(), context.Canceled)
	require.ErrorIs(t, stopSvc(), context.Canceled)
	assert.Nil(t, agentCheck(t.Context(), t, c, id))
	assert.Nil(t, agentCheck(t.Context(), t, c, svcCheck))
}

func TestIntegrationTransientErrors(t *testing.T) {
	t.Parallel()
	a := integration.NewAgent(t)
	c := a.Client(t)
	id := uniq(t, "alive")
	logs := &logRecorder{}
	var n atomic.Int64
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 4 * time.Second},
		ttlcheck.WithInterval(time.Second), ttlcheck.WithLogger(slog.New(logs)),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) {
			return ttlcheck.Passing, fmt.Sprintf("beat %d", n.Add(1))
		}))
	require.NoError(t, err)
	startRun(t, hb)
	waitHealth(t, c, id, api.HealthPassing, 5*time.Second)

	// A frozen agent answers nothing: requests time out and are retried.
	require.NoError(t, a.Pause(t.Context()))
	time.Sleep(2500 * time.Millisecond)
	require.NoError(t, a.Unpause(t.Context()))
	before := n.Load()
	waitAgent(t, c, id, api.HealthPassing, 3*time.Second, func(o string) bool {
		var k int64
		_, err := fmt.Sscanf(o, "beat %d", &k)
		return err == nil && k > before
	})
	assert.NotEmpty(t, logs.records("ttlcheck: update failed; retrying"))
	assert.Empty(t, logs.records("ttlcheck: the agent does not know the check; registering it again"))
	assert.Equal(t, []string{"passing"}, logs.transitions(), "never reported anything but passing")
}

func TestIntegrationSessionTiedToHeartbeat(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	tests := []struct {
		name    string
		service bool
		keep    bool
		fail    bool // the probe fails while Run goes on
	}{
		{name: "node check, beats stop", keep: true},
		{name: "node check, deregistered on return"},
		{name: "node check, probe fails", fail: true},
		{name: "service check, beats stop", service: true, keep: true},
		{name: "service check, deregistered on return", service: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := uniq(t, "alive")
			svc := uniq(t, "svc")
			p := &switchProbe{status: ttlcheck.Passing}
			opts := []ttlcheck.Option{ttlcheck.WithProbe(p.probe)}
			if tt.keep {
				opts = append(opts, ttlcheck.WithKeepCheck())
			}
			// A TTL of some seconds: a loaded machine may hold up a beat
			// for a second or so, which must not lapse the check here.
			chk := ttlcheck.Check{ID: id, Name: "alive", TTL: 5 * time.Second}
			var hb *ttlcheck.Heartbeat
			var err error
			if tt.service {
				hb, err = ttlcheck.NewService(c, &api.AgentServiceRegistration{Name: svc}, chk, opts...)
				t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), svc, nil) })
			} else {
				hb, err = ttlcheck.New(c, chk, opts...)
				deregisterAtCleanup(t, c, id)
			}
			require.NoError(t, err)
			stop := startRun(t, hb)
			waitHealth(t, c, id, api.HealthPassing, 3*time.Second)

			se := &api.SessionEntry{Name: id, LockDelay: 0, Behavior: api.SessionBehaviorRelease}
			if tt.service {
				se.ServiceChecks = []api.ServiceCheck{{ID: id}}
			} else {
				se.NodeChecks = []string{"serfHealth", id}
			}
			sid, _, err := c.Session().Create(t.Context(), se, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _, _ = c.Session().Destroy(context.Background(), sid, nil) })
			info, _, err := c.Session().Info(t.Context(), sid, nil)
			require.NoError(t, err)
			require.NotNil(t, info)
			if tt.service {
				assert.Equal(t, []api.ServiceCheck{{ID: id}}, info.ServiceChecks)
			} else {
				assert.ElementsMatch(t, []string{"serfHealth", id}, info.NodeChecks)
			}
			key := "consulkit/test/ttlcheck/" + id
			t.Cleanup(func() { _, _ = c.KV().Delete(context.Background(), key, nil) })
			ok, _, err := c.KV().Acquire(t.Context(), &api.KVPair{Key: key, Value: []byte("me"), Session: sid}, nil)
			require.NoError(t, err)
			require.True(t, ok, "the session holds the lock")

			// Healthy: the session lives on for longer than a TTL.
			time.Sleep(6 * time.Second)
			info, _, err = c.Session().Info(t.Context(), sid, nil)
			require.NoError(t, err)
			require.NotNil(t, info, "the session lives while the heartbeat passes")

			if tt.fail {
				p.set(ttlcheck.Critical, "disk full")
			} else {
				require.ErrorIs(t, stop(), context.Canceled)
			}
			require.Eventually(t, func() bool {
				info, _, err := c.Session().Info(t.Context(), sid, nil)
				return err == nil && info == nil
			}, 15*time.Second, 100*time.Millisecond, "the session is invalidated")
			kv, _, err := c.KV().Get(t.Context(), key, nil)
			require.NoError(t, err)
			require.NotNil(t, kv)
			assert.Empty(t, kv.Session, "the lock is released")
		})
	}
}

// TestIntegrationProbeGoexitOnce: a probe that once ends its goroutine
// with runtime.Goexit (t.FailNow in a test) costs one Critical report, not
// the heartbeat: the next probes run, and the check passes again.
func TestIntegrationProbeGoexitOnce(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "goexit")
	var n atomic.Int64
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: id, TTL: 3 * time.Second},
		ttlcheck.WithInterval(300*time.Millisecond),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) {
			if n.Add(1) == 2 {
				runtime.Goexit()
			}
			return ttlcheck.Passing, "ok"
		}))
	require.NoError(t, err)
	startRun(t, hb)
	deregisterAtCleanup(t, c, id)
	require.Eventually(t, func() bool { return n.Load() > 4 }, 10*time.Second, 50*time.Millisecond,
		"no probe ran after the one that called Goexit")
	waitAgent(t, c, id, api.HealthPassing, 6*time.Second, func(o string) bool { return o == "ok" })
}

func TestIntegrationProbeFailures(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	// releaseProbe lets the hung probe return; also at cleanup, so that a
	// failed assertion does not leave Run (and the test) waiting for it.
	releaseProbe := func() { releaseOnce.Do(func() { close(release) }) }
	tests := []struct {
		name  string
		probe ttlcheck.Probe
		note  string
	}{
		{name: "panic", probe: func(context.Context) (ttlcheck.Status, string) { panic("index out of range") }, note: "probe panicked: index out of range"},
		{name: "goexit", probe: func(context.Context) (ttlcheck.Status, string) {
			runtime.Goexit() // as t.FailNow does
			return ttlcheck.Passing, ""
		}, note: "probe did not return (runtime.Goexit)"},
		{name: "timeout", probe: func(ctx context.Context) (ttlcheck.Status, string) {
			<-ctx.Done()
			return ttlcheck.Passing, "too late"
		}, note: "probe timed out after "},
		{name: "error", probe: ttlcheck.ErrorProbe(func(context.Context) error { return fmt.Errorf("redis: %w", context.DeadlineExceeded) }),
			note: "redis: context deadline exceeded"},
		{name: "hung", probe: func(context.Context) (ttlcheck.Status, string) {
			<-release
			return ttlcheck.Passing, ""
		}, note: "probe has not returned for "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := uniq(t, "alive")
			// TTL 4s: beats every 1.33s, and a lapse needs 2.67s without
			// one, which a loaded machine does not cause.
			hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 4 * time.Second}, ttlcheck.WithProbe(tt.probe))
			require.NoError(t, err)
			stop := startRun(t, hb)
			if tt.name == "hung" {
				t.Cleanup(releaseProbe) // runs before startRun's stop
			}
			deregisterAtCleanup(t, c, id)
			waitHealth(t, c, id, api.HealthCritical, 6*time.Second)
			waitAgent(t, c, id, api.HealthCritical, 6*time.Second, func(o string) bool { return strings.HasPrefix(o, tt.note) })
			// The heartbeat goes on: over more than a TTL, every sample of
			// the check shows it there and critical because of the probe,
			// never a lapsed TTL (the agent's output would then be "TTL
			// expired ..." until the next beat).
			samples, bad := 0, false
			for end := time.Now().Add(4500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				checks, _, err := c.Agent().Checks(t.Context(), nil)
				if err != nil {
					continue // a slow or failed read is no sample
				}
				samples++
				ac := checks[id]
				require.NotNil(t, ac, "the check is still there")
				if !assert.NotContains(t, ac.Output, "TTL expired", "the check lapsed") ||
					!assert.Equal(t, api.HealthCritical, ac.Status) ||
					!assert.True(t, strings.HasPrefix(ac.Output, tt.note), "output %q", ac.Output) {
					bad = true
					break // one bad sample is enough
				}
			}
			require.False(t, bad, "every sample shows the probe's critical status")
			require.GreaterOrEqual(t, samples, 5, "the check was sampled across the period")
			if tt.name == "hung" {
				done := make(chan error, 1)
				go func() { done <- stop() }()
				select {
				case err := <-done:
					t.Fatalf("Run returned (%v) while its probe was running", err)
				case <-time.After(300 * time.Millisecond):
				}
				releaseProbe()
				require.ErrorIs(t, <-done, context.Canceled)
			} else {
				require.ErrorIs(t, stop(), context.Canceled)
			}
			assert.Nil(t, agentCheck(t.Context(), t, c, id))
		})
	}
}

func TestIntegrationNoteTruncated(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "alive")
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second})
	require.NoError(t, err)
	startRun(t, hb)
	deregisterAtCleanup(t, c, id)
	waitHealth(t, c, id, api.HealthPassing, 3*time.Second)
	require.NoError(t, hb.Warn(t.Context(), strings.Repeat("0123456789", 1000)))
	ac := agentCheck(t.Context(), t, c, id)
	require.NotNil(t, ac)
	assert.Equal(t, api.HealthWarning, ac.Status)
	assert.Len(t, ac.Output, ttlcheck.MaxNoteSize, "kept whole by Consul: not over its own 4 KiB limit")
	assert.True(t, strings.HasSuffix(ac.Output, ttlcheck.TruncatedMarker))
}

func TestIntegrationValidation(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "alive")
	tests := []struct {
		name  string
		check ttlcheck.Check
		opts  []ttlcheck.Option
	}{
		{name: "interval not shorter than TTL", check: ttlcheck.Check{ID: id, Name: "a", TTL: 2 * time.Second},
			opts: []ttlcheck.Option{ttlcheck.WithInterval(2 * time.Second)}},
		{name: "TTL under 1s", check: ttlcheck.Check{ID: id, Name: "a", TTL: 500 * time.Millisecond}},
		{name: "empty ID", check: ttlcheck.Check{Name: "a", TTL: 2 * time.Second}},
		{name: "empty name", check: ttlcheck.Check{ID: id, TTL: 2 * time.Second}},
		{name: "probe timeout not shorter than interval", check: ttlcheck.Check{ID: id, Name: "a", TTL: 3 * time.Second},
			opts: []ttlcheck.Option{ttlcheck.WithProbeTimeout(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb, err := ttlcheck.New(c, tt.check, tt.opts...)
			require.ErrorIs(t, err, ttlcheck.ErrInvalid)
			assert.Nil(t, hb)
		})
	}
	_, err := ttlcheck.NewService(c, &api.AgentServiceRegistration{Name: id + "-svc"},
		ttlcheck.Check{ID: id, Name: "a", TTL: 2 * time.Second, ServiceID: "other"})
	require.ErrorIs(t, err, ttlcheck.ErrInvalid)
	// Nothing reached the agent.
	assert.Nil(t, agentCheck(t.Context(), t, c, id))
	services, _, err := c.Agent().Services(t.Context(), nil)
	require.NoError(t, err)
	assert.NotContains(t, services, id+"-svc")
}

func TestIntegrationFirstRegistrationRefused(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "alive")
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "a", TTL: 2 * time.Second, ServiceID: "no-such-service-" + id})
	require.NoError(t, err)
	err = hb.Run(t.Context())
	require.ErrorIs(t, err, api.ErrNotFound, "Consul: ServiceID does not exist")
	assert.Nil(t, agentCheck(t.Context(), t, c, id))
}

// The service's own check, registered without an ID, keeps the ID Consul
// gives a service's only check ("service:<id>") when the heartbeat's
// check is registered with it, as it would without: Consul numbers
// unnamed checks once a service has several.
func TestIntegrationServiceKeepsItsOwnCheckID(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	svc := uniq(t, "svc")
	reg := &api.AgentServiceRegistration{ID: svc + "-1", Name: svc, Check: &api.AgentServiceCheck{Name: "own", TTL: api.Duration(time.Minute)}}
	hb, err := ttlcheck.NewService(c, reg, ttlcheck.Check{ID: svc + "-alive", Name: "alive", TTL: 2 * time.Second})
	require.NoError(t, err)
	assert.Empty(t, reg.Check.CheckID, "the caller's registration was changed")
	stop := startRun(t, hb)
	t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), svc+"-1", nil) })
	require.Eventually(t, func() bool { return agentCheck(t.Context(), t, c, svc+"-alive") != nil }, 5*time.Second, 20*time.Millisecond)
	own := agentCheck(t.Context(), t, c, "service:"+svc+"-1")
	require.NotNil(t, own, "the service's own check was renamed")
	assert.Equal(t, "own", own.Name)
	require.ErrorIs(t, stop(), context.Canceled)
}
