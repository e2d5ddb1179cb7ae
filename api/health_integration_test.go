package api_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func TestHealthNodeIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	self, _, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)
	checks, meta, err := c.Health().Node(ctx, self.Config.NodeName, nil)
	require.NoError(t, err)
	assert.NotZero(t, meta.LastIndex)
	assert.True(t, meta.KnownLeader)
	var serf *api.HealthCheck
	for _, ch := range checks {
		if ch.CheckID == "serfHealth" {
			serf = ch
		}
	}
	require.NotNil(t, serf, "the agent's serfHealth check")
	assert.Equal(t, api.HealthPassing, serf.Status)

	none, _, err := c.Health().Node(ctx, epName(t, "missing"), nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestHealthServiceIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	id1, id2 := name+"-1", name+"-2"
	check1 := epTTLService(t, c, id1, name)
	check2 := epTTLService(t, c, id2, name)
	epRegister(t, c, &api.AgentServiceRegistration{ID: name + "-3", Name: name, Port: 8080, Tags: []string{"v2", "canary"}})
	_, err := c.Agent().PassTTL(ctx, check1, "", nil)
	require.NoError(t, err)
	_, err = c.Agent().FailTTL(ctx, check2, "down", nil)
	require.NoError(t, err)

	entries, meta, err := c.Health().Service(ctx, name, nil, nil)
	require.NoError(t, err)
	assert.NotZero(t, meta.LastIndex)
	require.Len(t, entries, 3)
	byID := map[string]*api.ServiceEntry{}
	for _, e := range entries {
		byID[e.Service.ID] = e
		require.NotNil(t, e.Node)
		assert.NotEmpty(t, e.Node.Node)
	}
	require.Contains(t, byID, id2)
	assert.Equal(t, api.HealthCritical, byID[id2].Checks.AggregatedStatus())
	assert.Equal(t, api.HealthPassing, byID[id1].Checks.AggregatedStatus())

	passing, _, err := c.Health().Service(ctx, name, &api.HealthServiceOptions{PassingOnly: true}, nil)
	require.NoError(t, err)
	ids := make([]string, len(passing))
	for i, e := range passing {
		ids[i] = e.Service.ID
	}
	assert.ElementsMatch(t, []string{id1, name + "-3"}, ids)

	tagged, _, err := c.Health().Service(ctx, name, &api.HealthServiceOptions{Tags: []string{"v2", "canary"}}, &api.QueryOptions{Near: "_agent"})
	require.NoError(t, err)
	require.Len(t, tagged, 1)
	assert.Equal(t, name+"-3", tagged[0].Service.ID)
	tagged, _, err = c.Health().Service(ctx, name, &api.HealthServiceOptions{Tags: []string{"v1", "canary"}}, nil)
	require.NoError(t, err)
	assert.Empty(t, tagged)

	filtered, _, err := c.Health().Service(ctx, name, nil, &api.QueryOptions{Filter: "Service.ID == " + strconv.Quote(id2)})
	require.NoError(t, err)
	require.Len(t, filtered, 1)

	sc, _, err := c.Health().Checks(ctx, name, nil)
	require.NoError(t, err)
	assert.Len(t, sc, 2, "two TTL checks")

	// State: our critical check is among the critical ones, our passing
	// one among the passing ones, both among any.
	has := func(state, checkID string) bool {
		t.Helper()
		hc, _, err := c.Health().State(ctx, state, &api.QueryOptions{Filter: "ServiceName == " + strconv.Quote(name)})
		require.NoError(t, err)
		for _, ch := range hc {
			if ch.CheckID == checkID {
				return true
			}
		}
		return false
	}
	assert.True(t, has(api.HealthCritical, check2))
	assert.False(t, has(api.HealthCritical, check1))
	assert.True(t, has(api.HealthPassing, check1))
	assert.True(t, has(api.HealthAny, check1))
	assert.True(t, has(api.HealthAny, check2))
	assert.False(t, has(api.HealthWarning, check1))

	none, _, err := c.Health().Service(ctx, name+"-missing", nil, nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestHealthServiceBlockingIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	id := name + "-1"
	check := epTTLService(t, c, id, name)
	_, meta, err := c.Health().Service(ctx, name, &api.HealthServiceOptions{PassingOnly: true}, nil)
	require.NoError(t, err)

	// Wait, with WatchChan, until the instance passes.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, wait := api.WatchChan(wctx, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second},
		func(ctx context.Context, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
			return c.Health().Service(ctx, name, &api.HealthServiceOptions{PassingOnly: true}, q)
		})
	time.Sleep(200 * time.Millisecond)
	_, err = c.Agent().PassTTL(ctx, check, "", nil)
	require.NoError(t, err)
	var got []*api.ServiceEntry
	for entries := range ch {
		if len(entries) == 1 {
			got = entries
			cancel()
		}
	}
	assert.ErrorIs(t, wait(), context.Canceled)
	require.Len(t, got, 1)
	assert.Equal(t, id, got[0].Service.ID)
}

func TestHealthConnectIngressIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	native := epName(t, "native")
	epRegister(t, c, &api.AgentServiceRegistration{Name: native, Port: 9000, Connect: &api.AgentServiceConnect{Native: true}})

	epEventually(t, 10*time.Second, func() error {
		got, _, err := c.Health().Connect(ctx, native, nil, nil)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return errors.New("native instance not listed yet")
		}
		assert.Equal(t, native, got[0].Service.Service)
		return nil
	})
	got, _, err := c.Health().Connect(ctx, native, &api.HealthServiceOptions{PassingOnly: true, MergeCentralConfig: true}, nil)
	require.NoError(t, err)
	assert.Len(t, got, 1)

	// Ingress: an ingress gateway bound to the service by its config entry.
	gw := epName(t, "igw")
	entry := &api.IngressGatewayConfigEntry{
		Kind: api.IngressGateway, Name: gw,
		Listeners: []api.IngressListener{{Port: 18080, Protocol: "tcp", Services: []api.IngressService{{Name: native}}}},
	}
	ok, _, err := c.ConfigEntries().Set(ctx, entry, nil)
	require.NoError(t, err)
	require.True(t, ok)
	t.Cleanup(func() { _, _ = c.ConfigEntries().Delete(context.Background(), api.IngressGateway, gw, nil) })
	epRegister(t, c, &api.AgentServiceRegistration{Kind: api.ServiceKindIngressGateway, Name: gw, Port: 18443})

	epEventually(t, 10*time.Second, func() error {
		got, _, err := c.Health().Ingress(ctx, native, nil, nil)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return errors.New("ingress gateway not listed yet")
		}
		assert.Equal(t, gw, got[0].Service.Service)
		assert.Equal(t, api.ServiceKindIngressGateway, got[0].Service.Kind)
		return nil
	})
	none, _, err := c.Health().Ingress(ctx, native+"-missing", nil, nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}
