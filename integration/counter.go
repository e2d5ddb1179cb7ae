package integration

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
)

// RequestCounter is an http.RoundTripper that counts and records the
// requests it forwards and the connections it opens, for tests that check
// how many requests an operation costs.
type RequestCounter struct {
	base  *http.Transport
	n     atomic.Int64
	dials atomic.Int64
	mu    sync.Mutex
	log   []string
}

// NewRequestCounter returns a counter over a transport of its own.
func NewRequestCounter() *RequestCounter {
	c := &RequestCounter{base: http.DefaultTransport.(*http.Transport).Clone()}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	c.base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	return c
}

// Dials returns the number of connections opened since the counter was
// made (Reset leaves it alone).
func (c *RequestCounter) Dials() int64 { return c.dials.Load() }

// RoundTrip counts and records r, then sends it.
func (c *RequestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.log = append(c.log, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

// Count returns the number of requests since the last Reset.
func (c *RequestCounter) Count() int64 { return c.n.Load() }

// Requests returns "METHOD path?query" of each request since the last
// Reset.
func (c *RequestCounter) Requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// Reset sets the count back to zero.
func (c *RequestCounter) Reset() {
	c.mu.Lock()
	c.n.Store(0)
	c.log = nil
	c.mu.Unlock()
}

// CloseIdleConnections closes the idle connections of the transport.
func (c *RequestCounter) CloseIdleConnections() { c.base.CloseIdleConnections() }

// CountingClient returns a client for the agent whose requests are
// counted; its idle connections are closed when the test ends.
func (a *Agent) CountingClient(tb TB) (*api.Client, *RequestCounter) {
	tb.Helper()
	rc := NewRequestCounter()
	cfg := a.Config()
	cfg.Transport = rc
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("integration: client: %v", err)
	}
	tb.Cleanup(rc.CloseIdleConnections)
	return c, rc
}
