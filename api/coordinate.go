package api

import (
	"context"
	"math"
	"net/http"
	"time"
)

// Coordinate is a network coordinate in Consul's Vivaldi model. The
// estimated round-trip time between two nodes is computed from their
// coordinates (see Coordinate.DistanceTo).
type Coordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

// CoordinateEntry is the coordinate of one node in one network segment.
type CoordinateEntry struct {
	Node    string
	Segment string
	// Partition is the admin partition (Consul Enterprise).
	Partition string `json:",omitempty"`
	Coord     *Coordinate
}

// CoordinateDatacenterMap holds the WAN coordinates of the servers of one
// datacenter.
type CoordinateDatacenterMap struct {
	Datacenter  string
	AreaID      string
	Coordinates []CoordinateEntry
}

// CoordinateHandle is the handle on the /v1/coordinate endpoints. (The
// name Coordinate belongs to the coordinate value.)
type CoordinateHandle struct{ c *Client }

// Coordinate returns the handle on the network coordinate endpoints.
func (c *Client) Coordinate() *CoordinateHandle { return &CoordinateHandle{c} }

// Datacenters returns the WAN coordinates of the servers of every known
// datacenter.
func (h *CoordinateHandle) Datacenters(ctx context.Context, q *QueryOptions) ([]*CoordinateDatacenterMap, *QueryMeta, error) {
	var out []*CoordinateDatacenterMap
	meta, err := h.c.query(ctx, "/v1/coordinate/datacenters", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Nodes returns the LAN coordinates of every node of the datacenter. It
// supports blocking queries.
func (h *CoordinateHandle) Nodes(ctx context.Context, q *QueryOptions) ([]*CoordinateEntry, *QueryMeta, error) {
	var out []*CoordinateEntry
	meta, err := h.c.query(ctx, "/v1/coordinate/nodes", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Node returns the LAN coordinates of one node, one entry per network
// segment. A node without coordinates (unknown, or not yet reported) is
// (nil, meta, nil). It supports blocking queries.
func (h *CoordinateHandle) Node(ctx context.Context, node string, q *QueryOptions) ([]*CoordinateEntry, *QueryMeta, error) {
	if err := requireID("node", node); err != nil {
		return nil, nil, err
	}
	r := h.c.newRequest(http.MethodGet, "/v1/coordinate/node/"+escapeKey(node))
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
	var out []*CoordinateEntry
	if err := decode(resp, &out); err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Update sets the LAN coordinate of a node. Servers apply updates in
// batches (every few seconds), and drop updates for nodes the catalog does
// not know. The coordinate must be valid (finite values) and have the
// dimensionality of the cluster's coordinates (8), or Consul answers a
// *StatusError (500).
func (h *CoordinateHandle) Update(ctx context.Context, e *CoordinateEntry, w *WriteOptions) (*WriteMeta, error) {
	if e == nil {
		return nil, &ValidationError{Field: "coordinate entry", Reason: "nil"}
	}
	if err := requireID("Node", e.Node); err != nil {
		return nil, err
	}
	if e.Coord == nil {
		return nil, &ValidationError{Field: "Coord", Reason: "nil"}
	}
	if !e.Coord.valid() {
		return nil, &ValidationError{Field: "Coord", Reason: "contains NaN or infinite values"}
	}
	return h.c.write(ctx, http.MethodPut, "/v1/coordinate/update", w, e, nil)
}

func (c *Coordinate) valid() bool {
	ok := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	for _, v := range c.Vec {
		if !ok(v) {
			return false
		}
	}
	return ok(c.Error) && ok(c.Adjustment) && ok(c.Height)
}

// DistanceTo estimates the round-trip time between the nodes at c and
// other, the way Consul sorts by distance (?near). It returns 0 when either
// coordinate is nil or their dimensions differ.
func (c *Coordinate) DistanceTo(other *Coordinate) time.Duration {
	if c == nil || other == nil || len(c.Vec) != len(other.Vec) {
		return 0
	}
	var sum float64
	for i := range c.Vec {
		d := c.Vec[i] - other.Vec[i]
		sum += d * d
	}
	dist := math.Sqrt(sum) + c.Height + other.Height
	adjusted := dist + c.Adjustment + other.Adjustment
	if adjusted > 0 {
		dist = adjusted
	}
	return time.Duration(dist * float64(time.Second))
}
