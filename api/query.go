package api

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// QueryFailoverTarget is a datacenter or a cluster peer to fail over to.
type QueryFailoverTarget struct {
	Peer       string `json:",omitempty"`
	Datacenter string `json:",omitempty"`
}

// QueryFailoverOptions says where a query looks when the local datacenter
// has no healthy instance: the NearestN closest datacenters, then
// Datacenters in order; or Targets, which excludes the other two.
type QueryFailoverOptions struct {
	NearestN    int                   `json:",omitempty"`
	Datacenters []string              `json:",omitempty"`
	Targets     []QueryFailoverTarget `json:",omitempty"`
}

// QueryDNSOptions configures the DNS answers of a query.
type QueryDNSOptions struct {
	// TTL of the DNS answers; zero leaves the agent's setting.
	TTL Duration `json:",omitempty"`
}

// Prepared query template types.
const (
	// QueryTemplateTypeNamePrefixMatch makes a query a template for every
	// query name that starts with its Name.
	QueryTemplateTypeNamePrefixMatch = "name_prefix_match"
)

// QueryTemplate makes a query a template: it answers every name its Name
// is a prefix of, with ${name.full}, ${name.prefix}, ${name.suffix} and
// ${match(N)} (groups of Regexp) interpolated into the definition.
type QueryTemplate struct {
	// Type is "" (not a template) or QueryTemplateTypeNamePrefixMatch.
	Type   string `json:",omitempty"`
	Regexp string `json:",omitempty"`
	// RemoveEmptyTags drops tags that interpolate to "".
	RemoveEmptyTags bool `json:",omitempty"`
}

// ServiceQuery selects healthy instances of a service.
type ServiceQuery struct {
	// Service is the service name; required.
	Service  string
	Failover QueryFailoverOptions `json:",omitzero"`
	// OnlyPassing drops instances with warning checks too (critical ones
	// are always dropped).
	OnlyPassing bool `json:",omitempty"`
	// IgnoreCheckIDs are checks that do not count for health.
	IgnoreCheckIDs []string `json:",omitempty"`
	// Near sorts by round-trip time from a node ("_agent": the agent that
	// executes the query).
	Near string `json:",omitempty"`
	// Tags must all be present; "!tag" must be absent.
	Tags        []string          `json:",omitempty"`
	NodeMeta    map[string]string `json:",omitempty"`
	ServiceMeta map[string]string `json:",omitempty"`
	// Connect returns Connect-capable instances (native services and the
	// proxies of the service) instead.
	Connect bool `json:",omitempty"`
	// Peer queries the service imported from a cluster peer.
	Peer string `json:",omitempty"`
	// Namespace and Partition are Consul Enterprise fields.
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
}

// PreparedQueryDefinition is a prepared query.
type PreparedQueryDefinition struct {
	// ID is assigned by Consul on create.
	ID string `json:",omitempty"`
	// Name lets the query be executed by name, and over DNS as
	// <name>.query.consul.
	Name string `json:",omitempty"`
	// Session ties the query's life to a session: it is deleted with it.
	Session string `json:",omitempty"`
	// Token is the token the query executes with ("" executes with the
	// token of each request). Consul redacts it in reads unless the reader
	// may manage the query.
	Token       string          `json:",omitempty"`
	Service     ServiceQuery    `json:",omitzero"`
	DNS         QueryDNSOptions `json:",omitzero"`
	Template    QueryTemplate   `json:",omitzero"`
	CreateIndex uint64          `json:",omitempty"`
	ModifyIndex uint64          `json:",omitempty"`
}

// QueryExecuteOptions are the options of an execution.
type QueryExecuteOptions struct {
	// Limit caps the number of nodes returned (0: all).
	Limit int
	// Connect returns Connect-capable instances, as ServiceQuery.Connect.
	Connect bool
}

// PreparedQueryExecuteResponse is the answer of an execution.
type PreparedQueryExecuteResponse struct {
	// Service is the service that was queried (after template
	// interpolation).
	Service   string
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
	// Nodes are the healthy instances, shuffled or sorted by Near.
	Nodes []ServiceEntry
	DNS   QueryDNSOptions
	// Datacenter is where the instances come from (another datacenter
	// after a failover).
	Datacenter string
	PeerName   string `json:",omitempty"`
	// Failovers counts the datacenters tried after the local one.
	Failovers int
}

// PreparedQueryExplainResponse is a template rendered for a name.
type PreparedQueryExplainResponse struct {
	Query PreparedQueryDefinition
}

// PreparedQuery is the handle on the /v1/query endpoints.
type PreparedQuery struct{ c *Client }

// Query returns the handle on the prepared query endpoints.
func (c *Client) Query() *PreparedQuery { return &PreparedQuery{c} }

// Create creates a prepared query and returns its ID. def.Service.Service
// is required.
func (p *PreparedQuery) Create(ctx context.Context, def *PreparedQueryDefinition, w *WriteOptions) (string, *WriteMeta, error) {
	if def == nil {
		return "", nil, &ValidationError{Field: "query", Reason: "nil"}
	}
	if def.ID != "" {
		return "", nil, &ValidationError{Field: "PreparedQueryDefinition.ID", Reason: "must be empty on create"}
	}
	if err := requireID("PreparedQueryDefinition.Service.Service", def.Service.Service); err != nil {
		return "", nil, err
	}
	var out struct{ ID string }
	meta, err := p.c.write(ctx, http.MethodPost, "/v1/query", w, def, &out)
	return out.ID, meta, err
}

// Update replaces the query def.ID with def. An unknown ID is a
// *StatusError (500, "Cannot modify non-existent prepared query"); an ID
// that is not a UUID is a *ValidationError (see Get).
func (p *PreparedQuery) Update(ctx context.Context, def *PreparedQueryDefinition, w *WriteOptions) (*WriteMeta, error) {
	if def == nil {
		return nil, &ValidationError{Field: "query", Reason: "nil"}
	}
	if err := requireQueryID("PreparedQueryDefinition.ID", def.ID); err != nil {
		return nil, err
	}
	if err := requireID("PreparedQueryDefinition.Service.Service", def.Service.Service); err != nil {
		return nil, err
	}
	return p.c.write(ctx, http.MethodPut, "/v1/query/"+escapeKey(def.ID), w, def, nil)
}

// Delete deletes the query id. An unknown ID is a *StatusError (500,
// "Cannot modify non-existent prepared query"); an ID that is not a UUID
// is a *ValidationError (see Get).
func (p *PreparedQuery) Delete(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireQueryID("query ID", id); err != nil {
		return nil, err
	}
	return p.c.write(ctx, http.MethodDelete, "/v1/query/"+escapeKey(id), w, nil, nil)
}

// List lists the prepared queries the request's token may see.
func (p *PreparedQuery) List(ctx context.Context, q *QueryOptions) ([]*PreparedQueryDefinition, *QueryMeta, error) {
	var out []*PreparedQueryDefinition
	meta, err := p.c.query(ctx, "/v1/query", q, &out)
	return out, meta, err
}

// Get returns the query id, or nil when it does not exist (404). It takes
// an ID only, not a name: Consul looks the ID up in a UUID index and
// answers 500 ("UUID must be 36 characters", ...) to anything it cannot
// parse as one, so such an ID (a name passed by mistake) is refused with a
// *ValidationError before any request.
func (p *PreparedQuery) Get(ctx context.Context, id string, q *QueryOptions) (*PreparedQueryDefinition, *QueryMeta, error) {
	if err := requireQueryID("query ID", id); err != nil {
		return nil, nil, err
	}
	out, meta, err := getOptional[[]*PreparedQueryDefinition](ctx, p.c, "/v1/query/"+escapeKey(id), q)
	if err != nil || out == nil || len(*out) == 0 {
		return nil, meta, err
	}
	return (*out)[0], meta, nil
}

// Execute runs the query idOrName (an ID, a name, or a name a template
// matches) and returns the healthy instances. q.Near sorts them by
// round-trip time from a node; q.UseCache serves the answer from the
// agent's cache. A query that does not exist is a *StatusError matching
// ErrNotFound: a 404, or with q.UseCache a 500 "Query not found" (Consul's
// cached path does not translate the error).
func (p *PreparedQuery) Execute(ctx context.Context, idOrName string, opts *QueryExecuteOptions, q *QueryOptions) (*PreparedQueryExecuteResponse, *QueryMeta, error) {
	if err := requireSegment("query ID or name", idOrName); err != nil {
		return nil, nil, err
	}
	r := p.c.newRequest(http.MethodGet, "/v1/query/"+escapeKey(idOrName)+"/execute")
	p.c.applyQuery(r, q)
	if opts != nil {
		if opts.Limit < 0 {
			return nil, nil, &ValidationError{Field: "QueryExecuteOptions.Limit", Reason: "negative"}
		}
		if opts.Limit > 0 {
			r.params.Set("limit", strconv.Itoa(opts.Limit))
		}
		if opts.Connect {
			r.params.Set("connect", "true")
		}
	}
	var out PreparedQueryExecuteResponse
	meta, err := p.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// Explain returns the definition the query idOrName resolves to, with a
// template rendered for that name. A query that does not exist is a
// *StatusError matching ErrNotFound.
func (p *PreparedQuery) Explain(ctx context.Context, idOrName string, q *QueryOptions) (*PreparedQueryExplainResponse, *QueryMeta, error) {
	if err := requireSegment("query ID or name", idOrName); err != nil {
		return nil, nil, err
	}
	var out PreparedQueryExplainResponse
	meta, err := p.c.query(ctx, "/v1/query/"+escapeKey(idOrName)+"/explain", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// requireQueryID is requireSegment for a prepared query ID, which Consul
// looks up in a go-memdb UUID index: it answers 500 to an ID that index
// cannot parse (not 36 characters, more than 4 '-', an odd number of
// digits or a non-hex digit) rather than 404, so such an ID is refused
// here. The check is the index's own, not a stricter UUID syntax.
func requireQueryID(field, id string) error {
	if err := requireSegment(field, id); err != nil {
		return err
	}
	digits := strings.ReplaceAll(id, "-", "")
	_, hexErr := hex.DecodeString(digits) // an odd count of digits fails too
	if len(id) != 36 || len(id)-len(digits) > 4 || hexErr != nil {
		return &ValidationError{Field: field, Reason: "not a UUID (Consul looks queries up by ID only here): " + strconv.Quote(id)}
	}
	return nil
}
