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

// Dev agents run Connect with the built-in consul CA provider.

func TestConnectCARootsIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()

	roots, meta, err := c.Connect().CARoots(ctx, nil)
	require.NoError(t, err)
	assert.NotZero(t, meta.LastIndex)
	require.NotEmpty(t, roots.Roots)
	assert.NotEmpty(t, roots.TrustDomain)
	assert.True(t, strings.HasSuffix(roots.TrustDomain, ".consul"), roots.TrustDomain)
	active := roots.Active()
	require.NotNil(t, active)
	assert.Equal(t, roots.ActiveRootID, active.ID)
	assert.Contains(t, active.RootCert, "BEGIN CERTIFICATE")
	assert.True(t, active.NotAfter.After(time.Now()))
	assert.NotEmpty(t, active.PrivateKeyType)

	pem, _, err := c.Connect().CARootsPEM(ctx, nil)
	require.NoError(t, err)
	assert.Contains(t, pem, strings.TrimSpace(active.RootCert))

	// A blocking query on the roots returns when its wait ends without a
	// rotation.
	start := time.Now()
	_, meta2, err := c.Connect().CARoots(ctx, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Second})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	assert.Equal(t, meta.LastIndex, meta2.LastIndex)
}

func TestConnectCAConfigIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()

	orig, _, err := c.Connect().CAGetConfig(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, "consul", orig.Provider)
	require.NotNil(t, orig.Config)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		restore := &api.CAConfig{Provider: orig.Provider, Config: orig.Config}
		if _, err := c.Connect().CASetConfig(cctx, restore, nil); err != nil {
			t.Logf("cleanup: restoring the CA configuration: %v", err)
		}
	})
	rootsBefore, _, err := c.Connect().CARoots(ctx, nil)
	require.NoError(t, err)

	// Consul replaces the whole Config: keep the other keys.
	conf := map[string]any{}
	for k, v := range orig.Config {
		conf[k] = v
	}
	newTTL := "49h"
	if orig.Config["LeafCertTTL"] == newTTL {
		newTTL = "50h"
	}
	conf["LeafCertTTL"] = newTTL
	_, err = c.Connect().CASetConfig(ctx, &api.CAConfig{Provider: "consul", Config: conf}, nil)
	require.NoError(t, err)

	got, _, err := c.Connect().CAGetConfig(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, "consul", got.Provider)
	assert.Equal(t, newTTL, got.Config["LeafCertTTL"])
	assert.Greater(t, got.ModifyIndex, orig.ModifyIndex)

	// A TTL change does not rotate the root.
	rootsAfter, _, err := c.Connect().CARoots(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, rootsBefore.ActiveRootID, rootsAfter.ActiveRootID)

	// The provider state is read-only.
	_, err = c.Connect().CASetConfig(ctx, &api.CAConfig{Provider: "consul", Config: conf, State: map[string]string{"made": "up"}}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 400, se.Code)
	assert.Contains(t, se.Body, "read-only")
}

// TestConnectIntentionsConfigEntryManaged uses the endpoints that work on
// intentions kept in service-intentions config entries (the only storage
// since Consul 1.9): exact upsert, get and delete, match, check and list.
func TestConnectIntentionsConfigEntryManaged(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	h := c.Connect()
	src, dst := ceName(t, "src"), ceName(t, "dst")
	t.Cleanup(func() {
		_, _ = c.ConfigEntries().Delete(context.Background(), api.ServiceIntentions, dst, nil)
	})

	missing, _, err := h.IntentionGetExact(ctx, src, dst, nil)
	require.NoError(t, err)
	assert.Nil(t, missing)

	_, err = h.IntentionUpsert(ctx, &api.Intention{SourceName: src, DestinationName: dst, Action: api.IntentionActionDeny, Description: "no"}, nil)
	require.NoError(t, err)

	ixn, _, err := h.IntentionGetExact(ctx, src, dst, nil)
	require.NoError(t, err)
	require.NotNil(t, ixn)
	assert.Equal(t, src, ixn.SourceName)
	assert.Equal(t, dst, ixn.DestinationName)
	assert.Equal(t, api.IntentionActionDeny, ixn.Action)
	assert.Equal(t, "no", ixn.Description)
	assert.Equal(t, api.IntentionSourceConsul, ixn.SourceType)
	assert.Empty(t, ixn.ID, "config-entry intentions have no ID")
	assert.NotZero(t, ixn.Precedence)

	allowed, _, err := h.IntentionCheck(ctx, src, dst, nil)
	require.NoError(t, err)
	assert.False(t, allowed)

	_, err = h.IntentionUpsert(ctx, &api.Intention{SourceName: src, DestinationName: dst, Action: api.IntentionActionAllow}, nil)
	require.NoError(t, err)
	allowed, _, err = h.IntentionCheck(ctx, src, dst, nil)
	require.NoError(t, err)
	assert.True(t, allowed)

	// The intention lives in the destination's config entry.
	e, _, err := c.ConfigEntries().Get(ctx, api.ServiceIntentions, dst, nil)
	require.NoError(t, err)
	require.NotNil(t, e)
	sources := e.(*api.ServiceIntentionsConfigEntry).Sources
	require.Len(t, sources, 1)
	assert.Equal(t, src, sources[0].Name)
	assert.Equal(t, api.IntentionActionAllow, sources[0].Action)

	byDst, _, err := h.IntentionMatch(ctx, api.IntentionMatchDestination, []string{dst, ceName(t, "none")}, nil)
	require.NoError(t, err)
	require.Len(t, byDst, 2)
	require.NotEmpty(t, byDst[dst])
	assert.Equal(t, src, byDst[dst][0].SourceName)
	bySrc, _, err := h.IntentionMatch(ctx, api.IntentionMatchSource, []string{src}, nil)
	require.NoError(t, err)
	require.NotEmpty(t, bySrc[src])
	assert.Equal(t, dst, bySrc[src][0].DestinationName)

	list, meta, err := h.Intentions(ctx, &api.QueryOptions{Filter: `DestinationName == "` + dst + `"`})
	require.NoError(t, err)
	assert.NotZero(t, meta.LastIndex)
	require.Len(t, list, 1)
	assert.Equal(t, src, list[0].SourceName)

	// The legacy by-ID endpoints refuse to write to a destination whose
	// intentions are managed through a config entry.
	_, _, err = h.IntentionCreate(ctx, &api.Intention{SourceName: ceName(t, "other"), DestinationName: dst, Action: api.IntentionActionDeny}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "cannot use legacy intention API")

	_, err = h.IntentionDeleteExact(ctx, src, dst, nil)
	require.NoError(t, err)
	gone, _, err := h.IntentionGetExact(ctx, src, dst, nil)
	require.NoError(t, err)
	assert.Nil(t, gone)
	// Deleting again is not an error.
	_, err = h.IntentionDeleteExact(ctx, src, dst, nil)
	require.NoError(t, err)
}

// TestConnectIntentionsLegacyByID uses the deprecated by-ID endpoints.
// Consul 1.14 still serves them: it stores such an intention in the
// destination's service-intentions entry with a LegacyID.
func TestConnectIntentionsLegacyByID(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	h := c.Connect()
	src, dst := ceName(t, "src"), ceName(t, "dst")
	t.Cleanup(func() {
		_, _ = c.ConfigEntries().Delete(context.Background(), api.ServiceIntentions, dst, nil)
	})

	id, _, err := h.IntentionCreate(ctx, &api.Intention{
		SourceName: src, DestinationName: dst, Action: api.IntentionActionAllow,
		Description: "legacy", Meta: map[string]string{"k": "v"},
	}, nil)
	require.NoError(t, err)
	require.Len(t, id, 36)

	ixn, _, err := h.IntentionGet(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, ixn)
	assert.Equal(t, id, ixn.ID)
	assert.Equal(t, src, ixn.SourceName)
	assert.Equal(t, map[string]string{"k": "v"}, ixn.Meta)
	assert.False(t, ixn.CreatedAt.IsZero())

	e, _, err := c.ConfigEntries().Get(ctx, api.ServiceIntentions, dst, nil)
	require.NoError(t, err)
	require.NotNil(t, e)
	sources := e.(*api.ServiceIntentionsConfigEntry).Sources
	require.Len(t, sources, 1)
	assert.Equal(t, id, sources[0].LegacyID)
	assert.Equal(t, map[string]string{"k": "v"}, sources[0].LegacyMeta)
	require.NotNil(t, sources[0].LegacyCreateTime)

	ixn.Action = api.IntentionActionDeny
	ixn.Description = "changed"
	_, err = h.IntentionUpdate(ctx, ixn, nil)
	require.NoError(t, err)
	updated, _, err := h.IntentionGet(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, updated)
	assert.Equal(t, api.IntentionActionDeny, updated.Action)
	assert.Equal(t, "changed", updated.Description)

	allowed, _, err := h.IntentionCheck(ctx, src, dst, nil)
	require.NoError(t, err)
	assert.False(t, allowed)

	exact, _, err := h.IntentionGetExact(ctx, src, dst, nil)
	require.NoError(t, err)
	require.NotNil(t, exact)
	assert.Equal(t, id, exact.ID)

	// L7 permissions cannot go through the legacy endpoints.
	_, _, err = h.IntentionCreate(ctx, &api.Intention{SourceName: ceName(t, "l7"), DestinationName: ceName(t, "l7dst"),
		Permissions: []*api.IntentionPermission{{Action: api.IntentionActionAllow, HTTP: &api.IntentionHTTPPermission{PathPrefix: "/"}}}}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "Permissions must not be set")

	_, err = h.IntentionDelete(ctx, id, nil)
	require.NoError(t, err)
	gone, _, err := h.IntentionGet(ctx, id, nil)
	require.NoError(t, err)
	assert.Nil(t, gone)

	// Deleting or updating an unknown ID is an error; an ID that is not a
	// UUID is a 400.
	_, err = h.IntentionDelete(ctx, id, nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "non-existent intention")
	_, err = h.IntentionUpdate(ctx, ixn, nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "non-existent intention")
	_, _, err = h.IntentionGet(ctx, "not-a-uuid", nil)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 400, se.Code)
}
