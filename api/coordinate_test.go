package api

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const coordEntryJSON = `{"Node": "vm", "Segment": "", "Coord": {"Vec": [0.001, 0, 0, 0, 0, 0, 0, 0], "Error": 1.5, "Adjustment": 0, "Height": 0.00001}}`

func TestCoordinateReads(t *testing.T) {
	runWireCases(t, []wireCase{
		{
			name:  "datacenters",
			reply: fakeReply{Body: `[{"Datacenter": "dc1", "AreaID": "wan", "Coordinates": [` + coordEntryJSON + `]}]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				d, _, err := c.Coordinate().Datacenters(ctx, nil)
				return d, err
			},
			method: "GET", path: "/v1/coordinate/datacenters",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				d := got.([]*CoordinateDatacenterMap)
				require.Len(t, d, 1)
				assert.Equal(t, "dc1", d[0].Datacenter)
				assert.Equal(t, "wan", d[0].AreaID)
				require.Len(t, d[0].Coordinates, 1)
				assert.Equal(t, "vm", d[0].Coordinates[0].Node)
			},
		},
		{
			name:  "nodes blocking",
			reply: fakeReply{Header: map[string]string{"X-Consul-Index": "90"}, Body: "[" + coordEntryJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, meta, err := c.Coordinate().Nodes(ctx, &QueryOptions{WaitIndex: 80, WaitTime: time.Second})
				if err == nil {
					assert.Equal(t, uint64(90), meta.LastIndex)
				}
				return n, err
			},
			method: "GET", path: "/v1/coordinate/nodes", query: "index=80&wait=1s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				n := got.([]*CoordinateEntry)
				require.Len(t, n, 1)
				require.NotNil(t, n[0].Coord)
				assert.Len(t, n[0].Coord.Vec, 8)
				assert.InDelta(t, 0.001, n[0].Coord.Vec[0], 1e-12)
			},
		},
		{
			name:  "node",
			reply: fakeReply{Body: "[" + coordEntryJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, _, err := c.Coordinate().Node(ctx, "vm", nil)
				return n, err
			},
			method: "GET", path: "/v1/coordinate/node/vm",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Len(t, got, 1)
			},
		},
		{
			name:  "node without coordinates (404)",
			reply: fakeReply{Status: 404},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, meta, err := c.Coordinate().Node(ctx, "nope", nil)
				if err == nil {
					assert.NotNil(t, meta)
				}
				return n, err
			},
			method: "GET", path: "/v1/coordinate/node/nope",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.([]*CoordinateEntry))
			},
		},
		{
			name:  "coordinates disabled",
			reply: fakeReply{Status: 401, Body: "Coordinate support disabled"},
			call: func(ctx context.Context, c *Client) (any, error) {
				n, _, err := c.Coordinate().Nodes(ctx, nil)
				return n, err
			},
			method: "GET", path: "/v1/coordinate/nodes",
			check: wantStatus(401, nil),
		},
		{
			name: "update",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Coordinate().Update(ctx, &CoordinateEntry{
					Node: "ext-1", Coord: &Coordinate{Vec: []float64{0.5, 0, 0, 0, 0, 0, 0, 0}, Error: 0.2, Height: 0.0001},
				}, nil)
			},
			method: "PUT", path: "/v1/coordinate/update",
			body:  `{"Node": "ext-1", "Segment": "", "Coord": {"Vec": [0.5, 0, 0, 0, 0, 0, 0, 0], "Error": 0.2, "Adjustment": 0, "Height": 0.0001}}`,
			check: func(t *testing.T, _ any, err error) { require.NoError(t, err) },
		},
		{
			name:  "update incompatible",
			reply: fakeReply{Status: 500, Body: "incompatible coordinate"},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Coordinate().Update(ctx, &CoordinateEntry{Node: "ext-1", Coord: &Coordinate{Vec: []float64{1}}}, nil)
			},
			method: "PUT", path: "/v1/coordinate/update",
			body:  `{"Node": "ext-1", "Segment": "", "Coord": {"Vec": [1], "Error": 0, "Adjustment": 0, "Height": 0}}`,
			check: wantStatus(500, nil),
		},
	})
}

func TestCoordinateValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"node empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.Coordinate().Node(ctx, "", nil)
			return err
		}, "node"},
		{"update nil", func(ctx context.Context, c *Client) error {
			_, err := c.Coordinate().Update(ctx, nil, nil)
			return err
		}, "coordinate entry"},
		{"update no node", func(ctx context.Context, c *Client) error {
			_, err := c.Coordinate().Update(ctx, &CoordinateEntry{Coord: &Coordinate{}}, nil)
			return err
		}, "Node"},
		{"update nil coord", func(ctx context.Context, c *Client) error {
			_, err := c.Coordinate().Update(ctx, &CoordinateEntry{Node: "n"}, nil)
			return err
		}, "Coord"},
		{"update NaN", func(ctx context.Context, c *Client) error {
			_, err := c.Coordinate().Update(ctx, &CoordinateEntry{Node: "n", Coord: &Coordinate{Vec: []float64{math.NaN()}}}, nil)
			return err
		}, "Coord"},
		{"update Inf height", func(ctx context.Context, c *Client) error {
			_, err := c.Coordinate().Update(ctx, &CoordinateEntry{Node: "n", Coord: &Coordinate{Height: math.Inf(1)}}, nil)
			return err
		}, "Coord"},
	})
}

func TestCoordinateDistanceTo(t *testing.T) {
	a := &Coordinate{Vec: []float64{0, 0}, Height: 0.001}
	tests := []struct {
		name  string
		a, b  *Coordinate
		want  time.Duration
		delta time.Duration
	}{
		{"same point", a, a, 2 * time.Millisecond, time.Microsecond},
		{"3-4-5", &Coordinate{Vec: []float64{0, 0}}, &Coordinate{Vec: []float64{0.003, 0.004}}, 5 * time.Millisecond, time.Microsecond},
		{"adjustment applies when positive", &Coordinate{Vec: []float64{0.01, 0}, Adjustment: 0.002}, &Coordinate{Vec: []float64{0, 0}}, 12 * time.Millisecond, time.Microsecond},
		{"negative adjustment ignored when it would go below zero", &Coordinate{Vec: []float64{0.001, 0}, Adjustment: -0.01}, &Coordinate{Vec: []float64{0, 0}}, time.Millisecond, time.Microsecond},
		{"nil", a, nil, 0, 0},
		{"dimension mismatch", a, &Coordinate{Vec: []float64{0}}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, float64(tt.want), float64(tt.a.DistanceTo(tt.b)), float64(tt.delta))
		})
	}
}
