package integration

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
)

// Fault is what a FaultProxy does to the requests it receives.
type Fault int

// Faults.
const (
	// Pass forwards requests to the agent.
	Pass Fault = iota
	// ServerError answers 500 with a generic message.
	ServerError
	// NoLeader answers 500 "No cluster leader", as Consul does during an
	// election.
	NoLeader
	// Hang accepts requests and never answers until the fault is changed
	// (the connection then drops after the first bytes of an answer, and
	// the request fails) or the client gives up.
	Hang
)

// FaultProxy is an HTTP proxy in front of an agent that can fail requests
// on demand, to test behaviour under transient faults.
type FaultProxy struct {
	// Addr is the proxy's address, host:port, to use as a client's Address.
	Addr string

	srv      *http.Server
	ln       net.Listener
	mu       sync.Mutex
	fault    Fault
	release  chan struct{} // closed to end hung requests
	delay    atomic.Int64  // time.Duration added before forwarding
	requests atomic.Int64
	wg       sync.WaitGroup

	stop     context.CancelFunc // ends stopped, under mu
	stopped  context.Context    // ends with Close: requests in the proxy end too
	handlers sync.WaitGroup     // requests in the proxy
}

// NewFaultProxy starts a proxy to the agent at target (host:port) on a
// free loopback port and stops it when the test ends.
func NewFaultProxy(tb TB, target string) *FaultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("integration: fault proxy: %v", err)
	}
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	p := &FaultProxy{Addr: ln.Addr().String(), ln: ln, release: make(chan struct{})}
	p.stopped, p.stop = context.WithCancel(context.Background())
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The fault and the release channel of a hang are read together,
		// so that a hang cannot wait on a channel Set has already
		// replaced; the request is counted after, so that a Set made once
		// Requests has counted it does not apply to it.
		p.mu.Lock()
		if p.stopped.Err() != nil {
			p.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
		p.handlers.Add(1)
		fault, rel := p.fault, p.release
		p.mu.Unlock()
		defer p.handlers.Done()
		// A request still in the proxy when it closes is dropped, not
		// forwarded later (its client's going away is not seen while its
		// body is unread).
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(p.stopped, cancel)()
		r = r.WithContext(ctx)
		p.requests.Add(1)
		switch fault {
		case ServerError:
			http.Error(w, "injected fault", http.StatusInternalServerError)
		case NoLeader:
			http.Error(w, "No cluster leader", http.StatusInternalServerError)
		case Hang:
			select {
			case <-rel:
				dropMidAnswer(w)
			case <-r.Context().Done():
				drop(w) // see below
			}
		default:
			if d := time.Duration(p.delay.Load()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					// Dropped, not answered: a handler that returns
					// gets its client a 200 with an empty body, which
					// a client still waiting (the proxy closes) would
					// take for a write done.
					drop(w)
					return
				}
			}
			rp.ServeHTTP(w, r)
		}
	})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	tb.Cleanup(p.Close)
	return p
}

// drop closes the connection of w's request without an answer, and
// returns (a panic with http.ErrAbortHandler would do as much, but leaves
// the handler's goroutine unwinding after Close has seen it done). When
// the connection cannot be taken, it is gone already: nothing is answered.
func drop(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// dropMidAnswer drops the connection of w's request after the first bytes
// of an answer. A connection dropped before any byte would not fail the
// request: net/http's transport sends a read (a GET) again when a
// connection it used before closes without an answer, and that copy would
// pass under the new fault.
func dropMidAnswer(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = buf.WriteString("HTTP/1.1 5")
	_ = buf.Flush()
	_ = conn.Close()
}

// Set changes the fault applied to requests from now on. Requests hung by
// Hang are dropped when the fault changes.
func (p *FaultProxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault == Hang && f != Hang {
		close(p.release)
		p.release = make(chan struct{})
	}
	p.fault = f
}

// SetDelay makes the proxy wait d before forwarding each request it passes
// from now on (0: forward at once), as a slow link or a busy agent would.
func (p *FaultProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Requests returns how many requests the proxy has received.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Close stops the proxy. Requests it still holds, hung or delayed (see
// SetDelay), fail: none is forwarded, or answered as if it had been.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	p.stop() // under mu: no handler starts once Wait below may run
	p.mu.Unlock()
	p.Set(Pass)
	_ = p.srv.Close()
	p.wg.Wait()
	p.handlers.Wait()
}

// ProxiedClient returns a client that reaches a through a new FaultProxy,
// and the proxy, which stops when the test ends. The client has a's
// address replaced by the proxy's and a's token.
func (a *Agent) ProxiedClient(tb TB) (*api.Client, *FaultProxy) {
	tb.Helper()
	p := NewFaultProxy(tb, a.Addr)
	cfg := a.Config()
	cfg.Address = p.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("integration: proxied client: %v", err)
	}
	return c, p
}
