package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file holds the httptest fake shared by the package's unit tests.
//
//	c, f := newFake(t, fakeReply{Body: `[{"Key":"a"}]`, Header: map[string]string{"X-Consul-Index": "7"}})
//	pairs, meta, err := c.KV().List(ctx, "a", nil)
//	got := f.last(t) // method, path, query, headers, body of the request
//
// newFakeHandler serves a handler of the test's own instead, for tests that
// need to block, hang up or vary the answer per request.

// fakeCall is one request the fake received.
type fakeCall struct {
	Method  string
	Path    string // decoded path
	RawPath string // path as sent on the wire (escaped)
	Query   url.Values
	// RawQuery is the query as sent: flags appear without "=" ("recurse").
	RawQuery string
	Header   http.Header
	Body     []byte
}

// fakeReply is a canned answer. The zero value is 200 with an empty body.
type fakeReply struct {
	Status int               // 0 means 200
	Header map[string]string // e.g. X-Consul-Index
	Body   string
}

// fake records every request and answers with its replies in order; the
// last reply repeats.
type fake struct {
	Server *httptest.Server

	mu      sync.Mutex
	calls   []fakeCall
	replies []fakeReply
}

// newFake starts a recording fake and returns a Client for it. For a client
// with another Config (a token, a datacenter, ...) use
// newFakeClient(t, f.Server.URL, func(c *Config) { ... }).
func newFake(t testing.TB, replies ...fakeReply) (*Client, *fake) {
	t.Helper()
	f := &fake{replies: replies}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	return newFakeClient(t, f.Server.URL), f
}

// newFakeHandler starts h behind an httptest server and returns a Client
// for it, adjusted by cfgs.
func newFakeHandler(t testing.TB, h http.HandlerFunc, cfgs ...func(*Config)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newFakeClient(t, srv.URL, cfgs...), srv
}

// newFakeClient returns a Client for the server at rawURL, adjusted by cfgs.
func newFakeClient(t testing.TB, rawURL string, cfgs ...func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Address = rawURL
	for _, f := range cfgs {
		f(&cfg)
	}
	c, err := NewClient(cfg)
	require.NoError(t, err)
	return c
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawPath:  r.URL.EscapedPath(),
		Query:    r.URL.Query(),
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
	})
	var rep fakeReply
	if len(f.replies) > 0 {
		rep = f.replies[0]
		if len(f.replies) > 1 {
			f.replies = f.replies[1:]
		}
	}
	f.mu.Unlock()
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}

// reply replaces the queue of replies.
func (f *fake) reply(replies ...fakeReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = replies
}

// all returns every request received so far.
func (f *fake) all() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// last returns the latest request; the test fails when there was none.
func (f *fake) last(t testing.TB) fakeCall {
	t.Helper()
	calls := f.all()
	require.NotEmpty(t, calls, "the fake received no request")
	return calls[len(calls)-1]
}
