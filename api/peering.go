package api

import (
	"context"
	"net/http"
	"time"
)

// PeeringState is the state of a cluster peering.
type PeeringState string

// Peering states.
const (
	PeeringStateUndefined    PeeringState = "UNDEFINED"
	PeeringStatePending      PeeringState = "PENDING"
	PeeringStateEstablishing PeeringState = "ESTABLISHING"
	PeeringStateActive       PeeringState = "ACTIVE"
	PeeringStateFailing      PeeringState = "FAILING"
	PeeringStateDeleting     PeeringState = "DELETING"
	PeeringStateTerminated   PeeringState = "TERMINATED"
)

// Peering is a peering with another cluster (or partition).
type Peering struct {
	ID        string
	Name      string
	Partition string `json:",omitempty"`
	// DeletedAt is set once the peering is marked for deletion.
	DeletedAt *time.Time        `json:",omitempty"`
	Meta      map[string]string `json:",omitempty"`
	State     PeeringState
	// PeerID is the peering's ID in the peer cluster.
	PeerID              string   `json:",omitempty"`
	PeerCAPems          []string `json:",omitempty"`
	PeerServerName      string   `json:",omitempty"`
	PeerServerAddresses []string `json:",omitempty"`
	StreamStatus        PeeringStreamStatus
	Remote              PeeringRemoteInfo
	CreateIndex         uint64
	ModifyIndex         uint64
}

// PeeringStreamStatus is the state of the replication stream of a
// peering.
type PeeringStreamStatus struct {
	ImportedServices []string
	ExportedServices []string
	LastHeartbeat    time.Time
	LastReceive      time.Time
	LastSend         time.Time
}

// PeeringRemoteInfo describes the peer's side.
type PeeringRemoteInfo struct {
	Partition  string
	Datacenter string
}

// PeeringGenerateTokenRequest asks for a token that a peer cluster uses to
// establish a peering named PeerName with this one.
type PeeringGenerateTokenRequest struct {
	PeerName  string
	Partition string            `json:",omitempty"`
	Meta      map[string]string `json:",omitempty"`
	// ServerExternalAddresses replaces the server addresses put in the
	// token (ip:port of this cluster's gRPC TLS port as seen by the peer).
	ServerExternalAddresses []string `json:",omitempty"`
}

// PeeringEstablishRequest establishes a peering named PeerName with the
// cluster that generated PeeringToken.
type PeeringEstablishRequest struct {
	PeerName     string
	PeeringToken string
	Partition    string            `json:",omitempty"`
	Meta         map[string]string `json:",omitempty"`
}

// Peerings is the handle on the /v1/peering and /v1/peerings endpoints.
type Peerings struct{ c *Client }

// Peerings returns the handle on the cluster peering endpoints.
func (c *Client) Peerings() *Peerings { return &Peerings{c} }

// GenerateToken creates (or re-creates) the peering req.PeerName on this
// side, in the pending state, and returns the token to hand to the peer.
// Consul needs Connect and a gRPC TLS port on its servers for this; without
// them the answer is a *StatusError (500 "TLS for gRPC must be enabled when
// generating peering tokens").
func (p *Peerings) GenerateToken(ctx context.Context, req *PeeringGenerateTokenRequest, w *WriteOptions) (string, *WriteMeta, error) {
	if req == nil {
		return "", nil, &ValidationError{Field: "request", Reason: "nil"}
	}
	if err := requireID("PeerName", req.PeerName); err != nil {
		return "", nil, err
	}
	var out struct{ PeeringToken string }
	meta, err := p.c.write(ctx, http.MethodPost, "/v1/peering/token", w, req, &out)
	return out.PeeringToken, meta, err
}

// Establish creates the peering req.PeerName on this side from a token that
// the peer generated, and dials the peer. A token this cluster generated
// itself, a malformed token or an unreachable peer is a *StatusError.
func (p *Peerings) Establish(ctx context.Context, req *PeeringEstablishRequest, w *WriteOptions) (*WriteMeta, error) {
	if req == nil {
		return nil, &ValidationError{Field: "request", Reason: "nil"}
	}
	if err := requireID("PeerName", req.PeerName); err != nil {
		return nil, err
	}
	if err := requireID("PeeringToken", req.PeeringToken); err != nil {
		return nil, err
	}
	return p.c.write(ctx, http.MethodPost, "/v1/peering/establish", w, req, nil)
}

// Read returns the peering named name. A missing peering is (nil, meta,
// nil); a peering being deleted is returned with DeletedAt set until
// Consul has removed it.
func (p *Peerings) Read(ctx context.Context, name string, q *QueryOptions) (*Peering, *QueryMeta, error) {
	if err := requireNotReserved("peering name", name, "token", "establish"); err != nil {
		return nil, nil, err
	}
	r := p.c.newRequest(http.MethodGet, "/v1/peering/"+escapeKey(name))
	p.c.applyQuery(r, q)
	resp, d, err := p.c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	var out Peering
	if err := decode(resp, &out); err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// Delete marks the peering named name for deletion; Consul removes it in
// the background. Deleting a missing peering is not an error.
func (p *Peerings) Delete(ctx context.Context, name string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireNotReserved("peering name", name, "token", "establish"); err != nil {
		return nil, err
	}
	return p.c.write(ctx, http.MethodDelete, "/v1/peering/"+escapeKey(name), w, nil, nil)
}

// List returns every peering of the partition.
func (p *Peerings) List(ctx context.Context, q *QueryOptions) ([]*Peering, *QueryMeta, error) {
	var out []*Peering
	meta, err := p.c.query(ctx, "/v1/peerings", q, &out)
	return out, meta, err
}
