package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func TestDiscoveryChainDefault(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	svc := ceName(t, "")

	// A service without config entries (or without registration) gets
	// a default chain: one resolver on one target.
	resp, meta, err := c.DiscoveryChain().Get(t.Context(), svc, nil, nil)
	require.NoError(t, err)
	assert.NotZero(t, meta.LastIndex)
	ch := resp.Chain
	require.NotNil(t, ch)
	assert.Equal(t, svc, ch.ServiceName)
	assert.True(t, ch.Default)
	assert.Equal(t, "tcp", ch.Protocol)
	assert.Empty(t, ch.CustomizationHash)
	node := ch.Nodes[ch.StartNode]
	require.NotNil(t, node, "start node %q", ch.StartNode)
	assert.Equal(t, api.DiscoveryGraphNodeTypeResolver, node.Type)
	require.NotNil(t, node.Resolver)
	assert.True(t, node.Resolver.Default)
	assert.Equal(t, 5*time.Second, node.Resolver.ConnectTimeout.D())
	tgt := ch.Targets[node.Resolver.Target]
	require.NotNil(t, tgt)
	assert.Equal(t, svc, tgt.Service)
	assert.Equal(t, ch.Datacenter, tgt.Datacenter)
	assert.NotEmpty(t, tgt.SNI)

	// compile-dc names the datacenter the chain is compiled for.
	resp, _, err = c.DiscoveryChain().Get(t.Context(), svc, &api.DiscoveryChainOptions{EvaluateInDatacenter: ch.Datacenter}, nil)
	require.NoError(t, err)
	assert.Equal(t, ch.Datacenter, resp.Chain.Datacenter)
}

func TestDiscoveryChainCompiled(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	svc := ceName(t, "")

	ceSet(t, c, &api.ServiceConfigEntry{Name: svc, Protocol: "http", Meta: map[string]string{"owner": "team-a"}})
	ceSet(t, c, &api.ServiceResolverConfigEntry{Name: svc, ConnectTimeout: api.Duration(15 * time.Second),
		Subsets: map[string]api.ServiceResolverSubset{
			"v1": {Filter: `Service.Meta.version == v1`},
			"v2": {Filter: `Service.Meta.version == v2`},
		}})
	ceSet(t, c, &api.ServiceSplitterConfigEntry{Name: svc, Splits: []api.ServiceSplit{
		{Weight: 80, ServiceSubset: "v1"}, {Weight: 20, ServiceSubset: "v2"},
	}})
	ceSet(t, c, &api.ServiceRouterConfigEntry{Name: svc, Routes: []api.ServiceRoute{{
		Match:       &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{PathPrefix: "/v2"}},
		Destination: &api.ServiceRouteDestination{Service: svc, ServiceSubset: "v2", RequestTimeout: api.Duration(3 * time.Second)},
	}}})

	// GET: the chain as configured.
	resp, _, err := c.DiscoveryChain().Get(ctx, svc, nil, nil)
	require.NoError(t, err)
	ch := resp.Chain
	require.NotNil(t, ch)
	assert.False(t, ch.Default)
	assert.Equal(t, "http", ch.Protocol)
	assert.Equal(t, "team-a", ch.ServiceMeta["owner"])
	router := ch.Nodes[ch.StartNode]
	require.NotNil(t, router)
	require.Equal(t, api.DiscoveryGraphNodeTypeRouter, router.Type)
	// The configured route, then the default route to the splitter.
	require.Len(t, router.Routes, 2)
	assert.Equal(t, "/v2", router.Routes[0].Definition.Match.HTTP.PathPrefix)
	assert.Equal(t, 3*time.Second, router.Routes[0].Definition.Destination.RequestTimeout.D())
	v2 := ch.Nodes[router.Routes[0].NextNode]
	require.NotNil(t, v2)
	assert.Equal(t, api.DiscoveryGraphNodeTypeResolver, v2.Type)
	assert.Equal(t, 15*time.Second, v2.Resolver.ConnectTimeout.D())
	assert.Equal(t, "v2", ch.Targets[v2.Resolver.Target].ServiceSubset)
	assert.Equal(t, `Service.Meta.version == v2`, ch.Targets[v2.Resolver.Target].Subset.Filter)
	splitter := ch.Nodes[router.Routes[1].NextNode]
	require.NotNil(t, splitter)
	require.Equal(t, api.DiscoveryGraphNodeTypeSplitter, splitter.Type)
	require.Len(t, splitter.Splits, 2)
	assert.Equal(t, float32(80), splitter.Splits[0].Weight)
	assert.Len(t, ch.Targets, 2)

	// POST: the same chain compiled with overrides.
	resp, _, err = c.DiscoveryChain().Get(ctx, svc, &api.DiscoveryChainOptions{
		OverrideConnectTimeout: api.Duration(7 * time.Second),
		OverrideMeshGateway:    api.MeshGatewayConfig{Mode: "local"},
	}, nil)
	require.NoError(t, err)
	och := resp.Chain
	require.NotNil(t, och)
	assert.NotEmpty(t, och.CustomizationHash)
	for id, tgt := range och.Targets {
		assert.Equal(t, 7*time.Second, tgt.ConnectTimeout.D(), id)
		assert.Equal(t, "local", tgt.MeshGateway.Mode, id)
	}

	// Overriding the protocol to tcp drops the L7 nodes.
	resp, _, err = c.DiscoveryChain().Get(ctx, svc, &api.DiscoveryChainOptions{OverrideProtocol: "tcp"}, nil)
	require.NoError(t, err)
	assert.Equal(t, "tcp", resp.Chain.Protocol)
	assert.Equal(t, api.DiscoveryGraphNodeTypeResolver, resp.Chain.Nodes[resp.Chain.StartNode].Type)

	// A bad override is refused.
	_, _, err = c.DiscoveryChain().Get(ctx, svc, &api.DiscoveryChainOptions{OverrideMeshGateway: api.MeshGatewayConfig{Mode: "bogus"}}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 400, se.Code)
}

func TestDiscoveryChainBlocking(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	svc := ceName(t, "")

	_, meta, err := c.DiscoveryChain().Get(ctx, svc, nil, nil)
	require.NoError(t, err)
	done := make(chan *api.DiscoveryChainResponse, 1)
	go func() {
		resp, _, err := c.DiscoveryChain().Get(ctx, svc, nil, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil {
			t.Errorf("blocking get: %v", err)
		}
		done <- resp
	}()
	ceSet(t, c, &api.ServiceConfigEntry{Name: svc, Protocol: "http"})
	select {
	case resp := <-done:
		require.NotNil(t, resp)
		// The wake-up may come from any config entry write; read again to
		// see this one.
		if resp.Chain.Protocol != "http" {
			resp, _, err = c.DiscoveryChain().Get(ctx, svc, nil, nil)
			require.NoError(t, err)
		}
		assert.Equal(t, "http", resp.Chain.Protocol)
	case <-time.After(25 * time.Second):
		t.Fatal("blocking discovery chain read did not return")
	}
}
