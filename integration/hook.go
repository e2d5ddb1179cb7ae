package integration

import (
	"net/http"
	"sync/atomic"

	"github.com/consulkit/consulkit/api"
)

// HookTransport is an http.RoundTripper that passes each request to a hook
// before sending it to the agent: the hook may observe it, hold it (until
// its context ends, as on a connection that died without a reset) or fail
// it by returning an error.
type HookTransport struct {
	base *http.Transport
	hook atomic.Pointer[func(*http.Request) error]
}

// RoundTrip runs the hook, then sends r unless the hook failed it.
func (h *HookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f := h.hook.Load(); f != nil {
		if err := (*f)(r); err != nil {
			return nil, err
		}
	}
	return h.base.RoundTrip(r)
}

// Set installs f as the hook (nil: none).
func (h *HookTransport) Set(f func(*http.Request) error) {
	if f == nil {
		h.hook.Store(nil)
		return
	}
	h.hook.Store(&f)
}

// HookedClient returns a client for the agent whose requests go through a
// HookTransport; its idle connections are closed when the test ends.
func (a *Agent) HookedClient(tb TB) (*api.Client, *HookTransport) {
	tb.Helper()
	ht := &HookTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := a.Config()
	cfg.Transport = ht
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("integration: client: %v", err)
	}
	tb.Cleanup(ht.base.CloseIdleConnections)
	return c, ht
}
