package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Realistic bodies, as Consul 1.14 writes them.
const (
	agentServiceJSON = `{
    "ID": "web-1", "Service": "web", "Tags": ["v1", "primary"], "Meta": {"team": "a"},
    "Port": 8080, "Address": "10.0.0.5",
    "TaggedAddresses": {"lan_ipv4": {"Address": "10.0.0.5", "Port": 8080}, "wan_ipv4": {"Address": "10.0.0.5", "Port": 8080}},
    "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false,
    "ContentHash": "cfc0eb415e6babff", "Datacenter": "dc1"}`
	agentCheckJSON = `{
    "Node": "vm", "CheckID": "web-1-ttl", "Name": "web ttl", "Status": "%s", "Notes": "", "Output": "",
    "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1", "primary"], "Type": "ttl", "ExposedPort": 0,
    "Definition": {"Interval": "0s", "Timeout": "0s", "DeregisterCriticalServiceAfter": "0s", "HTTP": "", "Header": null,
      "Method": "", "Body": "", "TLSServerName": "", "TLSSkipVerify": false, "TCP": "", "UDP": "", "GRPC": "",
      "OSService": "", "GRPCUseTLS": false},
    "CreateIndex": 0, "ModifyIndex": 0}`
	memberJSON = `{"Name": "vm", "Addr": "127.0.0.1", "Port": 18301,
    "Tags": {"acls": "0", "build": "1.14.8:", "dc": "dc1", "port": "18300", "role": "consul", "segment": "", "wan_join_port": "18302"},
    "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2, "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4}`
)

func checkInfoJSON(status string) string {
	return `{"AggregatedStatus": "` + status + `", "Service": ` + agentServiceJSON +
		`, "Checks": [` + strings.Replace(agentCheckJSON, "%s", status, 1) + `]}`
}

func TestAgentReads(t *testing.T) {
	selfBody := `{
    "Config": {"Datacenter": "dc1", "PrimaryDatacenter": "dc1", "NodeName": "vm",
      "NodeID": "0d8760c8-2014-4d7d-8f2e-578e81a2523e", "Revision": "", "Server": true,
      "Version": "1.14.8", "BuildDate": "1970-01-01T00:00:01Z"},
    "DebugConfig": {"ACLResolverSettings": {"ACLDefaultPolicy": "allow"}, "Bootstrap": false},
    "Coord": {"Vec": [0, 0, 0, 0, 0, 0, 0, 0], "Error": 1.5, "Adjustment": 0, "Height": 1e-05},
    "Member": ` + memberJSON + `,
    "Stats": {"agent": {"check_monitors": "0", "services": "1"}, "raft": {"state": "Leader"}},
    "Meta": {"consul-network-segment": ""},
    "xDS": {"SupportedProxies": {"envoy": ["1.24.0", "1.23.2"]}, "Port": 8502, "Ports": {"Plaintext": 8502, "TLS": -1}}}`
	hostBody := `{
    "Memory": {"total": 25276063744, "available": 24787742720, "used": 168660992, "usedPercent": 0.667, "free": 23844843520, "active": 372887552},
    "CPU": [{"cpu": 0, "vendorId": "AuthenticAMD", "family": "25", "model": "1", "stepping": 1, "cores": 1, "modelName": "AMD EPYC", "mhz": 2445.41, "flags": ["fpu"]}],
    "Host": {"hostname": "vm", "uptime": 692, "bootTime": 1795772892, "procs": 79, "os": "linux", "platform": "debian",
      "platformFamily": "debian", "platformVersion": "12.11", "kernelVersion": "6.1.0", "kernelArch": "x86_64",
      "virtualizationSystem": "", "virtualizationRole": "guest", "hostId": "3d1219c7"},
    "Disk": {"path": "/", "fstype": "ext2/ext3", "total": 270553174016, "free": 82160558080, "used": 15632736256, "usedPercent": 15.98},
    "CollectionTime": 1795773584179838753, "Errors": [{}]}`
	metricsBody := `{"Timestamp": "2026-11-27 09:59:30 +0000 UTC",
    "Gauges": [{"Name": "consul.autopilot.healthy", "Value": 1, "Labels": {}}],
    "Points": [],
    "Counters": [{"Name": "consul.client.rpc", "Count": 5, "Rate": 0.5, "Sum": 5, "Min": 1, "Max": 1, "Mean": 1, "Stddev": 0, "Labels": {}}],
    "Samples": [{"Name": "consul.api.http", "Count": 1, "Rate": 0.034, "Sum": 0.344, "Min": 0.344, "Max": 0.344, "Mean": 0.344, "Stddev": 0,
      "Labels": {"method": "GET", "path": "v1_agent_self"}}]}`
	leafBody := `{"SerialNumber": "4a:1b", "CertPEM": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
    "PrivateKeyPEM": "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
    "Service": "web", "ServiceURI": "spiffe://162b8817.consul/ns/default/dc/dc1/svc/web",
    "ValidAfter": "2026-11-27T09:57:30Z", "ValidBefore": "2026-11-30T09:57:30Z", "CreateIndex": 20, "ModifyIndex": 20}`
	rootsBody := `{"ActiveRootID": "9b:a4", "TrustDomain": "162b8817.consul", "Roots": [{"ID": "9b:a4",
    "Name": "Consul CA Primary Cert", "SerialNumber": 7, "SigningKeyID": "0d:1f", "ExternalTrustDomain": "162b8817",
    "NotBefore": "2026-11-27T09:57:30Z", "NotAfter": "2036-11-24T09:57:30Z", "RootCert": "-----BEGIN CERTIFICATE-----\n",
    "IntermediateCerts": null, "Active": true, "PrivateKeyType": "ec", "PrivateKeyBits": 256, "CreateIndex": 8, "ModifyIndex": 8}]}`

	runWireCases(t, []wireCase{
		{
			name:  "self",
			reply: fakeReply{Body: selfBody},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Agent().Self(ctx, nil)
				return s, err
			},
			method: "GET", path: "/v1/agent/self",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				s := got.(*AgentSelf)
				assert.Equal(t, "vm", s.Config.NodeName)
				assert.True(t, s.Config.Server)
				assert.Equal(t, "1.14.8", s.Config.Version)
				require.NotNil(t, s.Coord)
				assert.Len(t, s.Coord.Vec, 8)
				assert.InDelta(t, 1.5, s.Coord.Error, 1e-9)
				assert.Equal(t, "127.0.0.1", s.Member.Addr)
				assert.Equal(t, uint16(18301), s.Member.Port)
				assert.Equal(t, MemberStatusAlive, s.Member.Status)
				assert.Equal(t, "Leader", s.Stats["raft"]["state"])
				require.NotNil(t, s.XDS)
				assert.Equal(t, 8502, s.XDS.Ports.Plaintext)
				assert.Contains(t, s.DebugConfig, "Bootstrap")
			},
		},
		{
			name:  "self with token override",
			reply: fakeReply{Body: selfBody},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Agent().Self(ctx, &QueryOptions{Token: "other"})
				return s, err
			},
			method: "GET", path: "/v1/agent/self", token: "other",
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "self permission denied",
			reply: fakeReply{Status: 403, Body: "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'agent:read' on \"vm\""},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Agent().Self(ctx, nil)
				return s, err
			},
			method: "GET", path: "/v1/agent/self",
			check: wantStatus(403, ErrPermissionDenied),
		},
		{
			name:  "host",
			reply: fakeReply{Body: hostBody},
			call: func(ctx context.Context, c *Client) (any, error) {
				h, _, err := c.Agent().Host(ctx, nil)
				return h, err
			},
			method: "GET", path: "/v1/agent/host",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				h := got.(*AgentHostInfo)
				require.NotNil(t, h.Memory)
				assert.Equal(t, uint64(25276063744), h.Memory.Total)
				require.Len(t, h.CPU, 1)
				assert.Equal(t, "AMD EPYC", h.CPU[0].ModelName)
				require.NotNil(t, h.Host)
				assert.Equal(t, "linux", h.Host.OS)
				require.NotNil(t, h.Disk)
				assert.Equal(t, "/", h.Disk.Path)
				assert.Equal(t, int64(1795773584179838753), h.CollectionTime)
				assert.Len(t, h.Errors, 1)
			},
		},
		{
			name:  "version",
			reply: fakeReply{Body: `{"SHA": "abc123", "BuildDate": "2023-06-01T00:00:00Z", "HumanVersion": "1.16.0", "FIPS": ""}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				v, _, err := c.Agent().Version(ctx, nil)
				return v, err
			},
			method: "GET", path: "/v1/agent/version",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				v := got.(*AgentVersion)
				assert.Equal(t, "1.16.0", v.HumanVersion)
				assert.Equal(t, "abc123", v.SHA)
			},
		},
		{
			name:  "version on an old agent",
			reply: fakeReply{Status: 404, Body: "Invalid URL path: not a recognized HTTP API endpoint"},
			call: func(ctx context.Context, c *Client) (any, error) {
				v, _, err := c.Agent().Version(ctx, nil)
				return v, err
			},
			method: "GET", path: "/v1/agent/version",
			check: wantStatus(404, ErrNotFound),
		},
		{
			name:  "members LAN",
			reply: fakeReply{Body: "[" + memberJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.Agent().Members(ctx, nil, nil)
				return m, err
			},
			method: "GET", path: "/v1/agent/members",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				m := got.([]*AgentMember)
				require.Len(t, m, 1)
				assert.Equal(t, "vm", m[0].Name)
				assert.Equal(t, "consul", m[0].Tags["role"])
				assert.Equal(t, "alive", m[0].Status.String())
				assert.Equal(t, uint8(4), m[0].DelegateCur)
			},
		},
		{
			name:  "members WAN",
			reply: fakeReply{Body: "[" + strings.Replace(memberJSON, `"vm"`, `"vm.dc1"`, 1) + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.Agent().Members(ctx, &MembersOptions{WAN: true}, nil)
				return m, err
			},
			method: "GET", path: "/v1/agent/members", query: "wan=1",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Equal(t, "vm.dc1", got.([]*AgentMember)[0].Name)
			},
		},
		{
			name:  "members segment and filter",
			reply: fakeReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.Agent().Members(ctx, &MembersOptions{Segment: "_all"}, &QueryOptions{Datacenter: "dc2"})
				return m, err
			},
			method: "GET", path: "/v1/agent/members", query: "dc=dc2&segment=_all",
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "metrics",
			reply: fakeReply{Body: metricsBody},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.Agent().Metrics(ctx, nil)
				return m, err
			},
			method: "GET", path: "/v1/agent/metrics",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				m := got.(*MetricsInfo)
				assert.Equal(t, "2026-11-27 09:59:30 +0000 UTC", m.Timestamp)
				require.Len(t, m.Gauges, 1)
				assert.Equal(t, float32(1), m.Gauges[0].Value)
				require.Len(t, m.Counters, 1)
				assert.Equal(t, 5, m.Counters[0].Count)
				require.Len(t, m.Samples, 1)
				assert.Equal(t, "v1_agent_self", m.Samples[0].Labels["path"])
			},
		},
		{
			name:  "metrics prometheus",
			reply: fakeReply{Header: map[string]string{"Content-Type": "text/plain; version=0.0.4"}, Body: "# HELP consul_up up\n# TYPE consul_up gauge\nconsul_up 1\n"},
			call: func(ctx context.Context, c *Client) (any, error) {
				b, _, err := c.Agent().MetricsPrometheus(ctx, nil)
				return b, err
			},
			method: "GET", path: "/v1/agent/metrics", query: "format=prometheus",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Contains(t, string(got.([]byte)), "consul_up 1")
			},
		},
		{
			name:  "metrics prometheus disabled (Consul 1.14: 200, empty, X-Consul-Reason)",
			reply: fakeReply{Header: map[string]string{"X-Consul-Reason": "Prometheus is not enabled since its retention time is not positive"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				b, _, err := c.Agent().MetricsPrometheus(ctx, nil)
				return b, err
			},
			method: "GET", path: "/v1/agent/metrics", query: "format=prometheus",
			check: func(t *testing.T, got any, err error) {
				wantStatus(415, nil)(t, got, err)
				assert.Contains(t, err.Error(), "Prometheus is not enabled")
				assert.Nil(t, got)
			},
		},
		{
			name:  "metrics prometheus disabled (415)",
			reply: fakeReply{Status: 415, Body: "Prometheus is not enabled since its retention time is not positive"},
			call: func(ctx context.Context, c *Client) (any, error) {
				b, _, err := c.Agent().MetricsPrometheus(ctx, nil)
				return b, err
			},
			method: "GET", path: "/v1/agent/metrics", query: "format=prometheus",
			check: wantStatus(415, nil),
		},
		{
			name:  "services with filter",
			reply: fakeReply{Body: `{"web-1": ` + agentServiceJSON + `}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Agent().Services(ctx, &QueryOptions{Filter: `Service == "web"`})
				return s, err
			},
			method: "GET", path: "/v1/agent/services", query: "filter=Service+%3D%3D+%22web%22",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				s := got.(map[string]*AgentService)
				require.Contains(t, s, "web-1")
				assert.Equal(t, "web", s["web-1"].Service)
				assert.Equal(t, 8080, s["web-1"].Port)
				assert.Equal(t, ServiceAddress{Address: "10.0.0.5", Port: 8080}, s["web-1"].TaggedAddresses["lan_ipv4"])
				assert.Equal(t, AgentWeights{Passing: 1, Warning: 1}, s["web-1"].Weights)
			},
		},
		{
			name:  "service",
			reply: fakeReply{Header: map[string]string{"X-Consul-ContentHash": "cfc0eb415e6babff"}, Body: agentServiceJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, meta, err := c.Agent().Service(ctx, "web-1", nil)
				if err == nil {
					assert.Equal(t, "cfc0eb415e6babff", meta.LastContentHash)
				}
				return s, err
			},
			method: "GET", path: "/v1/agent/service/web-1",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				s := got.(*AgentService)
				assert.Equal(t, "web-1", s.ID)
				assert.Equal(t, []string{"v1", "primary"}, s.Tags)
				assert.Equal(t, "cfc0eb415e6babff", s.ContentHash)
				assert.Equal(t, "dc1", s.Datacenter)
			},
		},
		{
			name:  "service blocking on hash",
			reply: fakeReply{Header: map[string]string{"X-Consul-ContentHash": "1234"}, Body: agentServiceJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, meta, err := c.Agent().Service(ctx, "web-1", &QueryOptions{WaitHash: "cfc0eb415e6babff", WaitTime: 30 * time.Second})
				if err == nil {
					assert.Equal(t, "1234", meta.LastContentHash)
				}
				return s, err
			},
			method: "GET", path: "/v1/agent/service/web-1", query: "hash=cfc0eb415e6babff&wait=30s",
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "service with an ID that needs escaping",
			reply: fakeReply{Body: agentServiceJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, _, err := c.Agent().Service(ctx, "web 1?x", nil)
				return s, err
			},
			method: "GET", path: "/v1/agent/service/web%201%3Fx",
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "service not found",
			reply: fakeReply{Status: 404, Body: "unknown service ID: nope"},
			call: func(ctx context.Context, c *Client) (any, error) {
				s, meta, err := c.Agent().Service(ctx, "nope", nil)
				if err == nil {
					assert.NotNil(t, meta)
				}
				return s, err
			},
			method: "GET", path: "/v1/agent/service/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.(*AgentService))
			},
		},
		{
			name:  "checks",
			reply: fakeReply{Body: `{"web-1-ttl": ` + strings.Replace(agentCheckJSON, "%s", "passing", 1) + `}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.Agent().Checks(ctx, &QueryOptions{Filter: `ServiceName == "web"`})
				return m, err
			},
			method: "GET", path: "/v1/agent/checks", query: "filter=ServiceName+%3D%3D+%22web%22",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				m := got.(map[string]*HealthCheck)
				require.Contains(t, m, "web-1-ttl")
				assert.Equal(t, HealthPassing, m["web-1-ttl"].Status)
				assert.Equal(t, "ttl", m["web-1-ttl"].Type)
			},
		},
		{
			name:  "connect CA roots",
			reply: fakeReply{Header: map[string]string{"X-Consul-Index": "8"}, Body: rootsBody},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, meta, err := c.Agent().ConnectCARoots(ctx, &QueryOptions{WaitIndex: 7, WaitTime: time.Minute})
				if err == nil {
					assert.Equal(t, uint64(8), meta.LastIndex)
				}
				return r, err
			},
			method: "GET", path: "/v1/agent/connect/ca/roots", query: "index=7&wait=60s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				r := got.(*CARootList)
				assert.Equal(t, "9b:a4", r.ActiveRootID)
				require.Len(t, r.Roots, 1)
				assert.True(t, r.Roots[0].Active)
				assert.Equal(t, uint64(7), r.Roots[0].SerialNumber)
			},
		},
		{
			name:  "connect CA leaf, blocking",
			reply: fakeReply{Header: map[string]string{"X-Consul-Index": "21", "X-Cache": "HIT", "Age": "3"}, Body: leafBody},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, meta, err := c.Agent().ConnectCALeaf(ctx, "web", &QueryOptions{WaitIndex: 20})
				if err == nil {
					assert.Equal(t, uint64(21), meta.LastIndex)
					assert.True(t, meta.CacheHit)
					assert.Equal(t, 3*time.Second, meta.CacheAge)
				}
				return l, err
			},
			method: "GET", path: "/v1/agent/connect/ca/leaf/web", query: "index=20&wait=300s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				l := got.(*LeafCert)
				assert.Equal(t, "web", l.Service)
				assert.Contains(t, l.CertPEM, "BEGIN CERTIFICATE")
				assert.Contains(t, l.PrivateKeyPEM, "PRIVATE KEY")
				assert.Equal(t, time.Date(2026, 11, 30, 9, 57, 30, 0, time.UTC), l.ValidBefore)
			},
		},
	})
}

func TestAgentHealthService(t *testing.T) {
	runWireCases(t, []wireCase{
		{
			name:  "by ID passing (200)",
			reply: fakeReply{Header: map[string]string{"X-Consul-Reason": "passing"}, Body: checkInfoJSON("passing")},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, info, err := c.Agent().HealthServiceByID(ctx, "web-1", nil)
				if err == nil {
					assert.Equal(t, HealthPassing, st)
				}
				return info, err
			},
			method: "GET", path: "/v1/agent/health/service/id/web-1",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				info := got.(*AgentServiceChecksInfo)
				require.NotNil(t, info.Service)
				assert.Equal(t, "web-1", info.Service.ID)
				require.Len(t, info.Checks, 1)
				assert.Equal(t, "web-1-ttl", info.Checks[0].CheckID)
			},
		},
		{
			name:  "by ID warning (429) is an answer",
			reply: fakeReply{Status: 429, Body: checkInfoJSON("warning")},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, info, err := c.Agent().HealthServiceByID(ctx, "web-1", nil)
				if err == nil {
					assert.Equal(t, HealthWarning, st)
					assert.Equal(t, HealthWarning, info.Checks.AggregatedStatus())
				}
				return info, err
			},
			method: "GET", path: "/v1/agent/health/service/id/web-1",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.NotNil(t, got.(*AgentServiceChecksInfo))
			},
		},
		{
			name:  "by ID critical (503) is an answer",
			reply: fakeReply{Status: 503, Body: checkInfoJSON("critical")},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, info, err := c.Agent().HealthServiceByID(ctx, "web-1", nil)
				if err == nil {
					assert.Equal(t, HealthCritical, st)
				}
				return info, err
			},
			method: "GET", path: "/v1/agent/health/service/id/web-1",
			check: func(t *testing.T, got any, err error) { require.NoError(t, err) },
		},
		{
			name:  "by ID not found",
			reply: fakeReply{Status: 404, Body: `{"AggregatedStatus": "critical", "Service": null, "Checks": null}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, info, err := c.Agent().HealthServiceByID(ctx, "nope", nil)
				assert.Empty(t, st)
				return info, err
			},
			method: "GET", path: "/v1/agent/health/service/id/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.(*AgentServiceChecksInfo))
			},
		},
		{
			name:  "by ID permission denied",
			reply: fakeReply{Status: 403, Body: "Permission denied"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, info, err := c.Agent().HealthServiceByID(ctx, "web-1", nil)
				return info, err
			},
			method: "GET", path: "/v1/agent/health/service/id/web-1",
			check: wantStatus(403, ErrPermissionDenied),
		},
		{
			name:  "by name, worst status wins",
			reply: fakeReply{Status: 503, Body: "[" + checkInfoJSON("passing") + "," + checkInfoJSON("critical") + "," + checkInfoJSON("warning") + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, infos, err := c.Agent().HealthServiceByName(ctx, "web", nil)
				if err == nil {
					assert.Equal(t, HealthCritical, st)
				}
				return infos, err
			},
			method: "GET", path: "/v1/agent/health/service/name/web",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Len(t, got.([]*AgentServiceChecksInfo), 3)
			},
		},
		{
			name:  "by name passing",
			reply: fakeReply{Body: "[" + checkInfoJSON("passing") + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, infos, err := c.Agent().HealthServiceByName(ctx, "web", nil)
				if err == nil {
					assert.Equal(t, HealthPassing, st)
				}
				return infos, err
			},
			method: "GET", path: "/v1/agent/health/service/name/web",
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "by name not found",
			reply: fakeReply{Status: 404, Body: `[]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, infos, err := c.Agent().HealthServiceByName(ctx, "nope", nil)
				assert.Empty(t, st)
				return infos, err
			},
			method: "GET", path: "/v1/agent/health/service/name/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.([]*AgentServiceChecksInfo))
			},
		},
		{
			name:  "by name server error",
			reply: fakeReply{Status: 500, Body: "boom"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, infos, err := c.Agent().HealthServiceByName(ctx, "web", nil)
				return infos, err
			},
			method: "GET", path: "/v1/agent/health/service/name/web",
			check: wantStatus(500, nil),
		},
	})
}

func TestAgentWrites(t *testing.T) {
	ok := func(t *testing.T, _ any, err error) { require.NoError(t, err) }
	wm := func(m *WriteMeta, err error) (any, error) { return m, err }
	runWireCases(t, []wireCase{
		{
			name:   "reload",
			call:   func(ctx context.Context, c *Client) (any, error) { return wm(c.Agent().Reload(ctx, nil)) },
			method: "PUT", path: "/v1/agent/reload", check: ok,
		},
		{
			name: "leave",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().Leave(ctx, &WriteOptions{Token: "mgmt"}))
			},
			method: "PUT", path: "/v1/agent/leave", token: "mgmt", check: ok,
		},
		{
			name: "join LAN",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().Join(ctx, "10.0.0.2:8301", false, nil))
			},
			method: "PUT", path: "/v1/agent/join/10.0.0.2:8301", check: ok,
		},
		{
			name: "join WAN",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().Join(ctx, "10.0.0.2:8302", true, nil))
			},
			method: "PUT", path: "/v1/agent/join/10.0.0.2:8302", query: "wan=1", check: ok,
		},
		{
			name:  "join failure",
			reply: fakeReply{Status: 500, Body: "1 error occurred:\n\t* Failed to join 10.0.0.2:8301: dial tcp 10.0.0.2:8301: connect: connection refused\n\n"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().Join(ctx, "10.0.0.2:8301", false, nil))
			},
			method: "PUT", path: "/v1/agent/join/10.0.0.2:8301",
			check: func(t *testing.T, got any, err error) {
				wantStatus(500, nil)(t, got, err)
				assert.Contains(t, err.Error(), "Failed to join")
			},
		},
		{
			name: "force-leave",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().ForceLeave(ctx, "node-2", nil, nil))
			},
			method: "PUT", path: "/v1/agent/force-leave/node-2", check: ok,
		},
		{
			name: "force-leave prune WAN",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().ForceLeave(ctx, "node-2.dc1", &ForceLeaveOptions{Prune: true, WAN: true}, nil))
			},
			method: "PUT", path: "/v1/agent/force-leave/node-2.dc1", query: "prune=1&wan=1", check: ok,
		},
		{
			name: "node maintenance on",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().EnableNodeMaintenance(ctx, "kernel upgrade", nil))
			},
			method: "PUT", path: "/v1/agent/maintenance", query: "enable=true&reason=kernel+upgrade", check: ok,
		},
		{
			name: "node maintenance off",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().DisableNodeMaintenance(ctx, nil))
			},
			method: "PUT", path: "/v1/agent/maintenance", query: "enable=false", check: ok,
		},
		{
			name: "service maintenance on",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().EnableServiceMaintenance(ctx, "web-1", "deploy", nil))
			},
			method: "PUT", path: "/v1/agent/service/maintenance/web-1", query: "enable=true&reason=deploy", check: ok,
		},
		{
			name: "service maintenance off",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().DisableServiceMaintenance(ctx, "web-1", nil))
			},
			method: "PUT", path: "/v1/agent/service/maintenance/web-1", query: "enable=false", check: ok,
		},
		{
			name:  "service maintenance unknown service",
			reply: fakeReply{Status: 404, Body: `No service registered with ID "nope"`},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().EnableServiceMaintenance(ctx, "nope", "", nil))
			},
			method: "PUT", path: "/v1/agent/service/maintenance/nope", query: "enable=true",
			check: wantStatus(404, ErrNotFound),
		},
		{
			name: "token default",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().UpdateToken(ctx, AgentTokenDefault, "3f5b-secret", nil))
			},
			method: "PUT", path: "/v1/agent/token/default", body: `{"Token": "3f5b-secret"}`, check: ok,
		},
		{
			name: "token agent_recovery",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().UpdateToken(ctx, AgentTokenAgentRecovery, "r", nil))
			},
			method: "PUT", path: "/v1/agent/token/agent_recovery", body: `{"Token": "r"}`, check: ok,
		},
		{
			name:  "token with ACLs disabled",
			reply: fakeReply{Status: 401, Body: "ACL support disabled"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().UpdateToken(ctx, AgentTokenAgent, "a", nil))
			},
			method: "PUT", path: "/v1/agent/token/agent", body: `{"Token": "a"}`,
			check: wantStatus(401, nil),
		},
		{
			name:  "connect authorize",
			reply: fakeReply{Body: `{"Authorized": false, "Reason": "Default behavior configured by ACLs"}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				a, _, err := c.Agent().ConnectAuthorize(ctx, &AgentAuthorizeParams{
					Target:           "db",
					ClientCertURI:    "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web",
					ClientCertSerial: "04:00:00:00",
				}, nil)
				return a, err
			},
			method: "POST", path: "/v1/agent/connect/authorize",
			body: `{"Target": "db", "ClientCertURI": "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web", "ClientCertSerial": "04:00:00:00"}`,
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				a := got.(*AgentAuthorize)
				assert.False(t, a.Authorized)
				assert.Equal(t, "Default behavior configured by ACLs", a.Reason)
			},
		},
		{
			name: "service register",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().ServiceRegister(ctx, &AgentServiceRegistration{
					ID: "web-1", Name: "web", Tags: []string{"v1"}, Port: 8080,
					Check: &AgentServiceCheck{CheckID: "web-1-ttl", TTL: Duration(30 * time.Second), DeregisterCriticalServiceAfter: Duration(time.Minute)},
					Checks: AgentServiceChecks{
						{Name: "http", HTTP: "http://127.0.0.1:8080/health", Method: "HEAD", Header: map[string][]string{"X-A": {"b"}}, Interval: Duration(10 * time.Second), Timeout: Duration(time.Second), TLSSkipVerify: true},
						{Name: "tcp", TCP: "127.0.0.1:8080", Interval: Duration(10 * time.Second)},
						{Name: "udp", UDP: "127.0.0.1:53", Interval: Duration(10 * time.Second)},
						{Name: "script", Args: []string{"/bin/true"}, Interval: Duration(10 * time.Second)},
						{Name: "docker", DockerContainerID: "abc", Shell: "/bin/sh", Args: []string{"true"}, Interval: Duration(10 * time.Second)},
						{Name: "grpc", GRPC: "127.0.0.1:9090/health", GRPCUseTLS: true, Interval: Duration(10 * time.Second)},
						{Name: "h2", H2PING: "127.0.0.1:8443", H2PingUseTLS: ptr(true), Interval: Duration(10 * time.Second)},
						{Name: "alias", AliasService: "db"},
						{Name: "os", OSService: "sshd", Interval: Duration(10 * time.Second)},
					},
				}, nil))
			},
			method: "PUT", path: "/v1/agent/service/register",
			body: `{"ID": "web-1", "Name": "web", "Tags": ["v1"], "Port": 8080,
				"Check": {"CheckID": "web-1-ttl", "TTL": "30s", "DeregisterCriticalServiceAfter": "1m0s"},
				"Checks": [
					{"Name": "http", "HTTP": "http://127.0.0.1:8080/health", "Method": "HEAD", "Header": {"X-A": ["b"]}, "Interval": "10s", "Timeout": "1s", "TLSSkipVerify": true},
					{"Name": "tcp", "TCP": "127.0.0.1:8080", "Interval": "10s"},
					{"Name": "udp", "UDP": "127.0.0.1:53", "Interval": "10s"},
					{"Name": "script", "ScriptArgs": ["/bin/true"], "Interval": "10s"},
					{"Name": "docker", "DockerContainerID": "abc", "Shell": "/bin/sh", "ScriptArgs": ["true"], "Interval": "10s"},
					{"Name": "grpc", "GRPC": "127.0.0.1:9090/health", "GRPCUseTLS": true, "Interval": "10s"},
					{"Name": "h2", "H2PING": "127.0.0.1:8443", "H2PingUseTLS": true, "Interval": "10s"},
					{"Name": "alias", "AliasService": "db"},
					{"Name": "os", "OSService": "sshd", "Interval": "10s"}
				]}`,
			check: ok,
		},
		{
			name:  "service register rejected",
			reply: fakeReply{Status: 400, Body: "Invalid check: TTL must be > 0 for TTL checks"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().ServiceRegister(ctx, &AgentServiceRegistration{Name: "web"}, nil))
			},
			method: "PUT", path: "/v1/agent/service/register", body: `{"Name": "web"}`,
			check: wantStatus(400, nil),
		},
		{
			name: "service deregister",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().ServiceDeregister(ctx, "web-1", nil))
			},
			method: "PUT", path: "/v1/agent/service/deregister/web-1", check: ok,
		},
		{
			name:  "service deregister unknown",
			reply: fakeReply{Status: 404, Body: "Unknown service ID \"nope\". Ensure that the service ID is passed, not the service name."},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().ServiceDeregister(ctx, "nope", nil))
			},
			method: "PUT", path: "/v1/agent/service/deregister/nope",
			check: wantStatus(404, ErrNotFound),
		},
		{
			name: "check register",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().CheckRegister(ctx, &AgentCheckRegistration{
					ID: "mem", Name: "memory", Notes: "n", ServiceID: "web-1",
					AgentServiceCheck: AgentServiceCheck{TTL: Duration(15 * time.Second), Status: HealthPassing},
				}, nil))
			},
			method: "PUT", path: "/v1/agent/check/register",
			body:  `{"ID": "mem", "Name": "memory", "Notes": "n", "ServiceID": "web-1", "TTL": "15s", "Status": "passing"}`,
			check: ok,
		},
		{
			// Consul's check endpoint takes the ID as "ID" and answers 400
			// (unknown field) to a "CheckID", which AgentServiceCheck
			// would otherwise send.
			name: "check register by CheckID",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().CheckRegister(ctx, &AgentCheckRegistration{
					Name:              "memory",
					AgentServiceCheck: AgentServiceCheck{CheckID: "mem", TTL: Duration(15 * time.Second)},
				}, nil))
			},
			method: "PUT", path: "/v1/agent/check/register",
			body:  `{"ID": "mem", "Name": "memory", "TTL": "15s"}`,
			check: ok,
		},
		{
			// The registration's own Name and Notes hide the embedded
			// ones on the wire: those are sent in their place.
			name: "check register by the embedded Name and Notes",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().CheckRegister(ctx, &AgentCheckRegistration{
					ID:                "mem",
					AgentServiceCheck: AgentServiceCheck{Name: "memory", Notes: "n", TTL: Duration(15 * time.Second)},
				}, nil))
			},
			method: "PUT", path: "/v1/agent/check/register",
			body:  `{"ID": "mem", "Name": "memory", "Notes": "n", "TTL": "15s"}`,
			check: ok,
		},
		{
			name: "check deregister",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().CheckDeregister(ctx, "mem", nil))
			},
			method: "PUT", path: "/v1/agent/check/deregister/mem", check: ok,
		},
		{
			name: "check update",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().UpdateTTL(ctx, "mem", "all good", HealthWarning, nil))
			},
			method: "PUT", path: "/v1/agent/check/update/mem", body: `{"Status": "warning", "Output": "all good"}`, check: ok,
		},
		{
			name:  "check update unknown (404)",
			reply: fakeReply{Status: 404, Body: `Unknown check ID "mem". Ensure that the check ID is passed, not the check name.`},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().UpdateTTL(ctx, "mem", "", HealthPassing, nil))
			},
			method: "PUT", path: "/v1/agent/check/update/mem", body: `{"Status": "passing"}`,
			check: func(t *testing.T, _ any, err error) { assert.True(t, IsUnknownCheck(err)) },
		},
		{
			name:  "check update not a TTL check (old 500)",
			reply: fakeReply{Status: 500, Body: `CheckID "mem" does not have associated TTL`},
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().UpdateTTL(ctx, "mem", "", HealthPassing, nil))
			},
			method: "PUT", path: "/v1/agent/check/update/mem", body: `{"Status": "passing"}`,
			check: func(t *testing.T, _ any, err error) { assert.True(t, IsUnknownCheck(err)) },
		},
		{
			name: "check pass",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().PassTTL(ctx, "mem", "fine", nil))
			},
			method: "PUT", path: "/v1/agent/check/pass/mem", query: "note=fine", check: ok,
		},
		{
			name:   "check warn",
			call:   func(ctx context.Context, c *Client) (any, error) { return wm(c.Agent().WarnTTL(ctx, "mem", "", nil)) },
			method: "PUT", path: "/v1/agent/check/warn/mem", check: ok,
		},
		{
			name: "check fail",
			call: func(ctx context.Context, c *Client) (any, error) {
				return wm(c.Agent().FailTTL(ctx, "mem", "down", nil))
			},
			method: "PUT", path: "/v1/agent/check/fail/mem", query: "note=down", check: ok,
		},
	})
}

func TestAgentValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"join empty", func(ctx context.Context, c *Client) error { _, err := c.Agent().Join(ctx, "", false, nil); return err }, "address"},
		{"force-leave empty", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().ForceLeave(ctx, " ", nil, nil)
			return err
		}, "node"},
		{"members WAN with segment", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().Members(ctx, &MembersOptions{WAN: true, Segment: "alpha"}, nil)
			return err
		}, "MembersOptions.Segment"},
		{"service maintenance empty", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().EnableServiceMaintenance(ctx, "", "x", nil)
			return err
		}, "service ID"},
		{"service control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().Service(ctx, "a\nb", nil)
			return err
		}, "service ID"},
		{"health by ID empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().HealthServiceByID(ctx, "", nil)
			return err
		}, "service ID"},
		{"health by name empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().HealthServiceByName(ctx, "", nil)
			return err
		}, "service name"},
		{"token kind", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().UpdateToken(ctx, "master", "x", nil)
			return err
		}, "token kind"},
		{"authorize nil", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().ConnectAuthorize(ctx, nil, nil)
			return err
		}, "params"},
		{"authorize no target", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().ConnectAuthorize(ctx, &AgentAuthorizeParams{ClientCertURI: "spiffe://x"}, nil)
			return err
		}, "Target"},
		{"authorize no URI", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().ConnectAuthorize(ctx, &AgentAuthorizeParams{Target: "db"}, nil)
			return err
		}, "ClientCertURI"},
		{"leaf empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Agent().ConnectCALeaf(ctx, "", nil)
			return err
		}, "service"},
		{"monitor level", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().Monitor(ctx, &MonitorOptions{LogLevel: "verbose"}, nil)
			return err
		}, "MonitorOptions.LogLevel"},
		{"service register nil", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().ServiceRegister(ctx, nil, nil)
			return err
		}, "service"},
		{"service register no name", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().ServiceRegister(ctx, &AgentServiceRegistration{ID: "x"}, nil)
			return err
		}, "service Name"},
		{"check register ID and CheckID differ", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().CheckRegister(ctx, &AgentCheckRegistration{
				ID: "a", Name: "n", AgentServiceCheck: AgentServiceCheck{CheckID: "b", TTL: Duration(time.Minute)},
			}, nil)
			return err
		}, "AgentServiceCheck.CheckID"},
		{"check register Name and embedded Name differ", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().CheckRegister(ctx, &AgentCheckRegistration{
				Name: "n", AgentServiceCheck: AgentServiceCheck{Name: "m", TTL: Duration(time.Minute)},
			}, nil)
			return err
		}, "AgentServiceCheck.Name"},
		{"check register Notes and embedded Notes differ", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().CheckRegister(ctx, &AgentCheckRegistration{
				Name: "n", Notes: "a", AgentServiceCheck: AgentServiceCheck{Notes: "b", TTL: Duration(time.Minute)},
			}, nil)
			return err
		}, "AgentServiceCheck.Notes"},
		{"check register no name", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().CheckRegister(ctx, &AgentCheckRegistration{ID: "x"}, nil)
			return err
		}, "check Name"},
		{"check update bad status", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().UpdateTTL(ctx, "x", "", "fine", nil)
			return err
		}, "status"},
		{"check pass empty", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().PassTTL(ctx, "", "", nil)
			return err
		}, "check ID"},
	})
	t.Run("every token kind is accepted", func(t *testing.T) {
		for _, k := range []AgentTokenKind{AgentTokenDefault, AgentTokenAgent, AgentTokenAgentRecovery, AgentTokenReplication, AgentTokenConfigFileServiceRegistration} {
			assert.True(t, k.valid(), k)
		}
	})
}

func TestMemberStatusString(t *testing.T) {
	tests := []struct {
		name string
		s    MemberStatus
		want string
	}{
		{"none", MemberStatusNone, "none"},
		{"alive", MemberStatusAlive, "alive"},
		{"leaving", MemberStatusLeaving, "leaving"},
		{"left", MemberStatusLeft, "left"},
		{"failed", MemberStatusFailed, "failed"},
		{"unknown", MemberStatus(9), "unknown(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.s.String()) })
	}
}

// epStreamServer serves a streaming endpoint: it writes the items with a
// flush after each, then holds the response open until the client goes
// away (or done is closed).
func epStreamServer(t *testing.T, path string, items []string, seen chan<- *http.Request) *Client {
	t.Helper()
	done := make(chan struct{})
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- r
		}
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		fl.Flush()
		for _, it := range items {
			_, _ = io.WriteString(w, it)
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}, withToken(fakeToken))
	// Cleanups run last first: done is closed before the server.
	t.Cleanup(func() { close(done) })
	return c
}

func TestAgentMonitor(t *testing.T) {
	lines := []string{
		"2026-11-27T10:00:00.000Z [INFO]  agent: Synced node info\n",
		"2026-11-27T10:00:01.000Z [DEBUG] agent.http: Request finished: method=GET url=/v1/agent/self\n",
	}
	t.Run("lines until ctx ends", func(t *testing.T) {
		seen := make(chan *http.Request, 1)
		c := epStreamServer(t, "/v1/agent/monitor", lines, seen)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := c.Agent().Monitor(ctx, &MonitorOptions{LogLevel: "debug", JSON: true}, nil)
		require.NoError(t, err)
		defer s.Close()
		r := <-seen
		assert.Equal(t, "logjson&loglevel=debug", r.URL.RawQuery)
		assert.Equal(t, fakeToken, r.Header.Get("X-Consul-Token"))

		l, err := s.Next()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSuffix(lines[0], "\n"), l)
		l, err = s.Next()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSuffix(lines[1], "\n"), l)

		errc := make(chan error, 1)
		go func() { _, err := s.Next(); errc <- err }()
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("Next did not return after ctx ended")
		}
	})
	t.Run("close unblocks next", func(t *testing.T) {
		c := epStreamServer(t, "/v1/agent/monitor", lines[:1], nil)
		s, err := c.Agent().Monitor(context.Background(), nil, nil)
		require.NoError(t, err)
		_, err = s.Next()
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() { _, err := s.Next(); errc <- err }()
		require.NoError(t, s.Close())
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, ErrStreamClosed)
		case <-time.After(5 * time.Second):
			t.Fatal("Next did not return after Close")
		}
		require.NoError(t, s.Close(), "second Close")
		_, err = s.Next()
		assert.ErrorIs(t, err, ErrStreamClosed)
	})
	t.Run("end of stream", func(t *testing.T) {
		c, _ := newFakeHandler(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "one\n\ntwo")
		})
		s, err := c.Agent().Monitor(context.Background(), nil, nil)
		require.NoError(t, err)
		defer s.Close()
		var got []string
		for {
			l, err := s.Next()
			if err != nil {
				assert.ErrorIs(t, err, io.EOF)
				break
			}
			got = append(got, l)
		}
		assert.Equal(t, []string{"one", "two"}, got)
	})
	t.Run("long line cut", func(t *testing.T) {
		long := strings.Repeat("x", MaxMonitorLine+5000)
		c, _ := newFakeHandler(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, long+"\nnext\n")
		})
		s, err := c.Agent().Monitor(context.Background(), nil, nil)
		require.NoError(t, err)
		defer s.Close()
		l, err := s.Next()
		require.NoError(t, err)
		assert.Equal(t, long[:MaxMonitorLine], l)
		l, err = s.Next()
		require.NoError(t, err)
		assert.Equal(t, "next", l)
	})
	t.Run("error status", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 400, Body: "Unknown log level: foo"})
		_, err := c.Agent().Monitor(context.Background(), &MonitorOptions{LogLevel: "err"}, nil)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 400, se.Code)
	})
	t.Run("blocking options do not bound the stream", func(t *testing.T) {
		seen := make(chan *http.Request, 1)
		c := epStreamServer(t, "/v1/agent/monitor", lines[:1], seen)
		s, err := c.Agent().Monitor(context.Background(), nil, &QueryOptions{WaitIndex: 3, WaitTime: time.Millisecond})
		require.NoError(t, err)
		defer s.Close()
		<-seen
		_, err = s.Next()
		require.NoError(t, err)
		// The stream is still open well after the "wait" has passed.
		time.Sleep(50 * time.Millisecond)
		errc := make(chan error, 1)
		go func() { _, err := s.Next(); errc <- err }()
		select {
		case err := <-errc:
			t.Fatalf("stream ended early: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		require.NoError(t, s.Close())
		assert.ErrorIs(t, <-errc, ErrStreamClosed)
	})
}

func TestAgentMetricsStream(t *testing.T) {
	item := `{
    "Timestamp": "2026-11-27 10:00:00 +0000 UTC",
    "Gauges": [{"Name": "consul.runtime.num_goroutines", "Value": 120, "Labels": {}}],
    "Points": [], "Counters": [], "Samples": []
}
`
	t.Run("items until ctx ends", func(t *testing.T) {
		seen := make(chan *http.Request, 1)
		c := epStreamServer(t, "/v1/agent/metrics/stream", []string{item, item}, seen)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := c.Agent().MetricsStream(ctx, nil)
		require.NoError(t, err)
		defer s.Close()
		r := <-seen
		assert.Equal(t, "GET", r.Method)
		for range 2 {
			m, err := s.Next()
			require.NoError(t, err)
			require.Len(t, m.Gauges, 1)
			assert.Equal(t, float32(120), m.Gauges[0].Value)
		}
		cancel()
		_, err = s.Next()
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("bad item", func(t *testing.T) {
		c := epStreamServer(t, "/v1/agent/metrics/stream", []string{"{not json}\n"}, nil)
		s, err := c.Agent().MetricsStream(context.Background(), nil)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Next()
		require.Error(t, err)
		var se *json.SyntaxError
		assert.True(t, errors.As(err, &se), "%v", err)
		assert.False(t, IsRetryable(err))
	})
}

func ptr[T any](v T) *T { return &v }
