package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	healthSerfCheckJSON = `{"Node": "vm", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
    "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [],
    "Type": "", "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {}, "CreateIndex": 13, "ModifyIndex": 13}`
	healthEntryJSON = `{"Node": ` + catalogNodeJSON + `,
    "Service": {"ID": "web-1", "Service": "web", "Tags": ["v1"], "Address": "10.0.0.5", "Meta": {}, "Port": 8080,
      "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false,
      "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "Connect": {}, "PeerName": "", "CreateIndex": 40, "ModifyIndex": 40},
    "Checks": [` + healthSerfCheckJSON + `,
      {"Node": "vm", "CheckID": "web-1-ttl", "Name": "web ttl", "Status": "critical", "Notes": "", "Output": "TTL expired",
       "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"], "Type": "ttl", "Interval": "", "Timeout": "",
       "ExposedPort": 0, "Definition": {}, "CreateIndex": 40, "ModifyIndex": 45}]}`
)

func TestHealthReads(t *testing.T) {
	idx := map[string]string{"X-Consul-Index": "45", "X-Consul-KnownLeader": "true", "X-Consul-Query-Backend": "blocking-query"}
	checksCase := func(name, path, query string, call func(ctx context.Context, c *Client) (HealthChecks, *QueryMeta, error)) wireCase {
		return wireCase{
			name:  name,
			reply: fakeReply{Header: idx, Body: "[" + healthSerfCheckJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				h, meta, err := call(ctx, c)
				if err == nil {
					assert.Equal(t, uint64(45), meta.LastIndex)
					assert.Equal(t, "blocking-query", meta.QueryBackend)
				}
				return h, err
			},
			method: "GET", path: path, query: query,
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				h := got.(HealthChecks)
				require.Len(t, h, 1)
				assert.Equal(t, "serfHealth", h[0].CheckID)
				assert.Equal(t, HealthPassing, h.AggregatedStatus())
			},
		}
	}
	runWireCases(t, []wireCase{
		checksCase("node", "/v1/health/node/vm", "", func(ctx context.Context, c *Client) (HealthChecks, *QueryMeta, error) {
			return c.Health().Node(ctx, "vm", nil)
		}),
		checksCase("checks blocking", "/v1/health/checks/web", "index=44&wait=5s", func(ctx context.Context, c *Client) (HealthChecks, *QueryMeta, error) {
			return c.Health().Checks(ctx, "web", &QueryOptions{WaitIndex: 44, WaitTime: 5 * time.Second})
		}),
		checksCase("state any", "/v1/health/state/any", "", func(ctx context.Context, c *Client) (HealthChecks, *QueryMeta, error) {
			return c.Health().State(ctx, HealthAny, nil)
		}),
		checksCase("state critical with filter", "/v1/health/state/critical", "filter=ServiceName+%3D%3D+%22web%22", func(ctx context.Context, c *Client) (HealthChecks, *QueryMeta, error) {
			return c.Health().State(ctx, HealthCritical, &QueryOptions{Filter: `ServiceName == "web"`})
		}),
		{
			name:  "service passing with tags, near",
			reply: fakeReply{Header: idx, Body: "[" + healthEntryJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Health().Service(ctx, "web", &HealthServiceOptions{Tags: []string{"v1", "canary"}, PassingOnly: true}, &QueryOptions{Near: "_agent"})
				return e, err
			},
			method: "GET", path: "/v1/health/service/web", query: "near=_agent&passing&tag=v1&tag=canary",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				e := got.([]*ServiceEntry)
				require.Len(t, e, 1)
				assert.Equal(t, "vm", e[0].Node.Node)
				assert.Equal(t, "web-1", e[0].Service.ID)
				require.Len(t, e[0].Checks, 2)
				assert.Equal(t, HealthCritical, e[0].Checks.AggregatedStatus())
				assert.Equal(t, "TTL expired", e[0].Checks[1].Output)
			},
		},
		{
			name:  "service without options, cached",
			reply: fakeReply{Header: map[string]string{"X-Cache": "MISS"}, Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, meta, err := c.Health().Service(ctx, "web", nil, &QueryOptions{UseCache: true, MaxAge: time.Minute})
				if err == nil {
					assert.False(t, meta.CacheHit)
				}
				return e, err
			},
			method: "GET", path: "/v1/health/service/web", query: "cached",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Empty(t, got)
			},
		},
		{
			name:  "connect",
			reply: fakeReply{Body: "[" + healthEntryJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Health().Connect(ctx, "web", &HealthServiceOptions{MergeCentralConfig: true}, &QueryOptions{WaitIndex: 3})
				return e, err
			},
			method: "GET", path: "/v1/health/connect/web", query: "index=3&merge-central-config&wait=300s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Len(t, got, 1)
			},
		},
		{
			name:  "ingress",
			reply: fakeReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Health().Ingress(ctx, "web", &HealthServiceOptions{PassingOnly: true}, nil)
				return e, err
			},
			method: "GET", path: "/v1/health/ingress/web", query: "passing",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Empty(t, got)
			},
		},
		{
			name:  "service with a name that needs escaping",
			reply: fakeReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Health().Service(ctx, "a/b c", nil, nil)
				return e, err
			},
			method: "GET", path: "/v1/health/service/a/b%20c",
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "denied",
			reply: fakeReply{Status: 403, Body: "ACL not found"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Health().Service(ctx, "web", nil, nil)
				return e, err
			},
			method: "GET", path: "/v1/health/service/web",
			check: wantStatus(403, ErrACLNotFound),
		},
	})
}

func TestHealthValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"node empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().Node(ctx, "", nil)
			return err
		}, "node"},
		{"checks empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().Checks(ctx, "", nil)
			return err
		}, "service"},
		{"service empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().Service(ctx, "", nil, nil)
			return err
		}, "service"},
		{"connect control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().Connect(ctx, "x\x00", nil, nil)
			return err
		}, "service"},
		{"ingress empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().Ingress(ctx, "", nil, nil)
			return err
		}, "service"},
		{"state maintenance", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().State(ctx, HealthMaint, nil)
			return err
		}, "state"},
		{"state unknown", func(ctx context.Context, c *Client) error {
			_, _, err := c.Health().State(ctx, strings.ToUpper(HealthPassing), nil)
			return err
		}, "state"},
	})
}
