package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestPipeline(t *testing.T) {
	c, f := newFake(t, fakeReply{
		Header: map[string]string{"X-Consul-Index": "42", "Content-Type": "application/json"},
		Body:   `{"Name":"web","Port":8080}`,
	})
	ctx := t.Context()

	type svc struct {
		Name string
		Port int
	}
	var out svc
	r := c.newRequest(http.MethodGet, "/v1/agent/service/"+escapeKey("web 1/x?y#z%"))
	c.applyQuery(r, &QueryOptions{Filter: `Service == "web"`})
	r.params.Set("recurse", "")
	r.header.Set("X-Custom", "1")
	meta, err := c.queryRequest(ctx, r, &out)
	require.NoError(t, err)
	assert.Equal(t, svc{Name: "web", Port: 8080}, out)
	assert.Equal(t, uint64(42), meta.LastIndex)
	assert.Positive(t, meta.RequestTime)

	got := f.last(t)
	assert.Equal(t, http.MethodGet, got.Method)
	assert.Equal(t, "/v1/agent/service/web 1/x?y#z%", got.Path)
	assert.Equal(t, "/v1/agent/service/web%201/x%3Fy%23z%25", got.RawPath)
	assert.Equal(t, "filter=Service+%3D%3D+%22web%22&recurse", got.RawQuery)
	assert.Equal(t, "1", got.Header.Get("X-Custom"))
	assert.Empty(t, got.Body)

	// A write sends its JSON body and decodes the answer.
	f.reply(fakeReply{Body: `true`})
	var ok bool
	_, err = c.write(ctx, http.MethodPut, "/v1/session/create", nil, map[string]string{"Name": "n"}, &ok)
	require.NoError(t, err)
	assert.True(t, ok)
	got = f.last(t)
	assert.Equal(t, http.MethodPut, got.Method)
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"Name":"n"}`, string(got.Body))

	// No out: the body is drained, an empty body decodes to nothing.
	f.reply(fakeReply{Body: `{"ignored":true}`})
	_, err = c.write(ctx, http.MethodDelete, "/v1/x", nil, nil, nil)
	require.NoError(t, err)
	f.reply(fakeReply{})
	_, err = c.write(ctx, http.MethodDelete, "/v1/x", nil, nil, nil)
	require.NoError(t, err)

	// Consul answers every write whose answer is read with JSON too
	// ("true" for a KV write): an empty body is a broken answer, which
	// says nothing of what was done, and may be retried.
	f.reply(fakeReply{})
	ok = true
	_, err = c.write(ctx, http.MethodPut, "/v1/x", nil, nil, &ok)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.True(t, IsRetryable(err))

	// Consul answers every read with JSON: an empty body on a read is a
	// broken answer, not an empty one, and may be retried.
	f.reply(fakeReply{})
	out = svc{}
	_, err = c.query(ctx, "/v1/x", nil, &out)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.True(t, IsRetryable(err))
	assert.Zero(t, out)

	// A body that is not JSON is an error naming the path.
	f.reply(fakeReply{Body: `<html>`})
	_, err = c.query(ctx, "/v1/y", nil, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/v1/y")
	assert.False(t, IsRetryable(err))

	// A body that cannot be encoded fails before any request.
	n := len(f.all())
	_, err = c.write(ctx, http.MethodPut, "/v1/z", nil, make(chan int), nil)
	require.Error(t, err)
	assert.Len(t, f.all(), n)
}

func TestEncodeParams(t *testing.T) {
	tests := []struct {
		name string
		in   url.Values
		want string
	}{
		{name: "none", in: nil, want: ""},
		{name: "values", in: url.Values{"b": {"2"}, "a": {"1"}}, want: "a=1&b=2"},
		{name: "flag last", in: url.Values{"a": {"1"}, "recurse": {""}}, want: "a=1&recurse"},
		{name: "flag first", in: url.Values{"cas": {"0"}, "acquire": {""}}, want: "acquire&cas=0"},
		{name: "only flags", in: url.Values{"stale": {""}, "keys": {""}}, want: "keys&stale"},
		{name: "value with equals", in: url.Values{"filter": {"a=="}}, want: "filter=a%3D%3D"},
		{name: "repeated", in: url.Values{"node-meta": {"a:1", "b:2"}}, want: "node-meta=a%3A1&node-meta=b%3A2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, encodeParams(tt.in))
		})
	}
}

func TestEscapeKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a/b/c", "a/b/c"},
		{"a b/c", "a%20b/c"},
		{"x?y", "x%3Fy"},
		{"100%", "100%25"},
		{"dir/", "dir/"},
		{"", ""},
		{"ünï", "%C3%BCn%C3%AF"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, escapeKey(tt.in))
		})
	}
}

func TestStatusErrorFromPipeline(t *testing.T) {
	c, _ := newFake(t, fakeReply{Status: http.StatusForbidden, Body: "Permission denied: token lacks key:write"})
	_, err := c.write(t.Context(), http.MethodPut, "/v1/kv/a", nil, nil, nil)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.MethodPut, se.Method)
	assert.Equal(t, "/v1/kv/a", se.Path)
	assert.Equal(t, http.StatusForbidden, se.Code)
	assert.Equal(t, "Permission denied: token lacks key:write", se.Body)
	assert.ErrorIs(t, err, ErrPermissionDenied)
}

// TestRedirectNotFollowed: a redirect (Consul answers one for a path it
// would clean, which checkPath now refuses before sending) must not be
// followed: it would write to another key.
func TestRedirectNotFollowed(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	h := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/v1/kv/a/b" {
			_, _ = io.WriteString(w, "true")
			return
		}
		http.Redirect(w, r, "/v1/kv/a/b", http.StatusTemporaryRedirect)
	}
	for _, name := range []string{"default transport", "own transport"} {
		t.Run(name, func(t *testing.T) {
			paths = nil
			c, _ := newFakeHandler(t, h, func(cfg *Config) {
				if name == "own transport" {
					cfg.Transport = &http.Transport{}
				}
			})
			_, err := c.write(t.Context(), http.MethodPut, "/v1/kv/a/c", nil, nil, nil)
			var se *StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, http.StatusTemporaryRedirect, se.Code)
			assert.False(t, IsRetryable(err))
			mu.Lock()
			assert.Equal(t, []string{"PUT /v1/kv/a/c"}, paths)
			mu.Unlock()
			c.hc.CloseIdleConnections()
		})
	}
}

func TestContextCancellation(t *testing.T) {
	release := make(chan struct{})
	var reached atomic.Int32
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		switch r.URL.Path {
		case "/v1/body":
			// Headers now, the body never.
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"partial":`)
			w.(http.Flusher).Flush()
		case "/v1/error":
			// An error answer whose body never ends.
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `No cluster`)
			w.(http.Flusher).Flush()
		case "/v1/operator/autopilot/health":
			// Autopilot's unhealthy answer, cut short.
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"Healthy":false,"Servers":[`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.query(ctx, "/v1/kv/a", nil, nil)
		assert.Same(t, context.Canceled, err)
		assert.False(t, IsRetryable(err))
	})
	t.Run("cancelled blocking query", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("shutting down")) })
		_, err := c.query(ctx, "/v1/kv/a", &QueryOptions{WaitIndex: 5, WaitTime: time.Minute}, nil)
		assert.Same(t, context.Canceled, err)
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := c.write(ctx, http.MethodPut, "/v1/kv/a", nil, nil, nil)
		assert.Equal(t, context.DeadlineExceeded, err)
		assert.False(t, IsRetryable(err))
	})
	t.Run("cancelled while reading the body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		var out map[string]any
		_, err := c.query(ctx, "/v1/body", nil, &out)
		assert.Same(t, context.Canceled, err)
	})
	// The status is known, the answer is not: the caller's cancellation
	// is the error, not a *StatusError (retryable, with a body cut short,
	// matching sentinels by chance).
	t.Run("cancelled while reading an error answer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.query(ctx, "/v1/error", nil, nil)
		assert.Same(t, context.Canceled, err)
		assert.False(t, IsRetryable(err))
	})
	t.Run("cancelled while reading autopilot's 429", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, _, err := c.Operator().AutopilotServerHealth(ctx, nil)
		assert.Same(t, context.Canceled, err)
		assert.False(t, IsRetryable(err))
	})
	t.Run("already cancelled sends nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		before := reached.Load()
		_, err := c.query(ctx, "/v1/kv/a", nil, nil)
		assert.Same(t, context.Canceled, err)
		assert.Equal(t, before, reached.Load())
	})
	t.Run("nil context", func(t *testing.T) {
		var ctx context.Context
		_, err := c.query(ctx, "/v1/kv/a", nil, nil)
		assert.ErrorIs(t, err, ErrInvalid)
	})
}

func TestBlockingTimeout(t *testing.T) {
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/body" {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `[`)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done() // a server that never answers
	})
	c.blockingSlack = 100 * time.Millisecond

	for _, path := range []string{"/v1/kv/a", "/v1/body"} {
		t.Run(path, func(t *testing.T) {
			start := time.Now()
			var out []any
			_, err := c.query(t.Context(), path, &QueryOptions{WaitIndex: 3, WaitTime: 160 * time.Millisecond}, &out)
			el := time.Since(start)
			require.Error(t, err)
			// wait + wait/16 + slack = 160 + 10 + 100 ms
			assert.GreaterOrEqual(t, el, 270*time.Millisecond)
			assert.Less(t, el, 5*time.Second)
			assert.True(t, IsRetryable(err), "a blocking query cut off by its bound may be retried: %v", err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, context.Canceled)
		})
	}

	// A request that is not blocking is not bounded by the client: only
	// the caller's context ends it.
	ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	_, err := c.query(ctx, "/v1/kv/a", &QueryOptions{WaitTime: 10 * time.Millisecond}, nil)
	assert.Equal(t, context.DeadlineExceeded, err)
}

// TestBlockingTimeoutCallerDeadline pins what a caller sees when its
// deadline and the client's bound on a blocking query race: the earlier
// one ends the query; a caller's deadline ends it as it ends any request
// (context.DeadlineExceeded, not retryable), the bound as a retryable
// transport error.
func TestBlockingTimeoutCallerDeadline(t *testing.T) {
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // a server that never answers
	})
	c.blockingSlack = 100 * time.Millisecond
	q := &QueryOptions{WaitIndex: 3, WaitTime: 160 * time.Millisecond} // bound: 270 ms

	t.Run("earlier", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := c.query(ctx, "/v1/kv/a", q, nil)
		assert.Equal(t, context.DeadlineExceeded, err, "ended by the caller's deadline, not the bound")
		assert.False(t, IsRetryable(err))
	})
	t.Run("later", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.query(ctx, "/v1/kv/a", q, nil)
		assert.GreaterOrEqual(t, time.Since(start), 270*time.Millisecond)
		assert.True(t, IsRetryable(err), "cut off by the client's bound: %v", err)
		assert.NoError(t, ctx.Err())
	})
}

// TestBlockingQueryBodyOutlivesDo checks that a blocking query's
// answer is read completely after do returns (its context lives as long as
// the body).
func TestBlockingQueryBodyOutlivesDo(t *testing.T) {
	big := `["` + strings.Repeat("x", 256<<10) + `"]`
	c, _ := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "9"}, Body: big})
	var out []string
	meta, err := c.query(t.Context(), "/v1/kv/a", &QueryOptions{WaitIndex: 3}, &out)
	require.NoError(t, err)
	assert.Equal(t, uint64(9), meta.LastIndex)
	require.Len(t, out, 1)
	assert.Len(t, out[0], 256<<10)
}

// TestConnectionReuse: answers, error answers included, are drained so the
// connection goes back to the pool.
func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	f := &fake{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	f.Server.Start()
	t.Cleanup(f.Server.Close)
	c := newFakeClient(t, f.Server.URL)
	ctx := t.Context()
	for i := range 6 {
		switch i % 3 {
		case 0:
			f.reply(fakeReply{Body: `{"a":1,"b":[1,2,3]}   ` + "\n"})
			_, err := c.query(ctx, "/v1/x", nil, &map[string]any{})
			require.NoError(t, err)
		case 1:
			f.reply(fakeReply{Status: http.StatusInternalServerError, Body: strings.Repeat("e", 20<<10)})
			_, err := c.query(ctx, "/v1/x", nil, nil)
			require.Error(t, err)
		case 2:
			f.reply(fakeReply{Body: `true`})
			_, err := c.write(ctx, http.MethodPut, "/v1/x", nil, nil, nil)
			require.NoError(t, err)
		}
	}
	assert.Equal(t, int32(1), conns.Load())
}

// TestManyBlockingQueries: parked blocking queries do not keep other
// requests from getting a connection.
func TestManyBlockingQueries(t *testing.T) {
	const parked = 40
	var waiting sync.WaitGroup
	waiting.Add(parked)
	release := make(chan struct{})
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("index") {
			waiting.Done()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.Header().Set("X-Consul-Index", "2")
		_, _ = io.WriteString(w, `[]`)
	})
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, parked)
	for range parked {
		wg.Go(func() {
			_, err := c.query(ctx, "/v1/kv/a", &QueryOptions{WaitIndex: 1, WaitTime: time.Minute}, nil)
			errs <- err
		})
	}
	waiting.Wait()

	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.query(qctx, "/v1/kv/b", nil, nil)
	require.NoError(t, err, "a plain read must not wait behind parked blocking queries")

	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

// An ID that would put an empty, "." or ".." segment into the request
// path is refused before anything is sent: Consul would redirect the
// request to another path.
func TestPathChangingIDsAreRefused(t *testing.T) {
	c, sent := countingServer(t)
	for _, id := range []string{"..", "web/../alive", "./a", "a//b", "/a", "a/."} {
		_, err := c.Agent().UpdateTTL(t.Context(), id, "", HealthPassing, nil)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, "id %q", id)
		assert.ErrorIs(t, err, ErrInvalid)
	}
	for _, id := range []string{"a..b", "web/alive", "a/"} {
		_, err := c.Agent().UpdateTTL(t.Context(), id, "", HealthPassing, nil)
		require.NoError(t, err, "id %q", id)
	}
	assert.EqualValues(t, 3, sent.Load(), "only the good IDs were sent")
}

func TestRequireID(t *testing.T) {
	tests := []struct {
		name string
		v    string
		ok   bool
	}{
		{name: "ok", v: "abc-123", ok: true},
		{name: "slash allowed", v: "a/b", ok: true},
		{name: "empty", v: ""},
		{name: "blank", v: "  "},
		{name: "newline", v: "a\nb"},
		{name: "del", v: "a\x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := requireID("thing", tt.v)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "thing", ve.Field)
		})
	}
}

// An ID that makes one path segment, where Consul routes on what follows
// it, is refused with a '/' before anything is sent: "<id>/clone" would
// clone a token instead of updating it, "<id>/execute" run a query instead
// of reading it.
func TestSlashInSegmentIDsIsRefused(t *testing.T) {
	c, sent := countingServer(t)
	id := "6a1253d2-0000-4000-8000-000000000000/clone"
	calls := map[string]func() error{
		"TokenUpdate": func() error {
			_, _, err := c.ACL().TokenUpdate(t.Context(), &ACLToken{AccessorID: id}, nil)
			return err
		},
		"TokenRead": func() error { _, _, err := c.ACL().TokenRead(t.Context(), id, nil); return err },
		"PolicyRead": func() error {
			_, _, err := c.ACL().PolicyRead(t.Context(), "name/global-management", nil)
			return err
		},
		"QueryGet":     func() error { _, _, err := c.Query().Get(t.Context(), "x/execute", nil); return err },
		"SessionRenew": func() error { _, _, err := c.Session().Renew(t.Context(), "x/y", nil); return err },
		"IntentionGet": func() error { _, _, err := c.Connect().IntentionGet(t.Context(), "a/b", nil); return err },
		"PeeringRead":  func() error { _, _, err := c.Peerings().Read(t.Context(), "a/b", nil); return err },
		"ConfigEntry": func() error {
			_, _, err := c.ConfigEntries().Get(t.Context(), "service-defaults", "a/b", nil)
			return err
		},
	}
	for name, call := range calls {
		err := call()
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, name)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
	assert.Zero(t, sent.Load(), "a request was sent")
}

// A token with a control character (one read from a file with its
// newline) is bad input, refused before anything is sent, not a transport
// failure that retrying could fix.
func TestTokenWithControlCharacterIsRefused(t *testing.T) {
	c, sent := countingServer(t)
	_, err := NewClient(Config{Address: c.base.Host, Token: "secret\n"})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "Config.Token", ve.Field)

	_, _, err = c.KV().Get(t.Context(), "k", &QueryOptions{Token: "secret\n"})
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "token", ve.Field)
	assert.False(t, IsRetryable(err))
	_, err = c.KV().Put(t.Context(), &KVPair{Key: "k"}, &WriteOptions{Token: "a\x7fb"})
	require.ErrorAs(t, err, &ve)
	assert.Zero(t, sent.Load(), "a request was sent")
}

// countingServer returns a client for a server that answers every request
// with 200 and counts them: for tests that check nothing is sent.
func countingServer(t *testing.T) (*Client, *atomic.Int64) {
	t.Helper()
	sent := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { sent.Add(1) }))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Address: srv.URL})
	require.NoError(t, err)
	return c, sent
}

// TestReservedSegmentIDs checks that an ID equal to the name of a sibling
// route is refused before sending. Consul answers GET /v1/acl/token/self
// with the caller's own token, secret included, so TokenRead("self") once
// returned that instead of "not found"; the other names got a redirect, a
// 405 or a 500 from the sibling endpoint.
func TestReservedSegmentIDs(t *testing.T) {
	intention := func(id string) *Intention {
		return &Intention{ID: id, SourceName: "web", DestinationName: "db", Action: IntentionActionAllow}
	}
	runInvalidCases(t, []invalidCase{
		{"token read self", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().TokenRead(ctx, "self", nil)
			return err
		}, "accessor ID"},
		{"token update self", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().TokenUpdate(ctx, &ACLToken{AccessorID: "self"}, nil)
			return err
		}, "ACLToken.AccessorID"},
		{"token delete self", func(ctx context.Context, c *Client) error {
			_, err := c.ACL().TokenDelete(ctx, "self", nil)
			return err
		}, "accessor ID"},
		{"policy read name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().PolicyRead(ctx, "name", nil)
			return err
		}, "policy ID"},
		{"policy update name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().PolicyUpdate(ctx, &ACLPolicy{ID: "name", Name: "p"}, nil)
			return err
		}, "ACLPolicy.ID"},
		{"policy delete name", func(ctx context.Context, c *Client) error {
			_, err := c.ACL().PolicyDelete(ctx, "name", nil)
			return err
		}, "policy ID"},
		{"role read name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().RoleRead(ctx, "name", nil)
			return err
		}, "role ID"},
		{"role update name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().RoleUpdate(ctx, &ACLRole{ID: "name", Name: "r"}, nil)
			return err
		}, "ACLRole.ID"},
		{"role delete name", func(ctx context.Context, c *Client) error {
			_, err := c.ACL().RoleDelete(ctx, "name", nil)
			return err
		}, "role ID"},
		{"intention get exact", func(ctx context.Context, c *Client) error {
			_, _, err := c.Connect().IntentionGet(ctx, "exact", nil)
			return err
		}, "intention ID"},
		{"intention update match", func(ctx context.Context, c *Client) error {
			_, err := c.Connect().IntentionUpdate(ctx, intention("match"), nil)
			return err
		}, "Intention.ID"},
		{"intention delete check", func(ctx context.Context, c *Client) error {
			_, err := c.Connect().IntentionDelete(ctx, "check", nil)
			return err
		}, "intention ID"},
		{"peering read token", func(ctx context.Context, c *Client) error {
			_, _, err := c.Peerings().Read(ctx, "token", nil)
			return err
		}, "peering name"},
		{"peering delete establish", func(ctx context.Context, c *Client) error {
			_, err := c.Peerings().Delete(ctx, "establish", nil)
			return err
		}, "peering name"},
		{"agent service register", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().Service(ctx, "register", nil)
			return err
		}, "service ID"},
		{"agent service under deregister", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().Service(ctx, "deregister/web", nil)
			return err
		}, "service ID"},
		{"agent service maintenance", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().Service(ctx, "maintenance", nil)
			return err
		}, "service ID"},
	})
}
