package semaphore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// TestMain runs the package's tests through the harness, which stops the
// shared agent afterwards and checks for leaked goroutines.
func TestMain(m *testing.M) { integration.Main(m) }

// semPrefix returns a prefix unique to the test, deleted when it ends.
func semPrefix(t *testing.T) string {
	t.Helper()
	return integration.Shared(t).KeyPrefix(t, "consulkit-test/semaphore")
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

// waitWatchSent waits until the counter has recorded, since its last
// Reset, a holder's watch: a blocking query with an index.
func waitWatchSent(t *testing.T, ct *integration.RequestCounter) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, r := range ct.Requests() {
			if strings.HasPrefix(r, "GET ") && strings.Contains(r, "index=") {
				return true
			}
		}
		return false
	}, 5*time.Second, time.Millisecond, "the watch was not sent: %v", ct.Requests())
}

// deleteContender deletes sid's contender key under prefix, as an
// operator might.
func deleteContender(t *testing.T, c *api.Client, prefix, sid string) {
	_, err := c.KV().Delete(t.Context(), prefix+"/"+sid, nil)
	require.NoError(t, err)
}

// releaseContender releases sid's contender key under prefix, as an
// operator might, leaving the key.
func releaseContender(t *testing.T, c *api.Client, prefix, sid string) {
	ok, _, err := c.KV().Release(t.Context(), &api.KVPair{Key: prefix + "/" + sid, Flags: semaphore.Flag, Session: sid}, nil)
	require.NoError(t, err)
	require.True(t, ok)
}

// proxiedSemaphore returns a Semaphore of limit 1 on a fresh prefix, over
// a session of its own, whose requests go through a fault proxy (c); plain
// is a client that bypasses the proxy.
func proxiedSemaphore(t *testing.T) (s *semaphore.Semaphore, sess *session.Session, c *api.Client, proxy *integration.FaultProxy, plain *api.Client, prefix string) {
	t.Helper()
	plain = newClient(t)
	c, proxy = integration.Shared(t).ProxiedClient(t)
	prefix = semPrefix(t)
	sess = integration.NewSession(t, plain)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	return s, sess, c, proxy, plain, prefix
}
