package holder

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/consulkit/consulkit/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTxnBoundIsAnUpperBound: the bound that lets ValueFits skip encoding
// is never below the encoded size, keys that JSON escapes included.
func TestTxnBoundIsAnUpperBound(t *testing.T) {
	keys := []string{"k", "jobs/nightly", strings.Repeat("<>&", 300), "ключ/\u2028é", strings.Repeat("a", 4000)}
	for _, key := range keys {
		for _, n := range []int{0, 1, 2, 3, 1000, 300 << 10} {
			ops := api.TxnOps{
				{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: math.MaxUint64}},
				{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: make([]byte, n), Flags: math.MaxUint64, Session: PlaceholderSession}},
				{KV: &api.KVTxnOp{Verb: api.KVGet, Key: key}},
			}
			b, err := json.Marshal(ops)
			assert.NoError(t, err)
			assert.GreaterOrEqual(t, txnBound(ops), len(b), "key %.20q, value %d bytes", key, n)
		}
	}
	assert.Equal(t, math.MaxInt, txnBound(api.TxnOps{{Node: &api.NodeTxnOp{}}}))
}

// TestValueFitsAsConsulWould: near the limit, ValueFits says what
// api.ValidateTxn says.
func TestValueFitsAsConsulWould(t *testing.T) {
	for _, n := range []int{380 << 10, 392_000, 393_000, 400 << 10} {
		v := make([]byte, n)
		ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVLock, Key: "k", Value: v, Session: PlaceholderSession}}}
		err := ValueFits(v, ops)
		if api.ValidateTxn(ops) == nil {
			assert.NoError(t, err, "%d bytes", n)
		} else {
			assert.ErrorIs(t, err, api.ErrInvalid, "%d bytes", n)
		}
	}
}
