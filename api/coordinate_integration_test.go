package api_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func TestCoordinateReadIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	self, _, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)
	node, dc := self.Config.NodeName, self.Config.Datacenter

	dcs, _, err := c.Coordinate().Datacenters(ctx, nil)
	require.NoError(t, err)
	var found bool
	for _, d := range dcs {
		if d.Datacenter != dc {
			continue
		}
		for _, e := range d.Coordinates {
			if e.Node == node || e.Node == node+"."+dc {
				found = true
				require.NotNil(t, e.Coord)
				assert.Len(t, e.Coord.Vec, 8)
			}
		}
	}
	assert.True(t, found, "the server's WAN coordinate is listed")

	// The agent's LAN coordinate reaches the catalog a little after start.
	epEventually(t, 30*time.Second, func() error {
		nodes, meta, err := c.Coordinate().Nodes(ctx, nil)
		if err != nil {
			return err
		}
		assert.NotZero(t, meta.LastIndex)
		for _, e := range nodes {
			if e.Node == node {
				return nil
			}
		}
		return errors.New("agent's coordinate not listed yet")
	})
	entries, _, err := c.Coordinate().Node(ctx, node, nil)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, node, entries[0].Node)
	assert.Zero(t, entries[0].Coord.DistanceTo(entries[0].Coord)-2*time.Duration(entries[0].Coord.Height*float64(time.Second)))

	missing, meta, err := c.Coordinate().Node(ctx, epName(t, "missing"), nil)
	require.NoError(t, err)
	assert.Nil(t, missing)
	assert.NotNil(t, meta)
}

func TestCoordinateUpdateIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	// Servers drop coordinates of nodes the catalog does not know.
	node := epName(t, "node")
	epCatalogNode(t, c, &api.CatalogRegistration{Node: node, Address: "192.0.2.20"})

	coord := &api.Coordinate{Vec: []float64{0.001, 0.002, 0, 0, 0, 0, 0, 0}, Error: 0.5, Adjustment: 0.0001, Height: 0.0002}
	_, err := c.Coordinate().Update(ctx, &api.CoordinateEntry{Node: node, Coord: coord}, nil)
	require.NoError(t, err)
	// Updates are applied in batches (every few seconds).
	epEventually(t, 30*time.Second, func() error {
		entries, _, err := c.Coordinate().Node(ctx, node, nil)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return errors.New("coordinate not applied yet")
		}
		assert.Equal(t, coord.Vec, entries[0].Coord.Vec)
		assert.InDelta(t, coord.Height, entries[0].Coord.Height, 1e-12)
		return nil
	})

	// A coordinate of another dimensionality is refused.
	_, err = c.Coordinate().Update(ctx, &api.CoordinateEntry{Node: node, Coord: &api.Coordinate{Vec: []float64{1, 2}}}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusInternalServerError, se.Code)
	assert.Contains(t, se.Body, "incompatible coordinate")
}
