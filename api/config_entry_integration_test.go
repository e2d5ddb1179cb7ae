package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

var ceSeq atomic.Uint64

// ceName returns a service name unique to the test (and to this run, so
// that leftovers of a killed run on an external agent do not collide):
// lower-case letters, digits and dashes, as Consul wants service names.
func ceName(t *testing.T, suffix string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	base = strings.TrimPrefix(base, "test")
	if len(base) > 30 {
		base = base[len(base)-30:]
	}
	n := ceSeq.Add(1)
	id := strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + strconv.FormatUint(n, 36)
	name := strings.Trim(base, "-") + "-" + id
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// ceSet writes an entry that the test needs and deletes it when the test
// ends (cleanups run last-in first-out, so dependent entries go first).
func ceSet(t *testing.T, c *api.Client, e api.ConfigEntry) {
	t.Helper()
	ok, _, err := c.ConfigEntries().Set(t.Context(), e, nil)
	require.NoError(t, err, "setting %s/%s", e.GetKind(), e.GetName())
	require.True(t, ok)
	kind, name := e.GetKind(), e.GetName()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.ConfigEntries().Delete(ctx, kind, name, nil); err != nil {
			t.Logf("cleanup: deleting %s/%s: %v", kind, name, err)
		}
	})
}

// ceKeepSingleton restores a singleton entry (proxy-defaults "global",
// mesh, exported-services "default") to what it was before the test.
func ceKeepSingleton(t *testing.T, c *api.Client, kind, name string) {
	t.Helper()
	before, _, err := c.ConfigEntries().Get(t.Context(), kind, name, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if before == nil {
			_, err = c.ConfigEntries().Delete(ctx, kind, name, nil)
		} else {
			_, _, err = c.ConfigEntries().Set(ctx, before, nil)
		}
		if err != nil {
			t.Logf("cleanup: restoring %s/%s: %v", kind, name, err)
		}
	})
}

// ceRawWithMeta returns e as a RawConfigEntry with key=value added to its
// Meta.
func ceRawWithMeta(t *testing.T, e api.ConfigEntry, key, value string) *api.RawConfigEntry {
	t.Helper()
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var raw api.RawConfigEntry
	require.NoError(t, json.Unmarshal(b, &raw))
	raw.Kind = e.GetKind()
	raw.Meta = map[string]string{key: value}
	for k, v := range e.GetMeta() {
		raw.Meta[k] = v
	}
	return &raw
}

// TestConfigEntryKindsRoundTrip writes an entry of every typed kind, reads
// it back typed, finds it in the kind's list, exercises both CAS forms and
// deletes it.
func TestConfigEntryKindsRoundTrip(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)

	type kindCase struct {
		name string
		// prepare writes the entries the entry depends on and returns the
		// entry to test.
		prepare func(t *testing.T) api.ConfigEntry
		check   func(t *testing.T, got api.ConfigEntry)
	}
	httpDefaults := func(t *testing.T, svc string) {
		ceSet(t, c, &api.ServiceConfigEntry{Name: svc, Protocol: "http"})
	}
	cases := []kindCase{
		{
			name: api.ServiceDefaults,
			prepare: func(t *testing.T) api.ConfigEntry {
				return &api.ServiceConfigEntry{
					Name: ceName(t, ""), Protocol: "http", Meta: map[string]string{"owner": "team-a"},
					MaxInboundConnections: 10,
					UpstreamConfig: &api.UpstreamConfiguration{Defaults: &api.UpstreamConfig{
						ConnectTimeoutMs:   3000,
						PassiveHealthCheck: &api.PassiveHealthCheck{Interval: api.Duration(10 * time.Second), MaxFailures: 3},
					}},
				}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				sd := got.(*api.ServiceConfigEntry)
				assert.Equal(t, "http", sd.Protocol)
				assert.Equal(t, "team-a", sd.Meta["owner"])
				assert.Equal(t, 10, sd.MaxInboundConnections)
				require.NotNil(t, sd.UpstreamConfig)
				require.NotNil(t, sd.UpstreamConfig.Defaults)
				assert.Equal(t, 3000, sd.UpstreamConfig.Defaults.ConnectTimeoutMs)
				require.NotNil(t, sd.UpstreamConfig.Defaults.PassiveHealthCheck)
				// Consul answers this duration in nanoseconds.
				assert.Equal(t, 10*time.Second, sd.UpstreamConfig.Defaults.PassiveHealthCheck.Interval.D())
			},
		},
		{
			name: api.ProxyDefaults,
			prepare: func(t *testing.T) api.ConfigEntry {
				ceKeepSingleton(t, c, api.ProxyDefaults, api.ProxyConfigGlobal)
				return &api.ProxyConfigEntry{
					Name:   api.ProxyConfigGlobal,
					Config: map[string]any{"local_connect_timeout_ms": 1000},
					Expose: api.ExposeConfig{Checks: true},
					Meta:   map[string]string{"test": t.Name()},
				}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				pd := got.(*api.ProxyConfigEntry)
				assert.Equal(t, float64(1000), pd.Config["local_connect_timeout_ms"])
				assert.True(t, pd.Expose.Checks)
			},
		},
		{
			name: api.ServiceRouter,
			prepare: func(t *testing.T) api.ConfigEntry {
				// A router needs an L7 protocol on the service and on every
				// destination.
				svc := ceName(t, "")
				httpDefaults(t, svc)
				return &api.ServiceRouterConfigEntry{Name: svc, Routes: []api.ServiceRoute{{
					Match: &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{
						PathPrefix: "/admin", Methods: []string{"GET", "POST"},
						Header: []api.ServiceRouteHTTPMatchHeader{{Name: "x-debug", Present: true}},
					}},
					Destination: &api.ServiceRouteDestination{
						Service: svc, PrefixRewrite: "/", RequestTimeout: api.Duration(2 * time.Second),
						NumRetries: 2, RetryOnStatusCodes: []uint32{503},
						RequestHeaders: &api.HTTPHeaderModifiers{Set: map[string]string{"x-routed": "1"}},
					},
				}}}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				r := got.(*api.ServiceRouterConfigEntry)
				require.Len(t, r.Routes, 1)
				assert.Equal(t, "/admin", r.Routes[0].Match.HTTP.PathPrefix)
				assert.Equal(t, []string{"GET", "POST"}, r.Routes[0].Match.HTTP.Methods)
				assert.True(t, r.Routes[0].Match.HTTP.Header[0].Present)
				d := r.Routes[0].Destination
				assert.Equal(t, 2*time.Second, d.RequestTimeout.D())
				assert.Equal(t, uint32(2), d.NumRetries)
				assert.Equal(t, []uint32{503}, d.RetryOnStatusCodes)
				assert.Equal(t, "1", d.RequestHeaders.Set["x-routed"])
			},
		},
		{
			name: api.ServiceSplitter,
			prepare: func(t *testing.T) api.ConfigEntry {
				svc := ceName(t, "")
				httpDefaults(t, svc)
				ceSet(t, c, &api.ServiceResolverConfigEntry{Name: svc, Subsets: map[string]api.ServiceResolverSubset{
					"v1": {Filter: `Service.Meta.version == v1`},
					"v2": {Filter: `Service.Meta.version == v2`},
				}})
				return &api.ServiceSplitterConfigEntry{Name: svc, Splits: []api.ServiceSplit{
					{Weight: 90, ServiceSubset: "v1"},
					{Weight: 10, ServiceSubset: "v2", ResponseHeaders: &api.HTTPHeaderModifiers{Add: map[string]string{"x-canary": "yes"}}},
				}}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				s := got.(*api.ServiceSplitterConfigEntry)
				require.Len(t, s.Splits, 2)
				assert.Equal(t, float32(90), s.Splits[0].Weight)
				assert.Equal(t, "v2", s.Splits[1].ServiceSubset)
				assert.Equal(t, "yes", s.Splits[1].ResponseHeaders.Add["x-canary"])
			},
		},
		{
			name: api.ServiceResolver,
			prepare: func(t *testing.T) api.ConfigEntry {
				svc := ceName(t, "")
				httpDefaults(t, svc)
				return &api.ServiceResolverConfigEntry{
					Name: svc, DefaultSubset: "v1", ConnectTimeout: api.Duration(15 * time.Second),
					Subsets:  map[string]api.ServiceResolverSubset{"v1": {Filter: `Service.Meta.version == v1`, OnlyPassing: true}},
					Failover: map[string]api.ServiceResolverFailover{"*": {Datacenters: []string{"dc2"}}},
					LoadBalancer: &api.LoadBalancer{Policy: "ring_hash", RingHashConfig: &api.RingHashConfig{MinimumRingSize: 1024},
						HashPolicies: []api.HashPolicy{{Field: "cookie", FieldValue: "sid", CookieConfig: &api.CookieConfig{TTL: api.Duration(time.Minute)}}}},
				}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				r := got.(*api.ServiceResolverConfigEntry)
				assert.Equal(t, 15*time.Second, r.ConnectTimeout.D())
				assert.Equal(t, "v1", r.DefaultSubset)
				assert.True(t, r.Subsets["v1"].OnlyPassing)
				assert.Equal(t, []string{"dc2"}, r.Failover["*"].Datacenters)
				require.NotNil(t, r.LoadBalancer)
				assert.Equal(t, "ring_hash", r.LoadBalancer.Policy)
				assert.Equal(t, uint64(1024), r.LoadBalancer.RingHashConfig.MinimumRingSize)
				assert.Equal(t, time.Minute, r.LoadBalancer.HashPolicies[0].CookieConfig.TTL.D())
			},
		},
		{
			name: api.IngressGateway,
			prepare: func(t *testing.T) api.ConfigEntry {
				web := ceName(t, "web")
				httpDefaults(t, web)
				return &api.IngressGatewayConfigEntry{
					Name: ceName(t, "gw"),
					Listeners: []api.IngressListener{
						{Port: 8080, Protocol: "tcp", Services: []api.IngressService{{Name: ceName(t, "db")}}},
						{Port: 8081, Protocol: "http", Services: []api.IngressService{{Name: web, Hosts: []string{"web.example"}}}},
					},
					Defaults: &api.IngressServiceConfig{MaxConnections: 10},
				}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				g := got.(*api.IngressGatewayConfigEntry)
				require.Len(t, g.Listeners, 2)
				assert.Equal(t, 8080, g.Listeners[0].Port)
				assert.Equal(t, "http", g.Listeners[1].Protocol)
				assert.Equal(t, []string{"web.example"}, g.Listeners[1].Services[0].Hosts)
				require.NotNil(t, g.Defaults)
				assert.Equal(t, uint32(10), g.Defaults.MaxConnections)
				assert.False(t, g.TLS.Enabled)
			},
		},
		{
			name: api.TerminatingGateway,
			prepare: func(t *testing.T) api.ConfigEntry {
				return &api.TerminatingGatewayConfigEntry{Name: ceName(t, "gw"), Services: []api.LinkedService{
					{Name: ceName(t, "ext"), CAFile: "/etc/ca.pem", SNI: "ext.example"},
					{Name: ceName(t, "ext2")},
				}}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				g := got.(*api.TerminatingGatewayConfigEntry)
				require.Len(t, g.Services, 2)
				assert.Equal(t, "/etc/ca.pem", g.Services[0].CAFile)
				assert.Equal(t, "ext.example", g.Services[0].SNI)
			},
		},
		{
			name: api.ServiceIntentions,
			prepare: func(t *testing.T) api.ConfigEntry {
				// L7 permissions need an http destination.
				dst := ceName(t, "dst")
				httpDefaults(t, dst)
				return &api.ServiceIntentionsConfigEntry{Name: dst, Meta: map[string]string{"team": "a"}, Sources: []*api.SourceIntention{
					{Name: ceName(t, "web"), Action: api.IntentionActionAllow, Description: "web may call"},
					{Name: ceName(t, "api"), Permissions: []*api.IntentionPermission{
						{Action: api.IntentionActionDeny, HTTP: &api.IntentionHTTPPermission{PathPrefix: "/admin"}},
						{Action: api.IntentionActionAllow, HTTP: &api.IntentionHTTPPermission{Methods: []string{"GET"}}},
					}},
					{Name: "*", Action: api.IntentionActionDeny},
				}}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				s := got.(*api.ServiceIntentionsConfigEntry)
				require.Len(t, s.Sources, 3)
				byName := map[string]*api.SourceIntention{}
				for _, src := range s.Sources {
					byName[src.Name] = src
					assert.Equal(t, api.IntentionSourceConsul, src.Type)
					assert.NotZero(t, src.Precedence)
				}
				require.Contains(t, byName, "*")
				assert.Equal(t, api.IntentionActionDeny, byName["*"].Action)
				var l7 *api.SourceIntention
				for _, src := range s.Sources {
					if len(src.Permissions) > 0 {
						l7 = src
					}
				}
				require.NotNil(t, l7)
				assert.Equal(t, "/admin", l7.Permissions[0].HTTP.PathPrefix)
				assert.Equal(t, "a", s.Meta["team"])
			},
		},
		{
			name: api.MeshConfig,
			prepare: func(t *testing.T) api.ConfigEntry {
				ceKeepSingleton(t, c, api.MeshConfig, api.MeshConfigMesh)
				return &api.MeshConfigEntry{
					TransparentProxy: api.TransparentProxyMeshConfig{MeshDestinationsOnly: true},
					TLS:              &api.MeshTLSConfig{Incoming: &api.MeshDirectionalTLSConfig{TLSMinVersion: "TLSv1_2"}},
					HTTP:             &api.MeshHTTPConfig{SanitizeXForwardedClientCert: true},
					Meta:             map[string]string{"test": "mesh"},
				}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				m := got.(*api.MeshConfigEntry)
				assert.Equal(t, api.MeshConfigMesh, m.GetName())
				assert.True(t, m.TransparentProxy.MeshDestinationsOnly)
				require.NotNil(t, m.TLS)
				assert.Equal(t, "TLSv1_2", m.TLS.Incoming.TLSMinVersion)
				require.NotNil(t, m.HTTP)
				assert.True(t, m.HTTP.SanitizeXForwardedClientCert)
			},
		},
		{
			name: api.ExportedServices,
			prepare: func(t *testing.T) api.ConfigEntry {
				// The only name open-source Consul accepts is "default"
				// (the partition), so the entry is a singleton. Consumers
				// name peers that need not exist yet.
				ceKeepSingleton(t, c, api.ExportedServices, "default")
				return &api.ExportedServicesConfigEntry{Name: "default", Services: []api.ExportedService{
					{Name: ceName(t, "web"), Consumers: []api.ServiceConsumer{{Peer: "peer-a"}, {Peer: "peer-b"}}},
				}}
			},
			check: func(t *testing.T, got api.ConfigEntry) {
				e := got.(*api.ExportedServicesConfigEntry)
				require.Len(t, e.Services, 1)
				assert.Equal(t, []api.ServiceConsumer{{Peer: "peer-a"}, {Peer: "peer-b"}}, e.Services[0].Consumers)
			},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ce := c.ConfigEntries()
			entry := tc.prepare(t)
			kind, name := entry.GetKind(), entry.GetName()
			require.Equal(t, tc.name, kind)

			ok, _, err := ce.Set(ctx, entry, nil)
			require.NoError(t, err)
			require.True(t, ok)
			t.Cleanup(func() {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = ce.Delete(cctx, kind, name, nil)
			})

			got, meta, err := ce.Get(ctx, kind, name, nil)
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.NotZero(t, meta.LastIndex)
			assert.IsType(t, entry, got)
			assert.Equal(t, kind, got.GetKind())
			assert.Equal(t, name, got.GetName())
			assert.NotZero(t, got.GetCreateIndex())
			assert.NotZero(t, got.GetModifyIndex())
			tc.check(t, got)

			list, _, err := ce.List(ctx, kind, nil)
			require.NoError(t, err)
			var found api.ConfigEntry
			for _, e := range list {
				if e.GetName() == name {
					found = e
				}
			}
			require.NotNil(t, found, "%s/%s not in the list", kind, name)
			assert.Equal(t, got.GetModifyIndex(), found.GetModifyIndex())

			// Consul skips a write that would not change the entry and
			// answers true whatever the CAS index, so the CAS writes
			// change Meta. They go through a RawConfigEntry made from
			// what was read, which also checks that a read entry can be
			// written back as it is.
			changed := ceRawWithMeta(t, got, "rev", "2")
			// CAS with 0 (create only) fails on an existing entry; with a
			// stale index it fails; with the current index it succeeds.
			ok, _, err = ce.CAS(ctx, changed, 0, nil)
			require.NoError(t, err)
			assert.False(t, ok, "CAS 0 on an existing entry")
			ok, _, err = ce.CAS(ctx, changed, got.GetModifyIndex()+1000, nil)
			require.NoError(t, err)
			assert.False(t, ok, "CAS with a wrong index")
			ok, _, err = ce.CAS(ctx, changed, got.GetModifyIndex(), nil)
			require.NoError(t, err)
			assert.True(t, ok, "CAS with the current index")

			again, _, err := ce.Get(ctx, kind, name, nil)
			require.NoError(t, err)
			require.NotNil(t, again)
			assert.Greater(t, again.GetModifyIndex(), got.GetModifyIndex())
			assert.Equal(t, "2", again.GetMeta()["rev"])
			assert.IsType(t, entry, again)
			tc.check(t, again)

			ok, _, err = ce.DeleteCAS(ctx, kind, name, got.GetModifyIndex(), nil)
			require.NoError(t, err)
			assert.False(t, ok, "DeleteCAS with a stale index")
			ok, _, err = ce.DeleteCAS(ctx, kind, name, again.GetModifyIndex(), nil)
			require.NoError(t, err)
			assert.True(t, ok, "DeleteCAS with the current index")

			gone, _, err := ce.Get(ctx, kind, name, nil)
			require.NoError(t, err)
			assert.Nil(t, gone)
		})
	}
}

func TestConfigEntrySetDeleteAndMissing(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	ce := c.ConfigEntries()
	name := ceName(t, "")

	missing, meta, err := ce.Get(ctx, api.ServiceDefaults, name, nil)
	require.NoError(t, err)
	assert.Nil(t, missing)
	require.NotNil(t, meta)

	// CAS with index 0 creates an entry that does not exist yet.
	ok, _, err := ce.CAS(ctx, &api.ServiceConfigEntry{Name: name, Protocol: "grpc"}, 0, nil)
	require.NoError(t, err)
	require.True(t, ok)
	t.Cleanup(func() { _, _ = ce.Delete(context.Background(), api.ServiceDefaults, name, nil) })

	// A raw entry of a known kind writes like a typed one and reads back
	// typed.
	raw := &api.RawConfigEntry{Kind: api.ServiceDefaults, Name: name, Fields: map[string]json.RawMessage{"Protocol": json.RawMessage(`"http2"`)}}
	ok, _, err = ce.Set(ctx, raw, nil)
	require.NoError(t, err)
	require.True(t, ok)
	got, _, err := ce.Get(ctx, api.ServiceDefaults, name, nil)
	require.NoError(t, err)
	require.IsType(t, &api.ServiceConfigEntry{}, got)
	assert.Equal(t, "http2", got.(*api.ServiceConfigEntry).Protocol)

	_, err = ce.Delete(ctx, api.ServiceDefaults, name, nil)
	require.NoError(t, err)
	got, _, err = ce.Get(ctx, api.ServiceDefaults, name, nil)
	require.NoError(t, err)
	assert.Nil(t, got)

	// Deleting what is not there is not an error.
	_, err = ce.Delete(ctx, api.ServiceDefaults, name, nil)
	require.NoError(t, err)
}

func TestConfigEntryRejected(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	ce := c.ConfigEntries()

	// A router on a tcp service is refused by Consul's chain compiler.
	svc := ceName(t, "")
	_, _, err := ce.Set(ctx, &api.ServiceRouterConfigEntry{Name: svc, Routes: []api.ServiceRoute{{
		Match: &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{PathPrefix: "/x"}},
	}}}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se, "router on a tcp service")
	assert.Contains(t, se.Body, "protocol")

	// A kind Consul does not know.
	_, _, err = ce.Set(ctx, &api.RawConfigEntry{Kind: "no-such-kind", Name: svc}, nil)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 400, se.Code, "body: %s", se.Body)
	// Reads of an unknown kind are answered 500 by Consul 1.14.
	_, _, err = ce.List(ctx, "no-such-kind", nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "invalid config entry kind")
	_, _, err = ce.Get(ctx, "no-such-kind", svc, nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "invalid config entry kind")
}

// TestConfigEntryBlockingGet waits on a config entry with a blocking query
// and sees the change.
func TestConfigEntryBlockingGet(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	ce := c.ConfigEntries()
	name := ceName(t, "")
	ceSet(t, c, &api.ServiceConfigEntry{Name: name, Protocol: "tcp"})

	_, meta, err := ce.Get(ctx, api.ServiceDefaults, name, nil)
	require.NoError(t, err)
	done := make(chan api.ConfigEntry, 1)
	go func() {
		e, _, err := ce.Get(ctx, api.ServiceDefaults, name, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil {
			t.Errorf("blocking get: %v", err)
		}
		done <- e
	}()
	time.Sleep(200 * time.Millisecond)
	ok, _, err := ce.Set(ctx, &api.ServiceConfigEntry{Name: name, Protocol: "http"}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	select {
	case e := <-done:
		require.NotNil(t, e)
		assert.Equal(t, "http", e.(*api.ServiceConfigEntry).Protocol)
	case <-time.After(25 * time.Second):
		t.Fatal("blocking get did not return")
	}
}

// TestConfigEntryACL checks the error mapping and the default-deny answers
// of the config entry and intention endpoints on an agent with ACLs.
func TestConfigEntryACL(t *testing.T) {
	acl := integration.NewACLAgent(t)
	mgmt := acl.Client(t)
	cfg := acl.Config()
	cfg.Token = ""
	anon, err := api.NewClient(cfg)
	require.NoError(t, err)
	ctx := t.Context()
	name := ceName(t, "")

	_, _, err = anon.ConfigEntries().Set(ctx, &api.ServiceConfigEntry{Name: name, Protocol: "http"}, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	_, _, err = anon.ConfigEntries().Set(ctx, &api.ServiceConfigEntry{Name: name}, &api.WriteOptions{Token: "00000000-0000-0000-0000-000000000001"})
	assert.ErrorIs(t, err, api.ErrACLNotFound)

	ok, _, err := mgmt.ConfigEntries().Set(ctx, &api.ServiceConfigEntry{Name: name, Protocol: "http"}, nil)
	require.NoError(t, err)
	require.True(t, ok)

	// Reads without permission: a single entry is refused, a list is
	// filtered.
	_, _, err = anon.ConfigEntries().Get(ctx, api.ServiceDefaults, name, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	list, _, err := anon.ConfigEntries().List(ctx, api.ServiceDefaults, nil)
	require.NoError(t, err)
	assert.Empty(t, list)

	// With default deny and no intention, a connection is not allowed.
	allowed, _, err := mgmt.Connect().IntentionCheck(ctx, ceName(t, "a"), name, nil)
	require.NoError(t, err)
	assert.False(t, allowed)
	_, err = anon.Connect().IntentionUpsert(ctx, &api.Intention{SourceName: "a", DestinationName: name, Action: api.IntentionActionAllow}, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	_, _, err = anon.Connect().CAGetConfig(ctx, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	_, err = anon.Connect().CASetConfig(ctx, &api.CAConfig{Provider: "consul"}, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
}
