package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const peeringJSON = `{
    "ID": "d290fc2b-ddab-a84e-ae13-83a681cf7d8e",
    "Name": "p1",
    "Meta": {"a": "b"},
    "State": "ACTIVE",
    "PeerID": "0b5d9a3e-5c8e-4a43-9d2e-1c6a0e4f2b11",
    "PeerServerName": "server.dc2.peering.11111111-2222-3333-4444-555555555555.consul",
    "PeerServerAddresses": ["10.0.0.2:8503"],
    "StreamStatus": {
        "ImportedServices": ["db"],
        "ExportedServices": ["web"],
        "LastHeartbeat": "2026-11-27T10:02:52Z",
        "LastReceive": "2026-11-27T10:02:53Z",
        "LastSend": "1970-01-01T00:00:00Z"
    },
    "CreateIndex": 18,
    "ModifyIndex": 19,
    "Remote": {"Partition": "", "Datacenter": "dc2"}
}`

func checkPeering(t *testing.T, p *Peering) {
	t.Helper()
	require.NotNil(t, p)
	assert.Equal(t, "p1", p.Name)
	assert.Equal(t, PeeringStateActive, p.State)
	assert.Equal(t, map[string]string{"a": "b"}, p.Meta)
	assert.Equal(t, []string{"10.0.0.2:8503"}, p.PeerServerAddresses)
	assert.Equal(t, []string{"db"}, p.StreamStatus.ImportedServices)
	assert.Equal(t, time.Date(2026, 11, 27, 10, 2, 52, 0, time.UTC), p.StreamStatus.LastHeartbeat)
	assert.Equal(t, "dc2", p.Remote.Datacenter)
	assert.Nil(t, p.DeletedAt)
	assert.Equal(t, uint64(19), p.ModifyIndex)
}

func TestPeeringsGenerateToken(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: `{"PeeringToken":"eyJDQSI6WyIt"}`})
	tok, _, err := c.Peerings().GenerateToken(context.Background(), &PeeringGenerateTokenRequest{
		PeerName: "p1", Meta: map[string]string{"a": "b"}, ServerExternalAddresses: []string{"1.2.3.4:8503"},
	}, &WriteOptions{Token: "mgmt"})
	require.NoError(t, err)
	assert.Equal(t, "eyJDQSI6WyIt", tok)
	req := f.last(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/peering/token", req.RawPath)
	assert.Equal(t, "mgmt", req.Header.Get("X-Consul-Token"))
	assert.JSONEq(t, `{"PeerName":"p1","Meta":{"a":"b"},"ServerExternalAddresses":["1.2.3.4:8503"]}`, string(req.Body))
}

func TestPeeringsGenerateTokenNoGRPCTLS(t *testing.T) {
	c, _ := newTokenFake(t, fakeReply{Status: 500, Body: "rpc error: code = Unknown desc = TLS for gRPC must be enabled when generating peering tokens"})
	tok, _, err := c.Peerings().GenerateToken(context.Background(), &PeeringGenerateTokenRequest{PeerName: "p1"}, nil)
	assert.Empty(t, tok)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
	assert.Contains(t, se.Body, "TLS for gRPC")
}

func TestPeeringsEstablish(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: `{}`})
	_, err := c.Peerings().Establish(context.Background(), &PeeringEstablishRequest{PeerName: "p2", PeeringToken: "eyJD", Partition: "ap1"}, nil)
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/peering/establish", req.RawPath)
	assert.JSONEq(t, `{"PeerName":"p2","PeeringToken":"eyJD","Partition":"ap1"}`, string(req.Body))
}

func TestPeeringsRead(t *testing.T) {
	t.Run("found", func(t *testing.T) {
		c, f := newTokenFake(t, fakeReply{Body: peeringJSON, Header: map[string]string{"X-Consul-Index": "19"}})
		p, meta, err := c.Peerings().Read(context.Background(), "p1", &QueryOptions{Partition: "default"})
		require.NoError(t, err)
		checkPeering(t, p)
		assert.Equal(t, uint64(19), meta.LastIndex)
		req := f.last(t)
		assert.Equal(t, http.MethodGet, req.Method)
		assert.Equal(t, "/v1/peering/p1", req.RawPath)
		assert.Equal(t, "default", req.Query.Get("partition"))
	})
	t.Run("missing", func(t *testing.T) {
		c, _ := newTokenFake(t, fakeReply{Status: 404, Body: `Peering not found for "p1"`})
		p, meta, err := c.Peerings().Read(context.Background(), "p1", nil)
		require.NoError(t, err)
		assert.Nil(t, p)
		assert.NotNil(t, meta)
	})
}

func TestPeeringsList(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Body: `[` + peeringJSON + `]`})
	list, _, err := c.Peerings().List(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, list, 1)
	checkPeering(t, list[0])
	req := f.last(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/v1/peerings", req.RawPath)
}

func TestPeeringsDelete(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{})
	_, err := c.Peerings().Delete(context.Background(), "p1", &WriteOptions{Token: "t"})
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodDelete, req.Method)
	assert.Equal(t, "/v1/peering/p1", req.RawPath)
	assert.Equal(t, "t", req.Header.Get("X-Consul-Token"))
}

func TestPeeringsValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"token nil", func(ctx context.Context, c *Client) error {
			_, _, err := c.Peerings().GenerateToken(ctx, nil, nil)
			return err
		}, "request"},
		{"token no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.Peerings().GenerateToken(ctx, &PeeringGenerateTokenRequest{}, nil)
			return err
		}, "PeerName"},
		{"establish nil", func(ctx context.Context, c *Client) error {
			_, err := c.Peerings().Establish(ctx, nil, nil)
			return err
		}, "request"},
		{"establish no name", func(ctx context.Context, c *Client) error {
			_, err := c.Peerings().Establish(ctx, &PeeringEstablishRequest{PeeringToken: "x"}, nil)
			return err
		}, "PeerName"},
		{"establish no token", func(ctx context.Context, c *Client) error {
			_, err := c.Peerings().Establish(ctx, &PeeringEstablishRequest{PeerName: "x"}, nil)
			return err
		}, "PeeringToken"},
		{"read no name", func(ctx context.Context, c *Client) error { _, _, err := c.Peerings().Read(ctx, "", nil); return err }, "peering name"},
		{"delete no name", func(ctx context.Context, c *Client) error { _, err := c.Peerings().Delete(ctx, "", nil); return err }, "peering name"},
	})
}

func TestPeeringsErrors(t *testing.T) {
	c, _ := newTokenFake(t, fakeReply{Status: 403, Body: "Permission denied"})
	ctx := context.Background()
	_, _, err := c.Peerings().Read(ctx, "p1", nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, _, err = c.Peerings().List(ctx, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, err = c.Peerings().Delete(ctx, "p1", nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
}
