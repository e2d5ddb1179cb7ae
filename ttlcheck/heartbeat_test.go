package ttlcheck_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/ttlcheck"
)

// Unit tests against an httptest fake of the agent endpoints. Every
// behaviour here also has a real-Consul test in integration_test.go.

func unitCheck(t *testing.T) ttlcheck.Check {
	return ttlcheck.Check{ID: "chk-" + t.Name(), Name: "alive", TTL: time.Second, Notes: "app heartbeat"}
}

func TestNewValidation(t *testing.T) {
	f := newFakeAgent(t)
	c := f.client(t)
	good := ttlcheck.Check{ID: "a", Name: "a", TTL: 3 * time.Second}
	probe := func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Passing, "" }
	tests := []struct {
		name  string
		check func(*ttlcheck.Check)
		opts  []ttlcheck.Option
		field string
	}{
		{name: "empty ID", check: func(c *ttlcheck.Check) { c.ID = "" }, field: "Check.ID"},
		// Consul registers it, but no update or deregistration can name it.
		{name: "ID of spaces", check: func(c *ttlcheck.Check) { c.ID = "   " }, field: "Check.ID"},
		{name: "name of spaces", check: func(c *ttlcheck.Check) { c.Name = " " }, field: "Check.Name"},
		{name: "control character in ID", check: func(c *ttlcheck.Check) { c.ID = "a\nb" }, field: "Check.ID"},
		{name: "empty name", check: func(c *ttlcheck.Check) { c.Name = "" }, field: "Check.Name"},
		{name: "control character in service ID", check: func(c *ttlcheck.Check) { c.ServiceID = "s\x00" }, field: "Check.ServiceID"},
		{name: "dot-dot segment in ID", check: func(c *ttlcheck.Check) { c.ID = "web/../alive" }, field: "Check.ID"},
		{name: "empty segment in service ID", check: func(c *ttlcheck.Check) { c.ServiceID = "a//b" }, field: "Check.ServiceID"},
		{name: "zero TTL", check: func(c *ttlcheck.Check) { c.TTL = 0 }, field: "Check.TTL"},
		{name: "TTL under 1s", check: func(c *ttlcheck.Check) { c.TTL = 999 * time.Millisecond }, field: "Check.TTL"},
		{name: "interval equal to TTL", opts: []ttlcheck.Option{ttlcheck.WithInterval(3 * time.Second)}, field: "WithInterval"},
		{name: "interval longer than TTL", opts: []ttlcheck.Option{ttlcheck.WithInterval(time.Minute)}, field: "WithInterval"},
		{name: "negative interval", opts: []ttlcheck.Option{ttlcheck.WithInterval(-time.Second)}, field: "WithInterval"},
		{name: "probe timeout equal to interval", opts: []ttlcheck.Option{ttlcheck.WithInterval(time.Second), ttlcheck.WithProbeTimeout(time.Second)}, field: "WithProbeTimeout"},
		{name: "probe timeout longer than default interval", opts: []ttlcheck.Option{ttlcheck.WithProbeTimeout(2 * time.Second)}, field: "WithProbeTimeout"},
		{name: "zero probe timeout", opts: []ttlcheck.Option{ttlcheck.WithProbeTimeout(0)}, field: "WithProbeTimeout"},
		{name: "nil probe", opts: []ttlcheck.Option{ttlcheck.WithProbe(nil)}, field: "WithProbe"},
		{name: "nil logger", opts: []ttlcheck.Option{ttlcheck.WithLogger(nil)}, field: "WithLogger"},
		{name: "nil option", opts: []ttlcheck.Option{nil}, field: "option"},
		{name: "deregister-critical-after under 1m", check: func(c *ttlcheck.Check) {
			c.ServiceID, c.DeregisterCriticalServiceAfter = "web", 30*time.Second
		}, field: "Check.DeregisterCriticalServiceAfter"},
		{name: "deregister-critical-after without service", check: func(c *ttlcheck.Check) {
			c.DeregisterCriticalServiceAfter = time.Minute
		}, field: "Check.DeregisterCriticalServiceAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chk := good
			if tt.check != nil {
				tt.check(&chk)
			}
			opts := append([]ttlcheck.Option{ttlcheck.WithProbe(probe)}, tt.opts...)
			hb, err := ttlcheck.New(c, chk, opts...)
			require.Error(t, err)
			assert.Nil(t, hb)
			assert.ErrorIs(t, err, ttlcheck.ErrInvalid)
			assert.ErrorIs(t, err, api.ErrInvalid)
			var ce *ttlcheck.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, "error: %v", err)
			assert.Contains(t, err.Error(), "ttlcheck: invalid "+tt.field+": ")
		})
	}
	t.Run("nil client", func(t *testing.T) {
		_, err := ttlcheck.New(nil, good)
		assert.ErrorIs(t, err, ttlcheck.ErrInvalid)
	})
	t.Run("defaults", func(t *testing.T) {
		hb, err := ttlcheck.New(c, good)
		require.NoError(t, err)
		assert.Equal(t, time.Second, hb.Interval())
		assert.Equal(t, 500*time.Millisecond, hb.ProbeTimeout())
		assert.Equal(t, good, hb.Check())
	})
	assert.Empty(t, f.requests("/"), "nothing is sent by New")
}

func TestNewServiceValidation(t *testing.T) {
	f := newFakeAgent(t)
	c := f.client(t)
	chk := ttlcheck.Check{ID: "web-alive", Name: "alive", TTL: 3 * time.Second}
	tests := []struct {
		name  string
		reg   *api.AgentServiceRegistration
		check func(*ttlcheck.Check)
		field string
	}{
		{name: "nil registration", field: "service"},
		{name: "empty service name", reg: &api.AgentServiceRegistration{ID: "web-1"}, field: "service Name"},
		{name: "service ID of spaces", reg: &api.AgentServiceRegistration{ID: "  ", Name: "web"}, field: "service ID"},
		{name: "control character in service ID", reg: &api.AgentServiceRegistration{ID: "web\t1", Name: "web"}, field: "service ID"},
		// Without an ID the Name is the ID, which goes into the paths
		// of the check's updates and of the service's deregistration.
		{name: "service name with a dot-dot segment", reg: &api.AgentServiceRegistration{Name: "web/../x"}, field: "service Name"},
		{name: "service name with an empty segment", reg: &api.AgentServiceRegistration{Name: "web//x"}, field: "service Name"},
		{name: "service name with a dot segment", reg: &api.AgentServiceRegistration{Name: "a/./b"}, field: "service Name"},
		{name: "control character in service name", reg: &api.AgentServiceRegistration{Name: "web\t1"}, field: "service Name"},
		{name: "service ID mismatch", reg: &api.AgentServiceRegistration{ID: "web-1", Name: "web"},
			check: func(c *ttlcheck.Check) { c.ServiceID = "web-2" }, field: "Check.ServiceID"},
		{name: "check ID already used", reg: &api.AgentServiceRegistration{Name: "web",
			Checks: api.AgentServiceChecks{{CheckID: "web-alive", TTL: api.Duration(time.Second)}}}, field: "Check.ID"},
		{name: "check ID already used by Check", reg: &api.AgentServiceRegistration{Name: "web",
			Check: &api.AgentServiceCheck{CheckID: "web-alive", TTL: api.Duration(time.Second)}}, field: "Check.ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := chk
			if tt.check != nil {
				tt.check(&ch)
			}
			_, err := ttlcheck.NewService(c, tt.reg, ch)
			require.ErrorIs(t, err, ttlcheck.ErrInvalid)
			var ce *ttlcheck.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.field, ce.Field, "error: %v", err)
		})
	}
	t.Run("service ID from name", func(t *testing.T) {
		hb, err := ttlcheck.NewService(c, &api.AgentServiceRegistration{Name: "web"}, chk)
		require.NoError(t, err)
		assert.Equal(t, "web", hb.Check().ServiceID)
	})
	assert.Empty(t, f.requests("/"), "nothing is sent by NewService")
}

func TestNewServiceDoesNotModifyInput(t *testing.T) {
	f := newFakeAgent(t)
	other := &api.AgentServiceCheck{CheckID: "web-tcp", Name: "tcp", TCP: "127.0.0.1:1", Interval: api.Duration(10 * time.Second)}
	reg := &api.AgentServiceRegistration{ID: "web-1", Name: "web", Tags: []string{"a"}, Checks: api.AgentServiceChecks{other}}
	chk := ttlcheck.Check{ID: "web-alive", Name: "alive", TTL: time.Second}
	hb, err := ttlcheck.NewService(f.client(t), reg, chk)
	require.NoError(t, err)
	reg.Tags[0] = "changed later"
	stop := startRun(t, hb)
	f.waitCheck(t, "web-alive", 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil })
	require.ErrorIs(t, stop(), context.Canceled)

	assert.Len(t, reg.Checks, 1, "the caller's checks are untouched")
	assert.Empty(t, chk.ServiceID, "the caller's Check is untouched")
	regs := f.requests("/v1/agent/service/register")
	require.NotEmpty(t, regs)
	assert.Equal(t, []any{"a"}, regs[0].Body["Tags"], "a later change of the caller's registration is not seen")
	checks := regs[0].Body["Checks"].([]any)
	require.Len(t, checks, 2)
	assert.Equal(t, "web-tcp", checks[0].(map[string]any)["CheckID"])
	assert.Equal(t, map[string]any{"CheckID": "web-alive", "Name": "alive", "TTL": "1s", "Status": "passing"}, checks[1])
}

func TestRunRegistersBeatsAndDeregisters(t *testing.T) {
	tests := []struct {
		name      string
		serviceID string
	}{
		{name: "standalone"},
		{name: "attached to a service", serviceID: "web-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.services["web-1"] = map[string]any{}
			chk := unitCheck(t)
			chk.ServiceID = tt.serviceID
			if tt.serviceID != "" {
				chk.DeregisterCriticalServiceAfter = 90 * time.Second
			}
			hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(200*time.Millisecond))
			require.NoError(t, err)
			stop := startRun(t, hb)
			c := f.waitCheck(t, chk.ID, 6*time.Second, "ten beats", func(c *fakeCheck) bool { return c != nil && len(c.updates) >= 10 })
			assert.Equal(t, api.HealthPassing, c.status)
			// A beat may be late on a loaded machine (and lateness adds up:
			// the next beat is due an interval after the last one was
			// sent), so no gap is held to 200ms±100ms. What must hold:
			// - no lapse: every gap leaves 200ms of the 1s TTL (late beats
			//   stay far below that; a stalled loop does not);
			// - the pace is the 200ms interval: the mean steady gap (from
			//   the second update; the first follows the registration) is
			//   150..400ms (a loop sending back to back, or at the TTL,
			//   is far out), and the shortest one is under 300ms, which
			//   the default interval (TTL/3 = 333ms, WithInterval
			//   ignored) cannot produce, while on time one beat of eight
			//   suffices.
			var sum, shortest time.Duration
			for i := 1; i < len(c.updates); i++ {
				gap := c.updates[i].Sub(c.updates[i-1])
				assert.Less(t, gap, chk.TTL-200*time.Millisecond, "gap %d: the check must not come close to lapsing", i)
				if i >= 2 {
					sum += gap
					if shortest == 0 || gap < shortest {
						shortest = gap
					}
				}
			}
			mean := sum / time.Duration(len(c.updates)-2)
			assert.GreaterOrEqual(t, mean, 150*time.Millisecond, "mean gap: beats are paced by the interval")
			assert.LessOrEqual(t, mean, 400*time.Millisecond, "mean gap: beats are paced by the interval")
			assert.Less(t, shortest, 300*time.Millisecond, "shortest gap: the 200ms interval is used, not the default 333ms")
			require.ErrorIs(t, stop(), context.Canceled)

			regs := f.requests("/v1/agent/check/register")
			require.Len(t, regs, 1)
			want := map[string]any{"ID": chk.ID, "Name": "alive", "Notes": "app heartbeat", "TTL": "1s", "Status": "passing"}
			if tt.serviceID != "" {
				want["ServiceID"] = tt.serviceID
				want["DeregisterCriticalServiceAfter"] = "1m30s"
			}
			assert.Equal(t, want, regs[0].Body)
			upd := f.requests("/v1/agent/check/update/" + chk.ID)
			require.NotEmpty(t, upd)
			assert.Equal(t, map[string]any{"Status": "passing"}, upd[0].Body)
			assert.Len(t, f.requests("/v1/agent/check/deregister/"+chk.ID), 1)
			assert.Nil(t, f.check(chk.ID))
		})
	}
}

func TestRunKeepCheck(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithKeepCheck())
	require.NoError(t, err)
	stop := startRun(t, hb)
	f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil })
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Empty(t, f.requests("/v1/agent/check/deregister/"))
	f.waitCheck(t, chk.ID, 2*time.Second, "critical after the TTL", func(c *fakeCheck) bool { return c.status == api.HealthCritical })
}

func TestRunRetriesTransientErrors(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 2 * time.Second
	var failed atomic.Int32
	f.setHook(func(r fakeReq) (int, string) {
		// Fail the updates that follow the first one, for about one TTL
		// minus a margin.
		if strings.HasPrefix(r.Path, "/v1/agent/check/update/") && len(f.checks[chk.ID].updates) == 1 && failed.Add(1) <= 3 {
			return http.StatusServiceUnavailable, "rpc error: No cluster leader"
		}
		return 0, ""
	})
	logs := &logRecorder{}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	stop := startRun(t, hb)
	c := f.waitCheck(t, chk.ID, 5*time.Second, "beats again after the errors", func(c *fakeCheck) bool { return c != nil && len(c.updates) >= 3 })
	require.ErrorIs(t, stop(), context.Canceled)
	assert.EqualValues(t, 4, failed.Load(), "three failures, then the hook lets the update through")
	// Nominally the interval (667ms) plus three jittered retries of at
	// most 83+167+333ms: 1.25s at worst, so the 2s TTL leaves 750ms for
	// lateness over four requests. Retrying no faster than the interval,
	// or waiting for the next beat, would take 2.67s.
	gap := c.updates[1].Sub(c.updates[0])
	assert.Less(t, gap, chk.TTL, "the retries succeeded within the TTL")
	assert.Len(t, logs.records("ttlcheck: update failed; retrying"), 3)
	assert.Len(t, f.requests("/v1/agent/check/register"), 1, "a transient error is not an unknown check")
}

// An update that is never answered must time out early enough for a
// retry to reach the agent before the TTL runs out. With a 1s TTL (beats
// every 333ms) an attempt used to be given 1s, so one hung request let
// the check lapse for ~0.4s; it now gets at most half of what is left of
// the TTL.
func TestRunHungUpdateDoesNotLapse(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = time.Second
	var hung atomic.Bool
	f.mu.Lock()
	f.hang = func(r fakeReq) bool {
		return strings.HasPrefix(r.Path, "/v1/agent/check/update/") && len(f.check(chk.ID).updates) == 2 && hung.CompareAndSwap(false, true)
	}
	f.mu.Unlock()
	hb, err := ttlcheck.New(f.client(t), chk)
	require.NoError(t, err)
	stop := startRun(t, hb)
	c := f.waitCheck(t, chk.ID, 5*time.Second, "beats after the hung update", func(c *fakeCheck) bool { return c != nil && len(c.updates) >= 4 })
	require.ErrorIs(t, stop(), context.Canceled)
	require.True(t, hung.Load(), "an update hung")
	// What the fix guards, measured by the agent and so free of the
	// client's lateness: how long the client let the hung update hang. An
	// attempt now gets at most half of what is left of the TTL (nominally
	// ~333ms here, never over TTL/2 = 500ms); it used to get 1s (the
	// interval, bounded to 1s..10s). TTL/2 + 250ms leaves room for the
	// agent to notice the closed connection and still tells the two apart.
	var hr []hungReq
	require.Eventually(t, func() bool { hr = f.hungRequests(); return len(hr) == 1 }, 3*time.Second, 10*time.Millisecond, "the client gave up on the hung update")
	assert.Less(t, hr[0].Ended.Sub(hr[0].At), chk.TTL/2+250*time.Millisecond, "the hung update was given at most half of what was left of the TTL")
	// Its retry got through (updates[2]: the hang held the third update).
	// The other gaps are plain beats (nominally 333ms): no lapse there.
	for i := 1; i < len(c.updates); i++ {
		if i == 2 {
			continue // around the hung update: checked through its lifetime above
		}
		assert.Less(t, c.updates[i].Sub(c.updates[i-1]), chk.TTL, "gap before update %d", i)
	}
}

func TestRunRegistersAgainWhenForgotten(t *testing.T) {
	tests := []struct {
		name        string
		unknownCode int
		service     bool
	}{
		{name: "500 does not have associated TTL"},
		{name: "404", unknownCode: http.StatusNotFound},
		{name: "500 unknown check ID", unknownCode: http.StatusInternalServerError},
		{name: "service", service: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t)
			f.unknownCode = tt.unknownCode
			chk := unitCheck(t)
			logs := &logRecorder{}
			var hb *ttlcheck.Heartbeat
			var err error
			if tt.service {
				hb, err = ttlcheck.NewService(f.client(t), &api.AgentServiceRegistration{ID: "web-1", Name: "web"}, chk, ttlcheck.WithLogger(slog.New(logs)))
			} else {
				hb, err = ttlcheck.New(f.client(t), chk, ttlcheck.WithLogger(slog.New(logs)))
			}
			require.NoError(t, err)
			require.ErrorIs(t, hb.Warn(t.Context(), "x"), ttlcheck.ErrNotRunning) // the status is kept
			stop := startRun(t, hb)
			f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
			f.forget()
			c := f.waitCheck(t, chk.ID, 2*time.Second, "registered again", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
			assert.Equal(t, api.HealthWarning, c.status, "registered again with the current status")
			require.ErrorIs(t, stop(), context.Canceled)
			path := "/v1/agent/check/register"
			if tt.service {
				path = "/v1/agent/service/register"
				assert.Len(t, f.requests("/v1/agent/service/deregister/web-1"), 1)
			}
			regs := f.requests(path)
			require.Len(t, regs, 2)
			assert.Len(t, logs.records("ttlcheck: the agent does not know the check; registering it again"), 1)
		})
	}
}

func TestRunFirstRegistration(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		f := newFakeAgent(t)
		f.setHook(func(r fakeReq) (int, string) { return http.StatusForbidden, "Permission denied" })
		hb, err := ttlcheck.New(f.client(t), unitCheck(t))
		require.NoError(t, err)
		err = hb.Run(t.Context())
		require.ErrorIs(t, err, api.ErrPermissionDenied)
		assert.Len(t, f.requests("/"), 1, "no retry, nothing to deregister")
	})
	t.Run("unknown service", func(t *testing.T) {
		f := newFakeAgent(t)
		chk := unitCheck(t)
		chk.ServiceID = "nope"
		hb, err := ttlcheck.New(f.client(t), chk)
		require.NoError(t, err)
		err = hb.Run(t.Context())
		require.ErrorIs(t, err, api.ErrNotFound)
		assert.Contains(t, err.Error(), `ServiceID "nope" does not exist`)
	})
	t.Run("transient errors are retried", func(t *testing.T) {
		f := newFakeAgent(t)
		var n atomic.Int32
		f.setHook(func(r fakeReq) (int, string) {
			if n.Add(1) <= 2 {
				return http.StatusInternalServerError, "boom"
			}
			return 0, ""
		})
		chk := unitCheck(t)
		hb, err := ttlcheck.New(f.client(t), chk)
		require.NoError(t, err)
		startRun(t, hb)
		f.waitCheck(t, chk.ID, 3*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
	})
	t.Run("refused after registering", func(t *testing.T) {
		// Once the check was registered, Run never gives up.
		f := newFakeAgent(t)
		chk := unitCheck(t)
		hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(100*time.Millisecond))
		require.NoError(t, err)
		stop := startRun(t, hb)
		f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
		var refused atomic.Int32
		f.setHook(func(r fakeReq) (int, string) {
			if strings.HasPrefix(r.Path, "/v1/agent/check/update/") && refused.Add(1) <= 3 {
				return http.StatusForbidden, "Permission denied"
			}
			return 0, ""
		})
		f.waitCheck(t, chk.ID, 3*time.Second, "beating again", func(c *fakeCheck) bool { return refused.Load() > 3 && len(c.updates) > 2 })
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestRunTwice(t *testing.T) {
	f := newFakeAgent(t)
	hb, err := ttlcheck.New(f.client(t), unitCheck(t))
	require.NoError(t, err)
	stop := startRun(t, hb)
	f.waitCheck(t, hb.Check().ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil })
	assert.ErrorIs(t, hb.Run(t.Context()), ttlcheck.ErrRunning)
	require.ErrorIs(t, stop(), context.Canceled)
	// It may run again after Run returned.
	stop = startRun(t, hb)
	f.waitCheck(t, hb.Check().ID, 2*time.Second, "registered again", func(c *fakeCheck) bool { return c != nil })
	require.ErrorIs(t, stop(), context.Canceled)
}

func TestExplicitStatus(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	logs := &logRecorder{}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(100*time.Millisecond), ttlcheck.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	assert.ErrorIs(t, hb.Pass(t.Context(), "before Run"), ttlcheck.ErrNotRunning)
	stop := startRun(t, hb)
	c := f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
	assert.Equal(t, "before Run", c.output, "the status set before Run is the first one sent")

	steps := []struct {
		call   func(context.Context, string) error
		status string
	}{
		{hb.Warn, api.HealthWarning},
		{hb.Fail, api.HealthCritical},
		{hb.Pass, api.HealthPassing},
	}
	for _, s := range steps {
		before := len(f.check(chk.ID).updates)
		require.NoError(t, s.call(t.Context(), "now "+s.status))
		c := f.check(chk.ID)
		assert.Equal(t, s.status, c.status, "sent when the call returns")
		assert.Equal(t, "now "+s.status, c.output)
		// It sticks: later beats re-send it.
		f.waitCheck(t, chk.ID, 2*time.Second, "more beats", func(c *fakeCheck) bool { return len(c.updates) >= before+4 })
		c = f.check(chk.ID)
		assert.Equal(t, s.status, c.status)
		assert.Equal(t, "now "+s.status, c.output)
	}
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, []string{"passing", "warning", "critical", "passing"}, logs.transitions())
	assert.ErrorIs(t, hb.Fail(t.Context(), "after Run"), ttlcheck.ErrNotRunning)

	t.Run("context ends first", func(t *testing.T) {
		f := newFakeAgent(t)
		chk := unitCheck(t)
		hb, err := ttlcheck.New(f.client(t), chk)
		require.NoError(t, err)
		startRun(t, hb)
		f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
		f.setHook(func(r fakeReq) (int, string) { return http.StatusServiceUnavailable, "down" })
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, hb.Warn(ctx, "x"), context.DeadlineExceeded)
		f.setHook(nil)
		f.waitCheck(t, chk.ID, 2*time.Second, "sent later", func(c *fakeCheck) bool { return c.status == api.HealthWarning })
	})

	t.Run("Run returns first", func(t *testing.T) {
		f := newFakeAgent(t)
		chk := unitCheck(t)
		hb, err := ttlcheck.New(f.client(t), chk)
		require.NoError(t, err)
		stop := startRun(t, hb)
		f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
		f.setHook(func(r fakeReq) (int, string) {
			if strings.HasPrefix(r.Path, "/v1/agent/check/update/") {
				return http.StatusServiceUnavailable, "down"
			}
			return 0, ""
		})
		errc := make(chan error, 1)
		go func() { errc <- hb.Fail(context.Background(), "x") }()
		require.Eventually(t, func() bool { return len(f.requests("/v1/agent/check/update/")) >= 3 }, 2*time.Second, 10*time.Millisecond)
		require.ErrorIs(t, stop(), context.Canceled)
		assert.ErrorIs(t, <-errc, ttlcheck.ErrNotRunning)
	})
}

// After an outage longer than an interval, the first update the agent
// accepts carries what the probe says now, not what it said before the
// outage: the beat that waited is probed again every interval.
func TestRunProbesAgainDuringAnOutage(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	// Beats every second; the TTL leaves the refresh's probe time to
	// answer before the check would lapse (closer to it, the status from
	// before is sent rather than let the check lapse).
	chk.TTL = 4 * time.Second
	var status atomic.Value
	status.Store(ttlcheck.Passing)
	probe := func(context.Context) (ttlcheck.Status, string) {
		time.Sleep(300 * time.Millisecond) // slower than the first retries
		return status.Load().(ttlcheck.Status), ""
	}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(probe), ttlcheck.WithInterval(time.Second))
	require.NoError(t, err)
	stop, down := runThenCutOff(t, f, hb)
	// The next beat is probed (Passing) and fails; then the application
	// fails too, while the agent is still unreachable.
	time.Sleep(1300 * time.Millisecond)
	status.Store(ttlcheck.Critical)
	time.Sleep(2200 * time.Millisecond)
	before := len(f.check(chk.ID).updates)
	down.Store(false)

	c := f.waitCheck(t, chk.ID, 3*time.Second, "accepted again", func(c *fakeCheck) bool { return len(c.updates) > before })
	assert.Equal(t, api.HealthCritical, c.status, "the first update after the outage carries the current status")
	require.ErrorIs(t, stop(), context.Canceled)
}

// A status set with Fail during an outage, less than an interval before
// the agent answers again, is not probed over: it is what the agent gets.
// (Set longer ago, the probe's next result replaces it, as without an
// outage.)
func TestRunKeepsAnExplicitStatusThroughAnOutage(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 3 * time.Second
	probe := func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Passing, "" }
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(probe))
	require.NoError(t, err)
	stop, down := runThenCutOff(t, f, hb)
	time.Sleep(3 * time.Second) // the waiting beat has been probed again
	failed := make(chan error, 1)
	go func() { failed <- hb.Fail(context.Background(), "draining") }()
	time.Sleep(500 * time.Millisecond)
	before := len(f.check(chk.ID).updates)
	down.Store(false)

	c := f.waitCheck(t, chk.ID, 3*time.Second, "accepted again", func(c *fakeCheck) bool { return len(c.updates) > before })
	assert.Equal(t, api.HealthCritical, c.status, "the first update after the outage carries Fail's status")
	assert.Equal(t, "draining", c.output)
	require.NoError(t, <-failed)
	require.ErrorIs(t, stop(), context.Canceled)
}

// A beat waiting out an outage whose new probe does not answer by its
// deadline (the application hangs) carries Critical, not the status from
// before the outage, when the agent answers again.
func TestRunHungProbeDuringAnOutageIsCritical(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 4 * time.Second // as in TestRunProbesAgainDuringAnOutage
	p := newHangingProbe()
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(p.probe), ttlcheck.WithInterval(time.Second))
	require.NoError(t, err)
	stop, down := runThenCutOff(t, f, hb)
	time.Sleep(1300 * time.Millisecond)
	p.hanging.Store(true)
	p.waitHung(t, 5*time.Second, "the waiting beat was not probed again") // and it hangs
	before := len(f.check(chk.ID).updates)
	down.Store(false) // back before the probe's deadline

	c := f.waitCheck(t, chk.ID, 3*time.Second, "accepted again", func(c *fakeCheck) bool { return len(c.updates) > before })
	assert.Equal(t, api.HealthCritical, c.status, "the first update after the outage says the probe timed out")
	assert.Contains(t, c.output, "probe timed out")
	require.ErrorIs(t, stop(), context.Canceled)
}

func TestProbe(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	// releaseProbe lets the hung probe return; also at cleanup, so that a
	// failed assertion does not leave Run (and the test) waiting for it.
	releaseProbe := func() { releaseOnce.Do(func() { close(release) }) }
	tests := []struct {
		name   string
		probe  ttlcheck.Probe
		status string
		note   string
	}{
		{name: "passing", probe: func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Passing, "all good" },
			status: api.HealthPassing, note: "all good"},
		{name: "warning", probe: func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Warning, "slow disk" },
			status: api.HealthWarning, note: "slow disk"},
		{name: "error", probe: ttlcheck.ErrorProbe(func(context.Context) error { return errors.New("db: connection refused") }),
			status: api.HealthCritical, note: "db: connection refused"},
		{name: "no error", probe: ttlcheck.ErrorProbe(func(context.Context) error { return nil }),
			status: api.HealthPassing, note: ""},
		{name: "panic", probe: func(context.Context) (ttlcheck.Status, string) { panic("nil map") },
			status: api.HealthCritical, note: "probe panicked: nil map"},
		{name: "unknown status", probe: func(context.Context) (ttlcheck.Status, string) { return "fine", "hm" },
			status: api.HealthCritical, note: `probe returned an unknown status "fine": hm`},
		{name: "timeout", probe: ttlcheck.ErrorProbe(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }),
			status: api.HealthCritical, note: "probe timed out after "},
		{name: "hung", probe: func(context.Context) (ttlcheck.Status, string) { <-release; return ttlcheck.Passing, "" },
			status: api.HealthCritical, note: "probe "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t)
			chk := unitCheck(t)
			hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(tt.probe), ttlcheck.WithInterval(200*time.Millisecond))
			require.NoError(t, err)
			stop := startRun(t, hb)
			if tt.name == "hung" {
				t.Cleanup(releaseProbe) // runs before startRun's stop
			}
			c := f.waitCheck(t, chk.ID, 6*time.Second, "ten beats", func(c *fakeCheck) bool { return c != nil && len(c.updates) >= 10 })
			assert.Equal(t, tt.status, c.status)
			assert.True(t, strings.HasPrefix(c.output, tt.note), "output %q", c.output)
			// Beats keep their pace whatever the probe does. A late beat on
			// a loaded machine is not a fault, so no single gap is held to
			// the interval; instead:
			// - no gap comes close to lapsing the check (TTL - interval =
			//   800ms): a probe that held the beat up, for its hang or
			//   for long, would;
			// - the shortest steady gap (from the second update; the
			//   first follows the registration) is under interval +
			//   half the probe timeout (250ms): a probe that delayed
			//   every beat by its timeout (run after the beat was due, or
			//   waited for past its deadline) makes every gap ~300ms,
			//   while it takes one beat of eight less than 50ms late (late
			//   beats measured a few ms under load).
			interval := hb.Interval()
			var shortest time.Duration
			for i := 1; i < len(c.updates); i++ {
				gap := c.updates[i].Sub(c.updates[i-1])
				assert.Less(t, gap, chk.TTL-interval, "gap %d: beats keep their pace", i)
				if i >= 2 && (shortest == 0 || gap < shortest) {
					shortest = gap
				}
			}
			assert.Less(t, shortest, interval+hb.ProbeTimeout()/2, "shortest gap: the probe does not delay the beats")
			if tt.name == "hung" {
				assert.Contains(t, c.output, "has not returned")
				done := make(chan error, 1)
				go func() { done <- stop() }()
				select {
				case <-done:
					t.Fatal("Run returned while its probe was running")
				case <-time.After(200 * time.Millisecond):
				}
				releaseProbe()
				require.ErrorIs(t, <-done, context.Canceled)
				return
			}
			require.ErrorIs(t, stop(), context.Canceled)
		})
	}
}

func TestProbeAndExplicitStatus(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	var calls atomic.Int32
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(300*time.Millisecond),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) {
			return ttlcheck.Passing, fmt.Sprintf("probe %d", calls.Add(1))
		}))
	require.NoError(t, err)
	startRun(t, hb)
	f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })

	// Fail sends its status at once: the agent has it when Fail returns.
	// It is read from the fake's request log, not from the check, because
	// the probe's next result may already have replaced it (the most
	// recent wins). A probe result that lands between Fail recording its
	// status and Run sending it is more recent, and may be sent instead
	// (Fail then returns once that newer status is accepted, as
	// documented); that race is rare, so try again when it happened, a
	// few times at most: a Fail that does not send its status fails
	// every time.
	const updates = "/v1/agent/check/update/"
	var n int32
	sent := false
	for attempt := 0; attempt < 5 && !sent; attempt++ {
		n = calls.Load()
		before := len(f.requests(updates))
		require.NoError(t, hb.Fail(t.Context(), "explicit"))
		for _, r := range f.requests(updates)[before:] {
			if r.Body["Output"] == "explicit" {
				assert.Equal(t, api.HealthCritical, r.Body["Status"])
				sent = true
			}
		}
		if !sent {
			t.Logf("attempt %d: a probe result was sent in place of Fail's status", attempt)
		}
	}
	require.True(t, sent, "Fail's status was sent before Fail returned")
	// A later probe result replaces it: one from a probe called after
	// Fail was (the waited-for update carries its call number).
	f.waitCheck(t, chk.ID, 2*time.Second, "a later probe result replaces it", func(c *fakeCheck) bool {
		var k int32
		_, err := fmt.Sscanf(c.output, "probe %d", &k)
		return c.status == api.HealthPassing && err == nil && k > n
	})
}

func TestNoteTruncated(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	hb, err := ttlcheck.New(f.client(t), chk)
	require.NoError(t, err)
	startRun(t, hb)
	f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
	long := strings.Repeat("é", 3000) // 6000 bytes
	require.NoError(t, hb.Warn(t.Context(), long))
	c := f.check(chk.ID)
	assert.LessOrEqual(t, len(c.output), ttlcheck.MaxNoteSize)
	assert.Greater(t, len(c.output), ttlcheck.MaxNoteSize-8)
	assert.True(t, strings.HasSuffix(c.output, ttlcheck.TruncatedMarker))
	assert.True(t, utf8.ValidString(c.output))
	assert.True(t, strings.HasPrefix(long, strings.TrimSuffix(c.output, ttlcheck.TruncatedMarker)))

	exact := strings.Repeat("x", ttlcheck.MaxNoteSize)
	require.NoError(t, hb.Pass(t.Context(), exact))
	assert.Equal(t, exact, f.check(chk.ID).output, "a note of MaxNoteSize is kept whole")
}

func TestLoggerProbePanic(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	logs := &logRecorder{}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithLogger(slog.New(logs)),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) { panic("kaboom") }))
	require.NoError(t, err)
	startRun(t, hb)
	f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
	require.Eventually(t, func() bool { return len(logs.records("ttlcheck: probe panicked")) > 0 }, time.Second, 10*time.Millisecond)
	rec := logs.records("ttlcheck: probe panicked")[0]
	assert.Equal(t, slog.LevelError, rec.Level)
	assert.Equal(t, "kaboom", rec.Attrs["panic"])
	assert.Contains(t, rec.Attrs["stack"], "ttlcheck")
	// The change is logged once the agent has answered the update, which
	// may be after the fake recorded it.
	require.Eventually(t, func() bool { return len(logs.records("ttlcheck: status changed")) > 0 }, time.Second, 10*time.Millisecond)
	ch := logs.records("ttlcheck: status changed")
	assert.Equal(t, slog.LevelWarn, ch[0].Level)
	assert.Equal(t, "critical", ch[0].Attrs["to"])
}

// A transient failure of the deregistration when Run returns (the agent
// restarting, a 5xx while it resolves the token) is retried within the
// cleanup's time: a single attempt once left the check behind.
func TestDeregisterRetriesTransientError(t *testing.T) {
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
			stop := startRun(t, hb)
			f.waitCheck(t, chk.ID, 2*time.Second, "registered", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
			var failed atomic.Int32
			f.setHook(func(r fakeReq) (int, string) {
				if strings.Contains(r.Path, "/deregister/") && failed.Add(1) == 1 {
					return http.StatusInternalServerError, "rpc error making call: No cluster leader"
				}
				return 0, ""
			})
			err = stop()
			assert.Nil(t, f.check(chk.ID), "the check was left behind after one transient failure (Run returned %v)", err)
			assert.ErrorIs(t, err, context.Canceled)
			assert.NotContains(t, err.Error(), "deregistering")
		})
	}
}

// NewService refuses a registration whose other checks the api would
// refuse, with a *ConfigError: Run once found out, with an
// api.ValidationError, after a pause.
func TestNewServiceValidatesOtherChecks(t *testing.T) {
	f := newFakeAgent(t)
	chk := ttlcheck.Check{ID: "web-alive", Name: "alive", TTL: 3 * time.Second}
	for name, reg := range map[string]*api.AgentServiceRegistration{
		"HTTP check without interval": {Name: "web", Checks: api.AgentServiceChecks{{HTTP: "http://127.0.0.1:1/"}}},
		"nil check":                   {Name: "web", Checks: api.AgentServiceChecks{nil}},
		"check of no kind":            {Name: "web", Check: &api.AgentServiceCheck{Name: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			hb, err := ttlcheck.NewService(f.client(t), reg, chk)
			if err == nil {
				runErr := hb.Run(t.Context())
				t.Errorf("NewService accepted it; Run then returned %v", runErr)
				return
			}
			var ce *ttlcheck.ConfigError
			assert.ErrorAs(t, err, &ce)
		})
	}
}

// A tiny interval would default the probe timeout to 0 (an explicit
// WithProbeTimeout(0) is refused): every probe would get an expired
// context and every beat report Critical. New refuses it.
func TestTinyIntervalZeroProbeTimeout(t *testing.T) {
	f := newFakeAgent(t)
	hb, err := ttlcheck.New(f.client(t), ttlcheck.Check{ID: "a", Name: "a", TTL: time.Second},
		ttlcheck.WithInterval(time.Nanosecond),
		ttlcheck.WithProbe(func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Passing, "" }))
	if err == nil {
		t.Errorf("accepted: interval %v, probe timeout %v", hb.Interval(), hb.ProbeTimeout())
	}
}

// A probe that started before Fail was called, and returns (Passing) just
// after, must not replace Fail's status before it is sent: it once did, so
// the agent never got Critical while Fail returned nil ("sends it at
// once"). The result is from an observation older than the Fail call. Made likely by keeping the loop
// busy (a slow update for an earlier Pass) while Fail is called and the
// probe returns; the loop then picks kick or result at random.
func TestFailNotOverriddenByOlderProbe(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 3 * time.Second
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	logs := &logRecorder{}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(time.Second), ttlcheck.WithLogger(slog.New(logs)),
		ttlcheck.WithProbe(func(ctx context.Context) (ttlcheck.Status, string) {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-gate:
			case <-ctx.Done():
			}
			return ttlcheck.Passing, "probe"
		}))
	require.NoError(t, err)
	startRun(t, hb)
	var slow atomic.Bool
	inSlow := make(chan struct{}, 1)
	f.setHook(func(r fakeReq) (int, string) {
		if strings.HasPrefix(r.Path, "/v1/agent/check/update/") && slow.CompareAndSwap(true, false) {
			inSlow <- struct{}{}
			time.Sleep(300 * time.Millisecond) // the loop is busy sending
		}
		return 0, ""
	})
	lost := 0
	const rounds = 6
	for i := 0; i < rounds; i++ {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("no probe started")
		}
		// entered may be stale (a probe that timed out): wait for the
		// next one if the gate is not taken at once.
		slow.Store(true)
		go func() { _ = hb.Pass(context.Background(), "pass") }()
		<-inSlow
		note := "fail " + string(rune('a'+i))
		failed := make(chan error, 1)
		go func() { failed <- hb.Fail(context.Background(), note) }()
		time.Sleep(30 * time.Millisecond) // Fail has recorded its status
		select {
		case gate <- struct{}{}: // the probe returns Passing now
		case <-time.After(5 * time.Second):
			t.Fatal("probe not waiting")
		}
		gated := time.Now()
		require.NoError(t, <-failed)
		t.Logf("round %d: gate at %s, Fail returned at %s", i, gated.Format("05.000"), time.Now().Format("05.000"))
		seen := false
		for _, r := range f.requests("/v1/agent/check/update/") {
			if r.Body["Output"] == note {
				seen = true
			}
		}
		if !seen {
			lost++
			var outs []any
			for _, r := range f.requests("/v1/agent/check/update/") {
				outs = append(outs, r.At.Format("05.000")+" "+str(r.Body["Output"]))
			}
			t.Logf("round %d lost; outputs so far: %v", i, outs)

		}
	}
	assert.Zero(t, lost, "Fail returned nil but its Critical never reached the agent in %d of %d rounds", lost, rounds)
}

// A first registration answered with a 5xx that the agent applied anyway
// (a 502/504 from a proxy in front of the agent whose upstream applied it)
// is deregistered when Run returns before the retry: it once counted as
// never having reached the agent, and the check was left behind.
func TestApplied5xxRegistrationIsDeregistered(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 10 * time.Second // first retry after 208..416ms
	got504 := make(chan struct{})
	var once atomic.Bool
	f.setHook(func(r fakeReq) (int, string) {
		if r.Path == "/v1/agent/check/register" && once.CompareAndSwap(false, true) {
			f.addCheck(r.Body, chk.ID, "") // applied upstream (f.mu is held)
			close(got504)
			return http.StatusGatewayTimeout, "upstream request timeout"
		}
		return 0, ""
	})
	hb, err := ttlcheck.New(f.client(t), chk)
	require.NoError(t, err)
	stop := startRun(t, hb)
	<-got504
	time.Sleep(100 * time.Millisecond) // the client has the 504; its retry is 208ms+ away
	t.Logf("run: %v; reqs: %v", stop(), f.requests("/"))
	assert.Nil(t, f.check(chk.ID), "a registration applied behind a 504 was left behind")
}

// hangingProbe answers Passing at once or, while hanging is set, signals
// hung and waits for its context to end: it times out.
type hangingProbe struct {
	hanging atomic.Bool
	hung    chan struct{}
}

func newHangingProbe() *hangingProbe { return &hangingProbe{hung: make(chan struct{}, 1)} }

func (p *hangingProbe) probe(ctx context.Context) (ttlcheck.Status, string) {
	if p.hanging.Load() {
		select {
		case p.hung <- struct{}{}:
		default:
		}
		<-ctx.Done()
	}
	return ttlcheck.Passing, ""
}

// waitHung waits for a probe to hang, failing t with msg after d.
func (p *hangingProbe) waitHung(t *testing.T, d time.Duration, msg string) {
	t.Helper()
	select {
	case <-p.hung:
	case <-time.After(d):
		t.Fatal(msg)
	}
}
