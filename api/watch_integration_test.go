package api_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// coreKeyFetch is a blocking read of one key, for Watch.
func coreKeyFetch(c *api.Client, key string) api.BlockingFunc[*api.KVPair] {
	return func(ctx context.Context, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error) {
		return c.KV().Get(ctx, key, q)
	}
}

func coreValue(p *api.KVPair) string {
	if p == nil {
		return "<none>"
	}
	return string(p.Value)
}

// TestWatchKVIntegration: Watch sees every update of a key, in order, when
// the writer waits for each to be seen; when the writer does not wait it
// sees a subsequence that ends with the last value.
func TestWatchKVIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	key := corePrefix(t, c) + "watched"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	seen := make(chan string, 64)
	done := make(chan error, 1)
	go func() {
		done <- api.Watch(ctx, &api.QueryOptions{WaitTime: 30 * time.Second}, coreKeyFetch(c, key),
			func(p *api.KVPair, m *api.QueryMeta) error {
				seen <- coreValue(p)
				return nil
			})
	}()
	next := func() string {
		t.Helper()
		select {
		case v := <-seen:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("Watch saw no update")
			return ""
		}
	}

	assert.Equal(t, "<none>", next(), "the first result: the key does not exist yet")
	for i := 1; i <= 5; i++ {
		want := "v" + strconv.Itoa(i)
		_, err := c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte(want)}, nil)
		require.NoError(t, err)
		assert.Equal(t, want, next())
	}

	// Fast writes: what is seen is in order and ends with the last.
	for i := 6; i <= 15; i++ {
		_, err := c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte("v" + strconv.Itoa(i))}, nil)
		require.NoError(t, err)
	}
	last := 5
	for last < 15 {
		v := next()
		n, err := strconv.Atoi(v[1:])
		require.NoError(t, err, v)
		assert.Greater(t, n, last, "updates arrive in order")
		last = n
	}

	_, err := c.KV().Delete(ctx, key, nil)
	require.NoError(t, err)
	assert.Equal(t, "<none>", next(), "a delete is an update too")

	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not end with its context")
	}
}

// TestWatchChanIntegration: a reader that does not keep up gets the latest
// value, not a backlog; cancelling the context closes the channel and
// leaves no goroutine behind.
func TestWatchChanIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	key := corePrefix(t, c) + "coalesced"
	_, err := c.KV().Put(t.Context(), &api.KVPair{Key: key, Value: []byte("v0")}, nil)
	require.NoError(t, err)
	leakOpts := append(integration.LeakOptions(), goleak.IgnoreCurrent())

	var lastIndex atomic.Uint64
	fetch := func(ctx context.Context, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta, error) {
		p, m, err := c.KV().Get(ctx, key, q)
		if err == nil {
			lastIndex.Store(m.LastIndex)
		}
		return p, m, err
	}
	cause := errors.New("test over")
	ctx, cancel := context.WithCancelCause(t.Context())
	ch, wait := api.WatchChan(ctx, &api.QueryOptions{WaitTime: 30 * time.Second}, fetch)

	select {
	case p := <-ch:
		assert.Equal(t, "v0", coreValue(p))
	case <-time.After(10 * time.Second):
		t.Fatal("no first value")
	}

	// Five writes while nobody reads.
	for i := 1; i <= 5; i++ {
		_, err := c.KV().Put(t.Context(), &api.KVPair{Key: key, Value: []byte("v" + strconv.Itoa(i))}, nil)
		require.NoError(t, err)
	}
	_, meta, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lastIndex.Load() >= meta.LastIndex }, 10*time.Second, 10*time.Millisecond,
		"the watch catches up with the writes")

	// At most one stale value can sit in the channel, then the latest.
	var got []string
	for len(got) == 0 || got[len(got)-1] != "v5" {
		select {
		case p := <-ch:
			got = append(got, coreValue(p))
		case <-time.After(10 * time.Second):
			t.Fatalf("the latest value never arrived; got %v", got)
		}
	}
	assert.LessOrEqual(t, len(got), 2, "a slow reader is not handed a backlog: %v", got)

	cancel(cause)
	for range ch {
	}
	assert.Same(t, cause, wait())
	goleak.VerifyNone(t, leakOpts...)
}

// A Watch over a hash-based endpoint (Agent().Service) must report the
// service going away: Consul answers 404 without X-Consul-ContentHash, a
// result that differs from the last one delivered.
func TestWatchReportsADeregisteredAgentService(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	id := "watch-deregistered-svc"
	_, err := c.Agent().ServiceRegister(ctx, &api.AgentServiceRegistration{ID: id, Name: id, Port: 8080}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), id, nil) })

	fetch := func(ctx context.Context, q *api.QueryOptions) (*api.AgentService, *api.QueryMeta, error) {
		return c.Agent().Service(ctx, id, q)
	}
	ch, wait := api.WatchChan(ctx, &api.QueryOptions{WaitTime: 5 * time.Second}, fetch)

	select {
	case svc := <-ch:
		require.NotNil(t, svc, "first result: the registered service")
	case <-ctx.Done():
		t.Fatal("no first result")
	}
	_, err = c.Agent().ServiceDeregister(ctx, id, nil)
	require.NoError(t, err)

	deadline := time.After(8 * time.Second)
	for {
		select {
		case svc := <-ch:
			if svc == nil {
				cancel()
				_ = wait()
				return // the deregistration was reported
			}
		case <-deadline:
			cancel()
			_ = wait()
			t.Fatal("Watch never reported that the service was deregistered (Agent().Service now answers 404)")
		}
	}
}
