package api

import (
	"context"
	"net/http"
)

// Catalog is the handle on the /v1/catalog endpoints.
type Catalog struct{ c *Client }

// Catalog returns the handle on the catalog endpoints.
func (c *Client) Catalog() *Catalog { return &Catalog{c} }

// CatalogService is one instance of a service in the catalog, with its
// node, as /v1/catalog/service reports it.
type CatalogService struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceKind              ServiceKind
	ServiceID                string
	ServiceName              string
	ServiceAddress           string
	ServiceTaggedAddresses   map[string]ServiceAddress
	ServiceTags              []string
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceSocketPath        string
	ServiceWeights           AgentWeights
	ServiceEnableTagOverride bool
	ServiceProxy             *AgentServiceConnectProxyConfig
	ServiceConnect           *AgentServiceConnect
	PeerName                 string `json:",omitempty"`
	CreateIndex              uint64
	ModifyIndex              uint64
	Namespace                string `json:",omitempty"`
	Partition                string `json:",omitempty"`
}

// CatalogNode is a node with its services, by service ID.
type CatalogNode struct {
	Node     *Node
	Services map[string]*AgentService
}

// CatalogNodeServiceList is a node with the list of its services.
type CatalogNodeServiceList struct {
	Node     *Node
	Services []*AgentService
}

// CatalogRegistration registers a node, and optionally a service and
// checks on it, directly in the catalog. Entries registered this way are
// not managed by any agent's anti-entropy: use it for external services.
type CatalogRegistration struct {
	// ID is the node's UUID, optional.
	ID      string `json:",omitempty"`
	Node    string
	Address string `json:",omitempty"`
	// TaggedAddresses are extra node addresses ("lan", "wan", ...).
	TaggedAddresses map[string]string `json:",omitempty"`
	NodeMeta        map[string]string `json:",omitempty"`
	Datacenter      string            `json:",omitempty"`
	// Service is registered on the node when not nil; its ID defaults to
	// its Service name. Zero Weights are sent as Consul's defaults
	// (Passing 1, Warning 1), as the agent does for its own services.
	Service *AgentService `json:",omitempty"`
	// Check and Checks are registered on the node (with ServiceID set, on
	// the service). A check's Node may be left empty.
	Check  *HealthCheck `json:",omitempty"`
	Checks HealthChecks `json:",omitempty"`
	// SkipNodeUpdate keeps the existing node entry (address, metadata) and
	// only registers the service and checks. Address may then be empty.
	SkipNodeUpdate bool   `json:",omitempty"`
	Namespace      string `json:",omitempty"`
	Partition      string `json:",omitempty"`
}

// CatalogDeregistration removes a node, or one service or check of it,
// from the catalog: with neither ServiceID nor CheckID, the whole node and
// everything on it.
type CatalogDeregistration struct {
	Node       string
	Datacenter string `json:",omitempty"`
	ServiceID  string `json:",omitempty"`
	CheckID    string `json:",omitempty"`
	Namespace  string `json:",omitempty"`
	Partition  string `json:",omitempty"`
}

// CompoundServiceName is a service name qualified by its namespace and
// partition (both empty outside Consul Enterprise).
type CompoundServiceName struct {
	Name      string
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
}

// GatewayService is a service linked to a gateway by the gateway's
// configuration entry.
type GatewayService struct {
	Gateway      CompoundServiceName
	Service      CompoundServiceName
	GatewayKind  ServiceKind
	Port         int      `json:",omitempty"`
	Protocol     string   `json:",omitempty"`
	Hosts        []string `json:",omitempty"`
	CAFile       string   `json:",omitempty"`
	CertFile     string   `json:",omitempty"`
	KeyFile      string   `json:",omitempty"`
	SNI          string   `json:",omitempty"`
	FromWildcard bool     `json:",omitempty"`
	// ServiceKind is "service" or "destination" for terminating gateways.
	ServiceKind string `json:",omitempty"`
	CreateIndex uint64 `json:",omitempty"`
	ModifyIndex uint64 `json:",omitempty"`
}

// CatalogServiceOptions select the instances Catalog.Service and
// Catalog.Connect return.
type CatalogServiceOptions struct {
	// Tags keeps only instances that carry every one of these tags.
	Tags []string
	// MergeCentralConfig merges the proxy-defaults and service-defaults
	// configuration entries into proxy and gateway instances.
	MergeCentralConfig bool
}

func (o *CatalogServiceOptions) apply(r *request) {
	if o == nil {
		return
	}
	for _, t := range o.Tags {
		r.params.Add("tag", t)
	}
	if o.MergeCentralConfig {
		r.params.Set("merge-central-config", "")
	}
}

// Register writes a node, and the service and checks of reg, to the
// catalog. Node is required, and Address unless SkipNodeUpdate is set.
func (cat *Catalog) Register(ctx context.Context, reg *CatalogRegistration, w *WriteOptions) (*WriteMeta, error) {
	if reg == nil {
		return nil, &ValidationError{Field: "registration", Reason: "nil"}
	}
	if err := requireID("Node", reg.Node); err != nil {
		return nil, err
	}
	if reg.Address == "" && !reg.SkipNodeUpdate {
		return nil, &ValidationError{Field: "Address", Reason: "empty (required unless SkipNodeUpdate)"}
	}
	if reg.Service != nil {
		if reg.Service.Service == "" {
			return nil, &ValidationError{Field: "Service.Service", Reason: "empty"}
		}
		if reg.Service.Weights == (AgentWeights{}) || reg.Service.Datacenter != "" || reg.Service.ContentHash != "" {
			// Copy, so that the caller's registration is left as it was.
			cp, svc := *reg, *reg.Service
			if svc.Weights == (AgentWeights{}) {
				svc.Weights = AgentWeights{Passing: 1, Warning: 1}
			}
			// The agent fills these in the services it returns, but
			// /v1/catalog/register refuses them (400 "unknown field"): a
			// service read from the agent can so be registered as it is.
			svc.Datacenter, svc.ContentHash = "", ""
			cp.Service = &svc
			reg = &cp
		}
	}
	return cat.c.write(ctx, http.MethodPut, "/v1/catalog/register", w, reg, nil)
}

// Deregister removes a node, or a service or check of it, from the
// catalog. Removing something that does not exist is not an error.
func (cat *Catalog) Deregister(ctx context.Context, dereg *CatalogDeregistration, w *WriteOptions) (*WriteMeta, error) {
	if dereg == nil {
		return nil, &ValidationError{Field: "deregistration", Reason: "nil"}
	}
	if err := requireID("Node", dereg.Node); err != nil {
		return nil, err
	}
	return cat.c.write(ctx, http.MethodPut, "/v1/catalog/deregister", w, dereg, nil)
}

// Datacenters lists the known datacenters, nearest first (by the servers'
// WAN coordinates).
func (cat *Catalog) Datacenters(ctx context.Context, q *QueryOptions) ([]string, *QueryMeta, error) {
	var out []string
	meta, err := cat.c.query(ctx, "/v1/catalog/datacenters", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Nodes lists the nodes of the datacenter. q.Near sorts them by distance,
// q.NodeMeta and q.Filter select them. It supports blocking queries.
func (cat *Catalog) Nodes(ctx context.Context, q *QueryOptions) ([]*Node, *QueryMeta, error) {
	var out []*Node
	meta, err := cat.c.query(ctx, "/v1/catalog/nodes", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Services lists the services of the datacenter with the union of their
// instances' tags. It supports blocking queries.
func (cat *Catalog) Services(ctx context.Context, q *QueryOptions) (map[string][]string, *QueryMeta, error) {
	var out map[string][]string
	meta, err := cat.c.query(ctx, "/v1/catalog/services", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Service lists the instances of a service, whatever their health. An
// unknown service gives an empty list. opts may be nil. It supports
// blocking queries.
func (cat *Catalog) Service(ctx context.Context, service string, opts *CatalogServiceOptions, q *QueryOptions) ([]*CatalogService, *QueryMeta, error) {
	return cat.serviceNodes(ctx, "/v1/catalog/service/", service, opts, q)
}

// Connect lists the Connect-capable instances of a service: its proxies
// and its Connect-native instances. An unknown service gives an empty
// list. opts may be nil. It supports blocking queries.
func (cat *Catalog) Connect(ctx context.Context, service string, opts *CatalogServiceOptions, q *QueryOptions) ([]*CatalogService, *QueryMeta, error) {
	return cat.serviceNodes(ctx, "/v1/catalog/connect/", service, opts, q)
}

func (cat *Catalog) serviceNodes(ctx context.Context, prefix, service string, opts *CatalogServiceOptions, q *QueryOptions) ([]*CatalogService, *QueryMeta, error) {
	if err := requireID("service", service); err != nil {
		return nil, nil, err
	}
	r := cat.c.newRequest(http.MethodGet, prefix+escapeKey(service))
	cat.c.applyQuery(r, q)
	opts.apply(r)
	var out []*CatalogService
	meta, err := cat.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Node returns a node with its services by ID. An unknown node is
// (nil, meta, nil); meta.LastIndex can then start a blocking query that
// waits for it.
func (cat *Catalog) Node(ctx context.Context, node string, q *QueryOptions) (*CatalogNode, *QueryMeta, error) {
	if err := requireID("node", node); err != nil {
		return nil, nil, err
	}
	// Consul answers 200 with "null" for an unknown node.
	var out *CatalogNode
	meta, err := cat.c.query(ctx, "/v1/catalog/node/"+escapeKey(node), q, &out)
	if err != nil {
		return nil, nil, err
	}
	if out != nil && out.Node == nil {
		out = nil
	}
	return out, meta, nil
}

// NodeServiceList returns a node with the list of its services. An unknown
// node is (nil, meta, nil).
func (cat *Catalog) NodeServiceList(ctx context.Context, node string, q *QueryOptions) (*CatalogNodeServiceList, *QueryMeta, error) {
	if err := requireID("node", node); err != nil {
		return nil, nil, err
	}
	// Consul answers 200 with {"Node": null, ...} for an unknown node.
	var out *CatalogNodeServiceList
	meta, err := cat.c.query(ctx, "/v1/catalog/node-services/"+escapeKey(node), q, &out)
	if err != nil {
		return nil, nil, err
	}
	if out != nil && out.Node == nil {
		out = nil
	}
	return out, meta, nil
}

// GatewayServices lists the services linked to a terminating or ingress
// gateway by its configuration entry. A gateway without one gives an empty
// list. It supports blocking queries.
func (cat *Catalog) GatewayServices(ctx context.Context, gateway string, q *QueryOptions) ([]*GatewayService, *QueryMeta, error) {
	if err := requireID("gateway", gateway); err != nil {
		return nil, nil, err
	}
	var out []*GatewayService
	meta, err := cat.c.query(ctx, "/v1/catalog/gateway-services/"+escapeKey(gateway), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}
