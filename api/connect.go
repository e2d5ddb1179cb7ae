package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"
)

// Connect is the handle on the /v1/connect endpoints: the Connect CA and
// intentions.
type Connect struct{ c *Client }

// Connect returns the handle on the Connect endpoints.
func (c *Client) Connect() *Connect { return &Connect{c} }

// CARootList is the set of trusted Connect CA roots.
type CARootList struct {
	ActiveRootID string
	TrustDomain  string
	Roots        []*CARoot
}

// Active returns the active root, or nil when none is marked active.
func (l *CARootList) Active() *CARoot {
	if l == nil {
		return nil
	}
	for _, r := range l.Roots {
		if r.Active {
			return r
		}
	}
	return nil
}

// CARoot is one Connect CA root certificate.
type CARoot struct {
	ID                  string
	Name                string
	SerialNumber        uint64
	SigningKeyID        string
	ExternalTrustDomain string
	NotBefore           time.Time
	NotAfter            time.Time
	// RootCert is the PEM-encoded root certificate.
	RootCert string
	// IntermediateCerts are PEM-encoded intermediates, when the root signs
	// through them.
	IntermediateCerts []string
	Active            bool
	PrivateKeyType    string
	PrivateKeyBits    int
	CreateIndex       uint64
	ModifyIndex       uint64
}

// CAConfig is the configuration of the Connect CA.
type CAConfig struct {
	// Provider is consul, vault or aws-pca.
	Provider string
	// Config is the provider's configuration; the consul provider reads
	// LeafCertTTL, IntermediateCertTTL, RootCertTTL (duration strings),
	// PrivateKeyType, PrivateKeyBits, PrivateKey and RootCert.
	Config map[string]any
	// State is the provider's internal state. It is read-only: leave it
	// nil when setting the configuration (or send it back unchanged).
	State map[string]string `json:",omitempty"`
	// ForceWithoutCrossSigning rotates to a new root even when the old
	// provider cannot cross-sign it.
	ForceWithoutCrossSigning bool
	CreateIndex              uint64 `json:",omitempty"`
	ModifyIndex              uint64 `json:",omitempty"`
}

// CARoots returns the trusted CA roots of the datacenter. It supports
// blocking queries.
func (h *Connect) CARoots(ctx context.Context, q *QueryOptions) (*CARootList, *QueryMeta, error) {
	var out CARootList
	meta, err := h.c.query(ctx, "/v1/connect/ca/roots", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// CARootsPEM returns the trusted roots and their intermediates as one
// PEM-encoded chain (the ?pem=true form of /v1/connect/ca/roots).
func (h *Connect) CARootsPEM(ctx context.Context, q *QueryOptions) (string, *QueryMeta, error) {
	r := h.c.newRequest(http.MethodGet, "/v1/connect/ca/roots")
	h.c.applyQuery(r, q)
	r.params.Set("pem", "true")
	resp, d, err := h.c.do(ctx, r)
	if err != nil {
		return "", nil, err
	}
	defer closeBody(resp)
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	var sb strings.Builder
	if _, err := io.Copy(&sb, resp.Body); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", meta, ctxErr
		}
		return "", meta, &transportError{err: err}
	}
	return sb.String(), meta, nil
}

// CAGetConfig returns the Connect CA configuration.
func (h *Connect) CAGetConfig(ctx context.Context, q *QueryOptions) (*CAConfig, *QueryMeta, error) {
	var out CAConfig
	meta, err := h.c.query(ctx, "/v1/connect/ca/configuration", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// CASetConfig replaces the Connect CA configuration. Changing the provider
// or its key material rotates the root; changing only TTLs does not. A
// State that differs from the stored one is a *StatusError (400).
func (h *Connect) CASetConfig(ctx context.Context, conf *CAConfig, w *WriteOptions) (*WriteMeta, error) {
	if conf == nil {
		return nil, &ValidationError{Field: "CAConfig", Reason: "nil"}
	}
	if err := requireID("CAConfig.Provider", conf.Provider); err != nil {
		return nil, err
	}
	return h.c.write(ctx, http.MethodPut, "/v1/connect/ca/configuration", w, conf, nil)
}

// Intention actions.
const (
	IntentionActionAllow = "allow"
	IntentionActionDeny  = "deny"
)

// IntentionSourceConsul is the source type of a service of the Consul
// catalog, the only source type there is.
const IntentionSourceConsul = "consul"

// IntentionMatchType says which end of intentions IntentionMatch matches
// names against.
type IntentionMatchType string

// Intention match types.
const (
	IntentionMatchSource      IntentionMatchType = "source"
	IntentionMatchDestination IntentionMatchType = "destination"
)

// Intention allows or denies connections from a source service to a
// destination service. Since Consul 1.9 intentions are stored in
// service-intentions config entries (one per destination); this form is
// the one the /v1/connect/intentions endpoints use.
type Intention struct {
	// ID is set only for intentions created through the deprecated by-ID
	// endpoints (IntentionCreate).
	ID                   string `json:",omitempty"`
	Description          string `json:",omitempty"`
	SourceNS             string `json:",omitempty"`
	SourceName           string
	DestinationNS        string `json:",omitempty"`
	DestinationName      string
	SourcePartition      string `json:",omitempty"`
	DestinationPartition string `json:",omitempty"`
	SourcePeer           string `json:",omitempty"`
	// SourceType defaults to IntentionSourceConsul.
	SourceType string `json:",omitempty"`
	// Action is IntentionActionAllow or IntentionActionDeny; an intention
	// with L7 Permissions has none. The legacy endpoints accept only
	// Action.
	Action      string                 `json:",omitempty"`
	Permissions []*IntentionPermission `json:",omitempty"`
	// Meta is accepted only by the by-ID endpoints.
	Meta map[string]string `json:",omitempty"`
	// Precedence is computed by Consul: more specific intentions win.
	Precedence  int       `json:",omitempty"`
	CreatedAt   time.Time `json:",omitzero"`
	UpdatedAt   time.Time `json:",omitzero"`
	CreateIndex uint64    `json:",omitempty"`
	ModifyIndex uint64    `json:",omitempty"`
}

// intentionRef renders a service reference the way the intention query
// parameters take it: name, namespace/name or partition/namespace/name.
func intentionRef(partition, ns, name string) string {
	switch {
	case partition != "":
		if ns == "" {
			ns = "default"
		}
		return partition + "/" + ns + "/" + name
	case ns != "":
		return ns + "/" + name
	default:
		return name
	}
}

// Intentions lists every intention. It supports blocking queries and
// q.Filter.
func (h *Connect) Intentions(ctx context.Context, q *QueryOptions) ([]*Intention, *QueryMeta, error) {
	var out []*Intention
	meta, err := h.c.query(ctx, "/v1/connect/intentions", q, &out)
	return out, meta, err
}

// IntentionCreate creates an intention through the deprecated by-ID
// endpoint and returns its ID. Consul stores it in the destination's
// service-intentions entry; an intention between the same pair that already
// exists, or one with Permissions, is a *StatusError. Prefer
// IntentionUpsert or a service-intentions config entry.
func (h *Connect) IntentionCreate(ctx context.Context, ixn *Intention, w *WriteOptions) (string, *WriteMeta, error) {
	if err := validateIntentionNames(ixn); err != nil {
		return "", nil, err
	}
	var out struct{ ID string }
	meta, err := h.c.write(ctx, http.MethodPost, "/v1/connect/intentions", w, ixn, &out)
	return out.ID, meta, err
}

// IntentionGet reads an intention by ID (deprecated by-ID endpoint). An
// unknown ID is (nil, meta, nil); an ID that is not a UUID is a
// *StatusError (400).
func (h *Connect) IntentionGet(ctx context.Context, id string, q *QueryOptions) (*Intention, *QueryMeta, error) {
	if err := requireNotReserved("intention ID", id, "exact", "match", "check"); err != nil {
		return nil, nil, err
	}
	return h.readIntention(ctx, h.c.newRequest(http.MethodGet, "/v1/connect/intentions/"+escapeKey(id)), q)
}

func (h *Connect) readIntention(ctx context.Context, r *request, q *QueryOptions) (*Intention, *QueryMeta, error) {
	h.c.applyQuery(r, q)
	resp, d, err := h.c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	var out Intention
	if err := decode(resp, &out); err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// IntentionUpdate replaces the intention ixn.ID (deprecated by-ID
// endpoint). The destination cannot change; an unknown ID is a
// *StatusError.
func (h *Connect) IntentionUpdate(ctx context.Context, ixn *Intention, w *WriteOptions) (*WriteMeta, error) {
	if err := validateIntentionNames(ixn); err != nil {
		return nil, err
	}
	if err := requireNotReserved("Intention.ID", ixn.ID, "exact", "match", "check"); err != nil {
		return nil, err
	}
	return h.c.write(ctx, http.MethodPut, "/v1/connect/intentions/"+escapeKey(ixn.ID), w, ixn, nil)
}

// IntentionDelete deletes an intention by ID (deprecated by-ID endpoint).
// An unknown ID is a *StatusError (500 "Cannot delete non-existent
// intention").
func (h *Connect) IntentionDelete(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireNotReserved("intention ID", id, "exact", "match", "check"); err != nil {
		return nil, err
	}
	return h.c.write(ctx, http.MethodDelete, "/v1/connect/intentions/"+escapeKey(id), w, nil, nil)
}

// IntentionGetExact reads the intention from source to destination. Each
// is a service name, "namespace/name" or "partition/namespace/name";
// source may also be "peer:<peer>/name". A missing intention is (nil,
// meta, nil).
func (h *Connect) IntentionGetExact(ctx context.Context, source, destination string, q *QueryOptions) (*Intention, *QueryMeta, error) {
	r, err := h.exactRequest(http.MethodGet, source, destination)
	if err != nil {
		return nil, nil, err
	}
	return h.readIntention(ctx, r, q)
}

// IntentionUpsert creates or replaces the intention from
// ixn.Source* to ixn.Destination*, in the destination's service-intentions
// entry. ixn.ID must be empty, and ixn.Meta empty or equal to the entry's.
func (h *Connect) IntentionUpsert(ctx context.Context, ixn *Intention, w *WriteOptions) (*WriteMeta, error) {
	if err := validateIntentionNames(ixn); err != nil {
		return nil, err
	}
	if ixn.ID != "" {
		return nil, &ValidationError{Field: "Intention.ID", Reason: "must be empty for an upsert"}
	}
	if ixn.SourcePeer != "" {
		// Consul refuses it on this endpoint (400).
		return nil, &ValidationError{Field: "Intention.SourcePeer", Reason: "not supported by this endpoint: write the service-intentions config entry instead"}
	}
	r, err := h.exactRequest(http.MethodPut,
		intentionRef(ixn.SourcePartition, ixn.SourceNS, ixn.SourceName),
		intentionRef(ixn.DestinationPartition, ixn.DestinationNS, ixn.DestinationName))
	if err != nil {
		return nil, err
	}
	h.c.applyWrite(r, w)
	if err := r.jsonBody(ixn); err != nil {
		return nil, err
	}
	return h.c.writeRequest(ctx, r, nil)
}

// IntentionDeleteExact deletes the intention from source to destination
// (names as for IntentionGetExact, without peers). Deleting a missing
// intention is not an error.
func (h *Connect) IntentionDeleteExact(ctx context.Context, source, destination string, w *WriteOptions) (*WriteMeta, error) {
	r, err := h.exactRequest(http.MethodDelete, source, destination)
	if err != nil {
		return nil, err
	}
	h.c.applyWrite(r, w)
	return h.c.writeRequest(ctx, r, nil)
}

func (h *Connect) exactRequest(method, source, destination string) (*request, error) {
	if err := requireID("source", source); err != nil {
		return nil, err
	}
	if err := requireID("destination", destination); err != nil {
		return nil, err
	}
	r := h.c.newRequest(method, "/v1/connect/intentions/exact")
	r.params.Set("source", source)
	r.params.Set("destination", destination)
	return r, nil
}

func validateIntentionNames(ixn *Intention) error {
	if ixn == nil {
		return &ValidationError{Field: "intention", Reason: "nil"}
	}
	if err := requireID("Intention.SourceName", ixn.SourceName); err != nil {
		return err
	}
	return requireID("Intention.DestinationName", ixn.DestinationName)
}

// IntentionMatch returns, for each name, the intentions whose source (by
// IntentionMatchSource) or destination (by IntentionMatchDestination)
// matches it, wildcards included, in precedence order. Names are as for
// IntentionGetExact. The result has one key per name, with a nil list when
// nothing matches.
func (h *Connect) IntentionMatch(ctx context.Context, by IntentionMatchType, names []string, q *QueryOptions) (map[string][]*Intention, *QueryMeta, error) {
	switch by {
	case IntentionMatchSource, IntentionMatchDestination:
	default:
		return nil, nil, &ValidationError{Field: "by", Reason: "must be source or destination, not " + string(by)}
	}
	if len(names) == 0 {
		return nil, nil, &ValidationError{Field: "names", Reason: "empty"}
	}
	for _, n := range names {
		if err := requireID("name", n); err != nil {
			return nil, nil, err
		}
	}
	r := h.c.newRequest(http.MethodGet, "/v1/connect/intentions/match")
	h.c.applyQuery(r, q)
	r.params.Set("by", string(by))
	for _, n := range names {
		r.params.Add("name", n)
	}
	var out map[string][]*Intention
	meta, err := h.c.queryRequest(ctx, r, &out)
	return out, meta, err
}

// IntentionCheck reports whether a connection from source to destination
// would be allowed by the intentions and the default policy. Names are as
// for IntentionGetExact, without peers.
func (h *Connect) IntentionCheck(ctx context.Context, source, destination string, q *QueryOptions) (bool, *QueryMeta, error) {
	r, err := h.exactRequest(http.MethodGet, source, destination)
	if err != nil {
		return false, nil, err
	}
	r.path = "/v1/connect/intentions/check"
	h.c.applyQuery(r, q)
	var out struct{ Allowed bool }
	meta, err := h.c.queryRequest(ctx, r, &out)
	return out.Allowed, meta, err
}
