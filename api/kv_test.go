package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kvPairJSON is what Consul answers for a key (value "bar", held by a
// session).
const kvPairJSON = `[{"LockIndex":1,"Key":"app/config","Flags":42,"Value":"YmFy",` +
	`"Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","CreateIndex":12,"ModifyIndex":15}]`

func TestKVGet(t *testing.T) {
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "15", "X-Consul-KnownLeader": "true"}, Body: kvPairJSON})
	p, meta, err := c.KV().Get(t.Context(), "app/config", &QueryOptions{Consistency: ConsistencyConsistent, Token: "tok"})
	require.NoError(t, err)
	assert.Equal(t, &KVPair{
		Key: "app/config", CreateIndex: 12, ModifyIndex: 15, LockIndex: 1, Flags: 42,
		Value: []byte("bar"), Session: "adf4238a-882b-9ddc-4a9d-5b6758e4159e",
	}, p)
	assert.Equal(t, uint64(15), meta.LastIndex)
	assert.True(t, meta.KnownLeader)

	got := f.last(t)
	assert.Equal(t, http.MethodGet, got.Method)
	assert.Equal(t, "/v1/kv/app/config", got.RawPath)
	assert.Equal(t, "consistent", got.RawQuery)
	assert.Equal(t, "tok", got.Header.Get("X-Consul-Token"))
}

func TestKVGetEscapesKey(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: `[{"Key":"a b/c?d#e%f","Value":null}]`})
	p, _, err := c.KV().Get(t.Context(), "a b/c?d#e%f", nil)
	require.NoError(t, err)
	assert.Equal(t, "a b/c?d#e%f", p.Key)
	assert.Nil(t, p.Value)
	got := f.last(t)
	assert.Equal(t, "/v1/kv/a b/c?d#e%f", got.Path)
	assert.Equal(t, "/v1/kv/a%20b/c%3Fd%23e%25f", got.RawPath)
	assert.Empty(t, got.RawQuery)
}

func TestKVGetMissing(t *testing.T) {
	c, _ := newFake(t, fakeReply{Status: 404, Header: map[string]string{"X-Consul-Index": "88"}})
	p, meta, err := c.KV().Get(t.Context(), "nope", nil)
	require.NoError(t, err)
	assert.Nil(t, p)
	require.NotNil(t, meta)
	assert.Equal(t, uint64(88), meta.LastIndex, "the index of a missing key still drives a blocking query")
}

func TestKVGetBlocking(t *testing.T) {
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "16"}, Body: kvPairJSON})
	_, meta, err := c.KV().Get(t.Context(), "app/config", &QueryOptions{WaitIndex: 15, WaitTime: 30 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, uint64(16), meta.LastIndex)
	assert.Equal(t, "index=15&wait=30s", f.last(t).RawQuery)
}

func TestKVList(t *testing.T) {
	body := `[{"LockIndex":0,"Key":"app/a","Flags":0,"Value":"MQ==","CreateIndex":5,"ModifyIndex":5},` +
		`{"LockIndex":0,"Key":"app/b/c","Flags":3,"Value":null,"CreateIndex":6,"ModifyIndex":9}]`
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "9"}, Body: body})
	pairs, meta, err := c.KV().List(t.Context(), "app/", &QueryOptions{Consistency: ConsistencyStale})
	require.NoError(t, err)
	require.Len(t, pairs, 2)
	assert.Equal(t, "app/a", pairs[0].Key)
	assert.Equal(t, []byte("1"), pairs[0].Value)
	assert.Equal(t, uint64(3), pairs[1].Flags)
	assert.Equal(t, uint64(9), pairs[1].ModifyIndex)
	assert.Equal(t, uint64(9), meta.LastIndex)
	got := f.last(t)
	assert.Equal(t, "/v1/kv/app/", got.RawPath)
	assert.Equal(t, "recurse&stale", got.RawQuery)

	// Everything: an empty prefix.
	_, _, err = c.KV().List(t.Context(), "", nil)
	require.NoError(t, err)
	assert.Equal(t, "/v1/kv/", f.last(t).RawPath)

	f.reply(fakeReply{Status: 404, Header: map[string]string{"X-Consul-Index": "9"}})
	pairs, meta, err = c.KV().List(t.Context(), "none/", nil)
	require.NoError(t, err)
	assert.Empty(t, pairs)
	assert.Equal(t, uint64(9), meta.LastIndex)
}

func TestKVKeys(t *testing.T) {
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "30"}, Body: `["app/a","app/b/"]`})
	keys, meta, err := c.KV().Keys(t.Context(), "app/", "/", &QueryOptions{Datacenter: "dc2"})
	require.NoError(t, err)
	assert.Equal(t, []string{"app/a", "app/b/"}, keys)
	assert.Equal(t, uint64(30), meta.LastIndex)
	got := f.last(t)
	assert.Equal(t, "/v1/kv/app/", got.RawPath)
	assert.Equal(t, "dc=dc2&keys&separator=%2F", got.RawQuery)

	_, _, err = c.KV().Keys(t.Context(), "app/", "", nil)
	require.NoError(t, err)
	assert.Equal(t, "keys", f.last(t).RawQuery)

	f.reply(fakeReply{Status: 404, Header: map[string]string{"X-Consul-Index": "31"}})
	keys, meta, err = c.KV().Keys(t.Context(), "none/", "/", nil)
	require.NoError(t, err)
	assert.Nil(t, keys)
	assert.Equal(t, uint64(31), meta.LastIndex)
}

func TestKVWrites(t *testing.T) {
	const sess = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
	tests := []struct {
		name      string
		reply     string
		call      func(*KV) (bool, error)
		method    string
		rawPath   string
		rawQuery  string
		body      string // for PUT: the raw value
		wantOK    bool
		checkBody bool
	}{
		{
			name: "put",
			call: func(kv *KV) (bool, error) {
				_, err := kv.Put(t.Context(), &KVPair{Key: "app/config", Value: []byte("v=1\n\x00bin"), Flags: 42}, &WriteOptions{Token: "wt"})
				return true, err
			},
			reply: "true", method: "PUT", rawPath: "/v1/kv/app/config", rawQuery: "flags=42",
			body: "v=1\n\x00bin", checkBody: true, wantOK: true,
		},
		{
			name: "put without flags or value",
			call: func(kv *KV) (bool, error) {
				_, err := kv.Put(t.Context(), &KVPair{Key: "empty"}, nil)
				return true, err
			},
			reply: "true", method: "PUT", rawPath: "/v1/kv/empty", rawQuery: "", body: "", checkBody: true, wantOK: true,
		},
		{
			name: "cas succeeds",
			call: func(kv *KV) (bool, error) {
				ok, _, err := kv.CAS(t.Context(), &KVPair{Key: "k", Value: []byte("x"), ModifyIndex: 15}, nil)
				return ok, err
			},
			reply: "true", method: "PUT", rawPath: "/v1/kv/k", rawQuery: "cas=15", body: "x", checkBody: true, wantOK: true,
		},
		{
			name: "cas create-only fails",
			call: func(kv *KV) (bool, error) {
				ok, _, err := kv.CAS(t.Context(), &KVPair{Key: "k", Flags: 1}, nil)
				return ok, err
			},
			reply: "false\n", method: "PUT", rawPath: "/v1/kv/k", rawQuery: "cas=0&flags=1", wantOK: false,
		},
		{
			name: "acquire",
			call: func(kv *KV) (bool, error) {
				ok, _, err := kv.Acquire(t.Context(), &KVPair{Key: "lock", Value: []byte("me"), Session: sess}, nil)
				return ok, err
			},
			reply: "true", method: "PUT", rawPath: "/v1/kv/lock", rawQuery: "acquire=" + sess, body: "me", checkBody: true, wantOK: true,
		},
		{
			name: "acquire refused",
			call: func(kv *KV) (bool, error) {
				ok, _, err := kv.Acquire(t.Context(), &KVPair{Key: "lock", Session: sess, Flags: 7}, nil)
				return ok, err
			},
			reply: "false", method: "PUT", rawPath: "/v1/kv/lock", rawQuery: "acquire=" + sess + "&flags=7", wantOK: false,
		},
		{
			name: "release",
			call: func(kv *KV) (bool, error) {
				ok, _, err := kv.Release(t.Context(), &KVPair{Key: "lock", Session: sess}, nil)
				return ok, err
			},
			reply: "true", method: "PUT", rawPath: "/v1/kv/lock", rawQuery: "release=" + sess, wantOK: true,
		},
		{
			name: "delete",
			call: func(kv *KV) (bool, error) {
				_, err := kv.Delete(t.Context(), "a b", &WriteOptions{Datacenter: "dc3"})
				return true, err
			},
			reply: "true", method: "DELETE", rawPath: "/v1/kv/a%20b", rawQuery: "dc=dc3", wantOK: true,
		},
		{
			name: "delete-cas",
			call: func(kv *KV) (bool, error) {
				ok, _, err := kv.DeleteCAS(t.Context(), &KVPair{Key: "k", ModifyIndex: 99}, nil)
				return ok, err
			},
			reply: "false", method: "DELETE", rawPath: "/v1/kv/k", rawQuery: "cas=99", wantOK: false,
		},
		{
			name: "delete-tree",
			call: func(kv *KV) (bool, error) {
				_, err := kv.DeleteTree(t.Context(), "app/", nil)
				return true, err
			},
			reply: "true", method: "DELETE", rawPath: "/v1/kv/app/", rawQuery: "recurse", wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, fakeReply{Body: tt.reply})
			ok, err := tt.call(c.KV())
			require.NoError(t, err)
			assert.Equal(t, tt.wantOK, ok)
			got := f.last(t)
			assert.Equal(t, tt.method, got.Method)
			assert.Equal(t, tt.rawPath, got.RawPath)
			assert.Equal(t, tt.rawQuery, got.RawQuery)
			if tt.checkBody {
				assert.Equal(t, tt.body, string(got.Body))
			}
			if tt.method == http.MethodPut {
				assert.Equal(t, "application/octet-stream", got.Header.Get("Content-Type"))
			}
		})
	}
}

func TestKVPutToken(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: "true"})
	_, err := c.KV().Put(t.Context(), &KVPair{Key: "k"}, &WriteOptions{Token: "wt"})
	require.NoError(t, err)
	assert.Equal(t, "wt", f.last(t).Header.Get("X-Consul-Token"))
}

func TestKVMaxValue(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: "true"})
	_, err := c.KV().Put(t.Context(), &KVPair{Key: "big", Value: make([]byte, MaxValueSize)}, nil)
	require.NoError(t, err)
	assert.Len(t, f.last(t).Body, MaxValueSize)
}

func TestKVInvalid(t *testing.T) {
	big := make([]byte, MaxValueSize+1)
	tests := []struct {
		name  string
		call  func(*KV) error
		field string
	}{
		{name: "get empty", call: func(kv *KV) error { _, _, err := kv.Get(t.Context(), "", nil); return err }, field: "key"},
		{name: "get leading slash", call: func(kv *KV) error { _, _, err := kv.Get(t.Context(), "/a", nil); return err }, field: "key"},
		{name: "get control char", call: func(kv *KV) error { _, _, err := kv.Get(t.Context(), "a\nb", nil); return err }, field: "key"},
		{name: "get empty segment", call: func(kv *KV) error { _, _, err := kv.Get(t.Context(), "a//b", nil); return err }, field: "key"},
		{name: "get dot segment", call: func(kv *KV) error { _, _, err := kv.Get(t.Context(), "a/./b", nil); return err }, field: "key"},
		{name: "put dot-dot segment", call: func(kv *KV) error { _, err := kv.Put(t.Context(), &KVPair{Key: "a/../b"}, nil); return err }, field: "key"},
		{name: "put dot-dot", call: func(kv *KV) error { _, err := kv.Put(t.Context(), &KVPair{Key: ".."}, nil); return err }, field: "key"},
		{name: "delete trailing dot", call: func(kv *KV) error { _, err := kv.Delete(t.Context(), "a/.", nil); return err }, field: "key"},
		{name: "list double slash", call: func(kv *KV) error { _, _, err := kv.List(t.Context(), "a//", nil); return err }, field: "key"},
		{name: "list leading slash", call: func(kv *KV) error { _, _, err := kv.List(t.Context(), "/a", nil); return err }, field: "key"},
		{name: "keys control char", call: func(kv *KV) error { _, _, err := kv.Keys(t.Context(), "a\x00", "/", nil); return err }, field: "key"},
		{name: "put nil", call: func(kv *KV) error { _, err := kv.Put(t.Context(), nil, nil); return err }, field: "pair"},
		{name: "put empty key", call: func(kv *KV) error { _, err := kv.Put(t.Context(), &KVPair{}, nil); return err }, field: "key"},
		{name: "put too big", call: func(kv *KV) error { _, err := kv.Put(t.Context(), &KVPair{Key: "k", Value: big}, nil); return err }, field: "value"},
		{name: "cas nil", call: func(kv *KV) error { _, _, err := kv.CAS(t.Context(), nil, nil); return err }, field: "pair"},
		{name: "acquire nil", call: func(kv *KV) error { _, _, err := kv.Acquire(t.Context(), nil, nil); return err }, field: "pair"},
		{name: "acquire no session", call: func(kv *KV) error { _, _, err := kv.Acquire(t.Context(), &KVPair{Key: "k"}, nil); return err }, field: "session"},
		{name: "release nil", call: func(kv *KV) error { _, _, err := kv.Release(t.Context(), nil, nil); return err }, field: "pair"},
		{name: "release no session", call: func(kv *KV) error { _, _, err := kv.Release(t.Context(), &KVPair{Key: "k"}, nil); return err }, field: "session"},
		{name: "delete empty", call: func(kv *KV) error { _, err := kv.Delete(t.Context(), "", nil); return err }, field: "key"},
		{name: "delete-cas nil", call: func(kv *KV) error { _, _, err := kv.DeleteCAS(t.Context(), nil, nil); return err }, field: "pair"},
		{name: "delete-cas empty key", call: func(kv *KV) error { _, _, err := kv.DeleteCAS(t.Context(), &KVPair{}, nil); return err }, field: "key"},
		{name: "delete-tree everything", call: func(kv *KV) error { _, err := kv.DeleteTree(t.Context(), "", nil); return err }, field: "key"},
	}
	c, f := newFake(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(c.KV())
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
	assert.Empty(t, f.all(), "invalid input must not reach the server")
}

// TestKVUnusualKeys: keys that look like paths but are not rewritten by
// Consul's HTTP server are fine.
func TestKVUnusualKeys(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: "true"})
	for _, key := range []string{"dir/", "a.b", "..a", "a/.hidden", "a/b..", "x/...", "ünï/ç"} {
		t.Run(key, func(t *testing.T) {
			_, err := c.KV().Put(t.Context(), &KVPair{Key: key}, nil)
			require.NoError(t, err)
			assert.Equal(t, "/v1/kv/"+key, f.last(t).Path)
		})
	}
}

func TestKVErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		target error
	}{
		{name: "permission denied", status: 403, body: "Permission denied", target: ErrPermissionDenied},
		{name: "ACL not found", status: 403, body: "ACL not found", target: ErrACLNotFound},
		{name: "rate limited", status: 429, body: "", target: ErrRateLimited},
		{name: "no leader", status: 500, body: "No cluster leader", target: ErrNoLeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newFake(t, fakeReply{Status: tt.status, Body: tt.body})
			_, _, err := c.KV().Get(t.Context(), "k", nil)
			assert.ErrorIs(t, err, tt.target)
			_, err = c.KV().Put(t.Context(), &KVPair{Key: "k"}, nil)
			assert.ErrorIs(t, err, tt.target)
			_, _, err = c.KV().Keys(t.Context(), "k", "", nil)
			assert.ErrorIs(t, err, tt.target)
			_, err = c.KV().DeleteTree(t.Context(), "k", nil)
			assert.ErrorIs(t, err, tt.target)
		})
	}
	// A 413 for a value over the server's own limit is a plain StatusError.
	c, _ := newFake(t, fakeReply{Status: 413, Body: "Request body(600000 bytes) too large"})
	_, err := c.KV().Put(t.Context(), &KVPair{Key: "k", Value: []byte(strings.Repeat("x", 10))}, nil)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 413, se.Code)
}
