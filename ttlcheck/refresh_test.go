package ttlcheck_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/ttlcheck"
)

// A beat that waited out an outage is probed afresh before it is sent,
// but not when waiting for that probe could hold the next attempt past
// the moment the check lapses: with a valid setup where two intervals and
// a probe timeout exceed the TTL, and a slow (in-time) probe, an agent
// back 700ms before the lapse is reached in time.
func TestRefreshDoesNotHoldRetriesPastTheTTL(t *testing.T) {
	t.Parallel()
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 5 * time.Second
	var slow atomic.Bool
	hb := slowProbeHeartbeat(t, f, chk, &slow)
	stop, down := runThenCutOff(t, f, hb)
	c := f.check(chk.ID)
	last := c.updates[len(c.updates)-1] // the agent reset the TTL here
	slow.Store(true)
	// Past the refresh point (an interval after the failed beat was due),
	// 700ms before the check would lapse.
	time.Sleep(time.Until(last.Add(4300 * time.Millisecond)))
	down.Store(false)
	c = f.waitCheck(t, chk.ID, 5*time.Second, "accepted again", func(c *fakeCheck) bool {
		return c.updates[len(c.updates)-1].After(last)
	})
	var next time.Time
	for _, u := range c.updates {
		if u.After(last) {
			next = u
			break
		}
	}
	assert.Less(t, next.Sub(last), chk.TTL, "the check lapsed although the agent answered 700ms before the TTL ended")
	require.ErrorIs(t, stop(), context.Canceled)
}

// TestRefreshProbeCountsForTheNextBeat: when the beat that waited out an
// outage is accepted while its refresh probe still runs (within its
// deadline), that probe is the next cycle's, not a hung one. The setup is
// the one above (a probe timeout above half the interval, so that the
// next cycle's probe would start before the refresh probe's deadline): a
// probe that always answers Passing in time must never be reported
// Critical.
func TestRefreshProbeCountsForTheNextBeat(t *testing.T) {
	t.Parallel()
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 5 * time.Second
	var slow atomic.Bool
	hb := slowProbeHeartbeat(t, f, chk, &slow)
	stop, down := runThenCutOff(t, f, hb)
	last := f.check(chk.ID).updates[len(f.check(chk.ID).updates)-1]
	slow.Store(true)
	// As above: the agent answers again 700ms before the check would
	// lapse, while the refresh probe runs.
	time.Sleep(time.Until(last.Add(4300 * time.Millisecond)))
	down.Store(false)
	f.waitCheck(t, chk.ID, 12*time.Second, "four updates after the outage", func(c *fakeCheck) bool {
		n := 0
		for _, u := range c.updates {
			if u.After(last) {
				n++
			}
		}
		return n >= 4
	})
	require.ErrorIs(t, stop(), context.Canceled)
	for _, r := range f.requests("/v1/agent/check/update/") {
		st, _ := r.Body["Status"].(string)
		if !r.At.After(last) || st == "" {
			continue
		}
		out, _ := r.Body["Output"].(string)
		t.Logf("%s after the last beat before the outage: %s %q", r.At.Sub(last).Round(time.Millisecond), st, out)
		assert.Equal(t, "passing", st, "a probe that always answered Passing in time was reported %s: %q", st, out)
	}
}

// TestRefreshProbeNotCarriedOverWithoutOverlap: with a probe timeout
// under half the interval, the next cycle's probe starts after the
// refresh probe's deadline: it runs, and the next beat carries its
// result, not the refresh probe's, which is older than the probe timeout
// by then. Here the application fails after the refresh probe answered.
func TestRefreshProbeNotCarriedOverWithoutOverlap(t *testing.T) {
	t.Parallel()
	f := newFakeAgent(t)
	chk := unitCheck(t)
	chk.TTL = 5 * time.Second
	var slow atomic.Bool
	var failsAt atomic.Int64 // UnixNano; 0: never
	probe := func(ctx context.Context) (ttlcheck.Status, string) {
		if slow.Load() {
			select {
			case <-time.After(850 * time.Millisecond): // within its deadline
			case <-ctx.Done():
				return ttlcheck.Critical, "the probe's context ended"
			}
		}
		if at := failsAt.Load(); at != 0 && time.Now().UnixNano() > at {
			return ttlcheck.Critical, "failing"
		}
		return ttlcheck.Passing, "ok"
	}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(probe),
		ttlcheck.WithInterval(2*time.Second), ttlcheck.WithProbeTimeout(900*time.Millisecond))
	require.NoError(t, err)
	stop, down := runThenCutOff(t, f, hb)
	last := f.check(chk.ID).updates[len(f.check(chk.ID).updates)-1]
	slow.Store(true)
	failsAt.Store(last.Add(5800 * time.Millisecond).UnixNano())
	// The agent answers again while the refresh probe runs.
	time.Sleep(time.Until(last.Add(4750 * time.Millisecond)))
	down.Store(false)
	time.Sleep(time.Until(last.Add(9 * time.Second)))
	require.ErrorIs(t, stop(), context.Canceled)
	beats := 0
	for _, r := range f.requests("/v1/agent/check/update/") {
		st, _ := r.Body["Status"].(string)
		if !r.At.After(last.Add(6500*time.Millisecond)) || st == "" {
			continue
		}
		beats++
		out, _ := r.Body["Output"].(string)
		assert.Equal(t, "critical", st, "the beat %s after the last one before the outage carries a stale result: %q", r.At.Sub(last).Round(time.Millisecond), out)
	}
	assert.NotZero(t, beats, "no beat after the application failed")
}

// slowProbeHeartbeat is a heartbeat for chk through f, with an interval of
// 2s and a probe timeout of 1.8s (over half the interval), whose probe
// answers Passing ("ok"), after 1.6s (in time) while slow is set.
func slowProbeHeartbeat(t *testing.T, f *fakeAgent, chk ttlcheck.Check, slow *atomic.Bool) *ttlcheck.Heartbeat {
	t.Helper()
	probe := func(ctx context.Context) (ttlcheck.Status, string) {
		if slow.Load() {
			select {
			case <-time.After(1600 * time.Millisecond):
			case <-ctx.Done():
				return ttlcheck.Critical, "the probe's context ended"
			}
		}
		return ttlcheck.Passing, "ok"
	}
	hb, err := ttlcheck.New(f.client(t), chk, ttlcheck.WithProbe(probe),
		ttlcheck.WithInterval(2*time.Second), ttlcheck.WithProbeTimeout(1800*time.Millisecond))
	require.NoError(t, err)
	return hb
}
