package lock_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// A server (or a proxy in front of Consul) that answers blocking reads at
// once and without X-Consul-Index must not turn the watch of a held lock
// into a busy poll: a read whose index did not move is followed by a
// pause. This needs a misbehaving server, so it runs against a fake.
func TestWatchDoesNotSpinWithoutAnIndex(t *testing.T) {
	const sid = "8a3f6c1e-0000-4000-8000-000000000001"
	const key = "idle/lock"
	var held, exists atomic.Bool
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/session/create":
			fmt.Fprintf(w, `{"ID":%q}`, sid)
		case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
			fmt.Fprint(w, "true")
		case r.URL.Path == "/v1/txn":
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"lock"`) {
				// The Lock creates the absent key free first.
				exists.Store(true)
				fmt.Fprintf(w, `{"Results":[{"KV":{"Key":%q,"Flags":%d,"ModifyIndex":4}}]}`, key, lock.Flag)
				return
			}
			held.Store(true)
			fmt.Fprintf(w, `{"Results":[{"KV":{"Key":%q,"Session":%q,"Flags":%d,"LockIndex":1,"ModifyIndex":5}}]}`, key, sid, lock.Flag)
		case r.URL.Path == "/v1/kv/"+key && r.Method == http.MethodGet:
			switch {
			case held.Load():
				reads.Add(1)
				fmt.Fprintf(w, `[{"Key":%q,"Session":%q,"Flags":%d,"LockIndex":1,"ModifyIndex":5}]`, key, sid, lock.Flag)
			case exists.Load():
				fmt.Fprintf(w, `[{"Key":%q,"Flags":%d,"ModifyIndex":4}]`, key, lock.Flag)
			default:
				http.NotFound(w, r)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := api.NewClient(api.Config{Address: srv.URL})
	require.NoError(t, err)
	s, err := session.New(t.Context(), c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(t.Context()) })

	l, err := lock.New(c, key, lock.WithSession(s))
	require.NoError(t, err)
	heldCtx, err := l.Lock(t.Context())
	require.NoError(t, err)
	time.Sleep(2 * time.Second)
	require.NoError(t, heldCtx.Err())
	assert.LessOrEqual(t, reads.Load(), int64(4), "watch reads in 2s")
	held.Store(false)
	_ = l.Unlock(t.Context())
}
