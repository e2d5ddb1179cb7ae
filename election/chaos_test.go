package election_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// candidate adapts an Election to integration.Holder.
type candidate struct{ *election.Election }

func (c candidate) Acquire(ctx context.Context) (context.Context, error) {
	return c.Campaign(ctx, []byte("candidate"))
}
func (c candidate) Release(ctx context.Context) error { return c.Resign(ctx) }

// TestOneLeaderUnderFaults: three candidates, each through a network of
// its own, while faults come and go and then the leader is cut off for
// longer than its TTL: never two leaders at once, and the leader cut off
// knows it was deposed before another leads.
func TestOneLeaderUnderFaults(t *testing.T) {
	t.Parallel()
	key := electionKey(t)
	res := integration.Contend(t, integration.Shared(t), integration.Contention{
		Workers: 3,
		Limit:   1,
		New: func(c *api.Client, s *session.Session) (integration.Holder, error) {
			e, err := election.New(c, key, election.WithSession(s))
			return candidate{e}, err
		},
	})
	t.Logf("%d terms, deposed while leading: %v", res.Acquisitions, res.Losses)
	for _, err := range res.Problems {
		t.Error(err)
	}
	assert.ErrorIs(t, errors.Join(res.Losses...), election.ErrDeposed)
	assert.GreaterOrEqual(t, res.Acquisitions, 10)
}
