package api

import "time"

// This file holds one struct per config entry kind, with Consul 1.14's JSON
// field names. Consul rejects unknown fields in a config entry, and
// Namespace and Partition in Consul's open-source edition, so every field
// that is not always present is omitted when empty.

// ServiceConfigEntry (kind service-defaults) sets defaults for every
// instance of a service: its protocol, proxy and upstream settings.
type ServiceConfigEntry struct {
	Kind      string
	Name      string
	Partition string `json:",omitempty"`
	Namespace string `json:",omitempty"`
	// Protocol is tcp (the default), http, http2 or grpc. Routers and
	// splitters need an L7 protocol.
	Protocol                  string                  `json:",omitempty"`
	Mode                      string                  `json:",omitempty"`
	TransparentProxy          *TransparentProxyConfig `json:",omitempty"`
	MeshGateway               MeshGatewayConfig       `json:",omitzero"`
	Expose                    ExposeConfig            `json:",omitzero"`
	ExternalSNI               string                  `json:",omitempty"`
	UpstreamConfig            *UpstreamConfiguration  `json:",omitempty"`
	Destination               *DestinationConfig      `json:",omitempty"`
	MaxInboundConnections     int                     `json:",omitempty"`
	LocalConnectTimeoutMs     int                     `json:",omitempty"`
	LocalRequestTimeoutMs     int                     `json:",omitempty"`
	BalanceInboundConnections string                  `json:",omitempty"`
	Meta                      map[string]string       `json:",omitempty"`
	CreateIndex               uint64                  `json:",omitempty"`
	ModifyIndex               uint64                  `json:",omitempty"`
}

// GetKind returns ServiceDefaults.
func (e *ServiceConfigEntry) GetKind() string { return ServiceDefaults }

// GetName returns e.Name.
func (e *ServiceConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ServiceConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ServiceConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ServiceConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ServiceConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ServiceConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// UpstreamConfiguration is the upstream configuration of a
// service-defaults entry: per-upstream overrides and defaults for all.
type UpstreamConfiguration struct {
	Overrides []*UpstreamConfig `json:",omitempty"`
	Defaults  *UpstreamConfig   `json:",omitempty"`
}

// UpstreamConfig configures the connections to one upstream (Name set, in
// Overrides) or to every upstream (Name empty, in Defaults).
type UpstreamConfig struct {
	Name                       string              `json:",omitempty"`
	Partition                  string              `json:",omitempty"`
	Namespace                  string              `json:",omitempty"`
	EnvoyListenerJSON          string              `json:",omitempty"`
	EnvoyClusterJSON           string              `json:",omitempty"`
	Protocol                   string              `json:",omitempty"`
	ConnectTimeoutMs           int                 `json:",omitempty"`
	Limits                     *UpstreamLimits     `json:",omitempty"`
	PassiveHealthCheck         *PassiveHealthCheck `json:",omitempty"`
	MeshGateway                MeshGatewayConfig   `json:",omitzero"`
	BalanceOutboundConnections string              `json:",omitempty"`
}

// UpstreamLimits bounds the connections and requests to an upstream.
type UpstreamLimits struct {
	MaxConnections        *int `json:",omitempty"`
	MaxPendingRequests    *int `json:",omitempty"`
	MaxConcurrentRequests *int `json:",omitempty"`
}

// PassiveHealthCheck ejects upstream instances that fail too often.
type PassiveHealthCheck struct {
	Interval                Duration  `json:",omitempty"`
	MaxFailures             uint32    `json:",omitempty"`
	EnforcingConsecutive5xx *uint32   `json:",omitempty"`
	MaxEjectionPercent      *uint32   `json:",omitempty"`
	BaseEjectionTime        *Duration `json:",omitempty"`
}

// DestinationConfig makes a service-defaults entry describe a service
// outside the mesh, reached through a terminating gateway.
type DestinationConfig struct {
	Addresses []string `json:",omitempty"`
	Port      int      `json:",omitempty"`
}

// ProxyConfigEntry (kind proxy-defaults, name ProxyConfigGlobal) sets
// defaults for every proxy.
type ProxyConfigEntry struct {
	Kind             string
	Name             string
	Partition        string                  `json:",omitempty"`
	Namespace        string                  `json:",omitempty"`
	Mode             string                  `json:",omitempty"`
	TransparentProxy *TransparentProxyConfig `json:",omitempty"`
	// Config is opaque proxy configuration; its "protocol" key sets the
	// default protocol of every service.
	Config      map[string]any    `json:",omitempty"`
	MeshGateway MeshGatewayConfig `json:",omitzero"`
	Expose      ExposeConfig      `json:",omitzero"`
	Meta        map[string]string `json:",omitempty"`
	CreateIndex uint64            `json:",omitempty"`
	ModifyIndex uint64            `json:",omitempty"`
}

// GetKind returns ProxyDefaults.
func (e *ProxyConfigEntry) GetKind() string { return ProxyDefaults }

// GetName returns e.Name.
func (e *ProxyConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ProxyConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ProxyConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ProxyConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ProxyConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ProxyConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// ServiceRouterConfigEntry (kind service-router) routes L7 requests to a
// service by path, header, query parameter or method.
type ServiceRouterConfigEntry struct {
	Kind        string
	Name        string
	Partition   string            `json:",omitempty"`
	Namespace   string            `json:",omitempty"`
	Routes      []ServiceRoute    `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
	CreateIndex uint64            `json:",omitempty"`
	ModifyIndex uint64            `json:",omitempty"`
}

// GetKind returns ServiceRouter.
func (e *ServiceRouterConfigEntry) GetKind() string { return ServiceRouter }

// GetName returns e.Name.
func (e *ServiceRouterConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ServiceRouterConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ServiceRouterConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ServiceRouterConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ServiceRouterConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ServiceRouterConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// ServiceRoute is one route: requests that match go to the destination.
type ServiceRoute struct {
	Match       *ServiceRouteMatch       `json:",omitempty"`
	Destination *ServiceRouteDestination `json:",omitempty"`
}

// ServiceRouteMatch is the match of a route.
type ServiceRouteMatch struct {
	HTTP *ServiceRouteHTTPMatch `json:",omitempty"`
}

// ServiceRouteHTTPMatch matches HTTP requests. Set at most one of the Path
// fields.
type ServiceRouteHTTPMatch struct {
	PathExact  string                            `json:",omitempty"`
	PathPrefix string                            `json:",omitempty"`
	PathRegex  string                            `json:",omitempty"`
	Header     []ServiceRouteHTTPMatchHeader     `json:",omitempty"`
	QueryParam []ServiceRouteHTTPMatchQueryParam `json:",omitempty"`
	Methods    []string                          `json:",omitempty"`
}

// ServiceRouteHTTPMatchHeader matches one request header.
type ServiceRouteHTTPMatchHeader struct {
	Name    string
	Present bool   `json:",omitempty"`
	Exact   string `json:",omitempty"`
	Prefix  string `json:",omitempty"`
	Suffix  string `json:",omitempty"`
	Regex   string `json:",omitempty"`
	Invert  bool   `json:",omitempty"`
}

// ServiceRouteHTTPMatchQueryParam matches one query parameter.
type ServiceRouteHTTPMatchQueryParam struct {
	Name    string
	Present bool   `json:",omitempty"`
	Exact   string `json:",omitempty"`
	Regex   string `json:",omitempty"`
}

// ServiceRouteDestination is where matching requests go, and how.
type ServiceRouteDestination struct {
	Service               string               `json:",omitempty"`
	ServiceSubset         string               `json:",omitempty"`
	Namespace             string               `json:",omitempty"`
	Partition             string               `json:",omitempty"`
	PrefixRewrite         string               `json:",omitempty"`
	RequestTimeout        Duration             `json:",omitempty"`
	IdleTimeout           Duration             `json:",omitempty"`
	NumRetries            uint32               `json:",omitempty"`
	RetryOnConnectFailure bool                 `json:",omitempty"`
	RetryOnStatusCodes    []uint32             `json:",omitempty"`
	RetryOn               []string             `json:",omitempty"`
	RequestHeaders        *HTTPHeaderModifiers `json:",omitempty"`
	ResponseHeaders       *HTTPHeaderModifiers `json:",omitempty"`
}

// HTTPHeaderModifiers adds, sets and removes HTTP headers.
type HTTPHeaderModifiers struct {
	Add    map[string]string `json:",omitempty"`
	Set    map[string]string `json:",omitempty"`
	Remove []string          `json:",omitempty"`
}

// ServiceSplitterConfigEntry (kind service-splitter) splits a service's
// traffic between services or subsets by weight.
type ServiceSplitterConfigEntry struct {
	Kind        string
	Name        string
	Partition   string            `json:",omitempty"`
	Namespace   string            `json:",omitempty"`
	Splits      []ServiceSplit    `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
	CreateIndex uint64            `json:",omitempty"`
	ModifyIndex uint64            `json:",omitempty"`
}

// GetKind returns ServiceSplitter.
func (e *ServiceSplitterConfigEntry) GetKind() string { return ServiceSplitter }

// GetName returns e.Name.
func (e *ServiceSplitterConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ServiceSplitterConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ServiceSplitterConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ServiceSplitterConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ServiceSplitterConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ServiceSplitterConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// ServiceSplit is one share of a split; the weights of an entry add up to
// 100.
type ServiceSplit struct {
	Weight          float32
	Service         string               `json:",omitempty"`
	ServiceSubset   string               `json:",omitempty"`
	Namespace       string               `json:",omitempty"`
	Partition       string               `json:",omitempty"`
	RequestHeaders  *HTTPHeaderModifiers `json:",omitempty"`
	ResponseHeaders *HTTPHeaderModifiers `json:",omitempty"`
}

// ServiceResolverConfigEntry (kind service-resolver) defines a service's
// subsets, redirect, failover and load balancing.
type ServiceResolverConfigEntry struct {
	Kind           string
	Name           string
	Partition      string                             `json:",omitempty"`
	Namespace      string                             `json:",omitempty"`
	DefaultSubset  string                             `json:",omitempty"`
	Subsets        map[string]ServiceResolverSubset   `json:",omitempty"`
	Redirect       *ServiceResolverRedirect           `json:",omitempty"`
	Failover       map[string]ServiceResolverFailover `json:",omitempty"`
	ConnectTimeout Duration                           `json:",omitempty"`
	RequestTimeout Duration                           `json:",omitempty"`
	LoadBalancer   *LoadBalancer                      `json:",omitempty"`
	Meta           map[string]string                  `json:",omitempty"`
	CreateIndex    uint64                             `json:",omitempty"`
	ModifyIndex    uint64                             `json:",omitempty"`
}

// GetKind returns ServiceResolver.
func (e *ServiceResolverConfigEntry) GetKind() string { return ServiceResolver }

// GetName returns e.Name.
func (e *ServiceResolverConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ServiceResolverConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ServiceResolverConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ServiceResolverConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ServiceResolverConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ServiceResolverConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// ServiceResolverSubset selects instances of a service by a filter
// expression.
type ServiceResolverSubset struct {
	Filter      string `json:",omitempty"`
	OnlyPassing bool   `json:",omitempty"`
}

// ServiceResolverRedirect sends all of a service's traffic elsewhere.
type ServiceResolverRedirect struct {
	Service       string `json:",omitempty"`
	ServiceSubset string `json:",omitempty"`
	Namespace     string `json:",omitempty"`
	Partition     string `json:",omitempty"`
	Datacenter    string `json:",omitempty"`
	Peer          string `json:",omitempty"`
}

// ServiceResolverFailover is where traffic goes when a subset (or "*" for
// any) has no healthy instance.
type ServiceResolverFailover struct {
	Service       string                          `json:",omitempty"`
	ServiceSubset string                          `json:",omitempty"`
	Namespace     string                          `json:",omitempty"`
	Datacenters   []string                        `json:",omitempty"`
	Targets       []ServiceResolverFailoverTarget `json:",omitempty"`
}

// ServiceResolverFailoverTarget is one failover target.
type ServiceResolverFailoverTarget struct {
	Service       string `json:",omitempty"`
	ServiceSubset string `json:",omitempty"`
	Partition     string `json:",omitempty"`
	Namespace     string `json:",omitempty"`
	Datacenter    string `json:",omitempty"`
	Peer          string `json:",omitempty"`
}

// LoadBalancer is the load-balancing policy of a resolver.
type LoadBalancer struct {
	// Policy is one of "", random, round_robin, least_request, ring_hash,
	// maglev.
	Policy             string              `json:",omitempty"`
	RingHashConfig     *RingHashConfig     `json:",omitempty"`
	LeastRequestConfig *LeastRequestConfig `json:",omitempty"`
	HashPolicies       []HashPolicy        `json:",omitempty"`
}

// RingHashConfig configures the ring_hash policy.
type RingHashConfig struct {
	MinimumRingSize uint64 `json:",omitempty"`
	MaximumRingSize uint64 `json:",omitempty"`
}

// LeastRequestConfig configures the least_request policy.
type LeastRequestConfig struct {
	ChoiceCount uint32 `json:",omitempty"`
}

// HashPolicy is what a hashing policy hashes on.
type HashPolicy struct {
	// Field is header, cookie or query_parameter; FieldValue names it.
	Field        string        `json:",omitempty"`
	FieldValue   string        `json:",omitempty"`
	CookieConfig *CookieConfig `json:",omitempty"`
	SourceIP     bool          `json:",omitempty"`
	Terminal     bool          `json:",omitempty"`
}

// CookieConfig configures a cookie hash policy.
type CookieConfig struct {
	Session bool     `json:",omitempty"`
	TTL     Duration `json:",omitempty"`
	Path    string   `json:",omitempty"`
}

// IngressGatewayConfigEntry (kind ingress-gateway) configures the
// listeners of an ingress gateway.
type IngressGatewayConfigEntry struct {
	Kind        string
	Name        string
	Partition   string                `json:",omitempty"`
	Namespace   string                `json:",omitempty"`
	TLS         GatewayTLSConfig      `json:",omitzero"`
	Listeners   []IngressListener     `json:",omitempty"`
	Defaults    *IngressServiceConfig `json:",omitempty"`
	Meta        map[string]string     `json:",omitempty"`
	CreateIndex uint64                `json:",omitempty"`
	ModifyIndex uint64                `json:",omitempty"`
}

// GetKind returns IngressGateway.
func (e *IngressGatewayConfigEntry) GetKind() string { return IngressGateway }

// GetName returns e.Name.
func (e *IngressGatewayConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *IngressGatewayConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *IngressGatewayConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *IngressGatewayConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *IngressGatewayConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *IngressGatewayConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// IngressServiceConfig holds default limits for the services of an
// ingress gateway.
type IngressServiceConfig struct {
	MaxConnections        uint32
	MaxPendingRequests    uint32
	MaxConcurrentRequests uint32
}

// IngressListener is one listener of an ingress gateway.
type IngressListener struct {
	Port int
	// Protocol is tcp (the default), http, http2 or grpc.
	Protocol string            `json:",omitempty"`
	TLS      *GatewayTLSConfig `json:",omitempty"`
	Services []IngressService
}

// IngressService is a service exposed on an ingress listener.
type IngressService struct {
	Name                  string
	Hosts                 []string                 `json:",omitempty"`
	Namespace             string                   `json:",omitempty"`
	Partition             string                   `json:",omitempty"`
	TLS                   *GatewayServiceTLSConfig `json:",omitempty"`
	RequestHeaders        *HTTPHeaderModifiers     `json:",omitempty"`
	ResponseHeaders       *HTTPHeaderModifiers     `json:",omitempty"`
	MaxConnections        uint32                   `json:",omitempty"`
	MaxPendingRequests    uint32                   `json:",omitempty"`
	MaxConcurrentRequests uint32                   `json:",omitempty"`
	Meta                  map[string]string        `json:",omitempty"`
}

// GatewayTLSConfig is the TLS configuration of a gateway or listener.
type GatewayTLSConfig struct {
	Enabled       bool
	SDS           *GatewayTLSSDSConfig `json:",omitempty"`
	TLSMinVersion string               `json:",omitempty"`
	TLSMaxVersion string               `json:",omitempty"`
	CipherSuites  []string             `json:",omitempty"`
}

// GatewayServiceTLSConfig is the TLS configuration of one ingress service.
type GatewayServiceTLSConfig struct {
	SDS *GatewayTLSSDSConfig `json:",omitempty"`
}

// GatewayTLSSDSConfig names an SDS cluster and certificate resource.
type GatewayTLSSDSConfig struct {
	ClusterName  string `json:",omitempty"`
	CertResource string `json:",omitempty"`
}

// TerminatingGatewayConfigEntry (kind terminating-gateway) links services
// outside the mesh to a terminating gateway.
type TerminatingGatewayConfigEntry struct {
	Kind        string
	Name        string
	Partition   string            `json:",omitempty"`
	Namespace   string            `json:",omitempty"`
	Services    []LinkedService   `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
	CreateIndex uint64            `json:",omitempty"`
	ModifyIndex uint64            `json:",omitempty"`
}

// GetKind returns TerminatingGateway.
func (e *TerminatingGatewayConfigEntry) GetKind() string { return TerminatingGateway }

// GetName returns e.Name.
func (e *TerminatingGatewayConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *TerminatingGatewayConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *TerminatingGatewayConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *TerminatingGatewayConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *TerminatingGatewayConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *TerminatingGatewayConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// LinkedService is a service a terminating gateway reaches, with the TLS
// files it uses to do so.
type LinkedService struct {
	Name      string `json:",omitempty"`
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
	CAFile    string `json:",omitempty"`
	CertFile  string `json:",omitempty"`
	KeyFile   string `json:",omitempty"`
	SNI       string `json:",omitempty"`
}

// ServiceIntentionsConfigEntry (kind service-intentions) holds every
// intention whose destination is the entry's Name ("*" for all).
type ServiceIntentionsConfigEntry struct {
	Kind        string
	Name        string
	Partition   string             `json:",omitempty"`
	Namespace   string             `json:",omitempty"`
	Sources     []*SourceIntention `json:",omitempty"`
	Meta        map[string]string  `json:",omitempty"`
	CreateIndex uint64             `json:",omitempty"`
	ModifyIndex uint64             `json:",omitempty"`
}

// GetKind returns ServiceIntentions.
func (e *ServiceIntentionsConfigEntry) GetKind() string { return ServiceIntentions }

// GetName returns e.Name.
func (e *ServiceIntentionsConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ServiceIntentionsConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ServiceIntentionsConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ServiceIntentionsConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ServiceIntentionsConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ServiceIntentionsConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// SourceIntention is one source of a service-intentions entry: either an
// Action (L4) or Permissions (L7), not both.
type SourceIntention struct {
	Name        string
	Peer        string                 `json:",omitempty"`
	Partition   string                 `json:",omitempty"`
	Namespace   string                 `json:",omitempty"`
	Action      string                 `json:",omitempty"`
	Permissions []*IntentionPermission `json:",omitempty"`
	// Precedence is computed by Consul.
	Precedence  int    `json:",omitempty"`
	Type        string `json:",omitempty"`
	Description string `json:",omitempty"`
	// The Legacy fields are kept by Consul for intentions created through
	// the deprecated by-ID endpoints.
	LegacyID         string            `json:",omitempty"`
	LegacyMeta       map[string]string `json:",omitempty"`
	LegacyCreateTime *time.Time        `json:",omitempty"`
	LegacyUpdateTime *time.Time        `json:",omitempty"`
}

// IntentionPermission is one L7 permission: an action for requests that
// match.
type IntentionPermission struct {
	Action string
	HTTP   *IntentionHTTPPermission `json:",omitempty"`
}

// IntentionHTTPPermission matches HTTP requests.
type IntentionHTTPPermission struct {
	PathExact  string                          `json:",omitempty"`
	PathPrefix string                          `json:",omitempty"`
	PathRegex  string                          `json:",omitempty"`
	Header     []IntentionHTTPHeaderPermission `json:",omitempty"`
	Methods    []string                        `json:",omitempty"`
}

// IntentionHTTPHeaderPermission matches one request header.
type IntentionHTTPHeaderPermission struct {
	Name    string
	Present bool   `json:",omitempty"`
	Exact   string `json:",omitempty"`
	Prefix  string `json:",omitempty"`
	Suffix  string `json:",omitempty"`
	Regex   string `json:",omitempty"`
	Invert  bool   `json:",omitempty"`
}

// MeshConfigEntry (kind mesh) holds mesh-wide settings. It has no name in
// Consul: GetName returns MeshConfigMesh, the name to Get and Delete it by.
type MeshConfigEntry struct {
	Kind             string
	Partition        string                     `json:",omitempty"`
	Namespace        string                     `json:",omitempty"`
	TransparentProxy TransparentProxyMeshConfig `json:",omitzero"`
	TLS              *MeshTLSConfig             `json:",omitempty"`
	HTTP             *MeshHTTPConfig            `json:",omitempty"`
	Peering          *PeeringMeshConfig         `json:",omitempty"`
	Meta             map[string]string          `json:",omitempty"`
	CreateIndex      uint64                     `json:",omitempty"`
	ModifyIndex      uint64                     `json:",omitempty"`
}

// GetKind returns MeshConfig.
func (e *MeshConfigEntry) GetKind() string { return MeshConfig }

// GetName returns MeshConfigMesh.
func (e *MeshConfigEntry) GetName() string { return MeshConfigMesh }

// GetNamespace returns e.Namespace.
func (e *MeshConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *MeshConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *MeshConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *MeshConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *MeshConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// TransparentProxyMeshConfig holds mesh-wide transparent proxy settings.
type TransparentProxyMeshConfig struct {
	// MeshDestinationsOnly stops transparent proxies from reaching
	// destinations outside the mesh.
	MeshDestinationsOnly bool
}

// MeshTLSConfig holds mesh-wide TLS settings for incoming and outgoing
// connections.
type MeshTLSConfig struct {
	Incoming *MeshDirectionalTLSConfig `json:",omitempty"`
	Outgoing *MeshDirectionalTLSConfig `json:",omitempty"`
}

// MeshDirectionalTLSConfig holds TLS versions ("TLSv1_2", ...) and cipher
// suites for one direction.
type MeshDirectionalTLSConfig struct {
	TLSMinVersion string   `json:",omitempty"`
	TLSMaxVersion string   `json:",omitempty"`
	CipherSuites  []string `json:",omitempty"`
}

// MeshHTTPConfig holds mesh-wide HTTP settings.
type MeshHTTPConfig struct {
	SanitizeXForwardedClientCert bool
}

// PeeringMeshConfig holds mesh-wide peering settings.
type PeeringMeshConfig struct {
	PeerThroughMeshGateways bool
}

// ExportedServicesConfigEntry (kind exported-services) makes services of a
// partition visible to peers and other partitions. Its Name is the
// partition's name: "default" in Consul's open-source edition.
type ExportedServicesConfigEntry struct {
	Kind        string
	Name        string
	Partition   string            `json:",omitempty"`
	Namespace   string            `json:",omitempty"`
	Services    []ExportedService `json:",omitempty"`
	Meta        map[string]string `json:",omitempty"`
	CreateIndex uint64            `json:",omitempty"`
	ModifyIndex uint64            `json:",omitempty"`
}

// GetKind returns ExportedServices.
func (e *ExportedServicesConfigEntry) GetKind() string { return ExportedServices }

// GetName returns e.Name.
func (e *ExportedServicesConfigEntry) GetName() string { return e.Name }

// GetNamespace returns e.Namespace.
func (e *ExportedServicesConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *ExportedServicesConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *ExportedServicesConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *ExportedServicesConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *ExportedServicesConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// ExportedService is one exported service and who may consume it.
type ExportedService struct {
	Name      string
	Namespace string            `json:",omitempty"`
	Consumers []ServiceConsumer `json:",omitempty"`
}

// ServiceConsumer is a peer (by its peering name) or a partition that may
// consume an exported service.
type ServiceConsumer struct {
	Partition string `json:",omitempty"`
	Peer      string `json:",omitempty"`
}
