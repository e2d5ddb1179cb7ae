package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/consulkit/consulkit/api"
)

// HookTransport is an http.RoundTripper that passes each request to a hook
// before sending it to the agent: the hook may observe it, hold it (until
// its context ends, as on a connection that died without a reset) or fail
// it by returning an error.
type HookTransport struct {
	base   *http.Transport
	hook   atomic.Pointer[func(*http.Request) error]
	answer atomic.Pointer[answerHook]
}

// answerHook replaces the body of one answer (see ReplaceNextBody).
type answerHook struct {
	match func(*http.Request, *http.Response) bool
	body  io.ReadCloser
	done  atomic.Bool
}

// RoundTrip runs the hook, then sends r unless the hook failed it.
func (h *HookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f := h.hook.Load(); f != nil {
		if err := (*f)(r); err != nil {
			return nil, err
		}
	}
	resp, err := h.base.RoundTrip(r)
	if a := h.answer.Load(); err == nil && a != nil && a.match(r, resp) && a.done.CompareAndSwap(false, true) {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		resp.Body, resp.ContentLength = a.body, -1
	}
	return resp, err
}

// ReplaceNextBody makes the next answer for which match is true arrive
// with body in place of the agent's, as a broken proxy or connection
// would leave it: http.NoBody for an empty answer, ResetBody for one cut
// off. The agent has answered in full: what the request asked for is
// done. The returned function reports whether an answer was replaced.
func (h *HookTransport) ReplaceNextBody(match func(*http.Request, *http.Response) bool, body io.ReadCloser) (replaced func() bool) {
	a := &answerHook{match: match, body: body}
	h.answer.Store(a)
	return a.done.Load
}

// ResetBody is a body whose every read fails with a connection reset.
var ResetBody io.ReadCloser = resetBody{}

type resetBody struct{}

func (resetBody) Read([]byte) (int, error) { return 0, syscall.ECONNRESET }
func (resetBody) Close() error             { return nil }

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

// Body returns r's body and puts an unread copy back, so that a hook can
// look at what a request sends and still let it go on.
func Body(r *http.Request) []byte {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, _ := io.ReadAll(r.Body)
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// DeliverLate sends a copy of r to the agent after d, whatever becomes of
// r itself: it is the request a client gave up on (its hook fails it, or
// its context ends) that still reaches Consul and is applied, as one held
// up in a busy agent or a slow network is. The returned channel is closed
// once the copy has been answered (the answer is discarded); a test waits
// for it before it ends.
func (h *HookTransport) DeliverLate(r *http.Request, d time.Duration) <-chan struct{} {
	body := Body(r)
	late := r.Clone(context.WithoutCancel(r.Context()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(d)
		late.Body = io.NopCloser(bytes.NewReader(body))
		late.ContentLength = int64(len(body))
		resp, err := h.base.RoundTrip(late)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
	return done
}

// HangFirst makes the first request for which match is true wait, without
// reaching the agent, until its context ends, as on a connection that
// died without a reset; every other request passes. It replaces the hook.
func (h *HookTransport) HangFirst(match func(*http.Request) bool) {
	var armed atomic.Bool
	armed.Store(true)
	h.Set(func(r *http.Request) error {
		if match(r) && armed.CompareAndSwap(true, false) {
			<-r.Context().Done()
			return r.Context().Err()
		}
		return nil
	})
}

// IsBlocking reports whether r is a blocking query (a read with an index):
// a holder's watch, say.
func IsBlocking(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("index") != ""
}

// HangBlocking is a hook (see HookTransport.Set) that makes every blocking
// query wait, without reaching the agent, until its context ends: a
// holder's watcher then sees no change. Other requests pass.
func HangBlocking(r *http.Request) error {
	if IsBlocking(r) {
		<-r.Context().Done()
		return r.Context().Err()
	}
	return nil
}

// FailBlocking is a hook (see HookTransport.Set) that fails every blocking
// query at once, as a transport error the caller retries: a holder's
// watcher then sees no change. Other requests pass.
func FailBlocking(r *http.Request) error {
	if IsBlocking(r) {
		return errors.New("integration: blocking query failed by the test")
	}
	return nil
}
