package lock_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestCancelledLockReturnsPromptlyWhenTheAgentIsUnreachable: a Lock waits
// on a key another session holds; the agent becomes unreachable
// (connections refused) and the caller gives up. Lock must return soon
// after: the destroy of its own session is sent (it fails), but a caller
// that has given up is not kept waiting while it is retried, as the
// session lapses at its TTL anyway.
func TestCancelledLockReturnsPromptlyWhenTheAgentIsUnreachable(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	k := key(t)
	other := integration.NewSession(t, direct, session.WithLockDelay(0))
	ol, err := lock.New(direct, k, lock.WithSession(other))
	require.NoError(t, err)
	_, err = ol.Lock(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ol.Unlock(context.WithoutCancel(t.Context())) })

	name := fmt.Sprintf("unreachable-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		// t.Context() has ended here: integration.SessionsNamed cannot run.
		list, _, err := direct.Session().List(context.Background(), nil)
		if err != nil {
			t.Errorf("listing sessions: %v", err)
			return
		}
		for _, s := range list {
			if s.Name == name {
				_, _ = direct.Session().Destroy(context.Background(), s.ID, nil)
			}
		}
	})
	l, err := lock.New(c, k, lock.WithSessionOptions(session.WithLockDelay(0), session.WithName(name)))
	require.NoError(t, err)

	var waiting atomic.Bool
	ht.Set(func(r *http.Request) error {
		if integration.IsBlocking(r) {
			waiting.Store(true)
		}
		return nil
	})
	t.Cleanup(func() { ht.Set(nil) })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := l.Lock(ctx)
		done <- err
	}()
	require.Eventually(t, waiting.Load, 10*time.Second, 10*time.Millisecond, "Lock never waited")

	ht.Set(func(*http.Request) error { return syscall.ECONNREFUSED })
	start := time.Now()
	cancel()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Lock did not return")
	}
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second, "a cancelled Lock waited on retries of its session's destroy")
}

// TestUnlockWithAnUnreachableAgentDoesNotPromiseARelock: neither the
// release nor the destroy of the Lock's own session gets through. The key
// stays held until Consul drops that session: locking again, which goes
// through a new session, does not let it go, so the error must not say
// that it does.
func TestUnlockWithAnUnreachableAgentDoesNotPromiseARelock(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	l, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithLockDelay(0)))
	require.NoError(t, err)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)
	sid := l.Token().Session
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), sid, nil) })

	ht.Set(func(*http.Request) error { return syscall.ECONNREFUSED })
	t.Cleanup(func() { ht.Set(nil) })
	short, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = l.Unlock(short)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "this Lock locks again", "a relock goes through a new session, which cannot release this one's hold")
	assert.Contains(t, err.Error(), sid)
}
