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

// TestDelayedWriteFailsWhenCloseDropsIt: a write held by SetDelay whose
// client still waits when the proxy closes fails: the proxy never
// forwarded it. Its handler returned when Close ended the request, and
// net/http answered 200 with an empty body, which the client took for a
// write done.
func TestDelayedWriteFailsWhenCloseDropsIt(t *testing.T) {
	a := Shared(t)
	direct := a.Client(t)
	key := a.KeyPrefix(t, "integration") + "/dropped"
	// net/http's answer races with Close closing the connection: a few
	// tries.
	for range 5 {
		c, p := a.ProxiedClient(t)
		p.SetDelay(time.Minute)
		done := make(chan error, 1)
		go func() {
			_, err := c.KV().Put(context.Background(), &api.KVPair{Key: key, Value: []byte("x")}, nil)
			done <- err
		}()
		require.Eventually(t, func() bool { return p.Requests() == 1 }, 5*time.Second, 10*time.Millisecond)
		p.Close()
		select {
		case err := <-done:
			require.Error(t, err, "a write the proxy dropped at Close was reported done")
		case <-time.After(10 * time.Second):
			t.Fatal("the write still waits after Close")
		}
		c.CloseIdleConnections()
	}
	pair, _, err := direct.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	assert.Nil(t, pair)
}

// TestHungReadFailsWhenTheFaultChanges: a request hung by Hang fails when
// the fault changes, as Hang says, and is not sent again. A read (a GET,
// which net/http's transport may send again) on a connection used before
// was sent again once the proxy dropped the connection before any byte of
// an answer, and passed under the new fault: the hung read succeeded and
// the proxy counted it twice.
func TestHungReadFailsWhenTheFaultChanges(t *testing.T) {
	a := Shared(t)
	key := a.KeyPrefix(t, "integration") + "/hung"
	c, p := a.ProxiedClient(t)
	defer c.CloseIdleConnections()
	_, _, err := c.KV().Get(t.Context(), key, nil) // a connection to reuse
	require.NoError(t, err)

	p.Set(Hang)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.KV().Get(t.Context(), key, nil)
		done <- err
	}()
	require.Eventually(t, func() bool { return p.Requests() == 2 }, 5*time.Second, 10*time.Millisecond)
	p.Set(Pass)
	select {
	case err := <-done:
		require.Error(t, err, "a read hung by Hang succeeded once the fault changed")
	case <-time.After(10 * time.Second):
		t.Fatal("the hung read still waits after the fault changed")
	}
	assert.Equal(t, int64(2), p.Requests(), "the hung read was sent again")
}
