package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file holds the httptest fake shared by the package's unit tests.
//
//	c, f := newFake(t, fakeReply{Body: `[{"Key":"a"}]`, Header: map[string]string{"X-Consul-Index": "7"}})
//	pairs, meta, err := c.KV().List(ctx, "a", nil)
//	got := f.last(t) // method, path, query, headers, body of the request
//
// newTokenFake is the same with a client that sends fakeToken. On top of
// it, runWireCases checks table rows of "this call sends this request and
// makes this of that answer", and runInvalidCases checks that bad input
// fails validation without any request.
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

// fakeToken is the token sent by the clients of newTokenFake.
const fakeToken = "client-token"

// newFake starts a recording fake and returns a Client for it. For a client
// with another Config (a token, a datacenter, ...) use
// newFakeClient(t, f.Server.URL, func(c *Config) { ... }).
func newFake(t testing.TB, replies ...fakeReply) (*Client, *fake) {
	t.Helper()
	f := startFake(t, replies...)
	return newFakeClient(t, f.Server.URL), f
}

// newTokenFake is newFake with a client that sends fakeToken.
func newTokenFake(t testing.TB, replies ...fakeReply) (*Client, *fake) {
	t.Helper()
	f := startFake(t, replies...)
	return newFakeClient(t, f.Server.URL, withToken(fakeToken)), f
}

func startFake(t testing.TB, replies ...fakeReply) *fake {
	t.Helper()
	f := &fake{replies: replies}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Server.Close)
	return f
}

// withToken is a newFakeClient option setting Config.Token.
func withToken(token string) func(*Config) {
	return func(c *Config) { c.Token = token }
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

// count returns the number of requests received so far.
func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// wireCase is a table row of runWireCases: call runs the method under test
// against a newTokenFake answering reply, which must receive exactly one
// request, the expected one.
type wireCase struct {
	name  string
	reply fakeReply
	call  func(ctx context.Context, c *Client) (any, error)
	// The expected request. path is compared with the path as sent (with
	// its escapes), query with the raw query as sent ("" means none). body
	// is compared as JSON, with a Content-Type of application/json, when it
	// starts with '{' or '[', byte for byte otherwise; "" means an empty
	// body.
	method, path, query, body string
	// token is the expected X-Consul-Token; "" means fakeToken.
	token string
	// check inspects the result; nil means the call must succeed.
	check func(t *testing.T, got any, err error)
}

func runWireCases(t *testing.T, cases []wireCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newTokenFake(t, tc.reply)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := tc.call(ctx, c)
			if tc.check != nil {
				tc.check(t, got, err)
			} else {
				require.NoError(t, err)
			}
			reqs := f.all()
			require.Len(t, reqs, 1, "exactly one request")
			r := reqs[0]
			assert.Equal(t, tc.method, r.Method, "method")
			assert.Equal(t, tc.path, r.RawPath, "path")
			assert.Equal(t, tc.query, r.RawQuery, "query")
			want := tc.token
			if want == "" {
				want = fakeToken
			}
			assert.Equal(t, want, r.Header.Get("X-Consul-Token"), "token")
			if strings.HasPrefix(tc.body, "{") || strings.HasPrefix(tc.body, "[") {
				assert.JSONEq(t, tc.body, string(r.Body), "body")
				assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			} else {
				assert.Equal(t, tc.body, string(r.Body), "body")
			}
		})
	}
}

// invalidCase is a table row of runInvalidCases: call must fail with a
// *ValidationError naming field, without sending any request.
type invalidCase struct {
	name  string
	call  func(ctx context.Context, c *Client) error
	field string
}

func runInvalidCases(t *testing.T, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newTokenFake(t, fakeReply{Body: "{}"})
			err := tc.call(context.Background(), c)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.field, ve.Field)
			assert.Zero(t, f.count(), "no request may be sent")
		})
	}
}

// wantStatus returns a wireCase check that expects a *StatusError with
// code, matching target when target is not nil.
func wantStatus(code int, target error) func(*testing.T, any, error) {
	return func(t *testing.T, _ any, err error) {
		t.Helper()
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, code, se.Code)
		if target != nil {
			assert.ErrorIs(t, err, target)
		}
	}
}
