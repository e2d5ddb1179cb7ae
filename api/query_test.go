package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Realistic answers, as Consul 1.14 gives them.
const (
	pqID      = "54734f4a-4a29-b5c4-5183-7769a0bd9997"
	pqDefJSON = `{
        "ID": "54734f4a-4a29-b5c4-5183-7769a0bd9997",
        "Name": "pq-test",
        "Session": "",
        "Token": "<hidden>",
        "Template": {"Type": "", "Regexp": "", "RemoveEmptyTags": false},
        "Service": {
            "Service": "web",
            "Failover": {"NearestN": 2, "Datacenters": ["dc2"], "Targets": null},
            "OnlyPassing": true,
            "IgnoreCheckIDs": ["flaky"],
            "Near": "_agent",
            "Tags": ["v1", "!canary"],
            "NodeMeta": {"rack": "r1"},
            "ServiceMeta": null,
            "Connect": false,
            "Peer": ""
        },
        "DNS": {"TTL": "10s"},
        "CreateIndex": 39,
        "ModifyIndex": 40
    }`
	pqExecuteJSON = `{
    "Service": "consul",
    "Nodes": [
        {
            "Node": {"ID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e", "Node": "vm", "Address": "127.0.0.1", "Datacenter": "dc1",
                "TaggedAddresses": {"lan": "127.0.0.1", "wan": "127.0.0.1"}, "Meta": {"consul-network-segment": ""}, "CreateIndex": 13, "ModifyIndex": 17},
            "Service": {"ID": "consul", "Service": "consul", "Tags": null, "Address": "", "Meta": {"version": "1.14.8"}, "Port": 18300,
                "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false, "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
                "Connect": {}, "PeerName": "", "CreateIndex": 13, "ModifyIndex": 13},
            "Checks": [
                {"Node": "vm", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
                    "ServiceID": "", "ServiceName": "", "ServiceTags": null, "Type": "", "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {},
                    "CreateIndex": 13, "ModifyIndex": 13}
            ]
        }
    ],
    "DNS": {"TTL": "10s"},
    "Datacenter": "dc1",
    "PeerName": "",
    "Failovers": 0,
    "Index": 1, "LastContact": 0, "KnownLeader": true, "ConsistencyLevel": "leader", "NotModified": false, "Backend": 0, "ResultsFilteredByACLs": false
}`
)

func checkPQDef(t *testing.T, d *PreparedQueryDefinition) {
	t.Helper()
	require.NotNil(t, d)
	assert.Equal(t, pqID, d.ID)
	assert.Equal(t, "pq-test", d.Name)
	assert.Equal(t, "<hidden>", d.Token)
	assert.Equal(t, "web", d.Service.Service)
	assert.Equal(t, QueryFailoverOptions{NearestN: 2, Datacenters: []string{"dc2"}}, d.Service.Failover)
	assert.True(t, d.Service.OnlyPassing)
	assert.Equal(t, []string{"flaky"}, d.Service.IgnoreCheckIDs)
	assert.Equal(t, []string{"v1", "!canary"}, d.Service.Tags)
	assert.Equal(t, map[string]string{"rack": "r1"}, d.Service.NodeMeta)
	assert.Equal(t, 10*time.Second, d.DNS.TTL.D())
	assert.Equal(t, uint64(40), d.ModifyIndex)
}

func TestPreparedQuery(t *testing.T) {
	def := &PreparedQueryDefinition{
		Name: "pq-test",
		Service: ServiceQuery{
			Service:     "web",
			Failover:    QueryFailoverOptions{Targets: []QueryFailoverTarget{{Peer: "cluster-02"}, {Datacenter: "dc2"}}},
			OnlyPassing: true,
			Tags:        []string{"v1"},
			ServiceMeta: map[string]string{"env": "prod"},
		},
		DNS: QueryDNSOptions{TTL: Duration(10 * time.Second)},
	}
	const defBody = `{"Name":"pq-test","Service":{"Service":"web","Failover":{"Targets":[{"Peer":"cluster-02"},{"Datacenter":"dc2"}]},"OnlyPassing":true,"Tags":["v1"],"ServiceMeta":{"env":"prod"}},"DNS":{"TTL":"10s"}}`
	runWireCases(t, []wireCase{
		{
			name:  "create",
			reply: fakeReply{Body: `{"ID": "` + pqID + `"}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				id, _, err := c.Query().Create(ctx, def, nil)
				return id, err
			},
			method: "POST", path: "/v1/query",
			body: defBody,
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Equal(t, pqID, out.(string))
			},
		},
		{
			name:  "create template",
			reply: fakeReply{Body: `{"ID": "` + pqID + `"}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				id, _, err := c.Query().Create(ctx, &PreparedQueryDefinition{
					Name:     "geo-",
					Template: QueryTemplate{Type: QueryTemplateTypeNamePrefixMatch, Regexp: "^geo-(.*)$", RemoveEmptyTags: true},
					Service:  ServiceQuery{Service: "${match(1)}", Connect: true},
				}, &WriteOptions{Token: "mgmt"})
				return id, err
			},
			method: "POST", path: "/v1/query", token: "mgmt",
			body: `{"Name":"geo-","Template":{"Type":"name_prefix_match","Regexp":"^geo-(.*)$","RemoveEmptyTags":true},"Service":{"Service":"${match(1)}","Connect":true}}`,
		},
		{
			name:  "list",
			reply: fakeReply{Body: "[" + pqDefJSON + "]", Header: map[string]string{"X-Consul-Index": "40"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, meta, err := c.Query().List(ctx, nil)
				if err == nil {
					assert.Equal(t, uint64(40), meta.LastIndex)
				}
				return l, err
			},
			method: "GET", path: "/v1/query",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*PreparedQueryDefinition)
				require.Len(t, l, 1)
				checkPQDef(t, l[0])
			},
		},
		{
			name:  "get",
			reply: fakeReply{Body: "[" + pqDefJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				d, _, err := c.Query().Get(ctx, pqID, nil)
				return d, err
			},
			method: "GET", path: "/v1/query/" + pqID,
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				checkPQDef(t, out.(*PreparedQueryDefinition))
			},
		},
		{
			name:  "get missing",
			reply: fakeReply{Status: 404, Body: "Query not found", Header: map[string]string{"X-Consul-Index": "1"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				d, meta, err := c.Query().Get(ctx, pqID, nil)
				if assert.NotNil(t, meta) {
					assert.Equal(t, uint64(1), meta.LastIndex)
				}
				return d, err
			},
			method: "GET", path: "/v1/query/" + pqID,
			check: func(t *testing.T, out any, err error) {
				assert.NoError(t, err)
				assert.Nil(t, out.(*PreparedQueryDefinition))
			},
		},
		{
			name:  "update",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				d := *def
				d.ID = pqID
				_, err := c.Query().Update(ctx, &d, nil)
				return nil, err
			},
			method: "PUT", path: "/v1/query/" + pqID,
			body: `{"ID":"` + pqID + `",` + defBody[1:],
		},
		{
			name:  "update missing",
			reply: fakeReply{Status: 500, Body: "Cannot modify non-existent prepared query: '" + pqID + "'"},
			call: func(ctx context.Context, c *Client) (any, error) {
				d := *def
				d.ID = pqID
				_, err := c.Query().Update(ctx, &d, nil)
				return nil, err
			},
			method: "PUT", path: "/v1/query/" + pqID,
			body: `{"ID":"` + pqID + `",` + defBody[1:],
			check: func(t *testing.T, _ any, err error) {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				assert.Contains(t, se.Body, "non-existent prepared query")
			},
		},
		{
			name:  "delete",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Query().Delete(ctx, pqID, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/query/" + pqID,
		},
		{
			name:  "execute",
			reply: fakeReply{Body: pqExecuteJSON, Header: map[string]string{"X-Consul-KnownLeader": "true", "X-Cache": "HIT", "Age": "3"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, meta, err := c.Query().Execute(ctx, "pq-test", &QueryExecuteOptions{Limit: 1, Connect: true}, &QueryOptions{Near: "_agent", UseCache: true})
				if err == nil {
					assert.True(t, meta.KnownLeader)
					assert.True(t, meta.CacheHit)
					assert.Equal(t, 3*time.Second, meta.CacheAge)
				}
				return r, err
			},
			method: "GET", path: "/v1/query/pq-test/execute",
			query: "cached&connect=true&limit=1&near=_agent",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				r := out.(*PreparedQueryExecuteResponse)
				assert.Equal(t, "consul", r.Service)
				assert.Equal(t, "dc1", r.Datacenter)
				assert.Equal(t, 10*time.Second, r.DNS.TTL.D())
				assert.Equal(t, 0, r.Failovers)
				require.Len(t, r.Nodes, 1)
				n := r.Nodes[0]
				require.NotNil(t, n.Node)
				assert.Equal(t, "vm", n.Node.Node)
				require.NotNil(t, n.Service)
				assert.Equal(t, 18300, n.Service.Port)
				require.Len(t, n.Checks, 1)
				assert.Equal(t, HealthPassing, n.Checks.AggregatedStatus())
			},
		},
		{
			name:  "execute missing",
			reply: fakeReply{Status: 404, Body: "Query not found"},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.Query().Execute(ctx, "nope", nil, nil)
				return r, err
			},
			method: "GET", path: "/v1/query/nope/execute",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*PreparedQueryExecuteResponse))
				assert.ErrorIs(t, err, ErrNotFound)
			},
		},
		{
			name:  "explain",
			reply: fakeReply{Body: `{"Query": ` + pqDefJSON + `, "Index": 1, "LastContact": 0, "KnownLeader": true, "ConsistencyLevel": "leader", "NotModified": false, "Backend": 0, "ResultsFilteredByACLs": false}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.Query().Explain(ctx, "pq-test", &QueryOptions{Consistency: ConsistencyConsistent})
				return r, err
			},
			method: "GET", path: "/v1/query/pq-test/explain", query: "consistent",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				checkPQDef(t, &out.(*PreparedQueryExplainResponse).Query)
			},
		},
		{
			name:  "explain missing",
			reply: fakeReply{Status: 404, Body: "Query not found"},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.Query().Explain(ctx, "nope", nil)
				return r, err
			},
			method: "GET", path: "/v1/query/nope/explain",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*PreparedQueryExplainResponse))
				assert.ErrorIs(t, err, ErrNotFound)
			},
		},
	})
}

// TestPreparedQueryValidation checks that bad input fails before any
// request.
func TestPreparedQueryValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"create nil", func(ctx context.Context, c *Client) error { _, _, err := c.Query().Create(ctx, nil, nil); return err }, "query"},
		{"create with ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Create(ctx, &PreparedQueryDefinition{ID: "x", Service: ServiceQuery{Service: "s"}}, nil)
			return err
		}, "PreparedQueryDefinition.ID"},
		{"create without service", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Create(ctx, &PreparedQueryDefinition{Name: "n"}, nil)
			return err
		}, "PreparedQueryDefinition.Service.Service"},
		{"update without ID", func(ctx context.Context, c *Client) error {
			_, err := c.Query().Update(ctx, &PreparedQueryDefinition{Service: ServiceQuery{Service: "s"}}, nil)
			return err
		}, "PreparedQueryDefinition.ID"},
		{"update nil", func(ctx context.Context, c *Client) error { _, err := c.Query().Update(ctx, nil, nil); return err }, "query"},
		{"get empty", func(ctx context.Context, c *Client) error { _, _, err := c.Query().Get(ctx, "", nil); return err }, "query ID"},
		{"delete empty", func(ctx context.Context, c *Client) error { _, err := c.Query().Delete(ctx, "", nil); return err }, "query ID"},
		// Consul answers 500 to an ID its UUID index cannot parse.
		{"get name", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Get(ctx, "my-query", nil)
			return err
		}, "query ID"},
		{"get non-hex", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Get(ctx, "54734f4a-4a29-b5c4-5183-7769a0bd999z", nil)
			return err
		}, "query ID"},
		{"delete name", func(ctx context.Context, c *Client) error {
			_, err := c.Query().Delete(ctx, "my-query", nil)
			return err
		}, "query ID"},
		{"update name", func(ctx context.Context, c *Client) error {
			_, err := c.Query().Update(ctx, &PreparedQueryDefinition{ID: "my-query", Service: ServiceQuery{Service: "s"}}, nil)
			return err
		}, "PreparedQueryDefinition.ID"},
		{"execute empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Execute(ctx, "", nil, nil)
			return err
		}, "query ID or name"},
		{"execute negative limit", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Execute(ctx, "q", &QueryExecuteOptions{Limit: -1}, nil)
			return err
		}, "QueryExecuteOptions.Limit"},
		{"explain control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.Query().Explain(ctx, "a\tb", nil)
			return err
		}, "query ID or name"},
	})
}

func TestPreparedQueryDefinitionJSONOmitsUnsetFields(t *testing.T) {
	// Consul decodes query bodies with unknown fields disallowed, and the
	// open-source server knows no Namespace: unset fields must not be sent.
	b, err := json.Marshal(&PreparedQueryDefinition{Service: ServiceQuery{Service: "web"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Service":{"Service":"web"}}`, string(b))
}
