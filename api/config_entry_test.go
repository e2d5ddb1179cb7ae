package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ceU64(v uint64) *uint64 { return &v }

// ceJSON decodes a request body into a generic map.
func ceJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	return m
}

const ceServiceDefaultsJSON = `{
    "Kind": "service-defaults",
    "Name": "web",
    "Protocol": "http",
    "TransparentProxy": {},
    "MeshGateway": {"Mode": "local"},
    "Expose": {},
    "UpstreamConfig": {
        "Defaults": {
            "ConnectTimeoutMs": 5000,
            "PassiveHealthCheck": {"Interval": 10000000000, "MaxFailures": 3, "BaseEjectionTime": 30000000000}
        }
    },
    "Meta": {"owner": "team-a"},
    "CreateIndex": 21,
    "ModifyIndex": 22
}`

const ceResolverJSON = `{
    "ConnectTimeout": "15s",
    "Kind": "service-resolver",
    "Name": "web",
    "DefaultSubset": "v1",
    "Subsets": {"v1": {"Filter": "Service.Meta.version == v1", "OnlyPassing": true}},
    "Failover": {"*": {"Datacenters": ["dc2"]}},
    "LoadBalancer": {"Policy": "ring_hash", "RingHashConfig": {"MinimumRingSize": 1024}, "HashPolicies": [{"Field": "cookie", "FieldValue": "sid", "CookieConfig": {"TTL": 60000000000}}]},
    "CreateIndex": 22,
    "ModifyIndex": 22
}`

const ceMeshJSON = `{
    "Kind": "mesh",
    "TransparentProxy": {"MeshDestinationsOnly": true},
    "TLS": {"Incoming": {"TLSMinVersion": "TLSv1_2"}},
    "CreateIndex": 24,
    "ModifyIndex": 24
}`

func TestConfigEntriesGet(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		entry    string
		reply    fakeReply
		wantPath string
		check    func(t *testing.T, e ConfigEntry)
	}{
		{
			name: "service-defaults", kind: ServiceDefaults, entry: "web",
			reply:    fakeReply{Body: ceServiceDefaultsJSON, Header: map[string]string{"X-Consul-Index": "22", "X-Consul-KnownLeader": "true"}},
			wantPath: "/v1/config/service-defaults/web",
			check: func(t *testing.T, e ConfigEntry) {
				sd, ok := e.(*ServiceConfigEntry)
				require.True(t, ok, "got %T", e)
				assert.Equal(t, "web", sd.GetName())
				assert.Equal(t, ServiceDefaults, sd.GetKind())
				assert.Equal(t, "http", sd.Protocol)
				assert.Equal(t, "local", sd.MeshGateway.Mode)
				require.NotNil(t, sd.UpstreamConfig)
				require.NotNil(t, sd.UpstreamConfig.Defaults)
				require.NotNil(t, sd.UpstreamConfig.Defaults.PassiveHealthCheck)
				phc := sd.UpstreamConfig.Defaults.PassiveHealthCheck
				assert.Equal(t, 10*time.Second, phc.Interval.D())
				require.NotNil(t, phc.BaseEjectionTime)
				assert.Equal(t, 30*time.Second, phc.BaseEjectionTime.D())
				assert.Equal(t, map[string]string{"owner": "team-a"}, sd.GetMeta())
				assert.Equal(t, uint64(21), sd.GetCreateIndex())
				assert.Equal(t, uint64(22), sd.GetModifyIndex())
			},
		},
		{
			name: "service-resolver durations as strings and nanoseconds", kind: ServiceResolver, entry: "web",
			reply:    fakeReply{Body: ceResolverJSON},
			wantPath: "/v1/config/service-resolver/web",
			check: func(t *testing.T, e ConfigEntry) {
				r, ok := e.(*ServiceResolverConfigEntry)
				require.True(t, ok, "got %T", e)
				assert.Equal(t, 15*time.Second, r.ConnectTimeout.D())
				assert.Equal(t, "v1", r.DefaultSubset)
				assert.True(t, r.Subsets["v1"].OnlyPassing)
				assert.Equal(t, []string{"dc2"}, r.Failover["*"].Datacenters)
				require.NotNil(t, r.LoadBalancer)
				assert.Equal(t, uint64(1024), r.LoadBalancer.RingHashConfig.MinimumRingSize)
				assert.Equal(t, time.Minute, r.LoadBalancer.HashPolicies[0].CookieConfig.TTL.D())
			},
		},
		{
			name: "mesh has no name in its JSON", kind: MeshConfig, entry: MeshConfigMesh,
			reply:    fakeReply{Body: ceMeshJSON},
			wantPath: "/v1/config/mesh/mesh",
			check: func(t *testing.T, e ConfigEntry) {
				m, ok := e.(*MeshConfigEntry)
				require.True(t, ok, "got %T", e)
				assert.Equal(t, MeshConfigMesh, m.GetName())
				assert.True(t, m.TransparentProxy.MeshDestinationsOnly)
				assert.Equal(t, "TLSv1_2", m.TLS.Incoming.TLSMinVersion)
			},
		},
		{
			name: "unknown kind decodes raw", kind: "api-gateway", entry: "gw",
			reply:    fakeReply{Body: `{"Kind":"api-gateway","Name":"gw","Listeners":[{"Port":80}],"Meta":{"a":"b"},"CreateIndex":3,"ModifyIndex":4}`},
			wantPath: "/v1/config/api-gateway/gw",
			check: func(t *testing.T, e ConfigEntry) {
				raw, ok := e.(*RawConfigEntry)
				require.True(t, ok, "got %T", e)
				assert.Equal(t, "api-gateway", raw.GetKind())
				assert.Equal(t, "gw", raw.GetName())
				assert.Equal(t, map[string]string{"a": "b"}, raw.GetMeta())
				assert.Equal(t, uint64(4), raw.GetModifyIndex())
				assert.JSONEq(t, `[{"Port":80}]`, string(raw.Fields["Listeners"]))
			},
		},
		{
			name: "name is escaped", kind: ServiceDefaults, entry: "a b",
			reply:    fakeReply{Body: `{"Kind":"service-defaults","Name":"a b"}`},
			wantPath: "/v1/config/service-defaults/a%20b",
			check: func(t *testing.T, e ConfigEntry) {
				assert.Equal(t, "a b", e.GetName())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTokenFake(t, tt.reply)
			e, meta, err := c.ConfigEntries().Get(context.Background(), tt.kind, tt.entry, &QueryOptions{Datacenter: "dc9", Token: "tok"})
			require.NoError(t, err)
			require.NotNil(t, meta)
			req := f.last(t)
			assert.Equal(t, http.MethodGet, req.Method)
			assert.Equal(t, tt.wantPath, req.RawPath)
			assert.Equal(t, "dc9", req.Query.Get("dc"))
			assert.Equal(t, "tok", req.Header.Get("X-Consul-Token"))
			tt.check(t, e)
		})
	}
}

func TestConfigEntriesGetMeta(t *testing.T) {
	c, _ := newTokenFake(t, fakeReply{Body: ceServiceDefaultsJSON, Header: map[string]string{"X-Consul-Index": "22", "X-Consul-KnownLeader": "true"}})
	_, meta, err := c.ConfigEntries().Get(context.Background(), ServiceDefaults, "web", nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(22), meta.LastIndex)
	assert.True(t, meta.KnownLeader)
}

func TestConfigEntriesGetNotFound(t *testing.T) {
	c, _ := newTokenFake(t, fakeReply{Status: 404, Body: `Config entry not found for "service-defaults" / "nope"`, Header: map[string]string{"X-Consul-Index": "10"}})
	e, meta, err := c.ConfigEntries().Get(context.Background(), ServiceDefaults, "nope", nil)
	require.NoError(t, err)
	assert.Nil(t, e)
	require.NotNil(t, meta)
	assert.Equal(t, uint64(10), meta.LastIndex)
}

func TestConfigEntriesErrors(t *testing.T) {
	tests := []struct {
		name  string
		reply fakeReply
		want  error
	}{
		{name: "403", reply: fakeReply{Status: 403, Body: "Permission denied"}, want: ErrPermissionDenied},
		{name: "acl not found", reply: fakeReply{Status: 403, Body: "ACL not found"}, want: ErrACLNotFound},
		{name: "429", reply: fakeReply{Status: 429, Body: "slow down"}, want: ErrRateLimited},
		{name: "no leader", reply: fakeReply{Status: 500, Body: "No cluster leader"}, want: ErrNoLeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTokenFake(t, tt.reply)
			ctx := context.Background()
			ce := c.ConfigEntries()
			_, _, err := ce.Get(ctx, ServiceDefaults, "web", nil)
			assert.ErrorIs(t, err, tt.want)
			_, _, err = ce.List(ctx, ServiceDefaults, nil)
			assert.ErrorIs(t, err, tt.want)
			_, _, err = ce.Set(ctx, &ServiceConfigEntry{Name: "web"}, nil)
			assert.ErrorIs(t, err, tt.want)
			_, err = ce.Delete(ctx, ServiceDefaults, "web", nil)
			assert.ErrorIs(t, err, tt.want)
			var se *StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.reply.Status, se.Code)
		})
	}
}

func TestConfigEntriesList(t *testing.T) {
	body := `[` + ceServiceDefaultsJSON + `,{"Kind":"service-defaults","Name":"api","Protocol":"grpc","CreateIndex":30,"ModifyIndex":30}]`
	c, f := newTokenFake(t, fakeReply{Body: body, Header: map[string]string{"X-Consul-Index": "30"}})
	list, meta, err := c.ConfigEntries().List(context.Background(), ServiceDefaults, &QueryOptions{Filter: `Protocol == "http"`})
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/v1/config/service-defaults", req.RawPath)
	assert.Equal(t, `Protocol == "http"`, req.Query.Get("filter"))
	assert.Equal(t, fakeToken, req.Header.Get("X-Consul-Token"))
	assert.Equal(t, uint64(30), meta.LastIndex)
	require.Len(t, list, 2)
	assert.Equal(t, "web", list[0].GetName())
	api, ok := list[1].(*ServiceConfigEntry)
	require.True(t, ok)
	assert.Equal(t, "grpc", api.Protocol)
}

func TestConfigEntriesListEmpty(t *testing.T) {
	c, _ := newTokenFake(t, fakeReply{Body: `[]`})
	list, _, err := c.ConfigEntries().List(context.Background(), ServiceRouter, nil)
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestConfigEntriesSet(t *testing.T) {
	tests := []struct {
		name     string
		entry    ConfigEntry
		cas      *uint64
		reply    string
		wantOK   bool
		wantBody string
		wantCAS  string
	}{
		{
			name:     "kind filled from the type",
			entry:    &ServiceConfigEntry{Name: "web", Protocol: "http", Meta: map[string]string{"a": "b"}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"service-defaults","Name":"web","Protocol":"http","Meta":{"a":"b"}}`,
		},
		{
			name:     "wrong kind field is corrected",
			entry:    &ProxyConfigEntry{Kind: "service-defaults", Name: ProxyConfigGlobal, Config: map[string]any{"protocol": "http"}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http"}}`,
		},
		{
			name:     "mesh is sent without a name",
			entry:    &MeshConfigEntry{TransparentProxy: TransparentProxyMeshConfig{MeshDestinationsOnly: true}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"mesh","TransparentProxy":{"MeshDestinationsOnly":true}}`,
		},
		{
			name: "durations are sent as strings",
			entry: &ServiceResolverConfigEntry{Name: "web", ConnectTimeout: Duration(15 * time.Second),
				Redirect: &ServiceResolverRedirect{Service: "api", Peer: "other"}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"service-resolver","Name":"web","ConnectTimeout":"15s","Redirect":{"Service":"api","Peer":"other"}}`,
		},
		{
			name: "router",
			entry: &ServiceRouterConfigEntry{Name: "web", Routes: []ServiceRoute{{
				Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/admin", Methods: []string{"GET"}}},
				Destination: &ServiceRouteDestination{Service: "admin", RequestTimeout: Duration(2 * time.Second), NumRetries: 3},
			}}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathPrefix":"/admin","Methods":["GET"]}},"Destination":{"Service":"admin","RequestTimeout":"2s","NumRetries":3}}]}`,
		},
		{
			name:     "splitter",
			entry:    &ServiceSplitterConfigEntry{Name: "web", Splits: []ServiceSplit{{Weight: 90, ServiceSubset: "v1"}, {Weight: 10, ServiceSubset: "v2"}}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":90,"ServiceSubset":"v1"},{"Weight":10,"ServiceSubset":"v2"}]}`,
		},
		{
			name: "ingress gateway",
			entry: &IngressGatewayConfigEntry{Name: "ing", Listeners: []IngressListener{{Port: 8080, Protocol: "http",
				Services: []IngressService{{Name: "web", Hosts: []string{"web.example"}}}}}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"ingress-gateway","Name":"ing","Listeners":[{"Port":8080,"Protocol":"http","Services":[{"Name":"web","Hosts":["web.example"]}]}]}`,
		},
		{
			name:     "terminating gateway",
			entry:    &TerminatingGatewayConfigEntry{Name: "term", Services: []LinkedService{{Name: "db", SNI: "db.example"}}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"terminating-gateway","Name":"term","Services":[{"Name":"db","SNI":"db.example"}]}`,
		},
		{
			name: "service intentions",
			entry: &ServiceIntentionsConfigEntry{Name: "db", Sources: []*SourceIntention{
				{Name: "web", Action: IntentionActionAllow},
				{Name: "api", Permissions: []*IntentionPermission{{Action: IntentionActionDeny, HTTP: &IntentionHTTPPermission{PathPrefix: "/admin"}}}},
			}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"service-intentions","Name":"db","Sources":[{"Name":"web","Action":"allow"},{"Name":"api","Permissions":[{"Action":"deny","HTTP":{"PathPrefix":"/admin"}}]}]}`,
		},
		{
			name:     "exported services",
			entry:    &ExportedServicesConfigEntry{Name: "default", Services: []ExportedService{{Name: "web", Consumers: []ServiceConsumer{{Peer: "other"}}}}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"exported-services","Name":"default","Services":[{"Name":"web","Consumers":[{"Peer":"other"}]}]}`,
		},
		{
			name:     "raw entry",
			entry:    &RawConfigEntry{Kind: "api-gateway", Name: "gw", Fields: map[string]json.RawMessage{"Listeners": json.RawMessage(`[{"Port":80}]`), "Name": json.RawMessage(`"old"`)}},
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"api-gateway","Name":"gw","Listeners":[{"Port":80}]}`,
		},
		{
			name:     "cas lost",
			entry:    &ServiceConfigEntry{Name: "web"},
			cas:      ceU64(17),
			reply:    "false",
			wantOK:   false,
			wantBody: `{"Kind":"service-defaults","Name":"web"}`,
			wantCAS:  "17",
		},
		{
			name:     "cas zero means create",
			entry:    &ServiceConfigEntry{Name: "web"},
			cas:      ceU64(0),
			reply:    "true",
			wantOK:   true,
			wantBody: `{"Kind":"service-defaults","Name":"web"}`,
			wantCAS:  "0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTokenFake(t, fakeReply{Body: tt.reply})
			var (
				ok  bool
				err error
			)
			w := &WriteOptions{Datacenter: "dc2"}
			if tt.cas != nil {
				ok, _, err = c.ConfigEntries().CAS(context.Background(), tt.entry, *tt.cas, w)
			} else {
				ok, _, err = c.ConfigEntries().Set(context.Background(), tt.entry, w)
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantOK, ok)
			req := f.last(t)
			assert.Equal(t, http.MethodPut, req.Method)
			assert.Equal(t, "/v1/config", req.RawPath)
			assert.Equal(t, "dc2", req.Query.Get("dc"))
			assert.Equal(t, tt.wantCAS, req.Query.Get("cas"))
			assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
			assert.JSONEq(t, tt.wantBody, string(req.Body))
		})
	}
}

func TestConfigEntriesDelete(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: `{}`})
		_, err := c.ConfigEntries().Delete(context.Background(), ServiceRouter, "web", &WriteOptions{Token: "w-tok"})
		require.NoError(t, err)
		req := f.last(t)
		assert.Equal(t, http.MethodDelete, req.Method)
		assert.Equal(t, "/v1/config/service-router/web", req.RawPath)
		assert.False(t, req.Query.Has("cas"))
		assert.Equal(t, "w-tok", req.Header.Get("X-Consul-Token"))
	})
	for _, reply := range []string{"true", "false"} {
		t.Run("cas "+reply, func(t *testing.T) {
			c, f := newTokenFake(t, fakeReply{Body: reply})
			ok, _, err := c.ConfigEntries().DeleteCAS(context.Background(), MeshConfig, MeshConfigMesh, 42, nil)
			require.NoError(t, err)
			assert.Equal(t, reply == "true", ok)
			req := f.last(t)
			assert.Equal(t, http.MethodDelete, req.Method)
			assert.Equal(t, "/v1/config/mesh/mesh", req.RawPath)
			assert.Equal(t, "42", req.Query.Get("cas"))
		})
	}
}

func TestConfigEntriesValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"get empty kind", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().Get(ctx, "", "web", nil)
			return err
		}, "kind"},
		{"get empty name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().Get(ctx, ServiceDefaults, "", nil)
			return err
		}, "name"},
		{"get control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().Get(ctx, ServiceDefaults, "we\nb", nil)
			return err
		}, "name"},
		{"list empty kind", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().List(ctx, " ", nil)
			return err
		}, "kind"},
		{"set nil", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().Set(ctx, nil, nil)
			return err
		}, "entry"},
		{"set no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().Set(ctx, &ServiceConfigEntry{Protocol: "http"}, nil)
			return err
		}, "entry Name"},
		{"set raw no kind", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().Set(ctx, &RawConfigEntry{Name: "x"}, nil)
			return err
		}, "entry Kind"},
		{"cas no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().CAS(ctx, &ServiceRouterConfigEntry{}, 1, nil)
			return err
		}, "entry Name"},
		{"delete no name", func(ctx context.Context, c *Client) error {
			_, err := c.ConfigEntries().Delete(ctx, ServiceDefaults, "", nil)
			return err
		}, "name"},
		{"delete cas no kind", func(ctx context.Context, c *Client) error {
			_, _, err := c.ConfigEntries().DeleteCAS(ctx, "", "x", 1, nil)
			return err
		}, "kind"},
	})
}

func TestDecodeConfigEntry(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ConfigEntry
		wantErr bool
	}{
		{name: "proxy-defaults", in: `{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http"},"Mode":"transparent"}`,
			want: &ProxyConfigEntry{Kind: ProxyDefaults, Name: "global", Config: map[string]any{"protocol": "http"}, Mode: "transparent"}},
		{name: "lower-case kind key", in: `{"kind":"service-splitter","name":"web","splits":[{"weight":100}]}`,
			want: &ServiceSplitterConfigEntry{Kind: ServiceSplitter, Name: "web", Splits: []ServiceSplit{{Weight: 100}}}},
		{name: "terminating", in: `{"Kind":"terminating-gateway","Name":"t","Services":[{"Name":"db","CAFile":"/ca.pem"}]}`,
			want: &TerminatingGatewayConfigEntry{Kind: TerminatingGateway, Name: "t", Services: []LinkedService{{Name: "db", CAFile: "/ca.pem"}}}},
		{name: "no kind", in: `{"Name":"x"}`, wantErr: true},
		{name: "not json", in: `nope`, wantErr: true},
		{name: "wrong type", in: `{"Kind":"service-defaults","Name":5}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeConfigEntry([]byte(tt.in))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeConfigEntryEveryKind(t *testing.T) {
	kinds := map[string]ConfigEntry{
		ServiceDefaults:    &ServiceConfigEntry{},
		ProxyDefaults:      &ProxyConfigEntry{},
		ServiceRouter:      &ServiceRouterConfigEntry{},
		ServiceSplitter:    &ServiceSplitterConfigEntry{},
		ServiceResolver:    &ServiceResolverConfigEntry{},
		IngressGateway:     &IngressGatewayConfigEntry{},
		TerminatingGateway: &TerminatingGatewayConfigEntry{},
		ServiceIntentions:  &ServiceIntentionsConfigEntry{},
		MeshConfig:         &MeshConfigEntry{},
		ExportedServices:   &ExportedServicesConfigEntry{},
		"jwt-provider":     &RawConfigEntry{},
	}
	for kind, want := range kinds {
		t.Run(kind, func(t *testing.T) {
			name := "x"
			if kind == MeshConfig {
				name = MeshConfigMesh
			}
			e, err := DecodeConfigEntry([]byte(`{"Kind":"` + kind + `","Name":"` + name + `","Meta":{"m":"1"},"CreateIndex":7,"ModifyIndex":8}`))
			require.NoError(t, err)
			assert.IsType(t, want, e)
			assert.Equal(t, kind, e.GetKind())
			assert.Equal(t, name, e.GetName())
			assert.Equal(t, map[string]string{"m": "1"}, e.GetMeta())
			assert.Equal(t, uint64(7), e.GetCreateIndex())
			assert.Equal(t, uint64(8), e.GetModifyIndex())
			assert.Empty(t, e.GetNamespace())
			assert.Empty(t, e.GetPartition())

			// What was read can be written back: Kind set, no Name for
			// mesh, no empty Namespace or Partition (Consul's open-source
			// edition rejects them).
			b, err := encodeConfigEntry(e)
			require.NoError(t, err)
			m := ceJSON(t, b)
			assert.Equal(t, kind, m["Kind"])
			_, hasName := m["Name"]
			assert.Equal(t, kind != MeshConfig, hasName)
			assert.NotContains(t, m, "Namespace")
			assert.NotContains(t, m, "Partition")
		})
	}
}

func TestRawConfigEntryMeshName(t *testing.T) {
	e, err := DecodeConfigEntry([]byte(`{"Kind":"mesh"}`))
	require.NoError(t, err)
	// A typed mesh entry names itself.
	assert.Equal(t, MeshConfigMesh, e.GetName())
	raw := &RawConfigEntry{Kind: MeshConfig}
	assert.Equal(t, MeshConfigMesh, raw.GetName())
	raw = &RawConfigEntry{Kind: ServiceDefaults}
	assert.Empty(t, raw.GetName())
}

func TestRawConfigEntryRoundTrip(t *testing.T) {
	in := `{"Kind":"api-gateway","Name":"gw","Listeners":[{"Port":80,"Protocol":"http"}],"CreateIndex":5,"ModifyIndex":6}`
	e, err := DecodeConfigEntry([]byte(in))
	require.NoError(t, err)
	raw := e.(*RawConfigEntry)
	raw.Meta = map[string]string{"k": "v"}
	out, err := json.Marshal(raw)
	require.NoError(t, err)
	assert.JSONEq(t, `{"Kind":"api-gateway","Name":"gw","Listeners":[{"Port":80,"Protocol":"http"}],"Meta":{"k":"v"},"CreateIndex":5,"ModifyIndex":6}`, string(out))

	mesh, err := json.Marshal(RawConfigEntry{Kind: MeshConfig, Name: MeshConfigMesh, Fields: map[string]json.RawMessage{"Name": json.RawMessage(`"mesh"`)}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Kind":"mesh"}`, string(mesh))
}

func TestConfigEntriesCancelled(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: "true"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.ConfigEntries().Set(ctx, &ServiceConfigEntry{Name: "web"}, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, f.count())
}
