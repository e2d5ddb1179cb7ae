package api

import (
	"context"
	"net/http"
)

// Health is the handle on the /v1/health endpoints.
type Health struct{ c *Client }

// Health returns the handle on the health endpoints.
func (c *Client) Health() *Health { return &Health{c} }

// ServiceEntry is one instance of a service with its node and the checks
// of both.
type ServiceEntry struct {
	Node    *Node
	Service *AgentService
	Checks  HealthChecks
}

// HealthServiceOptions select the instances Health.Service, Health.Connect
// and Health.Ingress return.
type HealthServiceOptions struct {
	// Tags keeps only instances that carry every one of these tags.
	Tags []string
	// PassingOnly keeps only instances whose checks (node and service) all
	// pass.
	PassingOnly bool
	// MergeCentralConfig merges the proxy-defaults and service-defaults
	// configuration entries into proxy and gateway instances.
	MergeCentralConfig bool
}

func (o *HealthServiceOptions) apply(r *request) {
	if o == nil {
		return
	}
	for _, t := range o.Tags {
		r.params.Add("tag", t)
	}
	if o.PassingOnly {
		r.params.Set(HealthPassing, "")
	}
	if o.MergeCentralConfig {
		r.params.Set("merge-central-config", "")
	}
}

// Node returns the checks of a node (node checks and the checks of its
// services). An unknown node gives an empty list. It supports blocking
// queries.
func (h *Health) Node(ctx context.Context, node string, q *QueryOptions) (HealthChecks, *QueryMeta, error) {
	if err := requireID("node", node); err != nil {
		return nil, nil, err
	}
	return h.checks(ctx, "/v1/health/node/"+escapeKey(node), q)
}

// Checks returns the checks of every instance of a service. An unknown
// service gives an empty list. It supports blocking queries.
func (h *Health) Checks(ctx context.Context, service string, q *QueryOptions) (HealthChecks, *QueryMeta, error) {
	if err := requireID("service", service); err != nil {
		return nil, nil, err
	}
	return h.checks(ctx, "/v1/health/checks/"+escapeKey(service), q)
}

// State returns the checks in a state: HealthAny, HealthPassing,
// HealthWarning or HealthCritical. It supports blocking queries.
func (h *Health) State(ctx context.Context, state string, q *QueryOptions) (HealthChecks, *QueryMeta, error) {
	switch state {
	case HealthAny, HealthPassing, HealthWarning, HealthCritical:
	default:
		return nil, nil, &ValidationError{Field: "state", Reason: "must be any, passing, warning or critical, not " + state}
	}
	return h.checks(ctx, "/v1/health/state/"+state, q)
}

func (h *Health) checks(ctx context.Context, path string, q *QueryOptions) (HealthChecks, *QueryMeta, error) {
	var out HealthChecks
	meta, err := h.c.query(ctx, path, q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Service returns the instances of a service with their nodes and checks.
// opts may be nil. An unknown service gives an empty list. It supports
// blocking queries; q.Near sorts by distance and q.Filter selects.
func (h *Health) Service(ctx context.Context, service string, opts *HealthServiceOptions, q *QueryOptions) ([]*ServiceEntry, *QueryMeta, error) {
	return h.serviceNodes(ctx, "/v1/health/service/", service, opts, q)
}

// Connect returns the Connect-capable instances of a service (its proxies
// and Connect-native instances) with their nodes and checks. opts may be
// nil. It supports blocking queries.
func (h *Health) Connect(ctx context.Context, service string, opts *HealthServiceOptions, q *QueryOptions) ([]*ServiceEntry, *QueryMeta, error) {
	return h.serviceNodes(ctx, "/v1/health/connect/", service, opts, q)
}

// Ingress returns the ingress gateway instances that route to a service,
// with their nodes and checks. opts may be nil. It supports blocking
// queries.
func (h *Health) Ingress(ctx context.Context, service string, opts *HealthServiceOptions, q *QueryOptions) ([]*ServiceEntry, *QueryMeta, error) {
	return h.serviceNodes(ctx, "/v1/health/ingress/", service, opts, q)
}

func (h *Health) serviceNodes(ctx context.Context, prefix, service string, opts *HealthServiceOptions, q *QueryOptions) ([]*ServiceEntry, *QueryMeta, error) {
	if err := requireID("service", service); err != nil {
		return nil, nil, err
	}
	r := h.c.newRequest(http.MethodGet, prefix+escapeKey(service))
	h.c.applyQuery(r, q)
	opts.apply(r)
	var out []*ServiceEntry
	meta, err := h.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}
