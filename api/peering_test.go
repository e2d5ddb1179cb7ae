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
	f, c := newCEFake(t, ceReply{Body: `{"PeeringToken":"eyJDQSI6WyIt"}`})
	tok, _, err := c.Peerings().GenerateToken(context.Background(), &PeeringGenerateTokenRequest{
		PeerName: "p1", Meta: map[string]string{"a": "b"}, ServerExternalAddresses: []string{"1.2.3.4:8503"},
	}, &WriteOptions{Token: "mgmt"})
	require.NoError(t, err)
	assert.Equal(t, "eyJDQSI6WyIt", tok)
	req := f.last(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/peering/token", req.Path)
	assert.Equal(t, "mgmt", req.Header.Get("X-Consul-Token"))
	assert.JSONEq(t, `{"PeerName":"p1","Meta":{"a":"b"},"ServerExternalAddresses":["1.2.3.4:8503"]}`, string(req.Body))
}

func TestPeeringsGenerateTokenNoGRPCTLS(t *testing.T) {
	_, c := newCEFake(t, ceReply{Status: 500, Body: "rpc error: code = Unknown desc = TLS for gRPC must be enabled when generating peering tokens"})
	tok, _, err := c.Peerings().GenerateToken(context.Background(), &PeeringGenerateTokenRequest{PeerName: "p1"}, nil)
	assert.Empty(t, tok)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
	assert.Contains(t, se.Body, "TLS for gRPC")
}

func TestPeeringsEstablish(t *testing.T) {
	f, c := newCEFake(t, ceReply{Body: `{}`})
	_, err := c.Peerings().Establish(context.Background(), &PeeringEstablishRequest{PeerName: "p2", PeeringToken: "eyJD", Partition: "ap1"}, nil)
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/v1/peering/establish", req.Path)
	assert.JSONEq(t, `{"PeerName":"p2","PeeringToken":"eyJD","Partition":"ap1"}`, string(req.Body))
}

func TestPeeringsRead(t *testing.T) {
	t.Run("found", func(t *testing.T) {
		f, c := newCEFake(t, ceReply{Body: peeringJSON, Header: map[string]string{"X-Consul-Index": "19"}})
		p, meta, err := c.Peerings().Read(context.Background(), "p1", &QueryOptions{Partition: "default"})
		require.NoError(t, err)
		checkPeering(t, p)
		assert.Equal(t, uint64(19), meta.LastIndex)
		req := f.last(t)
		assert.Equal(t, http.MethodGet, req.Method)
		assert.Equal(t, "/v1/peering/p1", req.Path)
		assert.Equal(t, "default", req.Query.Get("partition"))
	})
	t.Run("missing", func(t *testing.T) {
		_, c := newCEFake(t, ceReply{Status: 404, Body: `Peering not found for "p1"`})
		p, meta, err := c.Peerings().Read(context.Background(), "p1", nil)
		require.NoError(t, err)
		assert.Nil(t, p)
		assert.NotNil(t, meta)
	})
}

func TestPeeringsList(t *testing.T) {
	f, c := newCEFake(t, ceReply{Body: `[` + peeringJSON + `]`})
	list, _, err := c.Peerings().List(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, list, 1)
	checkPeering(t, list[0])
	req := f.last(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/v1/peerings", req.Path)
}

func TestPeeringsDelete(t *testing.T) {
	f, c := newCEFake(t, ceReply{})
	_, err := c.Peerings().Delete(context.Background(), "p1", &WriteOptions{Token: "t"})
	require.NoError(t, err)
	req := f.last(t)
	assert.Equal(t, http.MethodDelete, req.Method)
	assert.Equal(t, "/v1/peering/p1", req.Path)
	assert.Equal(t, "t", req.Header.Get("X-Consul-Token"))
}

func TestPeeringsValidation(t *testing.T) {
	f, c := newCEFake(t, ceReply{Body: `{}`})
	ctx := context.Background()
	p := c.Peerings()
	checks := []struct {
		name string
		call func() error
	}{
		{"token nil", func() error { _, _, err := p.GenerateToken(ctx, nil, nil); return err }},
		{"token no name", func() error { _, _, err := p.GenerateToken(ctx, &PeeringGenerateTokenRequest{}, nil); return err }},
		{"establish nil", func() error { _, err := p.Establish(ctx, nil, nil); return err }},
		{"establish no name", func() error {
			_, err := p.Establish(ctx, &PeeringEstablishRequest{PeeringToken: "x"}, nil)
			return err
		}},
		{"establish no token", func() error { _, err := p.Establish(ctx, &PeeringEstablishRequest{PeerName: "x"}, nil); return err }},
		{"read no name", func() error { _, _, err := p.Read(ctx, "", nil); return err }},
		{"delete no name", func() error { _, err := p.Delete(ctx, "", nil); return err }},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.call(), ErrInvalid)
		})
	}
	assert.Zero(t, f.count(), "validation must fail before any request")
}

func TestPeeringsErrors(t *testing.T) {
	_, c := newCEFake(t, ceReply{Status: 403, Body: "Permission denied"})
	ctx := context.Background()
	_, _, err := c.Peerings().Read(ctx, "p1", nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, _, err = c.Peerings().List(ctx, nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	_, err = c.Peerings().Delete(ctx, "p1", nil)
	assert.ErrorIs(t, err, ErrPermissionDenied)
}
