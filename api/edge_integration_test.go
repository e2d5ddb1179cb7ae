package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
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

// A KV value of exactly MaxValueSize is accepted by KV().Put (Consul's
// limit is inclusive).
func TestEdgeKVMaxValueIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	v := bytes.Repeat([]byte{'x'}, api.MaxValueSize)
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: p + "big", Value: v}, nil)
	require.NoError(t, err)
}

// Txn.Do once validated each value against MaxValueSize only; Consul
// limits the whole request body (txn_max_req_len, 512 KiB by default),
// where values travel base64-encoded. Input that validation lets through
// must not be refused by Consul: it is a *ValidationError before sending.
func TestEdgeTxnValueSizeIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	for _, n := range []int{400 << 10, api.MaxValueSize} {
		v := bytes.Repeat([]byte{'x'}, n)
		_, _, err := c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: p + "big", Value: v}}}, nil)
		if err != nil {
			var se *api.StatusError
			if errors.As(err, &se) {
				t.Errorf("value of %d bytes passed validation but Consul refused it: %v", n, err)
				continue
			}
			assert.ErrorIs(t, err, api.ErrInvalid, "value of %d bytes", n)
		}
	}
	// Several values, each well under the limit.
	var ops api.TxnOps
	for i := 0; i < 4; i++ {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: p + "k" + string(rune('a'+i)), Value: bytes.Repeat([]byte{'y'}, 200<<10)}})
	}
	_, _, err := c.Txn().Do(t.Context(), ops, nil)
	if err != nil {
		var se *api.StatusError
		if errors.As(err, &se) {
			t.Errorf("4 values of 200 KiB passed validation but Consul refused them: %v", err)
		}
	}
}

// Keys that ValidateKey accepts must round-trip: what List/Keys return is
// the key that was written.
func TestEdgeKeyRoundTripIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	keys := []string{"sp ace", "pct%41", "q?x=1", "hash#x", "plus+x", "semi;x", "uni-ünï-ç-日本", "tail ", "bs\\x", "bad-\xff-utf8", "c1-\u0085-x", "ls-\u2028-x"}
	for _, k := range keys {
		if err := api.ValidateKey(p + k); err != nil {
			t.Logf("%q refused: %v", k, err)
			continue
		}
		_, err := c.KV().Put(t.Context(), &api.KVPair{Key: p + k, Value: []byte(k)}, nil)
		if !assert.NoError(t, err, "%q", k) {
			continue
		}
		pair, _, err := c.KV().Get(t.Context(), p+k, nil)
		require.NoError(t, err)
		if assert.NotNil(t, pair, "%q", k) {
			assert.Equal(t, p+k, pair.Key, "Get: key read back differs for %q", k)
		}
		pairs, _, err := c.KV().List(t.Context(), p+k, nil)
		require.NoError(t, err)
		found := false
		for _, kp := range pairs {
			if kp.Key == p+k {
				found = true
			}
		}
		assert.True(t, found, "List(%q) does not return the key as written: %v", k, pairKeys(pairs))
		_, err = c.KV().Delete(t.Context(), p+k, nil)
		require.NoError(t, err)
	}
}

func pairKeys(ps api.KVPairs) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

// Acquire with a session that does not exist: Consul answers 500, which
// retrying cannot fix; it matches ErrInvalidSession and is not retryable.
func TestEdgeAcquireInvalidSessionIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	p := corePrefix(t, c)
	_, _, err := c.KV().Acquire(t.Context(), &api.KVPair{Key: p + "l", Session: "00000000-0000-0000-0000-000000000001"}, nil)
	require.Error(t, err)
	t.Logf("acquire with unknown session: %v (retryable=%v)", err, api.IsRetryable(err))
	assert.ErrorIs(t, err, api.ErrInvalidSession)
	assert.False(t, api.IsRetryable(err), "an unknown session will not come back by retrying")
}

// rawRequest sends a request to a as it is, outside the api package.
func rawRequest(t *testing.T, a *integration.Agent, method, path string, body []byte) (int, string) {
	t.Helper()
	addr := a.Config().Address
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	req, err := http.NewRequestWithContext(t.Context(), method, addr+path, bytes.NewReader(body))
	require.NoError(t, err)
	if tok := a.Config().Token; tok != "" {
		req.Header.Set("X-Consul-Token", tok)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A key holding a rune unicode.IsPrint refuses can exist (any client may
// write it through /v1/txn, whose body Consul's URL filter never sees) and
// is listed back. It must stay reachable through a transaction, the only
// way to name it alone: only verbs that may create a key refuse it.
func TestEdgeTxnReachesANonPrintableKeyIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	p := corePrefix(t, c)
	for _, key := range []string{p + "nbsp\u00a0x", p + "family\U0001F468\u200D\U0001F469"} {
		body, err := json.Marshal([]map[string]any{{"KV": map[string]any{"Verb": "set", "Key": key, "Value": base64.StdEncoding.EncodeToString([]byte("v"))}}})
		require.NoError(t, err)
		code, resp := rawRequest(t, a, http.MethodPut, "/v1/txn", body)
		require.Equal(t, http.StatusOK, code, "Consul refused the txn set: %s", resp)

		_, _, err = c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key}}}, nil)
		assert.ErrorIs(t, err, api.ErrInvalid, "a set could create a key /v1/kv cannot read")
		resp2, _, err := c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGet, Key: key}}}, nil)
		require.NoError(t, err, "txn get of a key Consul holds")
		require.Len(t, resp2.Results, 1)
		assert.Equal(t, []byte("v"), resp2.Results[0].KV.Value)
		_, _, err = c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: key}}}, nil)
		require.NoError(t, err, "txn delete of a key Consul holds")
		pairs, _, err := c.KV().List(t.Context(), p, nil)
		require.NoError(t, err)
		for _, kv := range pairs {
			assert.NotEqual(t, key, kv.Key, "not deleted")
		}
	}
}

// A key that is not valid UTF-8, named in a transaction verb that does
// not create keys, is refused before sending: encoding/json would send it
// with U+FFFD in place of the bad bytes, and the operation would act on
// another key (a delete of "x\xffy" deleted "x\uFFFDy").
func TestEdgeTxnInvalidUTF8KeyIsRefused(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	p := corePrefix(t, c)
	other := p + "x\uFFFDy"
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: other, Value: []byte("keep me")}, nil)
	require.NoError(t, err)
	_, _, err = c.Txn().Do(t.Context(), api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: p + "x\xffy"}}}, nil)
	assert.ErrorIs(t, err, api.ErrInvalid, "invalid UTF-8 must be refused before sending")
	pair, _, err := c.KV().Get(t.Context(), other, nil)
	require.NoError(t, err)
	assert.NotNil(t, pair, "the delete of an invalid-UTF-8 key removed %q", other)
}
