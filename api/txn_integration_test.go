package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// coreTxn runs ops and requires them to commit.
func coreTxn(t *testing.T, c *api.Client, ops ...*api.TxnOp) []*api.TxnResult {
	t.Helper()
	resp, _, err := c.Txn().Do(t.Context(), ops, nil)
	require.NoError(t, err)
	require.NotNil(t, resp)
	return resp.Results
}

// coreTxnFails runs ops and requires Consul to roll them back; it returns
// the failed operations.
func coreTxnFails(t *testing.T, c *api.Client, ops ...*api.TxnOp) []api.TxnOpError {
	t.Helper()
	resp, _, err := c.Txn().Do(t.Context(), ops, nil)
	assert.Nil(t, resp)
	var te *api.TxnError
	require.ErrorAs(t, err, &te)
	require.NotEmpty(t, te.Errors)
	return te.Errors
}

func kvOp(verb, key string, mod func(*api.KVTxnOp)) *api.TxnOp {
	op := &api.KVTxnOp{Verb: verb, Key: key}
	if mod != nil {
		mod(op)
	}
	return &api.TxnOp{KV: op}
}

func TestTxnKVIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	a, b := p+"a", p+"dir/b"

	// set, and get in the same transaction.
	res := coreTxn(t, c,
		kvOp(api.KVSet, a, func(o *api.KVTxnOp) { o.Value, o.Flags = []byte("1"), 7 }),
		kvOp(api.KVSet, b, func(o *api.KVTxnOp) { o.Value = []byte("2") }),
		kvOp(api.KVGet, a, nil),
	)
	require.Len(t, res, 3)
	assert.Equal(t, a, res[0].KV.Key)
	assert.Nil(t, res[0].KV.Value, "write results carry no value")
	assert.Equal(t, []byte("1"), res[2].KV.Value)
	assert.Equal(t, uint64(7), res[2].KV.Flags)
	aIdx := res[2].KV.ModifyIndex

	// get-tree over everything under the prefix, read-only.
	res = coreTxn(t, c, kvOp(api.KVGetTree, p, nil))
	require.Len(t, res, 2)
	assert.Equal(t, a, res[0].KV.Key)
	assert.Equal(t, b, res[1].KV.Key)

	// check-index and cas.
	res = coreTxn(t, c,
		kvOp(api.KVCheckIndex, a, func(o *api.KVTxnOp) { o.Index = aIdx }),
		kvOp(api.KVCAS, a, func(o *api.KVTxnOp) { o.Value, o.Index = []byte("1b"), aIdx }),
	)
	require.Len(t, res, 2)
	newIdx := res[1].KV.ModifyIndex
	assert.Greater(t, newIdx, aIdx)
	errs := coreTxnFails(t, c, kvOp(api.KVCAS, a, func(o *api.KVTxnOp) { o.Value, o.Index = []byte("1c"), aIdx }))
	assert.Equal(t, 0, errs[0].OpIndex)
	assert.True(t, errs[0].IndexMismatch(), errs[0].What)

	// check-not-exists, and cas with index 0 (create only).
	coreTxn(t, c,
		kvOp(api.KVCheckNotExists, p+"c", nil),
		kvOp(api.KVCAS, p+"c", func(o *api.KVTxnOp) { o.Value = []byte("3") }),
	)
	errs = coreTxnFails(t, c, kvOp(api.KVCheckNotExists, p+"c", nil))
	assert.Equal(t, 0, errs[0].OpIndex)

	// lock, check-session, unlock with a real session.
	sess := coreSession(t, c, nil)
	res = coreTxn(t, c,
		kvOp(api.KVLock, p+"lock", func(o *api.KVTxnOp) { o.Value, o.Session = []byte("held"), sess }),
		kvOp(api.KVCheckSession, p+"lock", func(o *api.KVTxnOp) { o.Session = sess }),
		kvOp(api.KVGet, p+"lock", nil),
	)
	require.Len(t, res, 3)
	assert.Equal(t, sess, res[2].KV.Session)
	assert.Equal(t, uint64(1), res[2].KV.LockIndex)
	other := coreSession(t, c, nil)
	errs = coreTxnFails(t, c, kvOp(api.KVLock, p+"lock", func(o *api.KVTxnOp) { o.Session = other }))
	assert.True(t, errs[0].LockHeld(), errs[0].What)
	errs = coreTxnFails(t, c, kvOp(api.KVCheckSession, p+"lock", func(o *api.KVTxnOp) { o.Session = other }))
	assert.Equal(t, 0, errs[0].OpIndex)
	coreTxn(t, c, kvOp(api.KVUnlock, p+"lock", func(o *api.KVTxnOp) { o.Session = sess }))
	pair, _, err := c.KV().Get(t.Context(), p+"lock", nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session)

	// delete, delete-cas, delete-tree.
	res = coreTxn(t, c, kvOp(api.KVGet, p+"c", nil))
	cIdx := res[0].KV.ModifyIndex
	errs = coreTxnFails(t, c, kvOp(api.KVDeleteCAS, p+"c", func(o *api.KVTxnOp) { o.Index = cIdx - 1 }))
	assert.Equal(t, 0, errs[0].OpIndex)
	res = coreTxn(t, c,
		kvOp(api.KVDeleteCAS, p+"c", func(o *api.KVTxnOp) { o.Index = cIdx }),
		kvOp(api.KVDelete, a, nil),
		kvOp(api.KVDeleteTree, p+"dir/", nil),
	)
	assert.Empty(t, res, "deletes produce no results")
	keys, _, err := c.KV().Keys(t.Context(), p, "", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{p + "lock"}, keys)

	// A get of a missing key fails the transaction.
	errs = coreTxnFails(t, c, kvOp(api.KVGet, p+"missing", nil))
	assert.Equal(t, 0, errs[0].OpIndex)
}

// TestTxnRollbackIntegration: a failed check-index rolls back the writes
// before it, and Consul names the failing operation.
func TestTxnRollbackIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: p + "guard", Value: []byte("v1")}, nil)
	require.NoError(t, err)
	guard, _, err := c.KV().Get(t.Context(), p+"guard", nil)
	require.NoError(t, err)

	errs := coreTxnFails(t, c,
		kvOp(api.KVSet, p+"written", func(o *api.KVTxnOp) { o.Value = []byte("x") }),
		kvOp(api.KVSet, p+"guard", func(o *api.KVTxnOp) { o.Value = []byte("v2") }),
		kvOp(api.KVCheckIndex, p+"guard", func(o *api.KVTxnOp) { o.Index = guard.ModifyIndex }),
	)
	require.Len(t, errs, 1)
	assert.Equal(t, 2, errs[0].OpIndex)
	assert.True(t, errs[0].IndexMismatch(), errs[0].What)

	pair, _, err := c.KV().Get(t.Context(), p+"written", nil)
	require.NoError(t, err)
	assert.Nil(t, pair, "the first write was rolled back")
	pair, _, err = c.KV().Get(t.Context(), p+"guard", nil)
	require.NoError(t, err)
	assert.Equal(t, "v1", string(pair.Value))
	assert.Equal(t, guard.ModifyIndex, pair.ModifyIndex)
}

// TestTxnSessionIntegration: Consul's HTTP API does not take session
// operations in a transaction (only its internal RPC does), so Do refuses
// them before sending. The raw request shows what Consul would answer.
func TestTxnSessionIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := coreSession(t, c, nil)

	_, _, err := c.Txn().Do(t.Context(), api.TxnOps{
		{Session: &api.SessionTxnOp{Verb: api.TxnDelete, Session: api.SessionEntry{ID: id}}},
	}, nil)
	require.ErrorIs(t, err, api.ErrInvalid)

	body := `[{"Session":{"Verb":"delete","Session":{"ID":"` + id + `"}}}]`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+a.Addr+"/v1/txn", strings.NewReader(body))
	require.NoError(t, err)
	if a.Token != "" {
		req.Header.Set("X-Consul-Token", a.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(msg), "Session")

	// The session is untouched.
	s, _, err := c.Session().Info(t.Context(), id, nil)
	require.NoError(t, err)
	assert.NotNil(t, s)
}

func TestTxnCatalogIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	node := "core-" + corePrefixUnsafe.ReplaceAllString(t.Name(), "-")
	t.Cleanup(func() {
		_, _, _ = c.Txn().Do(context.Background(), api.TxnOps{
			{Node: &api.NodeTxnOp{Verb: api.TxnDelete, Node: api.Node{Node: node}}},
		}, nil)
	})

	// Register a node, a service on it and a check, in one transaction.
	res := coreTxn(t, c,
		&api.TxnOp{Node: &api.NodeTxnOp{Verb: api.TxnSet, Node: api.Node{
			Node: node, Address: "192.0.2.10", Meta: map[string]string{"rack": "r1"},
		}}},
		&api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.TxnSet, Node: node, Service: api.AgentService{
			ID: "web-1", Service: "web", Port: 8080, Tags: []string{"v1"},
			Weights: api.AgentWeights{Passing: 1, Warning: 1},
		}}},
		&api.TxnOp{Check: &api.CheckTxnOp{Verb: api.TxnSet, Check: api.HealthCheck{
			Node: node, CheckID: "web-1-alive", Name: "web alive", Status: api.HealthPassing,
			ServiceID: "web-1", Notes: "set by a transaction",
		}}},
	)
	require.Len(t, res, 3)
	require.NotNil(t, res[0].Node)
	assert.Equal(t, node, res[0].Node.Node)
	require.NotNil(t, res[1].Service)
	assert.Equal(t, "web", res[1].Service.Service)
	require.NotNil(t, res[2].Check)
	assert.Equal(t, "web-1-alive", res[2].Check.CheckID)

	// Read them back.
	res = coreTxn(t, c,
		&api.TxnOp{Node: &api.NodeTxnOp{Verb: api.TxnGet, Node: api.Node{Node: node}}},
		&api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.TxnGet, Node: node, Service: api.AgentService{ID: "web-1"}}},
		&api.TxnOp{Check: &api.CheckTxnOp{Verb: api.TxnGet, Check: api.HealthCheck{Node: node, CheckID: "web-1-alive"}}},
	)
	require.Len(t, res, 3)
	assert.Equal(t, "192.0.2.10", res[0].Node.Address)
	assert.Equal(t, map[string]string{"rack": "r1"}, res[0].Node.Meta)
	nodeIdx := res[0].Node.ModifyIndex
	assert.Equal(t, 8080, res[1].Service.Port)
	assert.Equal(t, []string{"v1"}, res[1].Service.Tags)
	assert.Equal(t, api.HealthPassing, res[2].Check.Status)
	assert.Equal(t, "web", res[2].Check.ServiceName)
	assert.Equal(t, "set by a transaction", res[2].Check.Notes)

	// A node CAS with a stale index fails; with the right one it works.
	errs := coreTxnFails(t, c, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.TxnCAS, Node: api.Node{
		Node: node, Address: "192.0.2.11", ModifyIndex: nodeIdx - 1,
	}}})
	assert.Equal(t, 0, errs[0].OpIndex)
	coreTxn(t, c, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.TxnCAS, Node: api.Node{
		Node: node, Address: "192.0.2.11", ModifyIndex: nodeIdx,
	}}})

	// Delete the check and the service, then the node.
	res = coreTxn(t, c,
		&api.TxnOp{Check: &api.CheckTxnOp{Verb: api.TxnDelete, Check: api.HealthCheck{Node: node, CheckID: "web-1-alive"}}},
		// Consul wants the service name with the ID for a delete.
		&api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.TxnDelete, Node: node, Service: api.AgentService{ID: "web-1", Service: "web"}}},
	)
	assert.Empty(t, res)
	errs = coreTxnFails(t, c, &api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.TxnGet, Node: node, Service: api.AgentService{ID: "web-1"}}})
	assert.Equal(t, 0, errs[0].OpIndex)
	errs = coreTxnFails(t, c, &api.TxnOp{Check: &api.CheckTxnOp{Verb: api.TxnGet, Check: api.HealthCheck{Node: node, CheckID: "web-1-alive"}}})
	assert.Equal(t, 0, errs[0].OpIndex)

	coreTxn(t, c, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.TxnDelete, Node: api.Node{Node: node}}})
	errs = coreTxnFails(t, c, &api.TxnOp{Node: &api.NodeTxnOp{Verb: api.TxnGet, Node: api.Node{Node: node}}})
	assert.Equal(t, 0, errs[0].OpIndex)
}

// TestTxnCheckReadBackRoundTrip: a check read from Consul (whose answer
// fills Interval and Timeout) can be sent back in a transaction, which
// refuses those fields.
func TestTxnCheckReadBackRoundTrip(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	svc := "txn-roundtrip-" + strings.ReplaceAll(t.Name(), "/", "-")
	_, err := c.Agent().ServiceRegister(ctx, &api.AgentServiceRegistration{
		ID: svc, Name: svc, Port: 1,
		Check: &api.AgentServiceCheck{TCP: "127.0.0.1:1", Interval: api.Duration(time.Minute), Timeout: api.Duration(time.Second)},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), svc, nil) })
	var chk *api.HealthCheck
	require.Eventually(t, func() bool {
		cs, _, err := c.Health().Checks(ctx, svc, nil)
		if err != nil || len(cs) == 0 {
			return false
		}
		chk = cs[0]
		return true
	}, 10*time.Second, 100*time.Millisecond)
	require.NotEmpty(t, chk.Interval, "Consul fills Interval in what it returns")
	// Read, then written back at its index (the read-modify-CAS pattern).
	resp, _, err := c.Txn().Do(ctx, api.TxnOps{{Check: &api.CheckTxnOp{Verb: api.TxnCAS, Check: *chk}}}, nil)
	require.NoError(t, err)
	require.Len(t, resp.Results, 1)
	require.NotNil(t, resp.Results[0].Check)
	assert.Equal(t, chk.CheckID, resp.Results[0].Check.CheckID)
}

// TestTxnGetTreeNeedsAKey: Consul rolls back every KV operation without a
// key but delete-tree ("Must provide key"), so a get-tree of the whole
// store is refused before sending, while a delete-tree of a prefix-less
// tree is still Consul's to apply.
func TestTxnGetTreeNeedsAKey(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: p + "a", Value: []byte("1")}, nil)
	require.NoError(t, err)

	_, _, err = c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: ""}}}, nil)
	assert.ErrorIs(t, err, api.ErrInvalid)
	var te *api.TxnError
	assert.False(t, errors.As(err, &te), "not sent, so not rolled back: %v", err)

	res, _, err := c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: p}}}, nil)
	require.NoError(t, err)
	require.Len(t, res.Results, 1)
	assert.Equal(t, p+"a", res.Results[0].KV.Key)
}
