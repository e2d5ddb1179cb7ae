package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTxnEncodesOps(t *testing.T) {
	tests := []struct {
		name string
		op   *TxnOp
		want string
	}{
		{name: "kv set", op: &TxnOp{KV: &KVTxnOp{Verb: KVSet, Key: "a", Value: []byte("v"), Flags: 3}},
			want: `{"KV":{"Verb":"set","Key":"a","Value":"dg==","Flags":3}}`},
		{name: "kv cas", op: &TxnOp{KV: &KVTxnOp{Verb: KVCAS, Key: "a", Value: []byte("v"), Index: 12}},
			want: `{"KV":{"Verb":"cas","Key":"a","Value":"dg==","Index":12}}`},
		{name: "kv cas create", op: &TxnOp{KV: &KVTxnOp{Verb: KVCAS, Key: "a"}},
			want: `{"KV":{"Verb":"cas","Key":"a"}}`},
		{name: "kv lock", op: &TxnOp{KV: &KVTxnOp{Verb: KVLock, Key: "a", Session: "s1"}},
			want: `{"KV":{"Verb":"lock","Key":"a","Session":"s1"}}`},
		{name: "kv unlock", op: &TxnOp{KV: &KVTxnOp{Verb: KVUnlock, Key: "a", Session: "s1"}},
			want: `{"KV":{"Verb":"unlock","Key":"a","Session":"s1"}}`},
		{name: "kv get", op: &TxnOp{KV: &KVTxnOp{Verb: KVGet, Key: "a"}},
			want: `{"KV":{"Verb":"get","Key":"a"}}`},
		{name: "kv get-tree", op: &TxnOp{KV: &KVTxnOp{Verb: KVGetTree, Key: "dir/"}},
			want: `{"KV":{"Verb":"get-tree","Key":"dir/"}}`},
		{name: "kv check-session", op: &TxnOp{KV: &KVTxnOp{Verb: KVCheckSession, Key: "a", Session: "s1"}},
			want: `{"KV":{"Verb":"check-session","Key":"a","Session":"s1"}}`},
		{name: "kv check-index", op: &TxnOp{KV: &KVTxnOp{Verb: KVCheckIndex, Key: "a", Index: 7}},
			want: `{"KV":{"Verb":"check-index","Key":"a","Index":7}}`},
		{name: "kv check-not-exists", op: &TxnOp{KV: &KVTxnOp{Verb: KVCheckNotExists, Key: "a"}},
			want: `{"KV":{"Verb":"check-not-exists","Key":"a"}}`},
		{name: "kv delete", op: &TxnOp{KV: &KVTxnOp{Verb: KVDelete, Key: "a"}},
			want: `{"KV":{"Verb":"delete","Key":"a"}}`},
		{name: "kv delete-cas", op: &TxnOp{KV: &KVTxnOp{Verb: KVDeleteCAS, Key: "a", Index: 9}},
			want: `{"KV":{"Verb":"delete-cas","Key":"a","Index":9}}`},
		{name: "kv delete-tree", op: &TxnOp{KV: &KVTxnOp{Verb: KVDeleteTree, Key: "dir/", Namespace: "ns", Partition: "p"}},
			want: `{"KV":{"Verb":"delete-tree","Key":"dir/","Namespace":"ns","Partition":"p"}}`},
		{name: "node set", op: &TxnOp{Node: &NodeTxnOp{Verb: TxnSet, Node: Node{Node: "n1", Address: "10.0.0.1", Meta: map[string]string{"rack": "r1"}}}},
			want: `{"Node":{"Verb":"set","Node":{"Node":"n1","Address":"10.0.0.1","Meta":{"rack":"r1"}}}}`},
		{name: "node cas", op: &TxnOp{Node: &NodeTxnOp{Verb: TxnCAS, Node: Node{Node: "n1", Address: "10.0.0.2", ModifyIndex: 40}}},
			want: `{"Node":{"Verb":"cas","Node":{"Node":"n1","Address":"10.0.0.2","ModifyIndex":40}}}`},
		{name: "service set", op: &TxnOp{Service: &ServiceTxnOp{Verb: TxnSet, Node: "n1", Service: AgentService{ID: "web-1", Service: "web", Port: 80, Tags: []string{"v1"}}}},
			want: `{"Service":{"Verb":"set","Node":"n1","Service":{"ID":"web-1","Service":"web","Tags":["v1"],"Port":80,"Address":"",` +
				`"Weights":{"Passing":0,"Warning":0},"EnableTagOverride":false}}}`},
		{name: "check set", op: &TxnOp{Check: &CheckTxnOp{Verb: TxnSet, Check: HealthCheck{
			Node: "n1", CheckID: "web-alive", Name: "web alive", Status: HealthPassing, ServiceID: "web-1",
			Definition: HealthCheckDefinition{HTTP: "http://10.0.0.1/health", Interval: Duration(10 * time.Second)},
		}}},
			want: `{"Check":{"Verb":"set","Check":{"Node":"n1","CheckID":"web-alive","Name":"web alive","Status":"passing",` +
				`"Notes":"","Output":"","ServiceID":"web-1","ServiceName":"","ServiceTags":null,"Type":"",` +
				`"Definition":{"HTTP":"http://10.0.0.1/health","Interval":"10s"},"CreateIndex":0,"ModifyIndex":0}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, fakeReply{Body: `{"Results":[],"Errors":null}`})
			_, _, err := c.Txn().Do(t.Context(), TxnOps{tt.op}, nil)
			require.NoError(t, err)
			got := f.last(t)
			assert.Equal(t, http.MethodPut, got.Method)
			assert.Equal(t, "/v1/txn", got.Path)
			assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
			assert.JSONEq(t, "["+tt.want+"]", string(got.Body))
		})
	}
}

// TestSessionTxnOpJSON: the session operation's wire form carries only
// what identifies the session.
func TestSessionTxnOpJSON(t *testing.T) {
	b, err := json.Marshal(&TxnOp{Session: &SessionTxnOp{Verb: TxnDelete, Session: SessionEntry{ID: "s1", Name: "ignored", TTL: time.Minute}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Session":{"Verb":"delete","Session":{"ID":"s1"}}}`, string(b))
}

func TestTxnResults(t *testing.T) {
	body := `{"Results":[` +
		`{"KV":{"LockIndex":0,"Key":"a","Flags":3,"Value":null,"CreateIndex":20,"ModifyIndex":21}},` +
		`{"KV":{"LockIndex":1,"Key":"b","Flags":0,"Value":"Yg==","Session":"s1","CreateIndex":5,"ModifyIndex":22}},` +
		`{"Node":{"ID":"","Node":"n1","Address":"10.0.0.1","Datacenter":"dc1","TaggedAddresses":null,"Meta":{"rack":"r1"},"CreateIndex":30,"ModifyIndex":30}},` +
		`{"Service":{"ID":"web-1","Service":"web","Tags":["v1"],"Address":"","Meta":null,"Port":80,"Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"CreateIndex":31,"ModifyIndex":31}},` +
		`{"Check":{"Node":"n1","CheckID":"web-alive","Name":"web alive","Status":"passing","Notes":"","Output":"","ServiceID":"web-1","ServiceName":"web",` +
		`"ServiceTags":["v1"],"Type":"http","Interval":"10s","Timeout":"","Definition":{"HTTP":"http://10.0.0.1/health","Interval":"10s","Timeout":"0s","DeregisterCriticalServiceAfter":"0s"},"CreateIndex":32,"ModifyIndex":32}}` +
		`],"Errors":null}`
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "32"}, Body: body})
	resp, meta, err := c.Txn().Do(t.Context(), TxnOps{
		{KV: &KVTxnOp{Verb: KVSet, Key: "a", Flags: 3}},
		{KV: &KVTxnOp{Verb: KVGet, Key: "b"}},
		{Node: &NodeTxnOp{Verb: TxnGet, Node: Node{Node: "n1"}}},
		{Service: &ServiceTxnOp{Verb: TxnGet, Node: "n1", Service: AgentService{ID: "web-1"}}},
		{Check: &CheckTxnOp{Verb: TxnGet, Check: HealthCheck{Node: "n1", CheckID: "web-alive"}}},
	}, &WriteOptions{Token: "wt", Datacenter: "dc1"})
	require.NoError(t, err)
	require.NotNil(t, meta)
	require.Len(t, resp.Results, 5)
	assert.Equal(t, &KVPair{Key: "a", Flags: 3, CreateIndex: 20, ModifyIndex: 21}, resp.Results[0].KV)
	assert.Equal(t, &KVPair{Key: "b", Value: []byte("b"), Session: "s1", LockIndex: 1, CreateIndex: 5, ModifyIndex: 22}, resp.Results[1].KV)
	assert.Equal(t, &Node{Node: "n1", Address: "10.0.0.1", Datacenter: "dc1", Meta: map[string]string{"rack": "r1"}, CreateIndex: 30, ModifyIndex: 30}, resp.Results[2].Node)
	assert.Equal(t, "web", resp.Results[3].Service.Service)
	assert.Equal(t, AgentWeights{Passing: 1, Warning: 1}, resp.Results[3].Service.Weights)
	ch := resp.Results[4].Check
	require.NotNil(t, ch)
	assert.Equal(t, "web-alive", ch.CheckID)
	assert.Equal(t, Duration(10*time.Second), ch.Definition.Interval)
	assert.Equal(t, "http://10.0.0.1/health", ch.Definition.HTTP)

	got := f.last(t)
	assert.Equal(t, "wt", got.Header.Get("X-Consul-Token"))
	assert.Equal(t, "dc=dc1", got.RawQuery)
}

func TestTxnRolledBack(t *testing.T) {
	body := `{"Results":null,"Errors":[{"OpIndex":1,"What":"failed to lock key \"b\": lock is already held"},` +
		`{"OpIndex":2,"What":"current modify index 12 != 7"}]}`
	c, _ := newFake(t, fakeReply{Status: http.StatusConflict, Body: body})
	resp, meta, err := c.Txn().Do(t.Context(), TxnOps{
		{KV: &KVTxnOp{Verb: KVSet, Key: "a"}},
		{KV: &KVTxnOp{Verb: KVLock, Key: "b", Session: "s1"}},
		{KV: &KVTxnOp{Verb: KVCheckIndex, Key: "c", Index: 7}},
	}, nil)
	assert.Nil(t, resp)
	assert.NotNil(t, meta)
	var te *TxnError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, []TxnOpError{
		{OpIndex: 1, What: `failed to lock key "b": lock is already held`},
		{OpIndex: 2, What: "current modify index 12 != 7"},
	}, te.Errors)
	assert.False(t, IsRetryable(err))
	assert.NotErrorIs(t, err, ErrNotFound)
}

func TestTxnStatusErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		check  func(*testing.T, error)
	}{
		{name: "too large", status: 413, body: "Transaction contains too many operations (129 > 128)", check: func(t *testing.T, err error) {
			var se *StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, 413, se.Code)
		}},
		{name: "permission denied", status: 403, body: "Permission denied", check: func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrPermissionDenied)
		}},
		{name: "no leader", status: 500, body: "No cluster leader", check: func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrNoLeader)
			assert.True(t, IsRetryable(err))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFake(t, fakeReply{Status: tt.status, Body: tt.body})
			_, _, err := c.Txn().Do(t.Context(), TxnOps{{KV: &KVTxnOp{Verb: KVGet, Key: "a"}}}, nil)
			tt.check(t, err)
		})
	}
}

func TestTxnInvalid(t *testing.T) {
	many := make(TxnOps, MaxTxnOps+1)
	for i := range many {
		many[i] = &TxnOp{KV: &KVTxnOp{Verb: KVGet, Key: "a"}}
	}
	tests := []struct {
		name  string
		ops   TxnOps
		field string
	}{
		{name: "empty", ops: nil, field: "ops"},
		{name: "too many", ops: many, field: "ops"},
		{name: "nil op", ops: TxnOps{{KV: &KVTxnOp{Verb: KVGet, Key: "a"}}, nil}, field: "ops[1]"},
		{name: "no field", ops: TxnOps{{}}, field: "ops[0]"},
		{name: "two fields", ops: TxnOps{{KV: &KVTxnOp{Verb: KVGet, Key: "a"}, Node: &NodeTxnOp{Verb: TxnGet}}}, field: "ops[0]"},
		{name: "empty verb", ops: TxnOps{{KV: &KVTxnOp{Key: "a"}}}, field: "ops[0].KV.Verb"},
		{name: "empty key", ops: TxnOps{{KV: &KVTxnOp{Verb: KVSet}}}, field: "ops[0].KV.key"},
		{name: "empty segment", ops: TxnOps{{KV: &KVTxnOp{Verb: KVSet, Key: "a//b"}}}, field: "ops[0].KV.key"},
		{name: "leading slash", ops: TxnOps{{KV: &KVTxnOp{Verb: KVGetTree, Key: "/a"}}}, field: "ops[0].KV.key"},
		{name: "value too big", ops: TxnOps{{KV: &KVTxnOp{Verb: KVSet, Key: "a", Value: make([]byte, MaxValueSize+1)}}}, field: "ops[0].KV.value"},
		// Base64-encoded, a 400 KiB value makes the request too large.
		{name: "encoded too big", ops: TxnOps{{KV: &KVTxnOp{Verb: KVSet, Key: "a", Value: make([]byte, 400<<10)}}}, field: "ops"},
		{name: "lock without session", ops: TxnOps{{KV: &KVTxnOp{Verb: KVLock, Key: "a"}}}, field: "ops[0].KV.Session"},
		{name: "unlock without session", ops: TxnOps{{KV: &KVTxnOp{Verb: KVUnlock, Key: "a"}}}, field: "ops[0].KV.Session"},
		{name: "check-session without session", ops: TxnOps{{KV: &KVTxnOp{Verb: KVCheckSession, Key: "a"}}}, field: "ops[0].KV.Session"},
		{name: "node op without verb", ops: TxnOps{{Node: &NodeTxnOp{Node: Node{Node: "n1"}}}}, field: "ops[0].Node.Verb"},
		{name: "node op without node", ops: TxnOps{{Node: &NodeTxnOp{Verb: TxnGet}}}, field: "ops[0].Node.Node.Node"},
		{name: "service op without node", ops: TxnOps{{Service: &ServiceTxnOp{Verb: TxnGet, Service: AgentService{ID: "web"}}}}, field: "ops[0].Service.Node"},
		{name: "check op without verb", ops: TxnOps{{Check: &CheckTxnOp{Check: HealthCheck{Node: "n1", CheckID: "c"}}}}, field: "ops[0].Check.Verb"},
		{name: "check op without node", ops: TxnOps{{Check: &CheckTxnOp{Verb: TxnGet, Check: HealthCheck{CheckID: "c"}}}}, field: "ops[0].Check.Check.Node"},
		{name: "get-tree of the whole store", ops: TxnOps{{KV: &KVTxnOp{Verb: KVGetTree, Key: ""}}}, field: "ops[0].KV.key"},
		{name: "session op", ops: TxnOps{{KV: &KVTxnOp{Verb: KVGet, Key: "a"}}, {Session: &SessionTxnOp{Verb: TxnDelete, Session: SessionEntry{ID: "s1"}}}}, field: "ops[1].Session"},
	}
	c, f := newFake(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.Txn().Do(t.Context(), tt.ops, nil)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.Equal(t, err, ValidateTxn(tt.ops), "ValidateTxn tells what Do refuses")
		})
	}
	assert.Empty(t, f.all())
	assert.NoError(t, ValidateTxn(TxnOps{{KV: &KVTxnOp{Verb: KVSet, Key: "a", Value: make([]byte, 380<<10)}}}))

	// delete-tree may name the whole store; get-tree may not (Consul
	// rolls it back: "Must provide key").
	f.reply(fakeReply{Body: `{"Results":[]}`})
	_, _, err := c.Txn().Do(t.Context(), TxnOps{
		{KV: &KVTxnOp{Verb: KVGetTree, Key: "a/"}},
		{KV: &KVTxnOp{Verb: KVDeleteTree, Key: ""}},
	}, nil)
	require.NoError(t, err)
	var sent []map[string]map[string]any
	require.NoError(t, json.Unmarshal(f.last(t).Body, &sent))
	assert.Equal(t, "", sent[1]["KV"]["Key"])

	// MaxTxnOps operations are fine.
	_, _, err = c.Txn().Do(t.Context(), many[:MaxTxnOps], nil)
	require.NoError(t, err)
	assert.Equal(t, MaxTxnOps, strings.Count(string(f.last(t).Body), `"Verb"`))
}

// TestTxnRefusalCutShort: a 409 whose body is cut off by the connection
// is a transport fault, retryable like any other, not a refusal of
// unknown cause (which a caller would take as permanent).
func TestTxnRefusalCutShort(t *testing.T) {
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"Errors":`)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = buf.Flush()
			_ = conn.Close()
		}
	})
	_, _, err := c.Txn().Do(t.Context(), TxnOps{{KV: &KVTxnOp{Verb: KVGet, Key: "a"}}}, nil)
	require.Error(t, err)
	var se *StatusError
	assert.False(t, errors.As(err, &se), "%v", err)
	assert.True(t, IsRetryable(err), "%v", err)

	// A 409 read whole that is not Consul's JSON stays a StatusError.
	c, _ = newFake(t, fakeReply{Status: http.StatusConflict, Body: "not json"})
	_, _, err = c.Txn().Do(t.Context(), TxnOps{{KV: &KVTxnOp{Verb: KVGet, Key: "a"}}}, nil)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusConflict, se.Code)
	assert.Equal(t, "not json", se.Body)
}
