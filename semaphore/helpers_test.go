package semaphore_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// TestMain runs the package's tests through the harness, which stops the
// shared agent afterwards and checks for leaked goroutines.
func TestMain(m *testing.M) { integration.Main(m) }

// semPrefix returns a prefix unique to the test, deleted when it ends.
func semPrefix(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '/' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	prefix := "consulkit-test/semaphore/" + b.String()
	t.Cleanup(func() {
		c, closeClient := openClient(t)
		defer closeClient()
		_, _ = c.KV().DeleteTree(context.Background(), prefix+"/", nil)
	})
	return prefix
}

// newSession creates a session closed when the test ends.
func newSession(t *testing.T, c *api.Client, opts ...session.Option) *session.Session {
	t.Helper()
	s, err := session.New(t.Context(), c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// counter is an http.RoundTripper that counts the requests it forwards.
type counter struct {
	base *http.Transport
	n    atomic.Int64
	mu   sync.Mutex
	log  []string
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.log = append(c.log, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *counter) reset() {
	c.n.Store(0)
	c.mu.Lock()
	c.log = nil
	c.mu.Unlock()
}

func (c *counter) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// openClient returns a client for the shared agent with a transport of
// its own, and a func that closes its idle connections: the agent limits
// the connections of one client address, and the idle pools of many
// clients would exceed it with -count=N.
func openClient(t *testing.T) (*api.Client, func()) {
	t.Helper()
	c, ct := openCounting(t)
	return c, ct.base.CloseIdleConnections
}

func openCounting(t *testing.T) (*api.Client, *counter) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	ct := &counter{base: tr}
	cfg := integration.Shared(t).Config()
	cfg.Transport = ct
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	return c, ct
}

// countingClient returns a client for the shared agent whose requests are
// counted; its connections are closed when the test ends.
func countingClient(t *testing.T) (*api.Client, *counter) {
	t.Helper()
	c, ct := openCounting(t)
	t.Cleanup(ct.base.CloseIdleConnections)
	return c, ct
}

// newClient returns a client for the shared agent whose connections are
// closed when the test ends.
func newClient(t *testing.T) *api.Client {
	t.Helper()
	c, _ := countingClient(t)
	return c
}

// waitDone fails the test when ctx is not done within d.
func waitDone(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(d):
		t.Fatalf("context not cancelled within %s", d)
	}
}
