package ttlcheck_test

import (
	"context"
	"errors"
	"net/http"
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

// TestNoteNotUTF8IsBoundedHere: a note that is not valid UTF-8 (a probe
// relaying a command's Latin-1 output, or output cut at a byte count in
// the middle of a character, as cmd/consulkit's shellProbe does) is still
// bounded to MaxNoteSize at the agent, and cut with TruncatedMarker, as
// the package doc promises ("Notes are bounded to MaxNoteSize (4 KiB) and
// cut with TruncatedMarker").
func TestNoteNotUTF8IsBoundedHere(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	tests := []struct {
		name string
		note string
	}{
		// 3000 bytes of Latin-1 text: under MaxNoteSize as given.
		{name: "latin1", note: strings.Repeat("caf\xe9 ", 600)},
		// UTF-8 text cut at 4096 bytes, inside a character (shellProbe).
		{name: "cut rune", note: strings.Repeat("\u20ac", 2000)[:ttlcheck.MaxNoteSize]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := uniq(t, "alive")
			hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second})
			require.NoError(t, err)
			startRun(t, hb)
			deregisterAtCleanup(t, c, id)
			waitHealth(t, c, id, api.HealthPassing, 3*time.Second)

			require.LessOrEqual(t, len(tt.note), ttlcheck.MaxNoteSize)
			require.NoError(t, hb.Warn(t.Context(), tt.note))
			ac := agentCheck(t.Context(), t, c, id)
			require.NotNil(t, ac)
			assert.Equal(t, api.HealthWarning, ac.Status)
			tail := ac.Output[max(0, len(ac.Output)-45):]
			t.Logf("agent output: %d bytes, ending %q", len(ac.Output), tail)
			assert.LessOrEqual(t, len(ac.Output), ttlcheck.MaxNoteSize, "note bounded to MaxNoteSize at the agent")
			assert.NotContains(t, tail, "(captured", "cut by Consul, not by ttlcheck")
		})
	}
}

// TestRefreshAfterLapseSendsTheFreshStatus: a beat that waited out
// an outage longer than the TTL is probed again, "so that the agent, once
// it answers, gets what the probe says then, not what it said before the
// outage". Once the check has already lapsed there is nothing left to save
// by hurrying, yet the attempt that goes with the refresh probe is sent at
// once, with the status from before the outage; the agent answering just
// then turns the lapsed (critical) check back to passing although the
// application died during the outage, and the refresh probe's Critical is
// dropped until the next beat, an interval later.
func TestRefreshAfterLapseSendsTheFreshStatus(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	plain := a.Client(t)
	c, hook := a.HookedClient(t)
	id := uniq(t, "alive")

	var dead atomic.Bool
	deadProbeStarted := make(chan struct{})
	var startedOnce sync.Once
	probe := func(ctx context.Context) (ttlcheck.Status, string) {
		if dead.Load() {
			startedOnce.Do(func() { close(deadProbeStarted) })
			time.Sleep(300 * time.Millisecond) // a probe that answers well within its timeout
			return ttlcheck.Critical, "database gone"
		}
		return ttlcheck.Passing, "ok"
	}
	// TTL 3s, beats every 2s (valid: shorter than the TTL), probe timeout 1s.
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 3 * time.Second},
		ttlcheck.WithInterval(2*time.Second), ttlcheck.WithProbe(probe))
	require.NoError(t, err)
	startRun(t, hb)
	deregisterAtCleanup(t, plain, id)
	waitAgent(t, plain, id, api.HealthPassing, 5*time.Second, func(o string) bool { return o == "ok" })

	var down atomic.Bool
	var mu sync.Mutex
	var firstBack []byte // the body of the first update accepted after the outage
	hook.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/agent/check/update/") || !down.Load() {
			return nil
		}
		if dead.Load() {
			// The agent answers again as the probe that sees the
			// application dead runs.
			select {
			case <-deadProbeStarted:
			case <-time.After(100 * time.Millisecond):
			}
			select {
			case <-deadProbeStarted:
				down.Store(false)
				mu.Lock()
				firstBack = integration.Body(r)
				mu.Unlock()
				return nil
			default:
			}
		}
		return errors.New("injected: agent unreachable")
	})
	down.Store(true)
	// The outage outlasts the TTL: the agent marks the check critical.
	waitAgent(t, plain, id, api.HealthCritical, 6*time.Second, func(o string) bool { return strings.Contains(o, "TTL expired") })
	// Then the application dies, still during the outage.
	dead.Store(true)
	require.Eventually(t, func() bool { return !down.Load() }, 6*time.Second, 20*time.Millisecond, "the agent was never reached again")

	mu.Lock()
	body := string(firstBack)
	mu.Unlock()
	t.Logf("first update after the outage: %s", body)
	ac := agentCheck(t.Context(), t, plain, id)
	require.NotNil(t, ac)
	t.Logf("agent right after the outage: %s %q", ac.Status, ac.Output)
	assert.Contains(t, body, `"Status":"critical"`, "the first update after the outage carries what the probe says then")
	assert.NotEqual(t, api.HealthPassing, ac.Status, "a lapsed check turned passing although the probe, running as the agent came back, says critical")
}

// TestHungProbeThatReturnsIsFollowedByAFreshOne: a probe that ignored its
// context and hung returns while the next cycle's probe was skipped (it
// was still in flight then). WithProbe promises "until it returns, each
// beat reports Critical and no new probe is started"; yet the beat after
// it returned reports Critical with "probe has not returned for ..." -
// false, since it has - and no fresh probe looks at the application,
// although there is time left before the beat.
func TestHungProbeThatReturnsIsFollowedByAFreshOne(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	plain := a.Client(t)
	c, hook := a.HookedClient(t)
	id := uniq(t, "alive")

	var hangNext atomic.Bool
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseProbe := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseProbe)
	probe := func(ctx context.Context) (ttlcheck.Status, string) {
		if hangNext.CompareAndSwap(true, false) {
			<-release // ignores ctx
			return ttlcheck.Passing, "ok (after hanging)"
		}
		return ttlcheck.Passing, "ok"
	}
	// Beats every 1s, probes start 500ms before each beat.
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 3 * time.Second}, ttlcheck.WithProbe(probe))
	require.NoError(t, err)

	type upd struct {
		at   time.Time
		body string
	}
	var mu sync.Mutex
	var updates []upd
	hook.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/agent/check/update/") {
			b := integration.Body(r)
			mu.Lock()
			updates = append(updates, upd{time.Now(), string(b)})
			mu.Unlock()
		}
		return nil
	})
	find := func(from int, sub string) (int, upd) {
		mu.Lock()
		defer mu.Unlock()
		for i := from; i < len(updates); i++ {
			if strings.Contains(updates[i].body, sub) {
				return i, updates[i]
			}
		}
		return -1, upd{}
	}

	stop := startRun(t, hb)
	deregisterAtCleanup(t, plain, id)
	waitAgent(t, plain, id, api.HealthPassing, 5*time.Second, nil)
	hangNext.Store(true)

	// The hung probe's own beat says it timed out.
	var i int
	var timedOut upd
	require.Eventually(t, func() bool { i, timedOut = find(0, "probe timed out"); return i >= 0 }, 5*time.Second, 10*time.Millisecond)
	// The next cycle's probe was due to start 500ms after that beat and
	// was skipped (the hung one was in flight). The hung probe returns
	// 750ms after that beat, 250ms before the next one.
	time.Sleep(time.Until(timedOut.at.Add(750 * time.Millisecond)))
	releaseProbe()
	returned := time.Now()

	var next upd
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(updates) > i+1 {
			next = updates[i+1]
			return true
		}
		return false
	}, 3*time.Second, 10*time.Millisecond)
	t.Logf("beat %s after the probe returned: %s", next.at.Sub(returned).Round(time.Millisecond), next.body)
	require.True(t, next.at.After(returned), "the beat came after the probe returned")
	assert.NotContains(t, next.body, "has not returned", "the probe had returned before this beat")
	assert.Contains(t, next.body, `"Status":"passing"`, "no fresh probe was run although the hung one returned before the beat")
	require.ErrorIs(t, stop(), context.Canceled)
}

// TestNewServiceRefusesTheIDOfAServiceCheck: NewService refuses a Check.ID that is
// already the ID of one of the service's checks ("is already a check of the
// service"), but not when that ID is the one Consul gives (and NewService
// itself assigns) to a check registered without an ID: "service:<id>", or
// "service:<id>:<n>" when there are several. Both checks then go to the
// agent under one ID, and the heartbeat's replaces the service's own check.
func TestNewServiceRefusesTheIDOfAServiceCheck(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	tests := []struct {
		name    string
		reg     func(svc string) *api.AgentServiceRegistration
		checkID func(svc string) string
	}{
		{name: "single", reg: func(svc string) *api.AgentServiceRegistration {
			return &api.AgentServiceRegistration{ID: svc, Name: svc, Check: &api.AgentServiceCheck{Name: "own", TTL: api.Duration(time.Minute)}}
		}, checkID: func(svc string) string { return "service:" + svc }},
		{name: "numbered", reg: func(svc string) *api.AgentServiceRegistration {
			return &api.AgentServiceRegistration{ID: svc, Name: svc, Checks: api.AgentServiceChecks{
				{Name: "own1", TTL: api.Duration(time.Minute)}, {Name: "own2", TTL: api.Duration(time.Minute)},
			}}
		}, checkID: func(svc string) string { return "service:" + svc + ":1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := uniq(t, "svc")
			reg := tt.reg(svc)
			ownChecks := 1 + len(reg.Checks)
			if reg.Check == nil {
				ownChecks--
			}
			hb, err := ttlcheck.NewService(c, reg, ttlcheck.Check{ID: tt.checkID(svc), Name: "alive", TTL: 2 * time.Second})
			if !assert.ErrorIs(t, err, ttlcheck.ErrInvalid, "Check.ID collides with the ID of one of the service's own checks") {
				// Show what the agent gets.
				stop := startRun(t, hb)
				t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), svc, nil) })
				require.Eventually(t, func() bool { return agentCheck(t.Context(), t, c, tt.checkID(svc)) != nil }, 5*time.Second, 20*time.Millisecond)
				checks, _, err := c.Agent().Checks(t.Context(), nil)
				require.NoError(t, err)
				var names []string
				for _, ch := range checks {
					if ch.ServiceID == svc {
						names = append(names, ch.CheckID+"="+ch.Name)
					}
				}
				t.Logf("the agent's checks of the service: %v", names)
				assert.Len(t, names, ownChecks+1, "the service's own checks and the heartbeat's")
				require.ErrorIs(t, stop(), context.Canceled)
			}
		})
	}
}

// TestHungProbeReturningLateDoesNotDelayTheBeatPastTheTTL: WithProbe
// promises that a probe that ignores its context "does not delay the
// beats", and WithInterval that "a beat is sent at most one interval after
// the previous successful one". A hung probe that returns shortly before
// the next beat now starts a fresh probe at once, and startProbe gives
// that one half the probe timeout, moving the beat past its due time: with
// an interval close to the TTL, past the TTL, and the agent marks the
// check critical ("TTL expired") between two passing beats.
// TestHungProbeReturningLateDoesNotDelayTheBeatPastTheTTL: the fresh
// probe run once a hung one returns, just before the beat, runs within
// that beat's deadline: it was given half a probe timeout past it, and
// with an interval close to the TTL the check lapsed between two passing
// beats.
func TestHungProbeReturningLateDoesNotDelayTheBeatPastTheTTL(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, hook := a.HookedClient(t)
	id := uniq(t, "alive")

	const (
		ttl      = 3 * time.Second
		interval = 2500 * time.Millisecond
		timeout  = 2400 * time.Millisecond
	)
	var calls atomic.Int64
	hungStarted := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseProbe := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseProbe)
	probe := func(ctx context.Context) (ttlcheck.Status, string) {
		if calls.Add(1) == 2 {
			close(hungStarted)
			<-release // ignores ctx
			return ttlcheck.Passing, "ok (after hanging)"
		}
		return ttlcheck.Passing, "ok"
	}
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: ttl},
		ttlcheck.WithProbe(probe), ttlcheck.WithInterval(interval), ttlcheck.WithProbeTimeout(timeout))
	require.NoError(t, err)

	var mu sync.Mutex
	var updates []time.Time
	hook.Set(func(r *http.Request) error {
		if strings.HasPrefix(r.URL.Path, "/v1/agent/check/update/") {
			mu.Lock()
			updates = append(updates, time.Now())
			mu.Unlock()
		}
		return nil
	})
	nth := func(n int) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(updates) > n {
			return updates[n], true
		}
		return time.Time{}, false
	}

	stop := startRun(t, hb)
	deregisterAtCleanup(t, plain, id)

	// The second probe hangs; the application says it is fine meanwhile,
	// so the beat of that cycle is passing (the probe's timeout is older).
	select {
	case <-hungStarted:
	case <-time.After(5 * time.Second):
		t.Fatal("second probe not started")
	}
	require.NoError(t, hb.Pass(t.Context(), "app: ok"))
	var beat time.Time
	require.Eventually(t, func() bool { var ok bool; beat, ok = nth(2); return ok }, 5*time.Second, 5*time.Millisecond)

	// Watch the agent's view until the next beat.
	var expired atomic.Bool
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			if _, ok := nth(3); ok {
				return
			}
			if hc := agentCheck(context.Background(), t, plain, id); hc != nil && strings.Contains(hc.Output, "TTL expired") {
				expired.Store(true)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// The hung probe returns 100ms before the next beat is due.
	time.Sleep(time.Until(beat.Add(interval - 100*time.Millisecond)))
	releaseProbe()

	var next time.Time
	require.Eventually(t, func() bool { var ok bool; next, ok = nth(3); return ok }, 5*time.Second, 5*time.Millisecond)
	<-watchDone
	gap := next.Sub(beat)
	t.Logf("beat %s after the previous one (interval %s, TTL %s)", gap.Round(time.Millisecond), interval, ttl)
	assert.LessOrEqual(t, gap, interval+400*time.Millisecond, "the beat came later than one interval after the previous one")
	assert.False(t, expired.Load(), "the check lapsed (TTL expired) between two beats")
	require.ErrorIs(t, stop(), context.Canceled)
}
