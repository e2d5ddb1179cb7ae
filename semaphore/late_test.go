package semaphore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
)

// lateAcquisition makes the first acquisition transaction sent through ht
// fail without an answer (with fail's error) and reach the agent anyway,
// delay later; the returned channel yields the channel that is closed once
// it has.
func lateAcquisition(ht *integration.HookTransport, delay time.Duration, fail func(r *http.Request) error) <-chan (<-chan struct{}) {
	late := make(chan (<-chan struct{}), 1)
	var armed atomic.Bool
	armed.Store(true)
	ht.Set(func(r *http.Request) error {
		if r.URL.Path != "/v1/txn" || !bytes.Contains(integration.Body(r), []byte(`"Verb":"lock"`)) || !armed.CompareAndSwap(true, false) {
			return nil
		}
		late <- ht.DeliverLate(r, delay)
		return fail(r)
	})
	return late
}

// requireFreeSlot checks that a new holder gets a slot of prefix (limit
// 1) at once.
func requireFreeSlot(t *testing.T, prefix string, limit int) {
	t.Helper()
	c := newClient(t)
	o, err := semaphore.New(c, prefix, limit, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	_, err = o.TryAcquire(t.Context())
	require.NoError(t, err, "a slot is taken by a session that holds none; keys: %v", keys(t, c, prefix))
	require.NoError(t, o.Release(t.Context()))
}

// An Acquire cancelled while its transaction is on its way leaves no slot
// taken, even when the transaction still reaches Consul after Acquire
// returned: with the coordination key absent (the transaction would
// create it) and present (another holder has a slot).
func TestCancelledAcquireAppliedLate(t *testing.T) {
	t.Parallel()
	for _, other := range []bool{false, true} {
		name := map[bool]string{false: "absent", true: "present"}[other]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := integration.Shared(t)
			plain := a.Client(t)
			prefix := semPrefix(t)
			limit := 1
			var b *semaphore.Semaphore
			if other {
				limit = 2
				var err error
				b, err = semaphore.New(plain, prefix, limit, semaphore.WithSession(integration.NewSession(t, plain)))
				require.NoError(t, err)
				_, err = b.Acquire(t.Context())
				require.NoError(t, err)
			}
			c, ht := a.HookedClient(t)
			s, err := semaphore.New(c, prefix, limit, semaphore.WithSession(integration.NewSession(t, plain)))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			late := lateAcquisition(ht, 500*time.Millisecond, func(r *http.Request) error {
				cancel()
				<-r.Context().Done()
				return r.Context().Err()
			})
			_, err = s.Acquire(ctx)
			require.ErrorIs(t, err, context.Canceled)
			<-<-late
			requireFreeSlot(t, prefix, limit)
			if b != nil {
				// The other holder kept its slot through the cleanup.
				require.NoError(t, b.Release(t.Context()))
			}
		})
	}
}

// An attempt that got no answer may land after the Acquire it belonged to
// succeeded by a later attempt, and after that slot was released: when it
// would create the coordination key, the last holder's Release keeps the
// key (empty) rather than deleting it, so that the attempt fails.
func TestUnansweredCreateLandingAfterRelease(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	plain := a.Client(t)
	prefix := semPrefix(t)
	c, ht := a.HookedClient(t)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, plain)))
	require.NoError(t, err)
	late := lateAcquisition(ht, time.Second, func(*http.Request) error { return syscall.ECONNRESET })
	_, err = s.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, s.Release(t.Context()))
	<-<-late
	requireFreeSlot(t, prefix, 1)
}

// A plain read that hangs (a connection that died without a reset) is
// given up and sent again, even with a context that never ends.
func TestTryAcquireGivesUpAHungRead(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	sess := integration.NewSession(t, a.Client(t))
	s, err := semaphore.New(c, semPrefix(t), 1, semaphore.WithSession(sess))
	require.NoError(t, err)
	ht.HangFirst(func(r *http.Request) bool { return r.Method == http.MethodGet })
	err = integration.Within(t, 40*time.Second, "TryAcquire still waiting on a hung read",
		func() error { _, err := s.TryAcquire(context.Background()); return err },
		func() { require.NoError(t, sess.Close(t.Context())) }) // ends TryAcquire
	require.NoError(t, err)
	require.NoError(t, s.Release(t.Context()))
}

// A server that answers blocking reads at once with X-Consul-Index: 0
// does not turn a waiting Acquire into a busy poll (see the election's
// test of the same name).
func TestAcquireIndexZeroIsNotABusyLoop(t *testing.T) {
	t.Parallel()
	const sid, other = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/session/create":
			_, _ = io.WriteString(w, `{"ID":"`+sid+`"}`)
		case strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
			_, _ = io.WriteString(w, `[{"ID":"`+sid+`","TTL":"15s"}]`)
		case strings.HasPrefix(r.URL.Path, "/v1/session/destroy/"):
			_, _ = io.WriteString(w, `true`)
		case strings.HasPrefix(r.URL.Path, "/v1/kv/"):
			// Every slot taken by another session, forever.
			reads.Add(1)
			w.Header().Set("X-Consul-Index", "0")
			state := base64.StdEncoding.EncodeToString([]byte(`{"Limit":1,"Holders":{"` + other + `":true}}`))
			fmt.Fprintf(w, `[{"Key":"sem/.lock","Flags":%d,"Value":%q,"ModifyIndex":5},{"Key":"sem/%s","Flags":%d,"Session":%q,"ModifyIndex":5}]`,
				semaphore.Flag, state, other, semaphore.Flag, other)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	s, err := semaphore.New(c, "sem", 1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = s.Acquire(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.LessOrEqual(t, reads.Load(), int64(8), "reads in 2s")
}

// An unanswered attempt that would create the coordination key is fenced
// by creating the key. Any later holder that was the last to release once
// deleted the key again, and the late create then applied: a slot held by
// a session whose Acquire had failed, for as long as the session lived.
// The key now stays. Here the Acquire is cancelled.
func TestLateCreateAfterAnotherReleases(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	prefix := semPrefix(t)
	c, ht := a.HookedClient(t)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, plain)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	late := lateAcquisition(ht, 3*time.Second, func(r *http.Request) error {
		cancel()
		<-r.Context().Done()
		return r.Context().Err()
	})
	_, err = s.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)
	done := <-late

	// Another holder comes and goes, the last to release.
	b, err := semaphore.New(plain, prefix, 1, semaphore.WithSession(integration.NewSession(t, plain)))
	require.NoError(t, err)
	_, err = b.TryAcquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, b.Release(t.Context()))
	t.Logf("keys before the late request lands: %v", keys(t, plain, prefix))

	<-done
	requireFreeSlot(t, prefix, 1)
}

// The same, with an Acquire that succeeded through a later attempt and
// was released.
func TestLateCreateAfterAcquiredAndReleased(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	prefix := semPrefix(t)
	c, ht := a.HookedClient(t)
	s, err := semaphore.New(c, prefix, 1, semaphore.WithSession(integration.NewSession(t, plain)))
	require.NoError(t, err)
	late := lateAcquisition(ht, 3*time.Second, func(*http.Request) error { return syscall.ECONNRESET })
	_, err = s.Acquire(t.Context())
	require.NoError(t, err)
	done := <-late
	require.NoError(t, s.Release(t.Context()))

	b, err := semaphore.New(plain, prefix, 1, semaphore.WithSession(integration.NewSession(t, plain)))
	require.NoError(t, err)
	_, err = b.TryAcquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, b.Release(t.Context())) // the last holder
	t.Logf("keys before the late request lands: %v", keys(t, plain, prefix))

	<-done
	requireFreeSlot(t, prefix, 1)
}

// TestBrokenAnswerLeavesNoSlot: an acquisition that Consul applied but
// whose answer lacks the keys fails, and leaves neither a holder nor a
// contender key behind.
func TestBrokenAnswerLeavesNoSlot(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	prefix := semPrefix(t)
	bc, ht := a.HookedClient(t)
	sess := integration.NewSession(t, c)
	s, err := semaphore.New(bc, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)

	emptied := ht.ReplaceNextBody(func(r *http.Request, resp *http.Response) bool {
		return r.URL.Path == "/v1/txn" && resp.StatusCode == http.StatusOK
	}, http.NoBody)
	_, err = s.Acquire(t.Context())
	require.Error(t, err)
	assert.True(t, emptied(), "no answer was emptied")
	assert.True(t, api.IsRetryable(err), "a broken answer is transient for a caller that retries: %v", err)
	pair, _, err := c.KV().Get(t.Context(), prefix+"/"+sess.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, pair, "the failed Acquire left its contender key")
	if _, st := readLock(t, c, prefix); st != nil {
		assert.NotContains(t, st.Holders, sess.ID(), "the failed Acquire left its slot taken")
	}

	held, err := s.Acquire(t.Context())
	require.NoError(t, err)
	require.NoError(t, s.Release(t.Context()))
	integration.WaitDone(t, held, time.Second)
}
