package integration

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
)

// proxyHandlers counts the FaultProxy handlers running.
func proxyHandlers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "integration.NewFaultProxy.func")
}

// TestDelayedWriteIsDroppedByClose: a write delayed by SetDelay whose
// client gave up, through a proxy closed since, must not reach the agent
// later, and Close must not return while a request is still in the proxy.
// net/http does not see the client of a request with an unread body go
// away: the write was forwarded once the delay ended, after Close had
// returned (into the next test, on the shared agent), and its handler
// outlived Close (goleak then failed the package).
func TestDelayedWriteIsDroppedByClose(t *testing.T) {
	a := Shared(t)
	direct := a.Client(t)
	key := a.KeyPrefix(t, "integration") + "/late"
	p := NewFaultProxy(t, a.Addr)
	cfg := a.Config()
	cfg.Address = p.Addr
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	defer c.CloseIdleConnections()

	p.SetDelay(2 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte("x")}, nil)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	p.Close()
	assert.Zero(t, proxyHandlers(), "proxy handlers running after Close")

	time.Sleep(3 * time.Second)
	pair, _, err := direct.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	assert.Nil(t, pair, "a write given up on, through a proxy closed since, reached the agent after Close returned")
}
