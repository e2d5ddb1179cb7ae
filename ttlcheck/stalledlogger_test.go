package ttlcheck_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/ttlcheck"
)

// TestBeatsGoOnWhileTheLoggerStalls: the Heartbeat's logger blocks (its
// output has stalled) from its first line on. The beats must keep their
// pace all the same: a log line that cannot be written must not let the
// check lapse to critical (and end the sessions tied to it). When ctx
// ends, Run deregisters the check before it waits for its lines to be
// written (no goroutine of the package outlives Run).
func TestBeatsGoOnWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	c := integration.Shared(t).Client(t)
	id := uniq(t, "alive")
	logs := integration.NewStalledHandler(t)
	hb, err := ttlcheck.New(c, ttlcheck.Check{ID: id, Name: "alive", TTL: 2 * time.Second},
		ttlcheck.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	stop := startRun(t, hb)
	t.Cleanup(logs.Release) // before stop: Run waits for the logger last
	deregisterAtCleanup(t, c, id)
	select {
	case <-logs.Entered():
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat logged nothing")
	}
	for end := time.Now().Add(3 * 2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		ac := agentCheck(t.Context(), t, c, id)
		require.NotNil(t, ac)
		require.Equal(t, api.HealthPassing, ac.Status, "the check lapsed: %s", ac.Output)
	}
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	assert.Eventually(t, func() bool { return agentCheck(t.Context(), t, c, id) == nil },
		5*time.Second, 50*time.Millisecond, "Run did not deregister the check while the logger stalled")
	logs.Release()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return once the logger was released")
	}
}
