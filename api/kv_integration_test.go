package api_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

var corePrefixUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// corePrefix returns a KV prefix ("consulkit-test/<test name>-<random>/")
// that only this run of this test uses (a lock-delay left by an earlier run
// must not get in the way), and removes everything under it when the test
// ends.
func corePrefix(t *testing.T, c *api.Client) string {
	t.Helper()
	p := "consulkit-test/" + corePrefixUnsafe.ReplaceAllString(t.Name(), "_") + "-" +
		strconv.FormatUint(rand.Uint64(), 36) + "/"
	ctx := context.Background()
	_, err := c.KV().DeleteTree(ctx, p, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := c.KV().DeleteTree(context.Background(), p, nil); err != nil {
			t.Logf("cleanup %s: %v", p, err)
		}
	})
	return p
}

// coreSession creates a session for the test and destroys it at the end.
func coreSession(t *testing.T, c *api.Client, se *api.SessionEntry) string {
	t.Helper()
	if se == nil {
		se = &api.SessionEntry{}
	}
	if se.Name == "" {
		se.Name = t.Name()
	}
	id, _, err := c.Session().Create(t.Context(), se, nil)
	require.NoError(t, err)
	require.NotEmpty(t, id)
	t.Cleanup(func() {
		if _, err := c.Session().Destroy(context.Background(), id, nil); err != nil {
			t.Logf("cleanup session %s: %v", id, err)
		}
	})
	return id
}

func TestKVIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	kv := c.KV()
	ctx := t.Context()
	p := corePrefix(t, c)

	// Missing key: nil, no error, a usable index.
	pair, meta, err := kv.Get(ctx, p+"missing", nil)
	require.NoError(t, err)
	assert.Nil(t, pair)
	assert.NotZero(t, meta.LastIndex)

	// Put with flags, and a value that is not text.
	value := []byte("line 1\n\x00\xff binary")
	_, err = kv.Put(ctx, &api.KVPair{Key: p + "app/config", Value: value, Flags: 42}, nil)
	require.NoError(t, err)
	pair, meta, err = kv.Get(ctx, p+"app/config", nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, value, pair.Value)
	assert.Equal(t, uint64(42), pair.Flags)
	assert.Equal(t, pair.ModifyIndex, pair.CreateIndex)
	assert.GreaterOrEqual(t, meta.LastIndex, pair.ModifyIndex)
	assert.True(t, meta.KnownLeader)

	// A put without flags resets them.
	_, err = kv.Put(ctx, &api.KVPair{Key: p + "app/config", Value: []byte("v2")}, nil)
	require.NoError(t, err)
	pair, _, err = kv.Get(ctx, p+"app/config", &api.QueryOptions{Consistency: api.ConsistencyConsistent})
	require.NoError(t, err)
	assert.Equal(t, uint64(0), pair.Flags)
	assert.Equal(t, []byte("v2"), pair.Value)

	// Keys that need escaping, an empty value.
	for _, k := range []string{"app/db/primary", "app/db/replica", "app/with space?&#%", "top"} {
		_, err = kv.Put(ctx, &api.KVPair{Key: p + k, Value: []byte(k)}, nil)
		require.NoError(t, err, k)
	}
	_, err = kv.Put(ctx, &api.KVPair{Key: p + "empty"}, nil)
	require.NoError(t, err)
	pair, _, err = kv.Get(ctx, p+"app/with space?&#%", nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, "app/with space?&#%", string(pair.Value))
	pair, _, err = kv.Get(ctx, p+"empty", nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Value)

	// List.
	pairs, _, err := kv.List(ctx, p+"app/", nil)
	require.NoError(t, err)
	var keys []string
	for _, kp := range pairs {
		keys = append(keys, strings.TrimPrefix(kp.Key, p))
	}
	assert.Equal(t, []string{"app/config", "app/db/primary", "app/db/replica", "app/with space?&#%"}, keys)
	pairs, _, err = kv.List(ctx, p+"nothing-here/", nil)
	require.NoError(t, err)
	assert.Empty(t, pairs)

	// Keys, with and without a separator.
	ks, _, err := kv.Keys(ctx, p, "/", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{p + "app/", p + "empty", p + "top"}, ks)
	ks, _, err = kv.Keys(ctx, p+"app/", "", nil)
	require.NoError(t, err)
	assert.Len(t, ks, 4)
	ks, _, err = kv.Keys(ctx, p+"nothing-here/", "/", nil)
	require.NoError(t, err)
	assert.Empty(t, ks)

	// Stale reads work on a single agent too.
	pair, meta, err = kv.Get(ctx, p+"top", &api.QueryOptions{Consistency: api.ConsistencyStale})
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.NotZero(t, meta.LastIndex)

	// Delete: a missing key is not an error.
	_, err = kv.Delete(ctx, p+"top", nil)
	require.NoError(t, err)
	_, err = kv.Delete(ctx, p+"top", nil)
	require.NoError(t, err)
	pair, _, err = kv.Get(ctx, p+"top", nil)
	require.NoError(t, err)
	assert.Nil(t, pair)

	// Delete a tree.
	_, err = kv.DeleteTree(ctx, p+"app/db/", nil)
	require.NoError(t, err)
	ks, _, err = kv.Keys(ctx, p+"app/", "", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{p + "app/config", p + "app/with space?&#%"}, ks)
}

func TestKVCASIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	kv := c.KV()
	ctx := t.Context()
	key := corePrefix(t, c) + "counter"

	// Index 0: create only.
	ok, _, err := kv.CAS(ctx, &api.KVPair{Key: key, Value: []byte("1")}, nil)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _, err = kv.CAS(ctx, &api.KVPair{Key: key, Value: []byte("other")}, nil)
	require.NoError(t, err)
	assert.False(t, ok, "a create-only CAS on an existing key fails")

	pair, _, err := kv.Get(ctx, key, nil)
	require.NoError(t, err)
	stale := pair.ModifyIndex
	ok, _, err = kv.CAS(ctx, &api.KVPair{Key: key, Value: []byte("2"), ModifyIndex: pair.ModifyIndex, Flags: 5}, nil)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _, err = kv.CAS(ctx, &api.KVPair{Key: key, Value: []byte("3"), ModifyIndex: stale}, nil)
	require.NoError(t, err)
	assert.False(t, ok, "a CAS with a stale index fails")

	pair, _, err = kv.Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Equal(t, "2", string(pair.Value))
	assert.Equal(t, uint64(5), pair.Flags)

	// Delete-CAS.
	ok, _, err = kv.DeleteCAS(ctx, &api.KVPair{Key: key, ModifyIndex: stale}, nil)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, _, err = kv.DeleteCAS(ctx, &api.KVPair{Key: key, ModifyIndex: pair.ModifyIndex}, nil)
	require.NoError(t, err)
	assert.True(t, ok)
	pair, _, err = kv.Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Nil(t, pair)
}

func TestKVAcquireReleaseIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	kv := c.KV()
	ctx := t.Context()
	key := corePrefix(t, c) + "lock"
	s1 := coreSession(t, c, nil)
	s2 := coreSession(t, c, nil)

	ok, _, err := kv.Acquire(ctx, &api.KVPair{Key: key, Value: []byte("holder-1"), Session: s1, Flags: 9}, nil)
	require.NoError(t, err)
	require.True(t, ok)
	pair, _, err := kv.Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Equal(t, s1, pair.Session)
	assert.Equal(t, uint64(1), pair.LockIndex)
	assert.Equal(t, "holder-1", string(pair.Value))
	assert.Equal(t, uint64(9), pair.Flags)

	// Another session cannot take it, nor release it.
	ok, _, err = kv.Acquire(ctx, &api.KVPair{Key: key, Session: s2}, nil)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, _, err = kv.Release(ctx, &api.KVPair{Key: key, Session: s2}, nil)
	require.NoError(t, err)
	assert.False(t, ok)

	// The holder may acquire again (value update) without a new LockIndex.
	ok, _, err = kv.Acquire(ctx, &api.KVPair{Key: key, Value: []byte("holder-1b"), Session: s1}, nil)
	require.NoError(t, err)
	assert.True(t, ok)

	ok, _, err = kv.Release(ctx, &api.KVPair{Key: key, Value: []byte("free"), Session: s1}, nil)
	require.NoError(t, err)
	assert.True(t, ok)
	pair, _, err = kv.Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Empty(t, pair.Session)
	assert.Equal(t, uint64(1), pair.LockIndex)
	assert.Equal(t, "free", string(pair.Value))

	// A release is not a lock-delay: s2 can take it at once.
	ok, _, err = kv.Acquire(ctx, &api.KVPair{Key: key, Session: s2}, nil)
	require.NoError(t, err)
	assert.True(t, ok)
	pair, _, err = kv.Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Equal(t, s2, pair.Session)
	assert.Equal(t, uint64(2), pair.LockIndex)

	// An unknown session is refused by Consul.
	_, _, err = kv.Acquire(ctx, &api.KVPair{Key: key + "-2", Session: "00000000-0000-0000-0000-000000000000"}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
}

func TestKVBlockingGetIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	kv := c.KV()
	ctx := t.Context()
	key := corePrefix(t, c) + "watched"

	_, err := kv.Put(ctx, &api.KVPair{Key: key, Value: []byte("before")}, nil)
	require.NoError(t, err)
	_, meta, err := kv.Get(ctx, key, nil)
	require.NoError(t, err)

	type result struct {
		pair *api.KVPair
		meta *api.QueryMeta
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		p, m, err := kv.Get(ctx, key, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 30 * time.Second})
		done <- result{p, m, err, time.Since(start)}
	}()

	// The read must be parked until the write.
	select {
	case r := <-done:
		t.Fatalf("blocking Get returned before the Put: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	_, err = kv.Put(ctx, &api.KVPair{Key: key, Value: []byte("after")}, nil)
	require.NoError(t, err)

	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.NotNil(t, r.pair)
		assert.Equal(t, "after", string(r.pair.Value))
		assert.Greater(t, r.meta.LastIndex, meta.LastIndex)
		assert.Less(t, r.took, 10*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("blocking Get was not woken by the Put")
	}

	// A blocking read with nothing happening returns after its wait with
	// the same index.
	start := time.Now()
	_, meta2, err := kv.Get(ctx, key+"-quiet", &api.QueryOptions{WaitIndex: meta.LastIndex + 1000000, WaitTime: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond)
	assert.NotZero(t, meta2.LastIndex)
}

func TestKVErrorsIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := t.Context()
	p := corePrefix(t, c)

	// Values up to 512 KiB are stored; larger ones are refused before any
	// request.
	_, err := c.KV().Put(ctx, &api.KVPair{Key: p + "big", Value: make([]byte, api.MaxValueSize)}, nil)
	require.NoError(t, err, "exactly the limit is accepted")
	_, err = c.KV().Put(ctx, &api.KVPair{Key: p + "big", Value: make([]byte, api.MaxValueSize+1)}, nil)
	assert.ErrorIs(t, err, api.ErrInvalid, "caught before the request")

	// Consul's HTTP server redirects a path with an empty segment to the
	// cleaned one, another key: such keys are refused before any request.
	_, err = c.KV().Put(ctx, &api.KVPair{Key: p + "x//y", Value: []byte("v")}, nil)
	require.ErrorIs(t, err, api.ErrInvalid)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr+"/v1/kv/"+p+"x//y", nil)
	require.NoError(t, err)
	if a.Token != "" {
		req.Header.Set("X-Consul-Token", a.Token)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, "/v1/kv/"+p+"x/y", resp.Header.Get("Location"))
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// TestKVGetEmptiedAnswerIsAnError: a read whose 200 answer arrives empty
// (a broken proxy or connection) must not read as "no such key": a lock's
// watcher would take a held key for deleted. It is a retryable error.
func TestKVGetEmptiedAnswerIsAnError(t *testing.T) {
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	p := corePrefix(t, a.Client(t))
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: p + "k", Value: []byte("v")}, nil)
	require.NoError(t, err)

	emptied := ht.ReplaceNextBody(func(r *http.Request, resp *http.Response) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/k") && resp.StatusCode == http.StatusOK
	}, http.NoBody)
	pair, _, err := c.KV().Get(t.Context(), p+"k", nil)
	require.True(t, emptied(), "no answer was emptied")
	assert.Nil(t, pair)
	require.Error(t, err, "an emptied answer read as a missing key")
	assert.True(t, api.IsRetryable(err), "%v", err)

	pair, _, err = c.KV().Get(t.Context(), p+"k", nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Equal(t, "v", string(pair.Value))
}

// TestWriteEmptiedAnswerIsAnError: a write whose 200 answer arrives empty
// (a broken proxy or connection) was applied by Consul, yet the answer
// says nothing of it. It must not read as a result: a session created
// with its ID lost ("" and no error), a key acquired or written reported
// as refused (false and no error), left held or changed behind the
// caller's back. It is a retryable error, as for a read.
func TestWriteEmptiedAnswerIsAnError(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	ctx := t.Context()
	p := corePrefix(t, direct)
	sid := coreSession(t, direct, &api.SessionEntry{LockDelay: 0})
	empty := func(t *testing.T, ht *integration.HookTransport, path string) func() bool {
		t.Helper()
		return ht.ReplaceNextBody(func(r *http.Request, resp *http.Response) bool {
			return r.Method == http.MethodPut && r.URL.Path == path && resp.StatusCode == http.StatusOK
		}, http.NoBody)
	}

	t.Run("session create", func(t *testing.T) {
		c, ht := a.HookedClient(t)
		name := "emptied-" + strconv.FormatUint(rand.Uint64(), 36)
		emptied := empty(t, ht, "/v1/session/create")
		id, _, err := c.Session().Create(ctx, &api.SessionEntry{Name: name, TTL: time.Hour}, nil)
		require.True(t, emptied(), "no answer was emptied")
		list, _, lerr := direct.Session().List(ctx, nil)
		require.NoError(t, lerr)
		for _, s := range list {
			if s.Name == name {
				t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID, nil) })
			}
		}
		require.Error(t, err, "Consul created a session, the caller got ID %q", id)
		assert.True(t, api.IsRetryable(err), "%v", err)
	})

	t.Run("kv acquire", func(t *testing.T) {
		c, ht := a.HookedClient(t)
		emptied := empty(t, ht, "/v1/kv/"+p+"lock")
		ok, _, err := c.KV().Acquire(ctx, &api.KVPair{Key: p + "lock", Session: sid}, nil)
		require.True(t, emptied(), "no answer was emptied")
		pair, _, gerr := direct.KV().Get(ctx, p+"lock", nil)
		require.NoError(t, gerr)
		require.NotNil(t, pair)
		assert.Equal(t, sid, pair.Session, "Consul applied the acquisition")
		require.Error(t, err, "an acquisition Consul applied was reported as refused (ok=%v)", ok)
		assert.True(t, api.IsRetryable(err), "%v", err)
	})

	t.Run("kv cas", func(t *testing.T) {
		c, ht := a.HookedClient(t)
		emptied := empty(t, ht, "/v1/kv/"+p+"cas")
		ok, _, err := c.KV().CAS(ctx, &api.KVPair{Key: p + "cas", Value: []byte("v"), ModifyIndex: 0}, nil)
		require.True(t, emptied(), "no answer was emptied")
		pair, _, gerr := direct.KV().Get(ctx, p+"cas", nil)
		require.NoError(t, gerr)
		require.NotNil(t, pair, "Consul applied the write")
		require.Error(t, err, "a write Consul applied was reported as refused (ok=%v)", ok)
		assert.True(t, api.IsRetryable(err), "%v", err)
	})
}
