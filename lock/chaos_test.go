package lock_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// lockHolder adapts a Lock to integration.Holder.
type lockHolder struct{ *lock.Lock }

func (h lockHolder) Acquire(ctx context.Context) (context.Context, error) { return h.Lock.Lock(ctx) }
func (h lockHolder) Release(ctx context.Context) error                    { return h.Unlock(ctx) }

// TestMutualExclusionUnderFaults: workers contending for one key, each
// through a network of its own, while faults come and go and then the
// holder is cut off for longer than its TTL: never two holders at once,
// tokens grow with every acquisition, and the holder cut off sees its
// loss before another takes over. A watcher that ignores its session's
// end fails it.
func TestMutualExclusionUnderFaults(t *testing.T) {
	t.Parallel()
	var last lock.Token
	res := integration.Contend(t, integration.Shared(t), integration.Contention{
		Workers: 3,
		Limit:   1,
		New: func(c *api.Client, s *session.Session) (integration.Holder, error) {
			l, err := lock.New(c, key(t), lock.WithSession(s))
			return lockHolder{l}, err
		},
		Acquired: func(held context.Context) error {
			tok, ok := lock.TokenFrom(held)
			if !ok || !tok.Newer(last) {
				return fmt.Errorf("token %+v not newer than %+v", tok, last)
			}
			last = tok
			return nil
		},
	})
	t.Logf("%d acquisitions, losses while holding: %v", res.Acquisitions, res.Losses)
	for _, err := range res.Problems {
		t.Error(err)
	}
	assert.ErrorIs(t, errors.Join(res.Losses...), lock.ErrLost)
	assert.GreaterOrEqual(t, res.Acquisitions, 10)
}

// TestRefusalCutShortIsTransient: a refused acquisition whose answer is
// cut off is a transient fault: Lock goes on waiting for the holder, and
// gets the key when it is released.
func TestRefusalCutShortIsTransient(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	k := key(t)
	wc, ht := a.HookedClient(t)

	l, err := lock.New(wc, k, lock.WithSession(integration.NewSession(t, c, session.WithLockDelay(0))))
	require.NoError(t, err)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx)) // the Lock now knows the key's index

	other := integration.NewSession(t, c, session.WithLockDelay(0))
	ok, _, err := c.KV().Acquire(ctx, &api.KVPair{Key: k, Flags: lock.Flag, Session: other.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)

	// Its first attempt is refused (the key changed), and that answer is
	// cut off.
	cut := ht.ReplaceNextBody(func(_ *http.Request, resp *http.Response) bool {
		return resp.StatusCode == http.StatusConflict
	}, integration.ResetBody)
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = l.Lock(wctx)
	require.True(t, cut(), "no refusal was cut off")
	require.ErrorIs(t, err, context.DeadlineExceeded, "Lock ended on a transient fault instead of waiting")

	ok, _, err = c.KV().Release(ctx, &api.KVPair{Key: k, Flags: lock.Flag, Session: other.ID()}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
}

// TestBrokenAnswerLeavesNothingHeld: an acquisition that Consul applied
// but whose answer lacks the key fails, and does not leave the key held
// by the session.
func TestBrokenAnswerLeavesNothingHeld(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	k := key(t)
	wc, ht := a.HookedClient(t)
	// The key exists free, so that the first transaction is the lock.
	_, err := c.KV().Put(ctx, &api.KVPair{Key: k, Flags: lock.Flag}, nil)
	require.NoError(t, err)

	s := integration.NewSession(t, c, session.WithLockDelay(0))
	l, err := lock.New(wc, k, lock.WithSession(s))
	require.NoError(t, err)
	emptied := ht.ReplaceNextBody(func(r *http.Request, resp *http.Response) bool {
		return r.URL.Path == "/v1/txn" && resp.StatusCode == http.StatusOK
	}, http.NoBody)
	_, err = l.Lock(ctx)
	require.Error(t, err)
	assert.True(t, emptied(), "no answer was emptied")
	assert.True(t, api.IsRetryable(err), "a broken answer is transient for a caller that retries: %v", err)
	pair, _, err := c.KV().Get(ctx, k, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "the failed Lock left the key held")

	// The Lock can lock again.
	_, err = l.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
}
