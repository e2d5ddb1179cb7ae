package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const discoveryChainJSON = `{
    "Chain": {
        "ServiceName": "web",
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": "dc1",
        "CustomizationHash": "a62bacaf",
        "Protocol": "http",
        "ServiceMeta": {"owner": "team-a"},
        "StartNode": "router:web.default.default",
        "Nodes": {
            "router:web.default.default": {
                "Type": "router",
                "Name": "web.default.default",
                "Routes": [
                    {
                        "Definition": {
                            "Match": {"HTTP": {"PathPrefix": "/admin"}},
                            "Destination": {"Service": "web", "ServiceSubset": "v2", "RequestTimeout": "2s"}
                        },
                        "NextNode": "resolver:v2.web.default.default.dc1"
                    }
                ]
            },
            "splitter:web.default.default": {
                "Type": "splitter",
                "Name": "web.default.default",
                "Splits": [{"Definition": {"Weight": 100, "ServiceSubset": "v2"}, "Weight": 100, "NextNode": "resolver:v2.web.default.default.dc1"}]
            },
            "resolver:v2.web.default.default.dc1": {
                "Type": "resolver",
                "Name": "v2.web.default.default.dc1",
                "Resolver": {
                    "ConnectTimeout": "15s",
                    "RequestTimeout": 3000000000,
                    "Target": "v2.web.default.default.dc1",
                    "Failover": {"Targets": ["v2.web.default.default.dc2"]}
                }
            }
        },
        "Targets": {
            "v2.web.default.default.dc1": {
                "ConnectTimeout": "15s",
                "ID": "v2.web.default.default.dc1",
                "Service": "web",
                "ServiceSubset": "v2",
                "Namespace": "default",
                "Partition": "default",
                "Datacenter": "dc1",
                "MeshGateway": {"Mode": "local"},
                "Subset": {"Filter": "Service.Meta.version == v2"},
                "TransparentProxy": {},
                "SNI": "v2.web.default.dc1.internal.45c9d7fa.consul",
                "Name": "v2.web.default.dc1.internal.45c9d7fa.consul"
            }
        }
    }
}`

func TestDiscoveryChainGet(t *testing.T) {
	tests := []struct {
		name       string
		opts       *DiscoveryChainOptions
		wantMethod string
		wantBody   string
		wantDC     string
	}{
		{name: "no options", wantMethod: http.MethodGet},
		{name: "compile dc only", opts: &DiscoveryChainOptions{EvaluateInDatacenter: "dc2"}, wantMethod: http.MethodGet, wantDC: "dc2"},
		{
			name:       "overrides",
			opts:       &DiscoveryChainOptions{OverrideProtocol: "grpc", OverrideConnectTimeout: Duration(7 * time.Second), OverrideMeshGateway: MeshGatewayConfig{Mode: "local"}},
			wantMethod: http.MethodPost,
			wantBody:   `{"OverrideMeshGateway":{"Mode":"local"},"OverrideProtocol":"grpc","OverrideConnectTimeout":"7s"}`,
		},
		{
			name:       "one override and compile dc",
			opts:       &DiscoveryChainOptions{EvaluateInDatacenter: "dc3", OverrideProtocol: "http"},
			wantMethod: http.MethodPost,
			wantBody:   `{"OverrideProtocol":"http"}`,
			wantDC:     "dc3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTokenFake(t, fakeReply{Body: discoveryChainJSON, Header: map[string]string{"X-Consul-Index": "31"}})
			resp, meta, err := c.DiscoveryChain().Get(context.Background(), "web", tt.opts, &QueryOptions{Token: "tok"})
			require.NoError(t, err)
			req := f.last(t)
			assert.Equal(t, tt.wantMethod, req.Method)
			assert.Equal(t, "/v1/discovery-chain/web", req.RawPath)
			assert.Equal(t, tt.wantDC, req.Query.Get("compile-dc"))
			assert.Equal(t, "tok", req.Header.Get("X-Consul-Token"))
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, string(req.Body))
			} else {
				assert.Empty(t, req.Body)
			}
			assert.Equal(t, uint64(31), meta.LastIndex)

			ch := resp.Chain
			require.NotNil(t, ch)
			assert.Equal(t, "web", ch.ServiceName)
			assert.Equal(t, "http", ch.Protocol)
			assert.Equal(t, "a62bacaf", ch.CustomizationHash)
			assert.False(t, ch.Default)
			assert.Equal(t, map[string]string{"owner": "team-a"}, ch.ServiceMeta)
			router := ch.Nodes[ch.StartNode]
			require.NotNil(t, router)
			assert.Equal(t, DiscoveryGraphNodeTypeRouter, router.Type)
			require.Len(t, router.Routes, 1)
			assert.Equal(t, "/admin", router.Routes[0].Definition.Match.HTTP.PathPrefix)
			assert.Equal(t, 2*time.Second, router.Routes[0].Definition.Destination.RequestTimeout.D())
			splitter := ch.Nodes["splitter:web.default.default"]
			require.NotNil(t, splitter)
			assert.Equal(t, float32(100), splitter.Splits[0].Weight)
			res := ch.Nodes[router.Routes[0].NextNode]
			require.NotNil(t, res)
			require.NotNil(t, res.Resolver)
			assert.Equal(t, 15*time.Second, res.Resolver.ConnectTimeout.D())
			assert.Equal(t, 3*time.Second, res.Resolver.RequestTimeout.D())
			assert.Equal(t, []string{"v2.web.default.default.dc2"}, res.Resolver.Failover.Targets)
			tgt := ch.Targets[res.Resolver.Target]
			require.NotNil(t, tgt)
			assert.Equal(t, "v2", tgt.ServiceSubset)
			assert.Equal(t, "local", tgt.MeshGateway.Mode)
			assert.Equal(t, "Service.Meta.version == v2", tgt.Subset.Filter)
			assert.Equal(t, 15*time.Second, tgt.ConnectTimeout.D())
		})
	}
}

func TestDiscoveryChainErrors(t *testing.T) {
	t.Run("validation", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: discoveryChainJSON})
		_, _, err := c.DiscoveryChain().Get(context.Background(), "", nil, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Zero(t, f.count())
	})
	t.Run("bad mesh gateway mode", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 400, Body: "Invalid OverrideMeshGateway.Mode parameter"})
		_, _, err := c.DiscoveryChain().Get(context.Background(), "web", &DiscoveryChainOptions{OverrideMeshGateway: MeshGatewayConfig{Mode: "bogus"}}, nil)
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusBadRequest, se.Code)
		assert.Equal(t, http.MethodPost, se.Method)
	})
	t.Run("permission denied", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 403, Body: "Permission denied"})
		_, _, err := c.DiscoveryChain().Get(context.Background(), "web", nil, nil)
		assert.ErrorIs(t, err, ErrPermissionDenied)
	})
}
