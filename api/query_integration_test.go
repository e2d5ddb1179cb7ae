package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// The queries select the "consul" service, which every dev agent (a server)
// registers with one healthy instance.

func TestPreparedQueryIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	pq := c.Query()
	ctx := t.Context()
	name := aclName(t, "q")

	id, _, err := pq.Create(ctx, &api.PreparedQueryDefinition{
		Name: name,
		Service: api.ServiceQuery{
			Service:     "consul",
			OnlyPassing: true,
			Failover:    api.QueryFailoverOptions{NearestN: 1},
		},
		DNS: api.QueryDNSOptions{TTL: api.Duration(10 * time.Second)},
	}, nil)
	require.NoError(t, err)
	require.NotEmpty(t, id)
	t.Cleanup(func() { _, _ = pq.Delete(context.WithoutCancel(ctx), id, nil) })

	def, meta, err := pq.Get(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, def)
	assert.NotZero(t, meta.LastIndex)
	assert.Equal(t, name, def.Name)
	assert.Equal(t, "consul", def.Service.Service)
	assert.True(t, def.Service.OnlyPassing)
	assert.Equal(t, 1, def.Service.Failover.NearestN)
	assert.Equal(t, 10*time.Second, def.DNS.TTL.D())

	list, _, err := pq.List(ctx, nil)
	require.NoError(t, err)
	assert.True(t, aclContains(list, func(d *api.PreparedQueryDefinition) bool { return d.ID == id }))

	// Read, modify, write back.
	def.DNS.TTL = api.Duration(30 * time.Second)
	def.Service.Tags = []string{"!canary"}
	_, err = pq.Update(ctx, def, nil)
	require.NoError(t, err)
	def2, _, err := pq.Get(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, def2)
	assert.Equal(t, 30*time.Second, def2.DNS.TTL.D())
	assert.Equal(t, []string{"!canary"}, def2.Service.Tags)
	assert.Greater(t, def2.ModifyIndex, def.ModifyIndex)

	for _, ref := range []string{id, name} {
		res, meta, err := pq.Execute(ctx, ref, &api.QueryExecuteOptions{Limit: 1}, &api.QueryOptions{Near: "_agent"})
		require.NoError(t, err, ref)
		assert.True(t, meta.KnownLeader)
		assert.Equal(t, "consul", res.Service)
		assert.Equal(t, "dc1", res.Datacenter)
		assert.Equal(t, 30*time.Second, res.DNS.TTL.D())
		require.Len(t, res.Nodes, 1)
		n := res.Nodes[0]
		require.NotNil(t, n.Node)
		require.NotNil(t, n.Service)
		assert.Equal(t, "consul", n.Service.Service)
		assert.NotEmpty(t, n.Node.Address)
		assert.Equal(t, api.HealthPassing, n.Checks.AggregatedStatus())
	}

	// The consul service is not Connect-capable.
	res, _, err := pq.Execute(ctx, name, &api.QueryExecuteOptions{Connect: true}, nil)
	require.NoError(t, err)
	assert.Empty(t, res.Nodes)

	// Served from the agent's cache.
	_, _, err = pq.Execute(ctx, name, nil, &api.QueryOptions{UseCache: true})
	require.NoError(t, err)
	_, meta, err = pq.Execute(ctx, name, nil, &api.QueryOptions{UseCache: true})
	require.NoError(t, err)
	assert.True(t, meta.CacheHit)

	exp, _, err := pq.Explain(ctx, name, nil)
	require.NoError(t, err)
	assert.Equal(t, id, exp.Query.ID)
	assert.Equal(t, "consul", exp.Query.Service.Service)

	// Deleted and unknown queries.
	_, err = pq.Delete(ctx, id, nil)
	require.NoError(t, err)
	gone, _, err := pq.Get(ctx, id, nil)
	require.NoError(t, err)
	assert.Nil(t, gone)
	_, _, err = pq.Execute(ctx, name, nil, nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
	_, _, err = pq.Explain(ctx, name, nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
	_, err = pq.Delete(ctx, id, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se, "Consul refuses to delete an unknown query")
	assert.Contains(t, se.Body, "non-existent prepared query")
	_, err = pq.Update(ctx, def, nil)
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Body, "non-existent prepared query")
}

func TestPreparedQueryTemplateIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	pq := c.Query()
	ctx := t.Context()
	prefix := aclName(t, "tpl") + "-"

	id, _, err := pq.Create(ctx, &api.PreparedQueryDefinition{
		Name:     prefix,
		Template: api.QueryTemplate{Type: api.QueryTemplateTypeNamePrefixMatch, Regexp: "^" + prefix + "(.+)$", RemoveEmptyTags: true},
		Service:  api.ServiceQuery{Service: "${match(1)}", Tags: []string{"${name.suffix}-never-empty", ""}},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pq.Delete(context.WithoutCancel(ctx), id, nil) })

	exp, _, err := pq.Explain(ctx, prefix+"consul", nil)
	require.NoError(t, err)
	assert.Equal(t, "consul", exp.Query.Service.Service)
	assert.Equal(t, []string{"consul-never-empty"}, exp.Query.Service.Tags, "empty tags are removed")
	assert.Equal(t, api.QueryTemplateTypeNamePrefixMatch, exp.Query.Template.Type)

	res, _, err := pq.Execute(ctx, prefix+"consul", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "consul", res.Service)
	assert.Empty(t, res.Nodes, "no consul instance has the tag")
}

// TestPreparedQueryCachedExecuteMissing: Consul's cached execution path
// answers a missing query with 500 "Query not found", not the 404 of the
// uncached path; Execute still reports it as ErrNotFound, not retryable.
func TestPreparedQueryCachedExecuteMissing(t *testing.T) {
	c := integration.Shared(t).Client(t)
	name := aclName(t, "missing")
	for _, q := range []*api.QueryOptions{nil, {UseCache: true}} {
		_, _, err := c.Query().Execute(t.Context(), name, nil, q)
		require.Error(t, err)
		assert.ErrorIs(t, err, api.ErrNotFound, "UseCache=%v", q != nil)
		assert.False(t, api.IsRetryable(err), "UseCache=%v", q != nil)
	}
}

// TestPreparedQueryIDNotAUUID: Consul looks queries up in a UUID index and
// answers 500 to an ID it cannot parse (a name passed as an ID); the
// client refuses such an ID before sending, and still sends a UUID that
// names no query (Get: nil).
func TestPreparedQueryIDNotAUUID(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	name := aclName(t, "byname")
	_, _, err := c.Query().Get(ctx, name, nil)
	assert.ErrorIs(t, err, api.ErrInvalid)
	_, err = c.Query().Delete(ctx, name, nil)
	assert.ErrorIs(t, err, api.ErrInvalid)
	_, err = c.Query().Update(ctx, &api.PreparedQueryDefinition{ID: name, Service: api.ServiceQuery{Service: "consul"}}, nil)
	assert.ErrorIs(t, err, api.ErrInvalid)

	def, _, err := c.Query().Get(ctx, "54734f4a-4a29-b5c4-5183-7769a0bd9997", nil)
	require.NoError(t, err)
	assert.Nil(t, def)
}
