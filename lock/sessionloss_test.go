package lock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// A held lock whose session is destroyed from outside sees its key
// released at once; the session, shared with other holders, must be told
// too, not at its next scheduled renew (30 s away here).
func TestHeldLockLossTellsTheSession(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithTTL(time.Minute))
	l, err := lock.New(c, key(t), lock.WithSession(s))
	require.NoError(t, err)
	held, err := l.Lock(ctx)
	require.NoError(t, err)
	_, err = c.Session().Destroy(ctx, s.ID(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, held, 10*time.Second)
	require.ErrorIs(t, l.Unlock(ctx), lock.ErrNotHeld)
	// Unlock has waited for the watcher's cleanup.
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session was not told its key was released by its invalidation")
}
