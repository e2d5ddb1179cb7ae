package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func TestStatusIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()

	var leader string
	require.Eventually(t, func() bool {
		var err error
		leader, err = c.Status().Leader(ctx, nil)
		return err == nil && leader != ""
	}, time.Minute, 100*time.Millisecond, "the dev agent elects itself")

	peers, err := c.Status().Peers(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{leader}, peers, "a dev agent is its own only peer")

	// A datacenter the agent does not know.
	_, err = c.Status().Leader(ctx, &api.QueryOptions{Datacenter: "no-such-dc"})
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
}
