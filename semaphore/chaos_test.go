package semaphore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// semHolder adapts a Semaphore to integration.Holder.
type semHolder struct{ *semaphore.Semaphore }

func (h semHolder) Acquire(ctx context.Context) (context.Context, error) {
	return h.Semaphore.Acquire(ctx)
}

// TestLimitUnderFaults: four workers sharing two slots, each through a
// network of its own, while faults come and go and then a holder is cut
// off for longer than its TTL: never more than two holders at once, and
// the holder cut off sees its loss before its slot is used by another.
func TestLimitUnderFaults(t *testing.T) {
	t.Parallel()
	prefix := semPrefix(t)
	res := integration.Contend(t, integration.Shared(t), integration.Contention{
		Workers: 4,
		Limit:   2,
		New: func(c *api.Client, s *session.Session) (integration.Holder, error) {
			sem, err := semaphore.New(c, prefix, 2, semaphore.WithSession(s))
			return semHolder{sem}, err
		},
	})
	t.Logf("%d acquisitions, losses while holding: %v", res.Acquisitions, res.Losses)
	for _, err := range res.Problems {
		t.Error(err)
	}
	assert.ErrorIs(t, errors.Join(res.Losses...), semaphore.ErrLost)
	assert.GreaterOrEqual(t, res.Acquisitions, 10)
}
