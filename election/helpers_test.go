package election_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// TestMain runs the package's tests through the harness, which stops the
// shared agent afterwards and checks for leaked goroutines.
func TestMain(m *testing.M) { integration.Main(m) }

// electionKey returns a key unique to the test.
func electionKey(t *testing.T) string {
	t.Helper()
	return integration.Shared(t).KeyPrefix(t, "consulkit-test/election") + "/leader"
}

// countingClient returns a client for the shared agent whose requests are
// counted.
func countingClient(t *testing.T) (*api.Client, *integration.RequestCounter) {
	t.Helper()
	return integration.Shared(t).CountingClient(t)
}

// newClient returns a client for the shared agent.
func newClient(t *testing.T) *api.Client {
	t.Helper()
	return integration.Shared(t).Client(t)
}

// newCandidate returns a client, a fresh election key, a session of its own
// (lock delay 0) and an Election on the key through that session.
func newCandidate(t *testing.T) (*api.Client, string, *session.Session, *election.Election) {
	t.Helper()
	c := newClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	return c, key, s, e
}
