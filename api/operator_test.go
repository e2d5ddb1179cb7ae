package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Realistic answers, as Consul 1.14 gives them.
const (
	opRaftConfigJSON = `{
    "Servers": [
        {"ID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e", "Node": "s1", "Address": "127.0.0.1:18300", "Leader": true, "ProtocolVersion": "3", "Voter": true, "LastIndex": 25},
        {"ID": "5e9bd0a4-4c1c-4bb8-9a31-7f2d1b0e6c11", "Node": "s2", "Address": "127.0.0.2:18300", "Leader": false, "ProtocolVersion": "3", "Voter": true, "LastIndex": 25}
    ],
    "Index": 0
}`
	opAutopilotConfigJSON = `{
    "CleanupDeadServers": true,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": false,
    "UpgradeVersionTag": "",
    "CreateIndex": 4,
    "ModifyIndex": 4
}`
	opHealthJSON = `{
    "Healthy": %s,
    "FailureTolerance": 0,
    "Servers": [
        {"ID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e", "Name": "s1", "Address": "127.0.0.1:18300", "SerfStatus": "alive", "Version": "1.14.8", "Leader": true, "LastContact": "0s", "LastTerm": 2, "LastIndex": 25, "Healthy": true, "Voter": true, "StableSince": "2026-11-27T09:57:31Z"},
        {"ID": "5e9bd0a4-4c1c-4bb8-9a31-7f2d1b0e6c11", "Name": "s2", "Address": "127.0.0.2:18300", "SerfStatus": "failed", "Version": "1.14.8", "Leader": false, "LastContact": "1.5s", "LastTerm": 2, "LastIndex": 20, "Healthy": %s, "Voter": true, "StableSince": "2026-11-27T09:58:00Z"}
    ]
}`
	opStateJSON = `{
    "Healthy": true,
    "FailureTolerance": 0,
    "OptimisticFailureTolerance": 0,
    "Servers": {
        "0d8760c8-2014-4d7d-8f2e-578e81a2523e": {
            "ID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e",
            "Name": "vm",
            "Address": "127.0.0.1:18300",
            "NodeStatus": "alive",
            "Version": "1.14.8",
            "LastContact": "0s",
            "LastTerm": 2,
            "LastIndex": 25,
            "Healthy": true,
            "StableSince": "2026-11-27T09:57:30.766479268Z",
            "ReadReplica": false,
            "Status": "leader",
            "Meta": {"consul-network-segment": ""},
            "NodeType": "voter"
        }
    },
    "Leader": "0d8760c8-2014-4d7d-8f2e-578e81a2523e",
    "Voters": ["0d8760c8-2014-4d7d-8f2e-578e81a2523e"]
}`
	opKeyringJSON = `[
    {"WAN": true, "Datacenter": "dc1", "Segment": "", "Messages": {}, "Keys": {"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=": 3}, "PrimaryKeys": {"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=": 3}, "NumNodes": 3},
    {"WAN": false, "Datacenter": "dc1", "Segment": "", "Messages": {}, "Keys": {"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=": 3}, "PrimaryKeys": {"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=": 3}, "NumNodes": 3}
]`
	opUsageJSON = `{
    "Usage": {"dc1": {"Services": 1, "ServiceInstances": 1, "ConnectServiceInstances": {"connect-native": 0, "connect-proxy": 0, "ingress-gateway": 0, "mesh-gateway": 0, "terminating-gateway": 0}, "BillableServiceInstances": 0, "Nodes": 1}},
    "Index": 13, "LastContact": 0, "KnownLeader": true, "ConsistencyLevel": "leader", "NotModified": false, "Backend": 0, "ResultsFilteredByACLs": false
}`
	opGossipKey = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
)

func TestOperatorRaft(t *testing.T) {
	runWireCases(t, []wireCase{
		{
			name:  "configuration",
			reply: fakeReply{Body: opRaftConfigJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				cfg, _, err := c.Operator().RaftGetConfiguration(ctx, &QueryOptions{Consistency: ConsistencyStale})
				return cfg, err
			},
			method: "GET", path: "/v1/operator/raft/configuration", query: "stale",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				cfg := out.(*RaftConfiguration)
				require.Len(t, cfg.Servers, 2)
				assert.Equal(t, RaftServer{ID: "0d8760c8-2014-4d7d-8f2e-578e81a2523e", Node: "s1", Address: "127.0.0.1:18300", Leader: true, ProtocolVersion: "3", Voter: true, LastIndex: 25}, *cfg.Servers[0])
				assert.False(t, cfg.Servers[1].Leader)
			},
		},
		{
			name:  "configuration without leader",
			reply: fakeReply{Status: 500, Body: "No cluster leader"},
			call: func(ctx context.Context, c *Client) (any, error) {
				cfg, _, err := c.Operator().RaftGetConfiguration(ctx, nil)
				return cfg, err
			},
			method: "GET", path: "/v1/operator/raft/configuration",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*RaftConfiguration))
				assert.ErrorIs(t, err, ErrNoLeader)
				assert.True(t, IsRetryable(err))
			},
		},
		{
			name:  "remove peer by ID",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().RaftRemovePeerByID(ctx, "5e9bd0a4-4c1c-4bb8-9a31-7f2d1b0e6c11", &WriteOptions{Datacenter: "dc1"})
				return nil, err
			},
			method: "DELETE", path: "/v1/operator/raft/peer", query: "dc=dc1&id=5e9bd0a4-4c1c-4bb8-9a31-7f2d1b0e6c11",
		},
		{
			name:  "remove peer by address",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().RaftRemovePeerByAddress(ctx, "127.0.0.2:18300", nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/operator/raft/peer", query: "address=127.0.0.2%3A18300",
		},
		{
			name:  "remove unknown peer",
			reply: fakeReply{Status: 500, Body: `id "nope" was not found in the Raft configuration`},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().RaftRemovePeerByID(ctx, "nope", nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/operator/raft/peer", query: "id=nope",
			check: func(t *testing.T, _ any, err error) {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, 500, se.Code)
				assert.Contains(t, se.Body, "not found in the Raft configuration")
			},
		},
		{
			name:  "transfer leader to a server",
			reply: fakeReply{Body: `{"Success": true}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, _, err := c.Operator().RaftTransferLeader(ctx, "5e9bd0a4-4c1c-4bb8-9a31-7f2d1b0e6c11", nil)
				return ok, err
			},
			method: "POST", path: "/v1/operator/raft/transfer-leader", query: "id=5e9bd0a4-4c1c-4bb8-9a31-7f2d1b0e6c11",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.True(t, out.(bool))
			},
		},
		{
			name:  "transfer leader to any server",
			reply: fakeReply{Body: `{"Success": true}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, _, err := c.Operator().RaftTransferLeader(ctx, "", nil)
				return ok, err
			},
			method: "POST", path: "/v1/operator/raft/transfer-leader",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.True(t, out.(bool))
			},
		},
		{
			name:  "transfer leader on Consul 1.14",
			reply: fakeReply{Status: 404, Body: "Invalid URL path: not a recognized HTTP API endpoint"},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, _, err := c.Operator().RaftTransferLeader(ctx, "", nil)
				return ok, err
			},
			method: "POST", path: "/v1/operator/raft/transfer-leader",
			check: func(t *testing.T, out any, err error) {
				assert.False(t, out.(bool))
				assert.ErrorIs(t, err, ErrNotFound)
			},
		},
	})
}

func TestOperatorAutopilot(t *testing.T) {
	conf := &AutopilotConfiguration{
		CleanupDeadServers:      false,
		LastContactThreshold:    Duration(300 * time.Millisecond),
		MaxTrailingLogs:         500,
		MinQuorum:               3,
		ServerStabilizationTime: Duration(20 * time.Second),
		ModifyIndex:             4,
	}
	const confBody = `{"CleanupDeadServers":false,"LastContactThreshold":"300ms","MaxTrailingLogs":500,"MinQuorum":3,"ServerStabilizationTime":"20s","RedundancyZoneTag":"","DisableUpgradeMigration":false,"UpgradeVersionTag":"","CreateIndex":0,"ModifyIndex":4}`
	runWireCases(t, []wireCase{
		{
			name:  "get configuration",
			reply: fakeReply{Body: opAutopilotConfigJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				cfg, _, err := c.Operator().AutopilotGetConfiguration(ctx, nil)
				return cfg, err
			},
			method: "GET", path: "/v1/operator/autopilot/configuration",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Equal(t, AutopilotConfiguration{
					CleanupDeadServers: true, LastContactThreshold: Duration(200 * time.Millisecond),
					MaxTrailingLogs: 250, ServerStabilizationTime: Duration(10 * time.Second),
					CreateIndex: 4, ModifyIndex: 4,
				}, *out.(*AutopilotConfiguration))
			},
		},
		{
			name:  "set configuration",
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().AutopilotSetConfiguration(ctx, conf, nil)
				return nil, err
			},
			method: "PUT", path: "/v1/operator/autopilot/configuration",
			body: confBody,
		},
		{
			name:  "CAS configuration applied",
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, _, err := c.Operator().AutopilotCASConfiguration(ctx, conf, nil)
				return ok, err
			},
			method: "PUT", path: "/v1/operator/autopilot/configuration", query: "cas=4",
			body: confBody,
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.True(t, out.(bool))
			},
		},
		{
			name:  "CAS configuration refused",
			reply: fakeReply{Body: "false"},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, _, err := c.Operator().AutopilotCASConfiguration(ctx, conf, nil)
				return ok, err
			},
			method: "PUT", path: "/v1/operator/autopilot/configuration", query: "cas=4",
			body: confBody,
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.False(t, out.(bool))
			},
		},
		{
			name:  "health healthy",
			reply: fakeReply{Body: fmt.Sprintf(opHealthJSON, "true", "true")},
			call: func(ctx context.Context, c *Client) (any, error) {
				h, _, err := c.Operator().AutopilotServerHealth(ctx, nil)
				return h, err
			},
			method: "GET", path: "/v1/operator/autopilot/health",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				h := out.(*OperatorHealthReply)
				assert.True(t, h.Healthy)
				require.Len(t, h.Servers, 2)
				assert.Equal(t, ServerHealth{
					ID: "0d8760c8-2014-4d7d-8f2e-578e81a2523e", Name: "s1", Address: "127.0.0.1:18300",
					SerfStatus: "alive", Version: "1.14.8", Leader: true, LastTerm: 2, LastIndex: 25,
					Healthy: true, Voter: true, StableSince: time.Date(2026, 11, 27, 9, 57, 31, 0, time.UTC),
				}, h.Servers[0])
				assert.Equal(t, 1500*time.Millisecond, h.Servers[1].LastContact.D())
			},
		},
		{
			name:  "health unhealthy is a 429 with a report",
			reply: fakeReply{Status: 429, Body: fmt.Sprintf(opHealthJSON, "false", "false")},
			call: func(ctx context.Context, c *Client) (any, error) {
				h, _, err := c.Operator().AutopilotServerHealth(ctx, nil)
				return h, err
			},
			method: "GET", path: "/v1/operator/autopilot/health",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				h := out.(*OperatorHealthReply)
				assert.False(t, h.Healthy)
				assert.False(t, h.Servers[1].Healthy)
				assert.Equal(t, "failed", h.Servers[1].SerfStatus)
			},
		},
		{
			name:  "health rate limited",
			reply: fakeReply{Status: 429, Body: "rate limit exceeded"},
			call: func(ctx context.Context, c *Client) (any, error) {
				h, _, err := c.Operator().AutopilotServerHealth(ctx, nil)
				return h, err
			},
			method: "GET", path: "/v1/operator/autopilot/health",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*OperatorHealthReply))
				assert.ErrorIs(t, err, ErrRateLimited)
				var se *StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, "rate limit exceeded", se.Body)
				assert.Equal(t, "/v1/operator/autopilot/health", se.Path)
			},
		},
		{
			name:  "health other error",
			reply: fakeReply{Status: 403, Body: "Permission denied: token with AccessorID 'x' lacks permission 'operator:read'"},
			call: func(ctx context.Context, c *Client) (any, error) {
				h, _, err := c.Operator().AutopilotServerHealth(ctx, nil)
				return h, err
			},
			method: "GET", path: "/v1/operator/autopilot/health",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*OperatorHealthReply))
				assert.ErrorIs(t, err, ErrPermissionDenied)
			},
		},
		{
			name:  "state",
			reply: fakeReply{Body: opStateJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Operator().AutopilotState(ctx, nil)
				return s, err
			},
			method: "GET", path: "/v1/operator/autopilot/state",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				s := out.(*AutopilotState)
				assert.True(t, s.Healthy)
				assert.Equal(t, "0d8760c8-2014-4d7d-8f2e-578e81a2523e", s.Leader)
				srv, ok := s.Servers[s.Leader]
				require.True(t, ok)
				assert.Equal(t, AutopilotServerLeader, srv.Status)
				assert.Equal(t, "voter", srv.NodeType)
				assert.Equal(t, "alive", srv.NodeStatus)
				assert.Equal(t, 766479268, srv.StableSince.Nanosecond())
				assert.Nil(t, s.Upgrade)
			},
		},
	})
}

func TestOperatorKeyringAndUsage(t *testing.T) {
	runWireCases(t, []wireCase{
		{
			name:  "list",
			reply: fakeReply{Body: opKeyringJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.Operator().KeyringList(ctx, nil, nil)
				return l, err
			},
			method: "GET", path: "/v1/operator/keyring",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*KeyringResponse)
				require.Len(t, l, 2)
				assert.True(t, l[0].WAN)
				assert.Equal(t, map[string]int{opGossipKey: 3}, l[1].Keys)
				assert.Equal(t, map[string]int{opGossipKey: 3}, l[1].PrimaryKeys)
				assert.Equal(t, 3, l[1].NumNodes)
			},
		},
		{
			name:  "list local only with relay factor",
			reply: fakeReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.Operator().KeyringList(ctx, &KeyringOptions{RelayFactor: 2, LocalOnly: true}, nil)
				return l, err
			},
			method: "GET", path: "/v1/operator/keyring", query: "local-only=true&relay-factor=2",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Empty(t, out.([]*KeyringResponse))
			},
		},
		{
			name:  "list without gossip encryption",
			reply: fakeReply{Status: 500, Body: "4 errors occurred:\n\t* WAN error: 1/1 nodes reported failure\n\t* vm.dc1: Keyring is empty (encryption not enabled)\n\t* dc1 (LAN) error: 1/1 nodes reported failure\n\t* vm: Keyring is empty (encryption not enabled)\n\n"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.Operator().KeyringList(ctx, nil, nil)
				return l, err
			},
			method: "GET", path: "/v1/operator/keyring",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.([]*KeyringResponse))
				assert.True(t, IsKeyringDisabled(err))
			},
		},
		{
			name:  "install",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().KeyringInstall(ctx, opGossipKey, &KeyringOptions{RelayFactor: 1}, nil)
				return nil, err
			},
			method: "POST", path: "/v1/operator/keyring", query: "relay-factor=1",
			body: `{"Key":"` + opGossipKey + `"}`,
		},
		{
			name:  "use",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().KeyringUse(ctx, opGossipKey, nil, &WriteOptions{Token: "op"})
				return nil, err
			},
			method: "PUT", path: "/v1/operator/keyring", token: "op",
			body: `{"Key":"` + opGossipKey + `"}`,
		},
		{
			name:  "remove",
			reply: fakeReply{},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().KeyringRemove(ctx, opGossipKey, nil, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/operator/keyring",
			body: `{"Key":"` + opGossipKey + `"}`,
		},
		{
			name:  "install without gossip encryption",
			reply: fakeReply{Status: 500, Body: "4 errors occurred:\n\t* vm.dc1: No keyring to modify (encryption not enabled)\n"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.Operator().KeyringInstall(ctx, opGossipKey, nil, nil)
				return nil, err
			},
			method: "POST", path: "/v1/operator/keyring",
			body: `{"Key":"` + opGossipKey + `"}`,
			check: func(t *testing.T, _ any, err error) {
				assert.True(t, IsKeyringDisabled(err))
			},
		},
		{
			name:  "usage",
			reply: fakeReply{Body: opUsageJSON, Header: map[string]string{"X-Consul-Index": "13"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				u, meta, err := c.Operator().Usage(ctx, false, nil)
				if err == nil {
					assert.Equal(t, uint64(13), meta.LastIndex)
				}
				return u, err
			},
			method: "GET", path: "/v1/operator/usage",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				u := out.(*Usage)
				dc1, ok := u.Usage["dc1"]
				require.True(t, ok)
				assert.Equal(t, 1, dc1.Services)
				assert.Equal(t, 1, dc1.ServiceInstances)
				assert.Equal(t, 1, dc1.Nodes)
				assert.Equal(t, 0, dc1.ConnectServiceInstances["connect-proxy"])
				assert.Len(t, dc1.ConnectServiceInstances, 5)
			},
		},
		{
			name:  "usage global",
			reply: fakeReply{Body: `{"Usage":{}}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				u, _, err := c.Operator().Usage(ctx, true, nil)
				return u, err
			},
			method: "GET", path: "/v1/operator/usage", query: "global=true",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Empty(t, out.(*Usage).Usage)
			},
		},
		{
			name:  "usage on Consul 1.14",
			reply: fakeReply{Status: 404, Body: "Invalid URL path: not a recognized HTTP API endpoint"},
			call: func(ctx context.Context, c *Client) (any, error) {
				u, _, err := c.Operator().Usage(ctx, false, nil)
				return u, err
			},
			method: "GET", path: "/v1/operator/usage",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*Usage))
				assert.ErrorIs(t, err, ErrNotFound)
			},
		},
	})
}

// TestOperatorValidation checks that bad input fails before any request.
func TestOperatorValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"remove peer empty ID", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().RaftRemovePeerByID(ctx, "", nil)
			return err
		}, "Raft server ID"},
		{"remove peer empty address", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().RaftRemovePeerByAddress(ctx, "", nil)
			return err
		}, "Raft server address"},
		{"transfer leader control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.Operator().RaftTransferLeader(ctx, "a\x00", nil)
			return err
		}, "Raft server ID"},
		{"set nil configuration", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().AutopilotSetConfiguration(ctx, nil, nil)
			return err
		}, "autopilot configuration"},
		{"CAS nil configuration", func(ctx context.Context, c *Client) error {
			_, _, err := c.Operator().AutopilotCASConfiguration(ctx, nil, nil)
			return err
		}, "autopilot configuration"},
		{"install empty key", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().KeyringInstall(ctx, "", nil, nil)
			return err
		}, "key"},
		{"install key not base64", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().KeyringInstall(ctx, "not base64!", nil, nil)
			return err
		}, "key"},
		{"use key of bad length", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().KeyringUse(ctx, "c2hvcnQ=", nil, nil)
			return err
		}, "key"},
		{"remove with local-only", func(ctx context.Context, c *Client) error {
			_, err := c.Operator().KeyringRemove(ctx, opGossipKey, &KeyringOptions{LocalOnly: true}, nil)
			return err
		}, "KeyringOptions.LocalOnly"},
		{"list with relay factor 6", func(ctx context.Context, c *Client) error {
			_, _, err := c.Operator().KeyringList(ctx, &KeyringOptions{RelayFactor: 6}, nil)
			return err
		}, "KeyringOptions.RelayFactor"},
	})
}

func TestAutopilotConfigurationLeavesZeroDurationsToConsul(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: "true"})
	_, err := c.Operator().AutopilotSetConfiguration(context.Background(), &AutopilotConfiguration{CleanupDeadServers: true, MaxTrailingLogs: 250}, nil)
	require.NoError(t, err)
	body := string(f.last(t).Body)
	assert.NotContains(t, body, "LastContactThreshold")
	assert.NotContains(t, body, "ServerStabilizationTime")
	assert.Contains(t, body, `"CleanupDeadServers":true`)
}
