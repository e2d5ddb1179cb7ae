package lock_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

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
