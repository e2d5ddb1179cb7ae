package api

import (
	"context"
	"net/http"
)

// DiscoveryChain is the handle on the /v1/discovery-chain endpoint.
type DiscoveryChain struct{ c *Client }

// DiscoveryChain returns the handle on the discovery chain endpoint.
func (c *Client) DiscoveryChain() *DiscoveryChain { return &DiscoveryChain{c} }

// DiscoveryChainOptions change how a chain is compiled. With any Override
// field set, the chain is read with a POST that carries them.
type DiscoveryChainOptions struct {
	// EvaluateInDatacenter compiles the chain as seen from another
	// datacenter (?compile-dc=).
	EvaluateInDatacenter string `json:"-"`
	// OverrideMeshGateway replaces the mesh gateway mode of the chain's
	// targets.
	OverrideMeshGateway MeshGatewayConfig `json:",omitzero"`
	// OverrideProtocol replaces the protocol of the chain.
	OverrideProtocol string `json:",omitempty"`
	// OverrideConnectTimeout replaces the connect timeout of the chain's
	// resolvers.
	OverrideConnectTimeout Duration `json:",omitempty"`
}

func (o *DiscoveryChainOptions) overrides() bool {
	return o != nil && (o.OverrideMeshGateway.Mode != "" || o.OverrideProtocol != "" || o.OverrideConnectTimeout != 0)
}

// DiscoveryChainResponse is the answer of the discovery chain endpoint.
type DiscoveryChainResponse struct {
	Chain *CompiledDiscoveryChain
}

// CompiledDiscoveryChain is the routing of a service compiled from its
// service-router, service-splitter and service-resolver entries into a
// graph: StartNode names the first node of Nodes; resolvers end in Targets.
type CompiledDiscoveryChain struct {
	ServiceName string
	Namespace   string
	Partition   string
	Datacenter  string
	// CustomizationHash is set when the chain was compiled with
	// overrides.
	CustomizationHash string `json:",omitempty"`
	// Default is true when no config entry shaped the chain.
	Default     bool              `json:",omitempty"`
	Protocol    string            `json:",omitempty"`
	ServiceMeta map[string]string `json:",omitempty"`
	StartNode   string            `json:",omitempty"`
	// Nodes are the router, splitter and resolver nodes, by name.
	Nodes map[string]*DiscoveryGraphNode `json:",omitempty"`
	// Targets are the resolved targets, by ID.
	Targets map[string]*DiscoveryTarget `json:",omitempty"`
}

// Discovery graph node types.
const (
	DiscoveryGraphNodeTypeRouter   = "router"
	DiscoveryGraphNodeTypeSplitter = "splitter"
	DiscoveryGraphNodeTypeResolver = "resolver"
)

// DiscoveryGraphNode is one node of a compiled chain: a router (Routes), a
// splitter (Splits) or a resolver (Resolver).
type DiscoveryGraphNode struct {
	Type         string
	Name         string
	Routes       []*DiscoveryRoute  `json:",omitempty"`
	Splits       []*DiscoverySplit  `json:",omitempty"`
	Resolver     *DiscoveryResolver `json:",omitempty"`
	LoadBalancer *LoadBalancer      `json:",omitempty"`
}

// DiscoveryRoute is a compiled route: its definition and the node it
// leads to.
type DiscoveryRoute struct {
	Definition *ServiceRoute `json:",omitempty"`
	NextNode   string        `json:",omitempty"`
}

// DiscoverySplit is a compiled split.
type DiscoverySplit struct {
	Definition *ServiceSplit `json:",omitempty"`
	Weight     float32       `json:",omitempty"`
	NextNode   string        `json:",omitempty"`
}

// DiscoveryResolver is a compiled resolver.
type DiscoveryResolver struct {
	Default        bool               `json:",omitempty"`
	ConnectTimeout Duration           `json:",omitempty"`
	RequestTimeout Duration           `json:",omitempty"`
	Target         string             `json:",omitempty"`
	Failover       *DiscoveryFailover `json:",omitempty"`
}

// DiscoveryFailover lists the targets a resolver fails over to, in order.
type DiscoveryFailover struct {
	Targets []string `json:",omitempty"`
}

// DiscoveryTarget is one resolved target: a service subset in a
// datacenter, partition and namespace, or behind a peer.
type DiscoveryTarget struct {
	ID               string                 `json:",omitempty"`
	Service          string                 `json:",omitempty"`
	ServiceSubset    string                 `json:",omitempty"`
	Namespace        string                 `json:",omitempty"`
	Partition        string                 `json:",omitempty"`
	Datacenter       string                 `json:",omitempty"`
	Peer             string                 `json:",omitempty"`
	MeshGateway      MeshGatewayConfig      `json:",omitzero"`
	Subset           ServiceResolverSubset  `json:",omitzero"`
	TransparentProxy TransparentProxyConfig `json:",omitzero"`
	ConnectTimeout   Duration               `json:",omitempty"`
	External         bool                   `json:",omitempty"`
	SNI              string                 `json:",omitempty"`
	Name             string                 `json:",omitempty"`
}

// Get compiles and returns the discovery chain of a service. A service
// without config entries gets a default chain (Chain.Default), so a
// missing service is not an error. opts may be nil. It supports blocking
// queries.
func (dc *DiscoveryChain) Get(ctx context.Context, service string, opts *DiscoveryChainOptions, q *QueryOptions) (*DiscoveryChainResponse, *QueryMeta, error) {
	if err := requireID("service", service); err != nil {
		return nil, nil, err
	}
	method := http.MethodGet
	if opts.overrides() {
		method = http.MethodPost
	}
	r := dc.c.newRequest(method, "/v1/discovery-chain/"+escapeKey(service))
	dc.c.applyQuery(r, q)
	if opts != nil && opts.EvaluateInDatacenter != "" {
		r.params.Set("compile-dc", opts.EvaluateInDatacenter)
	}
	if method == http.MethodPost {
		if err := r.jsonBody(opts); err != nil {
			return nil, nil, err
		}
	}
	var out DiscoveryChainResponse
	meta, err := dc.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}
