package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// counter is an http.RoundTripper that counts the requests sent through it
// (by "METHOD /path-kind" too, for -v) and tracks the blocking queries in
// flight, so that the benchmark can wait until a contender is parked.
type counter struct {
	inner http.RoundTripper

	requests atomic.Int64
	dials    *atomic.Int64 // connections dialled by the transport (shared)

	mu       sync.Mutex
	byKind   map[string]int64
	inflight map[string]int // blocking GETs in flight, by path
}

func newCounter(inner http.RoundTripper, dials *atomic.Int64) *counter {
	return &counter{inner: inner, dials: dials, byKind: map[string]int64{}, inflight: map[string]int{}}
}

// RoundTrip counts r and sends it.
func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	blocking := r.Method == http.MethodGet && r.URL.Query().Has("index")
	c.mu.Lock()
	c.byKind[kind(r, blocking)]++
	if blocking {
		c.inflight[r.URL.Path]++
	}
	c.mu.Unlock()
	if blocking {
		defer func() {
			c.mu.Lock()
			c.inflight[r.URL.Path]--
			c.mu.Unlock()
		}()
	}
	return c.inner.RoundTrip(r)
}

// kind names a request by method and endpoint, without the key.
func kind(r *http.Request, blocking bool) string {
	p := r.URL.Path
	for _, pre := range []string{"/v1/kv/", "/v1/session/info/", "/v1/session/renew/", "/v1/session/destroy/"} {
		if strings.HasPrefix(p, pre) {
			p = pre + "…"
		}
	}
	q := r.URL.Query()
	for _, f := range []string{"acquire", "release", "cas", "consistent", "recurse"} {
		if q.Has(f) {
			p += "?" + f
		}
	}
	if blocking {
		p += " (blocking)"
	}
	return r.Method + " " + p
}

// snapshot is the counter's state at one moment.
type snapshot struct {
	requests int64
	dials    int64
	byKind   map[string]int64
}

func (c *counter) snap() snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.byKind))
	for k, v := range c.byKind {
		m[k] = v
	}
	return snapshot{requests: c.requests.Load(), dials: c.dials.Load(), byKind: m}
}

// since returns the requests and dials since s, and a per-kind breakdown.
func (c *counter) since(s snapshot) (requests, dials int64, breakdown string) {
	now := c.snap()
	var parts []string
	for k, v := range now.byKind {
		if d := v - s.byKind[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, d))
		}
	}
	sort.Strings(parts)
	return now.requests - s.requests, now.dials - s.dials, strings.Join(parts, ", ")
}

// blockingInFlight returns the number of blocking GETs in flight on path
// (all paths when path is empty).
func (c *counter) blockingInFlight(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if path != "" {
		return c.inflight[path]
	}
	n := 0
	for _, v := range c.inflight {
		n += v
	}
	return n
}

// waitBlocking waits until at least n blocking GETs are in flight on path.
func (c *counter) waitBlocking(ctx context.Context, path string, n int) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for c.blockingInFlight(path) < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d blocking queries on %q (have %d): %w", n, path, c.blockingInFlight(path), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// dialer dials TCP connections, counting them and, when the agent is on
// 127.0.0.1, spreading them over several loopback source addresses: Consul
// accepts at most 200 HTTP connections per client IP
// (limits.http_max_conns_per_client), and every held lock keeps one
// blocking query, hence one connection, open.
type dialer struct {
	rotate bool
	next   atomic.Uint32
	dials  atomic.Int64
}

// sourceAddrs is how many loopback source addresses the dialer uses.
const sourceAddrs = 8

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if d.rotate {
		i := d.next.Add(1) % sourceAddrs
		nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}
	}
	conn, err := nd.DialContext(ctx, network, addr)
	if err == nil {
		d.dials.Add(1)
	}
	return conn, err
}

// canRotate reports whether addr is on 127.0.0.1, where source addresses
// from 127.0.0.0/8 reach it.
func canRotate(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}

// consulkitTransport mirrors the settings of consulkit's default
// transport (api/config.go), with the benchmark's dialer.
func consulkitTransport(d *dialer) *http.Transport {
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        2 << 10,
		WriteBufferSize:       1 << 10,
	}
}
