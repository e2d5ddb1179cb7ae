package api_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// coreTTLService registers a service with a passing TTL check and returns
// the check's ID; both are removed when the test ends.
func coreTTLService(t *testing.T, c *api.Client) string {
	t.Helper()
	id := "core-" + corePrefixUnsafe.ReplaceAllString(t.Name(), "-")
	checkID := id + "-alive"
	_, err := c.Agent().ServiceRegister(t.Context(), &api.AgentServiceRegistration{
		ID: id, Name: id, Port: 8080,
		Check: &api.AgentServiceCheck{CheckID: checkID, Name: "alive", TTL: api.Duration(time.Minute), Status: api.HealthPassing},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := c.Agent().ServiceDeregister(context.Background(), id, nil); err != nil {
			t.Logf("cleanup service %s: %v", id, err)
		}
	})
	return checkID
}

func TestSessionIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ss := c.Session()
	ctx := t.Context()

	// Defaults first, to learn the agent's node name.
	defID := coreSession(t, c, &api.SessionEntry{Name: "defaults", LockDelay: 15 * time.Second})
	def, _, err := ss.Info(ctx, defID, nil)
	require.NoError(t, err)
	require.NotNil(t, def)
	node := def.Node
	require.NotEmpty(t, node)
	assert.Equal(t, 15*time.Second, def.LockDelay)
	assert.Equal(t, api.SessionBehaviorRelease, def.Behavior)
	assert.Equal(t, []string{"serfHealth"}, def.NodeChecks)
	assert.Zero(t, def.TTL)

	// Every option.
	checkID := coreTTLService(t, c)
	id, wm, err := ss.Create(ctx, &api.SessionEntry{
		Name:          "every-option",
		Node:          node,
		LockDelay:     2500 * time.Millisecond,
		Behavior:      api.SessionBehaviorDelete,
		TTL:           30 * time.Second,
		NodeChecks:    []string{"serfHealth"},
		ServiceChecks: []api.ServiceCheck{{ID: checkID}},
	}, nil)
	require.NoError(t, err)
	require.NotNil(t, wm)
	t.Cleanup(func() { _, _ = ss.Destroy(context.Background(), id, nil) })

	got, meta, err := ss.Info(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, id, got.ID)
	assert.Equal(t, "every-option", got.Name)
	assert.Equal(t, node, got.Node)
	assert.Equal(t, 2500*time.Millisecond, got.LockDelay)
	assert.Equal(t, api.SessionBehaviorDelete, got.Behavior)
	assert.Equal(t, 30*time.Second, got.TTL)
	assert.Equal(t, []string{"serfHealth"}, got.NodeChecks)
	require.Len(t, got.ServiceChecks, 1)
	assert.Equal(t, checkID, got.ServiceChecks[0].ID)
	assert.NotZero(t, got.CreateIndex)
	assert.GreaterOrEqual(t, meta.LastIndex, got.CreateIndex)

	// No node checks at all, the shortest TTL.
	bare := coreSession(t, c, &api.SessionEntry{NodeChecks: []string{}, TTL: api.SessionTTLMin})
	b, _, err := ss.Info(ctx, bare, nil)
	require.NoError(t, err)
	assert.Empty(t, b.NodeChecks)
	assert.Equal(t, api.SessionTTLMin, b.TTL)
	assert.Zero(t, b.LockDelay)

	// List and Node.
	list, _, err := ss.List(ctx, nil)
	require.NoError(t, err)
	assert.True(t, slices.ContainsFunc(list, func(s *api.SessionEntry) bool { return s.ID == id }))
	onNode, _, err := ss.Node(ctx, node, nil)
	require.NoError(t, err)
	var ids []string
	for _, s := range onNode {
		ids = append(ids, s.ID)
		assert.Equal(t, node, s.Node)
	}
	assert.Contains(t, ids, id)
	assert.Contains(t, ids, defID)
	none, _, err := ss.Node(ctx, "no-such-node-"+id, nil)
	require.NoError(t, err)
	assert.Empty(t, none)

	// Renew.
	renewed, _, err := ss.Renew(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, renewed)
	assert.Equal(t, id, renewed.ID)
	assert.GreaterOrEqual(t, renewed.TTL, 30*time.Second)

	// Destroy; then it is gone, and renewing it is ErrNotFound.
	_, err = ss.Destroy(ctx, id, nil)
	require.NoError(t, err)
	got, _, err = ss.Info(ctx, id, nil)
	require.NoError(t, err)
	assert.Nil(t, got)
	renewed, _, err = ss.Renew(ctx, id, nil)
	assert.Nil(t, renewed)
	require.ErrorIs(t, err, api.ErrNotFound)
	assert.False(t, api.IsRetryable(err))
	_, err = ss.Destroy(ctx, id, nil)
	assert.NoError(t, err, "destroying a destroyed session is not an error")

	// Consul refuses a session tied to a check it does not know.
	_, _, err = ss.Create(ctx, &api.SessionEntry{ServiceChecks: []api.ServiceCheck{{ID: "no-such-check-" + id}}}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
}

// TestSessionLockDelayIntegration: a LockDelay of 0 really is no delay,
// while the default of 15s keeps the key from being acquired again.
func TestSessionLockDelayIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	kv := c.KV()
	ctx := t.Context()
	p := corePrefix(t, c)

	tests := []struct {
		name      string
		lockDelay time.Duration
		wantTaken bool
	}{
		{name: "zero", lockDelay: 0, wantTaken: true},
		{name: "default", lockDelay: 15 * time.Second, wantTaken: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := p + tt.name
			holder, _, err := c.Session().Create(ctx, &api.SessionEntry{Name: t.Name(), LockDelay: tt.lockDelay}, nil)
			require.NoError(t, err)
			ok, _, err := kv.Acquire(ctx, &api.KVPair{Key: key, Session: holder}, nil)
			require.NoError(t, err)
			require.True(t, ok)

			info, _, err := c.Session().Info(ctx, holder, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.lockDelay, info.LockDelay)

			// Invalidating the holder starts the lock-delay on its keys.
			_, err = c.Session().Destroy(ctx, holder, nil)
			require.NoError(t, err)

			next := coreSession(t, c, &api.SessionEntry{Name: t.Name() + "-next", LockDelay: 0})
			ok, _, err = kv.Acquire(ctx, &api.KVPair{Key: key, Session: next}, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantTaken, ok)
		})
	}
}

// TestSessionBehaviorDeleteIntegration: the keys of a session with the
// delete behavior go away with it.
func TestSessionBehaviorDeleteIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	key := corePrefix(t, c) + "ephemeral"

	id, _, err := c.Session().Create(ctx, &api.SessionEntry{Behavior: api.SessionBehaviorDelete}, nil)
	require.NoError(t, err)
	ok, _, err := c.KV().Acquire(ctx, &api.KVPair{Key: key, Value: []byte("x"), Session: id}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = c.Session().Destroy(ctx, id, nil)
	require.NoError(t, err)
	pair, _, err := c.KV().Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Nil(t, pair)
}
