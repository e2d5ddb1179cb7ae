package semaphore_test

import (
	"bytes"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// isReleaseTxn reports whether r is a transaction that deletes a
// contender key after checking its session: a Release's.
func isReleaseTxn(r *http.Request) bool {
	if r.URL.Path != "/v1/txn" {
		return false
	}
	b := integration.Body(r)
	return bytes.Contains(b, []byte(`"check-session"`)) && bytes.Contains(b, []byte(`"delete"`))
}

// TestReleaseAfterUnseenInvalidationAndAFailedReleaseTellsTheSession: the
// session is invalidated while the watcher sees nothing, another holder's
// acquisition prunes it from the coordination key, and the first release
// attempt gets no answer. The next attempt finds the slot gone and cannot
// tell whether the first let it go: Release must renew the session, as
// for a contender key found let go, to report the invalidation to the
// session's users, and remove what is left of the slot (the contender
// key, which Consul keeps, unheld, for a session of behavior Release).
func TestReleaseAfterUnseenInvalidationAndAFailedReleaseTellsTheSession(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	c, ht := a.HookedClient(t)
	ctx := t.Context()
	prefix := semPrefix(t)
	sess := integration.NewSession(t, direct, session.WithTTL(time.Minute))
	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(sess))
	require.NoError(t, err)
	var armed, failed atomic.Bool
	ht.Set(func(r *http.Request) error {
		if armed.Load() && isReleaseTxn(r) && failed.CompareAndSwap(false, true) {
			return syscall.ECONNRESET
		}
		return integration.HangBlocking(r)
	})
	t.Cleanup(func() { ht.Set(nil) })
	held, err := s.Acquire(ctx)
	require.NoError(t, err)
	_, err = direct.Session().Destroy(ctx, sess.ID(), nil)
	require.NoError(t, err)

	// Another holder's acquisition prunes the dead holder.
	other, err := semaphore.New(direct, prefix, 2, semaphore.WithSession(integration.NewSession(t, direct)))
	require.NoError(t, err)
	_, err = other.TryAcquire(ctx)
	require.NoError(t, err)
	_, st := readLock(t, direct, prefix)
	require.NotNil(t, st)
	require.NotContains(t, st.Holders, sess.ID(), "the other acquisition did not prune the dead holder")
	require.NoError(t, held.Err(), "the watcher must not have seen the loss for this test to mean anything")
	require.NoError(t, sess.Err())

	armed.Store(true)
	err = s.Release(ctx)
	require.True(t, failed.Load(), "no release was sent")
	assert.ErrorIs(t, err, semaphore.ErrLost)
	assert.ErrorIs(t, err, session.ErrInvalidated)
	assert.ErrorIs(t, sess.Err(), session.ErrInvalidated, "the session was not told its slot was freed by its invalidation")
	pair, _, err := direct.KV().Get(ctx, prefix+"/"+sess.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, pair, "the contender key of the lost slot was left behind")
	require.NoError(t, other.Release(ctx))
}
