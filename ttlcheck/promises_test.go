package ttlcheck_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/ttlcheck"
)

// The first retry of a failed beat comes after about an eighth of the
// interval (jittered, 50ms..1s), not after a whole interval, also when the
// TTL leaves plenty of time: with a 1s interval and a 10s TTL, a beat
// answered 503 once is retried within 125ms (plus scheduling), where a
// backoff that started at the interval would wait 500ms..1s.
func TestFirstRetryAfterAnEighthOfTheInterval(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 10 * time.Second
	var failed atomic.Int32
	f.setHook(func(r fakeReq) (int, string) {
		// Fail the first update after the first accepted one, once.
		if strings.HasPrefix(r.Path, "/v1/agent/check/update/") && len(f.checks[chk.ID].updates) == 1 && failed.Add(1) == 1 {
			return http.StatusServiceUnavailable, "rpc error: No cluster leader"
		}
		return 0, ""
	})
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithInterval(time.Second))
	require.NoError(t, err)
	stop := startRun(t, hb)
	f.waitCheck(t, chk.ID, 5*time.Second, "beats again after the error", func(c *fakeCheck) bool { return c != nil && len(c.updates) >= 2 })
	require.ErrorIs(t, stop(), context.Canceled)
	ups := f.requests("/v1/agent/check/update/")
	require.GreaterOrEqual(t, len(ups), 3)
	// ups[0] accepted, ups[1] answered 503, ups[2] its retry.
	retry := ups[2].At.Sub(ups[1].At)
	assert.Less(t, retry, 400*time.Millisecond, "first retry after %s", retry)
}

// A status set with Fail during an outage is kept for an interval before
// the waiting beat is probed over, whatever the state of the waiting beat
// when the call comes: here its last re-probe's deadline is long past (the
// probe hung through it), so that the first failed attempt after Fail
// would start a new probe, whose Passing would replace Fail's Critical
// before the agent is back.
func TestExplicitStatusNotProbedOverDuringAnOutage(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 3 * time.Second // interval 1s, probe timeout 500ms
	var hang atomic.Bool
	hung := make(chan struct{}, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseProbe := func() { releaseOnce.Do(func() { close(release) }) }
	probe := func(context.Context) (ttlcheck.Status, string) {
		if hang.Load() {
			select {
			case hung <- struct{}{}:
			default:
			}
			<-release // ignores its context
		}
		return ttlcheck.Passing, "probed"
	}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(probe))
	require.NoError(t, err)
	stop, down := runThenCutOff(t, f, hb)
	t.Cleanup(releaseProbe) // before stop
	hang.Store(true)
	select {
	case <-hung: // the waiting beat is probed again, and the probe hangs
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting beat was not probed again")
	}
	time.Sleep(2 * time.Second) // well past its deadline, and an interval more
	hang.Store(false)
	releaseProbe() // its late result is dropped; a new probe could start now
	time.Sleep(50 * time.Millisecond)

	// The first update after Fail fails too, then the agent is back.
	var phase atomic.Int32
	f.setHook(func(r fakeReq) (int, string) {
		if !strings.HasPrefix(r.Path, "/v1/agent/check/update/") {
			return 0, ""
		}
		if phase.Load() == 0 || phase.CompareAndSwap(1, 2) {
			return http.StatusServiceUnavailable, "rpc error: No cluster leader"
		}
		return 0, ""
	})
	down.Store(false) // runThenCutOff's hook is replaced
	before := len(f.check(chk.ID).updates)
	failed := make(chan error, 1)
	go func() { failed <- hb.Fail(context.Background(), "draining") }()
	time.Sleep(5 * time.Millisecond)
	phase.Store(1)

	c := f.waitCheck(t, chk.ID, 3*time.Second, "accepted again", func(c *fakeCheck) bool { return len(c.updates) > before })
	assert.Equal(t, api.HealthCritical, c.status, "the first update after the outage carries Fail's status")
	assert.Equal(t, "draining", c.output)
	require.NoError(t, <-failed)
	require.ErrorIs(t, stop(), context.Canceled)
}

// Pass, Warn or Fail while a waiting beat is being probed again during an
// outage is newer than what that probe will say: the agent, once back,
// gets the explicit status, not the probe's timeout.
func TestExplicitStatusDuringARefreshProbe(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 3 * time.Second // interval 1s, probe timeout 500ms
	p := newHangingProbe()
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(p.probe))
	require.NoError(t, err)
	stop, down := runThenCutOff(t, f, hb)
	time.Sleep(1500 * time.Millisecond) // the next beat (due 1s after the last) failed
	p.hanging.Store(true)
	p.waitHung(t, 5*time.Second, "the waiting beat was not probed again") // the probe will time out
	p.hanging.Store(false)
	warned := make(chan error, 1)
	go func() { warned <- hb.Warn(context.Background(), "degraded") }()
	time.Sleep(700 * time.Millisecond) // past the probe's deadline
	before := len(f.check(chk.ID).updates)
	down.Store(false)

	c := f.waitCheck(t, chk.ID, 3*time.Second, "accepted again", func(c *fakeCheck) bool { return len(c.updates) > before })
	assert.Equal(t, api.HealthWarning, c.status, "the first update after the outage carries Warn's status")
	assert.Equal(t, "degraded", c.output)
	require.NoError(t, <-warned)
	require.ErrorIs(t, stop(), context.Canceled)
}

// Run sends the first status as soon as the first probe answers, not when
// the first beat would be due (a probe timeout after Run started).
func TestFirstStatusSentAsSoonAsProbed(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 3 * time.Second // interval 1s, probe timeout 500ms
	probe := func(context.Context) (ttlcheck.Status, string) { return ttlcheck.Warning, "warming up" }
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(probe))
	require.NoError(t, err)
	start := time.Now()
	stop := startRun(t, hb)
	f.waitCheck(t, chk.ID, 3*time.Second, "first status", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
	require.ErrorIs(t, stop(), context.Canceled)
	regs := f.requests("/v1/agent/check/register")
	require.NotEmpty(t, regs)
	assert.Equal(t, api.HealthWarning, regs[0].Body["Status"])
	assert.Less(t, regs[0].At.Sub(start), 250*time.Millisecond, "registered %s after Run started", regs[0].At.Sub(start))
}

// A status set with Pass, Warn or Fail while a probe runs is newer than
// what that probe looked at: when the probe then misses its deadline, the
// beat carries the explicit status, not "probe timed out" (Fail's
// documentation: a probe already running when Fail is called looked
// before it, and its result is dropped).
func TestExplicitStatusWhileAProbeTimesOut(t *testing.T) {
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 3 * time.Second // interval 1s, probe timeout 500ms
	p := newHangingProbe()
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(p.probe))
	require.NoError(t, err)
	stop := startRun(t, hb)
	f.waitCheck(t, chk.ID, 3*time.Second, "passing", func(c *fakeCheck) bool { return c != nil && len(c.updates) > 0 })
	p.hanging.Store(true)
	p.waitHung(t, 3*time.Second, "no probe") // the next beat's probe runs, and will time out
	p.hanging.Store(false)
	require.NoError(t, hb.Warn(context.Background(), "degraded"))
	before := len(f.check(chk.ID).updates)
	c := f.waitCheck(t, chk.ID, 3*time.Second, "the next beat", func(c *fakeCheck) bool { return len(c.updates) > before })
	assert.Equal(t, api.HealthWarning, c.status, "the beat after Warn carries Warn's status")
	assert.Equal(t, "degraded", c.output)
	require.ErrorIs(t, stop(), context.Canceled)
}
