package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusErrorIs(t *testing.T) {
	sentinels := []error{ErrPermissionDenied, ErrACLNotFound, ErrRateLimited, ErrNoLeader, ErrNotFound}
	tests := []struct {
		name string
		code int
		body string
		want []error // the sentinels it matches; every other one must not
	}{
		{name: "403", code: 403, body: "Permission denied", want: []error{ErrPermissionDenied}},
		{name: "403 ACL not found", code: 403, body: "ACL not found", want: []error{ErrPermissionDenied, ErrACLNotFound}},
		{name: "404 ACL not found", code: 404, body: "ACL not found", want: []error{ErrNotFound, ErrACLNotFound}},
		{name: "404", code: 404, body: "", want: []error{ErrNotFound}},
		{name: "429", code: 429, body: "rate limit exceeded", want: []error{ErrRateLimited}},
		{name: "500 no leader", code: 500, body: "No cluster leader", want: []error{ErrNoLeader}},
		{name: "503 no leader", code: 503, body: "rpc error: No cluster leader", want: []error{ErrNoLeader}},
		{name: "500 other", code: 500, body: "rpc error making call: EOF"},
		{name: "400", code: 400, body: "Request decode failed"},
		{name: "409", code: 409, body: ""},
		{name: "400 mentions leader", code: 400, body: "No cluster leader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := &StatusError{Method: "GET", Path: "/v1/x", Code: tt.code, Body: tt.body}
			wrapped := fmt.Errorf("outer: %w", se)
			for _, s := range sentinels {
				want := false
				for _, w := range tt.want {
					want = want || w == s
				}
				assert.Equal(t, want, errors.Is(wrapped, s), "errors.Is(%v)", s)
			}
			assert.False(t, errors.Is(wrapped, ErrInvalid))
		})
	}
}

// TestStatusErrorQueryNotFound: Consul's cached execution of a missing
// prepared query answers 500 "Query not found" (its uncached path 404).
func TestStatusErrorQueryNotFound(t *testing.T) {
	se := &StatusError{Method: "GET", Path: "/v1/query/q/execute", Code: 500, Body: "Query not found"}
	assert.ErrorIs(t, se, ErrNotFound)
	assert.False(t, IsRetryable(se))
	other := &StatusError{Method: "GET", Path: "/v1/kv/a", Code: 500, Body: "Query not found"}
	assert.NotErrorIs(t, other, ErrNotFound, "only the query endpoints")
	assert.True(t, IsRetryable(other))
}

func TestStatusErrorMessage(t *testing.T) {
	se := &StatusError{Method: "PUT", Path: "/v1/kv/a", Code: 403, Body: "Permission denied\n"}
	assert.Equal(t, "consul: PUT /v1/kv/a: 403: Permission denied", se.Error())
	se = &StatusError{Method: "GET", Path: "/v1/x", Code: 502}
	assert.Equal(t, "consul: GET /v1/x: 502: Bad Gateway", se.Error())
}

// TestStatusErrorBodyBounded: at most 4 KiB of an error body is kept, and
// the rest is still drained.
func TestStatusErrorBodyBounded(t *testing.T) {
	body := strings.Repeat("a", maxErrorBody) + strings.Repeat("b", 100<<10)
	c, f := newFake(t, fakeReply{Status: 500, Body: body})
	_, err := c.query(t.Context(), "/v1/x", nil, nil)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Len(t, se.Body, maxErrorBody)
	assert.NotContains(t, se.Body, "b")
	assert.Equal(t, 500, se.Code)
	assert.Equal(t, "GET", se.Method)
	assert.Equal(t, "/v1/x", se.Path)
	assert.Len(t, f.all(), 1)
}

func TestValidationError(t *testing.T) {
	err := error(&ValidationError{Field: "key", Reason: "empty"})
	assert.Equal(t, "consul: invalid key: empty", err.Error())
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorIs(t, fmt.Errorf("x: %w", err), ErrInvalid)
	assert.NotErrorIs(t, err, ErrNotFound)
	assert.False(t, IsRetryable(err))
}

func TestTxnErrorMessage(t *testing.T) {
	err := &TxnError{Errors: []TxnOpError{
		{OpIndex: 0, What: `failed to lock key "a": key is already locked`},
		{OpIndex: 2, What: "index is stale"},
	}}
	assert.Equal(t, `consul: transaction rolled back: op 0: failed to lock key "a": key is already locked; op 2: index is stale`, err.Error())
	assert.False(t, IsRetryable(err))
	assert.NotErrorIs(t, err, ErrPermissionDenied)

	denied := fmt.Errorf("lock: %w", &TxnError{Errors: []TxnOpError{
		{OpIndex: 1, What: `Permission denied: token with AccessorID 'x' lacks permission 'key:write' on "a"`},
	}})
	assert.ErrorIs(t, denied, ErrPermissionDenied)
	assert.NotErrorIs(t, denied, ErrNotFound)
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil},
		{name: "plain error", err: errors.New("boom")},
		{name: "canceled", err: context.Canceled},
		{name: "deadline", err: context.DeadlineExceeded},
		{name: "wrapped canceled", err: fmt.Errorf("x: %w", context.Canceled)},
		{name: "429", err: &StatusError{Code: 429}, want: true},
		{name: "500", err: &StatusError{Code: 500}, want: true},
		{name: "503 no leader", err: &StatusError{Code: 503, Body: "No cluster leader"}, want: true},
		{name: "wrapped 502", err: fmt.Errorf("x: %w", &StatusError{Code: 502}), want: true},
		{name: "400", err: &StatusError{Code: 400}},
		{name: "403", err: &StatusError{Code: 403}},
		{name: "404", err: &StatusError{Code: 404}},
		{name: "409", err: &StatusError{Code: 409}},
		{name: "validation", err: &ValidationError{Field: "f", Reason: "r"}},
		{name: "txn", err: &TxnError{}},
		{name: "net op error", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, want: true},
		{name: "connection refused", err: fmt.Errorf("x: %w", syscall.ECONNREFUSED), want: true},
		{name: "connection reset", err: syscall.ECONNRESET, want: true},
		{name: "unexpected EOF", err: io.ErrUnexpectedEOF, want: true},
		{name: "EOF", err: io.EOF, want: true},
		{name: "transport", err: &transportError{err: errors.New("anything")}, want: true},
		{name: "blocking timeout", err: &transportError{err: errBlockingTimeout}, want: true},
		{name: "unknown CA", err: &transportError{err: x509.UnknownAuthorityError{}}},
		{name: "host name", err: &transportError{err: x509.HostnameError{Host: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsRetryable(tt.err))
		})
	}
}

// TestIsRetryableRealFailures uses real failures of the pipeline rather
// than built values.
func TestIsRetryableRealFailures(t *testing.T) {
	// Connection refused: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c := newFakeClient(t, "http://"+addr)
	_, err = c.query(t.Context(), "/v1/x", nil, nil)
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "%v", err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)

	// A server that hangs up mid-request.
	c, _ = newFakeHandler(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	_, err = c.query(t.Context(), "/v1/x", nil, nil)
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "%v", err)

	// HTTPS to a server that answers in plain HTTP: a setup error that
	// repeating cannot fix.
	_, plain := newFake(t)
	c = newFakeClient(t, strings.Replace(plain.Server.URL, "http://", "https://", 1))
	_, err = c.query(t.Context(), "/v1/x", nil, nil)
	require.Error(t, err)
	assert.False(t, IsRetryable(err), "%v", err)

	// A body cut short: headers promise more than arrives.
	c, _ = newFakeHandler(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, `{"a":`)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = buf.Flush()
			_ = conn.Close()
		}
	})
	var out map[string]any
	_, err = c.query(t.Context(), "/v1/x", nil, &out)
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "%v", err)

	// A dial that times out (an agent behind a firewall that drops
	// packets): the error matches context.DeadlineExceeded, but the
	// caller's context is live.
	c = newFakeClient(t, "http://"+addr, func(cfg *Config) {
		cfg.Transport = &http.Transport{DialContext: (&net.Dialer{Timeout: time.Nanosecond}).DialContext}
	})
	_, err = c.query(t.Context(), "/v1/x", nil, nil)
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded, "not the error this case is about")
	assert.True(t, IsRetryable(err), "%v", err)

	// A response that takes longer than the HTTP client's own timeout.
	_, slow := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c = newFakeClient(t, slow.URL, func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
	})
	_, err = c.query(t.Context(), "/v1/x", nil, nil)
	require.Error(t, err)
	assert.True(t, IsRetryable(err), "%v", err)

	// The caller's own deadline is not retryable.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c = newFakeClient(t, slow.URL)
	_, err = c.query(ctx, "/v1/x", nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, IsRetryable(err), "%v", err)
}
