package election_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// A leader (Campaign, not Run) whose session is destroyed from outside is
// deposed at once; the session must be told too.
func TestDeposedByInvalidationTellsTheSession(t *testing.T) {
	c := newClient(t)
	s := integration.NewSession(t, c, session.WithTTL(time.Minute), session.WithLockDelay(0))
	e, err := election.New(c, electionKey(t), election.WithSession(s))
	require.NoError(t, err)
	leading, err := e.Campaign(t.Context(), []byte("a"))
	require.NoError(t, err)
	_, err = c.Session().Destroy(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	integration.WaitDone(t, leading, 10*time.Second)
	assert.ErrorIs(t, e.Resign(t.Context()), election.ErrDeposed) // waits for the term's cleanup
	assert.ErrorIs(t, s.Err(), session.ErrInvalidated, "the session was not told the key was released by its invalidation")
}
