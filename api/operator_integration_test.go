package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// opGossipKey is a valid gossip key (32 random bytes, base64).
const opGossipKey = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="

// TestOperatorDevAgentIntegration runs the operator reads a single dev
// agent serves.
func TestOperatorDevAgentIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	op := c.Operator()
	ctx := t.Context()

	// A freshly started agent needs a moment to elect itself and for
	// autopilot to see it healthy.
	require.Eventually(t, func() bool {
		st, _, err := op.AutopilotState(ctx, nil)
		return err == nil && st.Healthy && st.Leader != ""
	}, time.Minute, 100*time.Millisecond)

	cfg, _, err := op.RaftGetConfiguration(ctx, nil)
	require.NoError(t, err)
	require.Len(t, cfg.Servers, 1)
	assert.True(t, cfg.Servers[0].Leader)
	assert.True(t, cfg.Servers[0].Voter)
	assert.Equal(t, "3", cfg.Servers[0].ProtocolVersion)

	ap, _, err := op.AutopilotGetConfiguration(ctx, nil)
	require.NoError(t, err)
	assert.NotZero(t, ap.LastContactThreshold)
	assert.NotZero(t, ap.ModifyIndex)

	h, _, err := op.AutopilotServerHealth(ctx, nil)
	require.NoError(t, err)
	assert.True(t, h.Healthy)
	require.Len(t, h.Servers, 1)
	assert.True(t, h.Servers[0].Leader)
	assert.Equal(t, "alive", h.Servers[0].SerfStatus)

	st, _, err := op.AutopilotState(ctx, nil)
	require.NoError(t, err)
	assert.True(t, st.Healthy)
	require.Contains(t, st.Servers, st.Leader)
	assert.Equal(t, api.AutopilotServerLeader, st.Servers[st.Leader].Status)
	assert.Equal(t, []string{st.Leader}, st.Voters)
}

// TestOperatorKeyringIntegration: the shared dev agent runs without gossip
// encryption, so Consul answers every keyring call with "encryption not
// enabled"; what runs here is the request and that error's mapping.
// TestOperatorKeyringWithEncryption runs the calls on an agent with keys.
func TestOperatorKeyringIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	op := c.Operator()
	ctx := t.Context()

	_, _, err := op.KeyringList(ctx, nil, nil)
	assert.True(t, api.IsKeyringDisabled(err), "got %v", err)
	_, _, err = op.KeyringList(ctx, &api.KeyringOptions{LocalOnly: true, RelayFactor: 1}, nil)
	assert.True(t, api.IsKeyringDisabled(err), "got %v", err)
	_, err = op.KeyringInstall(ctx, opGossipKey, nil, nil)
	assert.True(t, api.IsKeyringDisabled(err), "got %v", err)
	_, err = op.KeyringUse(ctx, opGossipKey, nil, nil)
	assert.True(t, api.IsKeyringDisabled(err), "got %v", err)
	_, err = op.KeyringRemove(ctx, opGossipKey, nil, nil)
	assert.True(t, api.IsKeyringDisabled(err), "got %v", err)
}

// TestOperatorKeyringWithEncryption runs the keyring's whole life on an
// agent with gossip encryption: list, install, use, remove.
func TestOperatorKeyringWithEncryption(t *testing.T) {
	const second = "S3cr9w3nB2hC8t0ZpQk1vXyLmN4oRuEa7dFgHiJ6KlM="
	a := integration.NewAgent(t, integration.WithGossipKey(opGossipKey))
	op := a.Client(t).Operator()
	ctx := t.Context()
	keys := func() (installed, primary map[string]int) {
		t.Helper()
		rings, _, err := op.KeyringList(ctx, nil, nil)
		require.NoError(t, err)
		require.NotEmpty(t, rings)
		for _, r := range rings {
			assert.Equal(t, 1, r.NumNodes, "pool %+v", r)
		}
		return rings[0].Keys, rings[0].PrimaryKeys
	}
	installed, primary := keys()
	assert.Equal(t, map[string]int{opGossipKey: 1}, installed)
	assert.Equal(t, map[string]int{opGossipKey: 1}, primary)

	_, err := op.KeyringInstall(ctx, second, nil, nil)
	require.NoError(t, err)
	installed, _ = keys()
	assert.Equal(t, map[string]int{opGossipKey: 1, second: 1}, installed)

	_, err = op.KeyringUse(ctx, second, nil, nil)
	require.NoError(t, err)
	_, primary = keys()
	assert.Equal(t, map[string]int{second: 1}, primary)

	_, err = op.KeyringRemove(ctx, opGossipKey, nil, nil)
	require.NoError(t, err)
	installed, _ = keys()
	assert.Equal(t, map[string]int{second: 1}, installed)

	rings, _, err := op.KeyringList(ctx, &api.KeyringOptions{LocalOnly: true, RelayFactor: 1}, nil)
	require.NoError(t, err)
	require.NotEmpty(t, rings)
}

// TestOperatorNewerEndpointsIntegration: the test server is Consul 1.14,
// which does not serve transfer-leader (added in 1.15) nor, in its
// open-source build, usage; both answer 404, which the methods document.
func TestOperatorNewerEndpointsIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	op := c.Operator()
	ctx := t.Context()

	ok, _, err := op.RaftTransferLeader(ctx, "", nil)
	assert.False(t, ok)
	assert.ErrorIs(t, err, api.ErrNotFound)
	_, _, err = op.Usage(ctx, false, nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
}

// TestOperatorClusterIntegration runs Raft and autopilot calls on a
// three-server cluster, including removing a stopped server from the
// peer set.
func TestOperatorClusterIntegration(t *testing.T) {
	cl := integration.NewCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	leader, err := cl.Leader(ctx)
	require.NoError(t, err)
	lc := cl.Client(t, leader)
	op := lc.Operator()

	// Every server reports the same three peers and the same leader.
	var leaderID string
	for i := range cl.Servers {
		cfg, _, err := cl.Client(t, i).Operator().RaftGetConfiguration(ctx, nil)
		require.NoError(t, err)
		require.Len(t, cfg.Servers, 3)
		leaders := 0
		for _, s := range cfg.Servers {
			if s.Leader {
				leaders++
				if leaderID == "" {
					leaderID = s.ID
				}
				assert.Equal(t, leaderID, s.ID)
			}
		}
		assert.Equal(t, 1, leaders)
	}
	stale, _, err := cl.Client(t, (leader+1)%3).Operator().RaftGetConfiguration(ctx, &api.QueryOptions{Consistency: api.ConsistencyStale})
	require.NoError(t, err)
	assert.Len(t, stale.Servers, 3)

	// Autopilot: get, CAS with a stale index, CAS, set. Dead server cleanup
	// is switched off so that only RaftRemovePeerByID removes the server
	// stopped below.
	ap, _, err := op.AutopilotGetConfiguration(ctx, nil)
	require.NoError(t, err)
	want := *ap
	want.CleanupDeadServers = false
	want.MaxTrailingLogs = 500
	want.ModifyIndex = ap.ModifyIndex - 1
	ok, _, err := op.AutopilotCASConfiguration(ctx, &want, nil)
	require.NoError(t, err)
	assert.False(t, ok, "CAS with an old index")
	want.ModifyIndex = ap.ModifyIndex
	ok, _, err = op.AutopilotCASConfiguration(ctx, &want, nil)
	require.NoError(t, err)
	assert.True(t, ok)
	want.ServerStabilizationTime = api.Duration(5 * time.Second)
	_, err = op.AutopilotSetConfiguration(ctx, &want, nil)
	require.NoError(t, err)
	ap2, _, err := op.AutopilotGetConfiguration(ctx, nil)
	require.NoError(t, err)
	assert.False(t, ap2.CleanupDeadServers)
	assert.Equal(t, uint64(500), ap2.MaxTrailingLogs)
	assert.Equal(t, 5*time.Second, ap2.ServerStabilizationTime.D())
	assert.Equal(t, ap.LastContactThreshold, ap2.LastContactThreshold)
	assert.Greater(t, ap2.ModifyIndex, ap.ModifyIndex)

	// Health and state: all three servers, eventually all healthy voters.
	require.Eventually(t, func() bool {
		h, _, err := op.AutopilotServerHealth(ctx, nil)
		return err == nil && h.Healthy && len(h.Servers) == 3 && h.FailureTolerance == 1
	}, time.Minute, 250*time.Millisecond)
	st, _, err := op.AutopilotState(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, st.Servers, 3)
	assert.Len(t, st.Voters, 3)
	// The leader seen above, unless a loaded machine made the cluster
	// elect again meanwhile: a voter in any case.
	assert.Contains(t, st.Voters, st.Leader)

	// Unknown peers.
	_, err = op.RaftRemovePeerByID(ctx, "00000000-aaaa-bbbb-cccc-000000000000", nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "was not found in the Raft configuration")
	_, err = op.RaftRemovePeerByAddress(ctx, "127.0.0.1:1", nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "was not found in the Raft configuration")

	// Stop a follower, and remove it from the peer set.
	victim := (leader + 1) % 3
	var victimID string
	cfg, _, err := op.RaftGetConfiguration(ctx, nil)
	require.NoError(t, err)
	for _, s := range cfg.Servers {
		if s.Node == cl.Servers[victim].Name {
			victimID = s.ID
		}
	}
	require.NotEmpty(t, victimID, "server %q not in %+v", cl.Servers[victim].Name, cfg.Servers)
	require.NoError(t, cl.Stop(ctx, victim))

	// A stopped server counts as unhealthy: the 429 answer is a reply.
	require.Eventually(t, func() bool {
		h, _, err := op.AutopilotServerHealth(ctx, nil)
		return err == nil && !h.Healthy && len(h.Servers) == 3
	}, time.Minute, 250*time.Millisecond)

	_, err = op.RaftRemovePeerByID(ctx, victimID, nil)
	require.NoError(t, err)
	cfg, _, err = op.RaftGetConfiguration(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, cfg.Servers, 2)
	assert.False(t, aclContains(cfg.Servers, func(s *api.RaftServer) bool { return s.ID == victimID }))
}
