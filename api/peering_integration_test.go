package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func TestPeeringsReadListDeleteMissing(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	name := ceName(t, "")

	p, meta, err := c.Peerings().Read(ctx, name, nil)
	require.NoError(t, err)
	assert.Nil(t, p)
	assert.NotNil(t, meta)

	list, _, err := c.Peerings().List(ctx, nil)
	require.NoError(t, err)
	for _, p := range list {
		assert.NotEqual(t, name, p.Name)
	}

	// Deleting a peering that does not exist is not an error.
	_, err = c.Peerings().Delete(ctx, name, nil)
	require.NoError(t, err)
}

// TestPeeringsTokenLifecycle generates a token, which creates a pending
// peering on this side, reads and lists it, tries to establish a peering
// with the token (refused: it comes from this very cluster; see
// TestPeeringsEstablishIntegration for two), and deletes it.
//
// Consul generates tokens only when its servers have a gRPC TLS port (the
// token carries that address): the harness's agents have one. An external
// Consul without one answers 500 "TLS for gRPC must be enabled when
// generating peering tokens"; the test then checks that answer and stops.
func TestPeeringsTokenLifecycle(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	name := ceName(t, "")
	p := c.Peerings()

	tok, _, err := p.GenerateToken(ctx, &api.PeeringGenerateTokenRequest{PeerName: name, Meta: map[string]string{"env": "test"}}, nil)
	if err != nil && a.Mode == integration.ModeExternal {
		var se *api.StatusError
		require.ErrorAs(t, err, &se)
		require.Contains(t, se.Body, "TLS for gRPC must be enabled when generating peering tokens", "unexpected error: %v", err)
		assert.Equal(t, 500, se.Code)
		t.Skipf("the external agent has no gRPC TLS port, so it cannot generate peering tokens: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = p.Delete(cctx, name, nil)
	})
	require.NotEmpty(t, tok)

	got, meta, err := p.Read(ctx, name, nil)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.NotZero(t, meta.LastIndex)
	assert.Equal(t, name, got.Name)
	assert.NotEmpty(t, got.ID)
	assert.Equal(t, api.PeeringStatePending, got.State)
	assert.Equal(t, map[string]string{"env": "test"}, got.Meta)
	assert.Nil(t, got.DeletedAt)

	list, _, err := p.List(ctx, nil)
	require.NoError(t, err)
	var found *api.Peering
	for _, q := range list {
		if q.Name == name {
			found = q
		}
	}
	require.NotNil(t, found)
	assert.Equal(t, got.ID, found.ID)

	// Generating again for the same pending peer is allowed and gives a
	// new token.
	tok2, _, err := p.GenerateToken(ctx, &api.PeeringGenerateTokenRequest{PeerName: name}, nil)
	require.NoError(t, err)
	assert.NotEqual(t, tok, tok2)

	// Establishing needs a second cluster to dial. With a token from this
	// same cluster Consul refuses before dialing anything.
	_, err = p.Establish(ctx, &api.PeeringEstablishRequest{PeerName: ceName(t, "dialer"), PeeringToken: tok2}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "cannot create a peering within the same cluster")

	// A malformed token is refused too.
	_, err = p.Establish(ctx, &api.PeeringEstablishRequest{PeerName: ceName(t, "dialer"), PeeringToken: "not-a-token"}, nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "failed to decode token")

	// Delete marks the peering for deletion; Consul removes it in the
	// background.
	_, err = p.Delete(ctx, name, nil)
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _, err := p.Read(ctx, name, nil)
		require.NoError(t, err)
		if got == nil {
			break
		}
		assert.True(t, got.DeletedAt != nil || got.State == api.PeeringStateDeleting, "state %s", got.State)
		if time.Now().After(deadline) {
			t.Fatalf("peering %s still there after delete: %s", name, got.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPeeringsGenerateTokenBadName(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	// Peer names must be DNS labels; the check may come after the gRPC TLS
	// check, so either refusal is accepted.
	_, _, err := c.Peerings().GenerateToken(t.Context(), &api.PeeringGenerateTokenRequest{PeerName: "Not_A_Label!"}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.True(t, strings.Contains(se.Body, "not a valid peer name") || strings.Contains(se.Body, "TLS for gRPC"), se.Body)
}

// TestPeeringsEstablishIntegration peers two clusters (two dev agents):
// a token generated on one is established on the other, both sides see
// the peering active with their own metadata, and deleting it on both
// sides removes it.
func TestPeeringsEstablishIntegration(t *testing.T) {
	a, b := integration.NewAgent(t), integration.NewAgent(t)
	ca, cb := a.Client(t), b.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	tok, _, err := ca.Peerings().GenerateToken(ctx, &api.PeeringGenerateTokenRequest{PeerName: "to-b", Meta: map[string]string{"side": "a"}}, nil)
	require.NoError(t, err)
	_, err = cb.Peerings().Establish(ctx, &api.PeeringEstablishRequest{PeerName: "to-a", PeeringToken: tok, Meta: map[string]string{"side": "b"}}, nil)
	require.NoError(t, err)

	var acceptorID string
	for _, side := range []struct {
		c          *api.Client
		peer, meta string
	}{{ca, "to-b", "a"}, {cb, "to-a", "b"}} {
		var p *api.Peering
		require.Eventually(t, func() bool {
			p, _, err = side.c.Peerings().Read(ctx, side.peer, nil)
			return err == nil && p != nil && p.State == api.PeeringStateActive
		}, time.Minute, 200*time.Millisecond, "peering %s never active: %+v %v", side.peer, p, err)
		assert.Equal(t, side.peer, p.Name)
		assert.Equal(t, map[string]string{"side": side.meta}, p.Meta)
		assert.NotEmpty(t, p.ID)
		if side.peer == "to-b" {
			acceptorID = p.ID
		} else {
			assert.Equal(t, acceptorID, p.PeerID, "the dialer knows the acceptor's ID")
		}
		list, _, err := side.c.Peerings().List(ctx, nil)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, p.ID, list[0].ID)
	}
	for _, side := range []struct {
		c    *api.Client
		peer string
	}{{cb, "to-a"}, {ca, "to-b"}} {
		_, err := side.c.Peerings().Delete(ctx, side.peer, nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			p, _, err := side.c.Peerings().Read(ctx, side.peer, nil)
			return err == nil && p == nil
		}, time.Minute, 200*time.Millisecond, "peering %s not removed", side.peer)
	}
}
