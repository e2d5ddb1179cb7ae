package election_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// TestTakenKeyDeposesWhileTheLoggerStalls: the Election's logger blocks
// once the watch of its term logs a failed read, and the key is then
// deleted (the session lives on, renewed on another client). The leader
// must be deposed all the same, and Resign must not wait for the logger.
func TestTakenKeyDeposesWhileTheLoggerStalls(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, p := a.ProxiedClient(t)
	s := integration.NewSession(t, direct, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	logs := integration.NewStalledHandler(t)
	key := electionKey(t)
	e, err := election.New(c, key, election.WithSession(s), election.WithLogger(slog.New(logs)),
		election.WithWaitTime(time.Second))
	require.NoError(t, err)
	leading, err := e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)

	p.Set(integration.ServerError) // the watch's reads fail; the renews do not
	select {
	case <-logs.Entered():
	case <-time.After(15 * time.Second):
		t.Fatal("the term's watch logged nothing")
	}
	p.Set(integration.Pass)
	_, err = direct.KV().Delete(t.Context(), key, nil)
	require.NoError(t, err)
	integration.WaitDone(t, leading, 10*time.Second)
	assert.ErrorIs(t, context.Cause(leading), election.ErrDeposed)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err = integration.Within(t, 8*time.Second, "Resign waited for the logger",
		func() error { return e.Resign(ctx) }, logs.Release)
	assert.ErrorIs(t, err, election.ErrDeposed)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "Resign waited for the logger")
}
