package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// epCatalogNode registers an external node (with reg's service and checks)
// and removes it when the test ends.
func epCatalogNode(t *testing.T, c *api.Client, reg *api.CatalogRegistration) {
	t.Helper()
	_, err := c.Catalog().Register(t.Context(), reg, nil)
	require.NoError(t, err, "registering node %s", reg.Node)
	node := reg.Node
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Catalog().Deregister(ctx, &api.CatalogDeregistration{Node: node}, nil); err != nil {
			t.Logf("deregistering node %s: %v", node, err)
		}
	})
}

func TestCatalogRegisterIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	node := epName(t, "node")
	svc := epName(t, "svc")
	epCatalogNode(t, c, &api.CatalogRegistration{
		Node: node, Address: "192.0.2.10",
		TaggedAddresses: map[string]string{"wan": "198.51.100.10"},
		NodeMeta:        map[string]string{"external": "true", "owner": node},
		Service: &api.AgentService{
			ID: svc + "-1", Service: svc, Tags: []string{"primary", "v1"}, Port: 6379, Address: "192.0.2.11",
			Meta: map[string]string{"version": "7"}, Weights: api.AgentWeights{Passing: 5, Warning: 2},
			TaggedAddresses: map[string]api.ServiceAddress{"wan": {Address: "198.51.100.11", Port: 16379}},
		},
		Check: &api.HealthCheck{
			CheckID: svc + "-tcp", Name: "redis tcp", Status: api.HealthPassing, ServiceID: svc + "-1",
			Definition: api.HealthCheckDefinition{TCP: "192.0.2.11:6379", Interval: api.Duration(10 * time.Second), Timeout: api.Duration(time.Second)},
		},
		Checks: api.HealthChecks{
			{CheckID: "node-alive", Name: "node alive", Status: api.HealthWarning, Output: "slow"},
		},
	})
	// A second instance, without weights (sent as the defaults) and with
	// only one of the tags, on the same node without touching it.
	epCatalogNode(t, c, &api.CatalogRegistration{
		Node: node, SkipNodeUpdate: true,
		Service: &api.AgentService{ID: svc + "-2", Service: svc, Tags: []string{"v1"}, Port: 6380},
	})

	cn, meta, err := c.Catalog().Node(ctx, node, nil)
	require.NoError(t, err)
	require.NotNil(t, cn)
	assert.NotZero(t, meta.LastIndex)
	assert.Equal(t, "192.0.2.10", cn.Node.Address, "SkipNodeUpdate kept the address")
	assert.Equal(t, "198.51.100.10", cn.Node.TaggedAddresses["wan"])
	assert.Equal(t, "true", cn.Node.Meta["external"])
	require.Contains(t, cn.Services, svc+"-1")
	assert.Equal(t, 6379, cn.Services[svc+"-1"].Port)
	assert.Equal(t, api.ServiceAddress{Address: "198.51.100.11", Port: 16379}, cn.Services[svc+"-1"].TaggedAddresses["wan"])

	list, _, err := c.Catalog().NodeServiceList(ctx, node, nil)
	require.NoError(t, err)
	require.NotNil(t, list)
	assert.Equal(t, node, list.Node.Node)
	assert.Len(t, list.Services, 2)

	all, _, err := c.Catalog().Service(ctx, svc, nil, nil)
	require.NoError(t, err)
	require.Len(t, all, 2)
	byID := map[string]*api.CatalogService{}
	for _, s := range all {
		byID[s.ServiceID] = s
	}
	one := byID[svc+"-1"]
	require.NotNil(t, one)
	assert.Equal(t, node, one.Node)
	assert.Equal(t, "192.0.2.10", one.Address)
	assert.Equal(t, svc, one.ServiceName)
	assert.Equal(t, "192.0.2.11", one.ServiceAddress)
	assert.Equal(t, 6379, one.ServicePort)
	assert.Equal(t, []string{"primary", "v1"}, one.ServiceTags)
	assert.Equal(t, "7", one.ServiceMeta["version"])
	assert.Equal(t, api.AgentWeights{Passing: 5, Warning: 2}, one.ServiceWeights)
	assert.Equal(t, "true", one.NodeMeta["external"])
	assert.NotZero(t, one.ModifyIndex)
	require.NotNil(t, byID[svc+"-2"])
	assert.Equal(t, api.AgentWeights{Passing: 1, Warning: 1}, byID[svc+"-2"].ServiceWeights)

	// Tags: every tag must match.
	tagged, _, err := c.Catalog().Service(ctx, svc, &api.CatalogServiceOptions{Tags: []string{"v1", "primary"}}, nil)
	require.NoError(t, err)
	require.Len(t, tagged, 1)
	assert.Equal(t, svc+"-1", tagged[0].ServiceID)
	tagged, _, err = c.Catalog().Service(ctx, svc, &api.CatalogServiceOptions{Tags: []string{"v1"}}, nil)
	require.NoError(t, err)
	assert.Len(t, tagged, 2)
	none, _, err := c.Catalog().Service(ctx, svc+"-missing", nil, nil)
	require.NoError(t, err)
	assert.Empty(t, none)

	services, _, err := c.Catalog().Services(ctx, &api.QueryOptions{NodeMeta: map[string]string{"owner": node}})
	require.NoError(t, err)
	require.Contains(t, services, svc)
	assert.ElementsMatch(t, []string{"primary", "v1"}, services[svc])

	nodes, _, err := c.Catalog().Nodes(ctx, &api.QueryOptions{NodeMeta: map[string]string{"owner": node}})
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	assert.Equal(t, node, nodes[0].Node)
	nodes, _, err = c.Catalog().Nodes(ctx, &api.QueryOptions{Filter: "Node == " + strconv.Quote(node), Near: "_agent"})
	require.NoError(t, err)
	require.Len(t, nodes, 1)

	// The checks went in with the node's name filled in.
	checks, _, err := c.Health().Node(ctx, node, nil)
	require.NoError(t, err)
	ids := map[string]*api.HealthCheck{}
	for _, ch := range checks {
		ids[ch.CheckID] = ch
	}
	require.Contains(t, ids, svc+"-tcp")
	assert.Equal(t, node, ids[svc+"-tcp"].Node)
	assert.Equal(t, "192.0.2.11:6379", ids[svc+"-tcp"].Definition.TCP)
	assert.Equal(t, 10*time.Second, ids[svc+"-tcp"].Definition.Interval.D())
	require.Contains(t, ids, "node-alive")
	assert.Equal(t, api.HealthWarning, ids["node-alive"].Status)

	// Deregister one service, then one check, then the node.
	_, err = c.Catalog().Deregister(ctx, &api.CatalogDeregistration{Node: node, ServiceID: svc + "-2"}, nil)
	require.NoError(t, err)
	all, _, err = c.Catalog().Service(ctx, svc, nil, nil)
	require.NoError(t, err)
	assert.Len(t, all, 1)
	_, err = c.Catalog().Deregister(ctx, &api.CatalogDeregistration{Node: node, CheckID: "node-alive"}, nil)
	require.NoError(t, err)
	checks, _, err = c.Health().Node(ctx, node, nil)
	require.NoError(t, err)
	assert.Len(t, checks, 1)
	_, err = c.Catalog().Deregister(ctx, &api.CatalogDeregistration{Node: node}, nil)
	require.NoError(t, err)
	cn, _, err = c.Catalog().Node(ctx, node, nil)
	require.NoError(t, err)
	assert.Nil(t, cn)
	list, _, err = c.Catalog().NodeServiceList(ctx, node, nil)
	require.NoError(t, err)
	assert.Nil(t, list)
	// Deregistering what is gone is fine.
	_, err = c.Catalog().Deregister(ctx, &api.CatalogDeregistration{Node: node}, nil)
	require.NoError(t, err)
}

func TestCatalogDatacentersIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	self, _, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)
	dcs, _, err := c.Catalog().Datacenters(ctx, nil)
	require.NoError(t, err)
	assert.Contains(t, dcs, self.Config.Datacenter)

	// An unknown datacenter is an error from Consul.
	_, _, err = c.Catalog().Nodes(ctx, &api.QueryOptions{Datacenter: "no-such-dc"})
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "No path to datacenter")
}

func TestCatalogBlockingIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	svc := epName(t, "")
	_, meta, err := c.Catalog().Service(ctx, svc, nil, nil)
	require.NoError(t, err)

	type result struct {
		s   []*api.CatalogService
		err error
	}
	done := make(chan result, 1)
	go func() {
		q := &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second}
		for {
			s, m, err := c.Catalog().Service(ctx, svc, nil, q)
			if err != nil || len(s) > 0 {
				done <- result{s, err}
				return
			}
			q.WaitIndex = api.NextWaitIndex(q.WaitIndex, m.LastIndex)
		}
	}()
	start := time.Now()
	time.Sleep(200 * time.Millisecond)
	epRegister(t, c, &api.AgentServiceRegistration{ID: svc, Name: svc, Port: 1})
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.Len(t, r.s, 1)
		assert.Less(t, time.Since(start), 25*time.Second)
	case <-time.After(40 * time.Second):
		t.Fatal("blocking query did not return")
	}
}

func TestCatalogConnectIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	native := epName(t, "native")
	plain := epName(t, "plain")
	epRegister(t, c, &api.AgentServiceRegistration{Name: native, Port: 9000, Connect: &api.AgentServiceConnect{Native: true}})
	epRegister(t, c, &api.AgentServiceRegistration{Name: plain, Port: 9001})

	// Anti-entropy syncs agent services to the catalog at once on
	// registration; allow a moment anyway.
	epEventually(t, 10*time.Second, func() error {
		got, _, err := c.Catalog().Connect(ctx, native, nil, nil)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return errors.New("native service not in the catalog yet")
		}
		require.NotNil(t, got[0].ServiceConnect)
		assert.True(t, got[0].ServiceConnect.Native)
		return nil
	})
	got, _, err := c.Catalog().Connect(ctx, plain, nil, nil)
	require.NoError(t, err)
	assert.Empty(t, got, "a plain service has no Connect instances")
	got, _, err = c.Catalog().Connect(ctx, native, &api.CatalogServiceOptions{MergeCentralConfig: true}, nil)
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func TestCatalogGatewayServicesIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	gw := epName(t, "tgw")
	linked := epName(t, "billing")

	empty, _, err := c.Catalog().GatewayServices(ctx, gw, nil)
	require.NoError(t, err)
	assert.Empty(t, empty)

	entry := &api.TerminatingGatewayConfigEntry{
		Kind: api.TerminatingGateway, Name: gw,
		Services: []api.LinkedService{{Name: linked, SNI: linked + ".example.com"}},
	}
	ok, _, err := c.ConfigEntries().Set(ctx, entry, nil)
	require.NoError(t, err)
	require.True(t, ok)
	t.Cleanup(func() { _, _ = c.ConfigEntries().Delete(context.Background(), api.TerminatingGateway, gw, nil) })

	gs, meta, err := c.Catalog().GatewayServices(ctx, gw, nil)
	require.NoError(t, err)
	require.Len(t, gs, 1)
	assert.NotZero(t, meta.LastIndex)
	assert.Equal(t, gw, gs[0].Gateway.Name)
	assert.Equal(t, linked, gs[0].Service.Name)
	assert.Equal(t, api.ServiceKindTerminatingGateway, gs[0].GatewayKind)
	assert.Equal(t, linked+".example.com", gs[0].SNI)
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Service.Name
	}
	assert.True(t, slices.Contains(names, linked))
}

// TestCatalogRegisterAgentServiceIntegration registers, on an external
// node, a service as the agent returned it: the agent fills Datacenter and
// ContentHash, which /v1/catalog/register refuses ("unknown field"), so
// Register leaves them out, on a copy.
func TestCatalogRegisterAgentServiceIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	id := epName(t, "svc")
	epRegister(t, c, &api.AgentServiceRegistration{ID: id, Name: id, Port: 80})
	svc, _, err := c.Agent().Service(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, svc)
	require.NotEmpty(t, svc.ContentHash, "the agent fills the field this test is about")

	node := epName(t, "ext")
	epCatalogNode(t, c, &api.CatalogRegistration{Node: node, Address: "192.0.2.1", Service: svc})
	assert.NotEmpty(t, svc.ContentHash, "the caller's service was modified")
	got, _, err := c.Catalog().Service(ctx, id, nil, nil)
	require.NoError(t, err)
	var nodes []string
	for _, s := range got {
		nodes = append(nodes, s.Node)
	}
	assert.Contains(t, nodes, node)
}

// A check read from the catalog and registered again keeps its whole
// definition: external-service monitors work that way, and a field the
// typed struct left out would be erased by the second registration.
func TestCatalogCheckDefinitionSurvivesReregisterIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	node := epName(t, "defs")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.Catalog().Deregister(ctx, &api.CatalogDeregistration{Node: node}, nil)
	})
	// Registered outside api, with every definition field Consul 1.14
	// stores, so that the test does not depend on api's struct.
	body := `{"Node":"` + node + `","Address":"192.0.2.7","Checks":[
	 {"CheckID":"ping","Name":"ping","Status":"passing","Definition":{"H2PING":"192.0.2.7:443","H2PingUseTLS":true,"Interval":"10s","Timeout":"2s","OutputMaxSize":2048}},
	 {"CheckID":"web","Name":"web","Status":"passing","Definition":{"HTTP":"http://192.0.2.7/health","Method":"HEAD","DisableRedirects":true,"TLSServerName":"web","Interval":"5s"}},
	 {"CheckID":"other","Name":"other","Status":"passing","Definition":{"ScriptArgs":["/bin/check","-v"],"DockerContainerID":"c0ffee","Shell":"/bin/sh","AliasNode":"n2","AliasService":"s2","TTL":"30s","DeregisterCriticalServiceAfter":"1m"}}]}`
	code, out := rawRequest(t, a, http.MethodPut, "/v1/catalog/register", []byte(body))
	require.Equal(t, http.StatusOK, code, out)

	definitions := func() string {
		code, out := rawRequest(t, a, http.MethodGet, "/v1/health/node/"+node, nil)
		require.Equal(t, http.StatusOK, code, out)
		var checks []struct {
			CheckID    string
			Definition map[string]any
		}
		require.NoError(t, json.Unmarshal([]byte(out), &checks))
		slices.SortFunc(checks, func(x, y struct {
			CheckID    string
			Definition map[string]any
		}) int {
			return strings.Compare(x.CheckID, y.CheckID)
		})
		b, err := json.Marshal(checks)
		require.NoError(t, err)
		return string(b)
	}
	before := definitions()
	require.Contains(t, before, "DockerContainerID", "the registration above stored the definitions")

	checks, _, err := c.Health().Node(t.Context(), node, nil)
	require.NoError(t, err)
	require.Len(t, checks, 3)
	_, err = c.Catalog().Register(t.Context(), &api.CatalogRegistration{Node: node, Address: "192.0.2.7", Checks: checks}, nil)
	require.NoError(t, err)
	assert.JSONEq(t, before, definitions())
}

// TestCatalogPeerRefusedIntegration: Consul 1.14's catalog endpoints do not
// read ?peer (only /v1/health/service does), so a catalog read "of a peer"
// answers with the local datacenter's entries. The client refuses it
// rather than pass local instances off as the peer's.
func TestCatalogPeerRefusedIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	node := epName(t, "node")
	svc := epName(t, "svc")
	epCatalogNode(t, c, &api.CatalogRegistration{
		Node: node, Address: "192.0.2.30",
		Service: &api.AgentService{ID: svc + "-1", Service: svc, Port: 80},
	})
	q := &api.QueryOptions{Peer: "no-such-peer"}

	// The health endpoint honours the peer: nothing was imported from it.
	entries, _, err := c.Health().Service(ctx, svc, nil, q)
	require.NoError(t, err)
	assert.Empty(t, entries)

	calls := map[string]func() (any, error){
		"Service": func() (any, error) { v, _, err := c.Catalog().Service(ctx, svc, nil, q); return v, err },
		"Connect": func() (any, error) { v, _, err := c.Catalog().Connect(ctx, svc, nil, q); return v, err },
		"Nodes":   func() (any, error) { v, _, err := c.Catalog().Nodes(ctx, q); return v, err },
		"Services": func() (any, error) {
			v, _, err := c.Catalog().Services(ctx, q)
			return v, err
		},
		"Node":            func() (any, error) { v, _, err := c.Catalog().Node(ctx, node, q); return v, err },
		"NodeServiceList": func() (any, error) { v, _, err := c.Catalog().NodeServiceList(ctx, node, q); return v, err },
		"GatewayServices": func() (any, error) { v, _, err := c.Catalog().GatewayServices(ctx, svc, q); return v, err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			v, err := call()
			require.ErrorIs(t, err, api.ErrInvalid, "Consul ignores ?peer here and answered with local entries: %+v", v)
		})
	}
}
