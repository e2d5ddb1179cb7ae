package api

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	catalogNodeJSON = `{"ID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e", "Node": "vm", "Address": "127.0.0.1", "Datacenter": "dc1",
    "TaggedAddresses": {"lan": "127.0.0.1", "lan_ipv4": "127.0.0.1", "wan": "127.0.0.1", "wan_ipv4": "127.0.0.1"},
    "Meta": {"consul-network-segment": ""}, "CreateIndex": 13, "ModifyIndex": 17}`
	catalogConsulServiceJSON = `{"ID": "consul", "Service": "consul", "Tags": [], "Address": "",
    "Meta": {"raft_version": "3", "version": "1.14.8"}, "Port": 18300, "Weights": {"Passing": 1, "Warning": 1},
    "EnableTagOverride": false, "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "Connect": {}, "PeerName": "",
    "CreateIndex": 13, "ModifyIndex": 13}`
	catalogServiceJSON = `[{"ID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e", "Node": "vm", "Address": "127.0.0.1", "Datacenter": "dc1",
    "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"}, "NodeMeta": {"consul-network-segment": ""},
    "ServiceKind": "", "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1", "primary"],
    "ServiceAddress": "10.0.0.5", "ServiceTaggedAddresses": {"lan_ipv4": {"Address": "10.0.0.5", "Port": 8080}},
    "ServiceWeights": {"Passing": 3, "Warning": 1}, "ServiceMeta": {"team": "a"}, "ServicePort": 8080,
    "ServiceSocketPath": "", "ServiceEnableTagOverride": true,
    "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "ServiceConnect": {},
    "CreateIndex": 40, "ModifyIndex": 41}]`
)

func TestCatalogReads(t *testing.T) {
	indexHeaders := map[string]string{"X-Consul-Index": "41", "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}
	runWireCases(t, []wireCase{
		{
			name:  "datacenters",
			reply: fakeReply{Body: `["dc1", "dc2"]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				d, _, err := c.Catalog().Datacenters(ctx, nil)
				return d, err
			},
			method: "GET", path: "/v1/catalog/datacenters",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Equal(t, []string{"dc1", "dc2"}, got)
			},
		},
		{
			name:  "nodes near, node-meta, filter, blocking",
			reply: fakeReply{Header: indexHeaders, Body: "[" + catalogNodeJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, meta, err := c.Catalog().Nodes(ctx, &QueryOptions{
					Near: "_agent", NodeMeta: map[string]string{"rack": "r1"}, Filter: `Meta.rack == "r1"`,
					WaitIndex: 40, WaitTime: 2 * time.Second, Consistency: ConsistencyStale,
				})
				if err == nil {
					assert.Equal(t, uint64(41), meta.LastIndex)
					assert.True(t, meta.KnownLeader)
				}
				return n, err
			},
			method: "GET", path: "/v1/catalog/nodes",
			query: "filter=Meta.rack+%3D%3D+%22r1%22&index=40&near=_agent&node-meta=rack%3Ar1&stale&wait=2s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				n := got.([]*Node)
				require.Len(t, n, 1)
				assert.Equal(t, "vm", n[0].Node)
				assert.Equal(t, "127.0.0.1", n[0].TaggedAddresses["wan"])
				assert.Equal(t, uint64(17), n[0].ModifyIndex)
			},
		},
		{
			name:  "services",
			reply: fakeReply{Header: indexHeaders, Body: `{"consul": [], "web": ["v1", "primary"]}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Catalog().Services(ctx, &QueryOptions{Datacenter: "dc2"})
				return s, err
			},
			method: "GET", path: "/v1/catalog/services", query: "dc=dc2",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Equal(t, map[string][]string{"consul": {}, "web": {"v1", "primary"}}, got)
			},
		},
		{
			name:  "service with tags",
			reply: fakeReply{Header: indexHeaders, Body: catalogServiceJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Catalog().Service(ctx, "web", &CatalogServiceOptions{Tags: []string{"v1", "primary"}}, nil)
				return s, err
			},
			method: "GET", path: "/v1/catalog/service/web", query: "tag=v1&tag=primary",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				s := got.([]*CatalogService)
				require.Len(t, s, 1)
				assert.Equal(t, "web-1", s[0].ServiceID)
				assert.Equal(t, "web", s[0].ServiceName)
				assert.Equal(t, "vm", s[0].Node)
				assert.Equal(t, "10.0.0.5", s[0].ServiceAddress)
				assert.Equal(t, 8080, s[0].ServicePort)
				assert.Equal(t, []string{"v1", "primary"}, s[0].ServiceTags)
				assert.Equal(t, AgentWeights{Passing: 3, Warning: 1}, s[0].ServiceWeights)
				assert.Equal(t, "a", s[0].ServiceMeta["team"])
				assert.True(t, s[0].ServiceEnableTagOverride)
				assert.Equal(t, ServiceAddress{Address: "10.0.0.5", Port: 8080}, s[0].ServiceTaggedAddresses["lan_ipv4"])
				require.NotNil(t, s[0].ServiceProxy)
				assert.Equal(t, uint64(41), s[0].ModifyIndex)
			},
		},
		{
			name:  "service without options",
			reply: fakeReply{Body: `[]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Catalog().Service(ctx, "nope", nil, nil)
				return s, err
			},
			method: "GET", path: "/v1/catalog/service/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Empty(t, got)
			},
		},
		{
			name:  "connect, merge central config",
			reply: fakeReply{Body: catalogServiceJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Catalog().Connect(ctx, "web", &CatalogServiceOptions{MergeCentralConfig: true}, &QueryOptions{WaitIndex: 5})
				return s, err
			},
			method: "GET", path: "/v1/catalog/connect/web", query: "index=5&merge-central-config&wait=300s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Len(t, got, 1)
			},
		},
		{
			name:  "node",
			reply: fakeReply{Header: indexHeaders, Body: `{"Node": ` + catalogNodeJSON + `, "Services": {"consul": ` + catalogConsulServiceJSON + `}}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, _, err := c.Catalog().Node(ctx, "vm", nil)
				return n, err
			},
			method: "GET", path: "/v1/catalog/node/vm",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				n := got.(*CatalogNode)
				require.NotNil(t, n.Node)
				assert.Equal(t, "vm", n.Node.Node)
				require.Contains(t, n.Services, "consul")
				assert.Equal(t, 18300, n.Services["consul"].Port)
			},
		},
		{
			name:  "node missing (200 null)",
			reply: fakeReply{Header: map[string]string{"X-Consul-Index": "1"}, Body: "null"},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, meta, err := c.Catalog().Node(ctx, "nope", nil)
				if err == nil {
					assert.Equal(t, uint64(1), meta.LastIndex)
				}
				return n, err
			},
			method: "GET", path: "/v1/catalog/node/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.(*CatalogNode))
			},
		},
		{
			name:  "node-services",
			reply: fakeReply{Body: `{"Node": ` + catalogNodeJSON + `, "Services": [` + catalogConsulServiceJSON + `]}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, _, err := c.Catalog().NodeServiceList(ctx, "vm", &QueryOptions{Filter: `Service == "consul"`})
				return n, err
			},
			method: "GET", path: "/v1/catalog/node-services/vm", query: "filter=Service+%3D%3D+%22consul%22",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				n := got.(*CatalogNodeServiceList)
				assert.Equal(t, "vm", n.Node.Node)
				require.Len(t, n.Services, 1)
				assert.Equal(t, "consul", n.Services[0].Service)
			},
		},
		{
			name:  "node-services missing",
			reply: fakeReply{Body: `{"Node": null, "Services": null}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, _, err := c.Catalog().NodeServiceList(ctx, "nope", nil)
				return n, err
			},
			method: "GET", path: "/v1/catalog/node-services/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.(*CatalogNodeServiceList))
			},
		},
		{
			name: "gateway-services",
			reply: fakeReply{Body: `[{"Gateway": {"Name": "tgw"}, "Service": {"Name": "billing"}, "GatewayKind": "terminating-gateway",
				"CAFile": "/etc/ca.pem", "SNI": "billing.example.com", "ServiceKind": "service", "CreateIndex": 50, "ModifyIndex": 50}]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				g, _, err := c.Catalog().GatewayServices(ctx, "tgw", nil)
				return g, err
			},
			method: "GET", path: "/v1/catalog/gateway-services/tgw",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				g := got.([]*GatewayService)
				require.Len(t, g, 1)
				assert.Equal(t, "tgw", g[0].Gateway.Name)
				assert.Equal(t, "billing", g[0].Service.Name)
				assert.Equal(t, ServiceKindTerminatingGateway, g[0].GatewayKind)
				assert.Equal(t, "billing.example.com", g[0].SNI)
			},
		},
		{
			name:  "no leader",
			reply: fakeReply{Status: 500, Body: "No cluster leader"},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, _, err := c.Catalog().Nodes(ctx, nil)
				return n, err
			},
			method: "GET", path: "/v1/catalog/nodes",
			check: func(t *testing.T, got any, err error) {
				wantStatus(500, ErrNoLeader)(t, got, err)
				assert.True(t, IsRetryable(err))
			},
		},
		{
			name:  "rate limited",
			reply: fakeReply{Status: 429, Body: "rate limit exceeded"},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Catalog().Services(ctx, nil)
				return s, err
			},
			method: "GET", path: "/v1/catalog/services",
			check: wantStatus(429, ErrRateLimited),
		},
	})
}

func TestCatalogWrites(t *testing.T) {
	ok := func(t *testing.T, _ any, err error) { require.NoError(t, err) }
	t.Run("register does not modify its input", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: "true"})
		reg := &CatalogRegistration{Node: "n", Address: "10.0.0.1", Service: &AgentService{Service: "s"}}
		_, err := c.Catalog().Register(context.Background(), reg, nil)
		require.NoError(t, err)
		assert.Equal(t, AgentWeights{}, reg.Service.Weights)
		require.Len(t, f.all(), 1)
	})
	runWireCases(t, []wireCase{
		{
			name:  "register node, service and checks",
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Catalog().Register(ctx, &CatalogRegistration{
					ID: "40e4a748-2192-161a-0510-9bf59fe950b5", Node: "ext-1", Address: "192.168.10.10",
					TaggedAddresses: map[string]string{"wan": "203.0.113.1"},
					NodeMeta:        map[string]string{"external-node": "true"},
					Datacenter:      "dc1",
					Service: &AgentService{
						ID: "redis1", Service: "redis", Tags: []string{"primary"}, Port: 8000,
						Address: "10.0.0.9", Meta: map[string]string{"v": "1"},
						Weights: AgentWeights{Passing: 10, Warning: 1},
					},
					Check: &HealthCheck{
						CheckID: "service:redis1", Name: "Redis health check", Status: HealthPassing, ServiceID: "redis1",
						Definition: HealthCheckDefinition{TCP: "10.0.0.9:8000", Interval: Duration(5 * time.Second), Timeout: Duration(time.Second)},
					},
					SkipNodeUpdate: false,
				}, &WriteOptions{Token: "write"})
			},
			method: "PUT", path: "/v1/catalog/register", token: "write",
			body: `{"ID": "40e4a748-2192-161a-0510-9bf59fe950b5", "Node": "ext-1", "Address": "192.168.10.10",
				"TaggedAddresses": {"wan": "203.0.113.1"}, "NodeMeta": {"external-node": "true"}, "Datacenter": "dc1",
				"Service": {"ID": "redis1", "Service": "redis", "Tags": ["primary"], "Port": 8000, "Address": "10.0.0.9",
					"Meta": {"v": "1"}, "Weights": {"Passing": 10, "Warning": 1}, "EnableTagOverride": false},
				"Check": {"Node": "", "CheckID": "service:redis1", "Name": "Redis health check", "Status": "passing",
					"Notes": "", "Output": "", "ServiceID": "redis1", "ServiceName": "", "ServiceTags": null, "Type": "",
					"Definition": {"TCP": "10.0.0.9:8000", "Interval": "5s", "Timeout": "1s"},
					"CreateIndex": 0, "ModifyIndex": 0}}`,
			check: ok,
		},
		{
			name:  "register with default weights and skip node update",
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Catalog().Register(ctx, &CatalogRegistration{
					Node: "ext-1", SkipNodeUpdate: true, Service: &AgentService{Service: "redis"},
				}, nil)
			},
			method: "PUT", path: "/v1/catalog/register",
			body: `{"Node": "ext-1", "SkipNodeUpdate": true,
				"Service": {"ID": "", "Service": "redis", "Port": 0, "Address": "", "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false}}`,
			check: ok,
		},
		{
			name:  "register denied",
			reply: fakeReply{Status: 403, Body: "Permission denied: token with AccessorID 'x' lacks permission 'node:write' on \"ext-1\""},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Catalog().Register(ctx, &CatalogRegistration{Node: "ext-1", Address: "10.0.0.1"}, nil)
			},
			method: "PUT", path: "/v1/catalog/register", body: `{"Node": "ext-1", "Address": "10.0.0.1"}`,
			check: wantStatus(403, ErrPermissionDenied),
		},
		{
			name:  "deregister service",
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Catalog().Deregister(ctx, &CatalogDeregistration{Node: "ext-1", ServiceID: "redis1"}, nil)
			},
			method: "PUT", path: "/v1/catalog/deregister", body: `{"Node": "ext-1", "ServiceID": "redis1"}`,
			check: ok,
		},
		{
			name:  "deregister check in dc",
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Catalog().Deregister(ctx, &CatalogDeregistration{Node: "ext-1", CheckID: "c1", Datacenter: "dc2"}, &WriteOptions{Datacenter: "dc2"})
			},
			method: "PUT", path: "/v1/catalog/deregister", query: "dc=dc2", body: `{"Node": "ext-1", "CheckID": "c1", "Datacenter": "dc2"}`,
			check: ok,
		},
	})
}

func TestCatalogValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		// Consul 1.14's catalog endpoints do not read ?peer: they would
		// answer with the local datacenter's entries.
		{"datacenters peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Datacenters(ctx, &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"nodes peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Nodes(ctx, &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"services peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Services(ctx, &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"service peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Service(ctx, "web", nil, &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"connect peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Connect(ctx, "web", nil, &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"node peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Node(ctx, "n1", &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"node services peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().NodeServiceList(ctx, "n1", &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"gateway services peer", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().GatewayServices(ctx, "gw", &QueryOptions{Peer: "p"})
			return err
		}, "QueryOptions.Peer"},
		{"register nil", func(ctx context.Context, c *Client) error {
			_, err := c.Catalog().Register(ctx, nil, nil)
			return err
		}, "registration"},
		{"register no node", func(ctx context.Context, c *Client) error {
			_, err := c.Catalog().Register(ctx, &CatalogRegistration{Address: "10.0.0.1"}, nil)
			return err
		}, "Node"},
		{"register no address", func(ctx context.Context, c *Client) error {
			_, err := c.Catalog().Register(ctx, &CatalogRegistration{Node: "n"}, nil)
			return err
		}, "Address"},
		{"register service without name", func(ctx context.Context, c *Client) error {
			_, err := c.Catalog().Register(ctx, &CatalogRegistration{Node: "n", Address: "a", Service: &AgentService{ID: "x"}}, nil)
			return err
		}, "Service.Service"},
		{"deregister nil", func(ctx context.Context, c *Client) error {
			_, err := c.Catalog().Deregister(ctx, nil, nil)
			return err
		}, "deregistration"},
		{"deregister no node", func(ctx context.Context, c *Client) error {
			_, err := c.Catalog().Deregister(ctx, &CatalogDeregistration{ServiceID: "x"}, nil)
			return err
		}, "Node"},
		{"service empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Service(ctx, "", nil, nil)
			return err
		}, "service"},
		{"connect empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Connect(ctx, "\t", nil, nil)
			return err
		}, "service"},
		{"node empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().Node(ctx, "", nil)
			return err
		}, "node"},
		{"node-services empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().NodeServiceList(ctx, "", nil)
			return err
		}, "node"},
		{"gateway empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Catalog().GatewayServices(ctx, "", nil)
			return err
		}, "gateway"},
	})
}
