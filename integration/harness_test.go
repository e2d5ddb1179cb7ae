package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

func TestMain(m *testing.M) {
	if os.Getenv(envCrash) != "" {
		crash()
	}
	integration.Main(m)
}

// envCrash makes the test binary a run that crashes after starting an
// agent (see TestReaperRemovesWhatACrashedRunLeft).
const envCrash = "CONSULKIT_TEST_CRASH"

// crash starts an agent, says so on stdout, and panics, so that nothing
// is cleaned up by the process itself. With envCrash set to "stopped", the
// agent is the server of a one-server cluster, stopped before the crash
// (its data directory kept for a restart), and the line also names that
// directory (process mode).
func crash() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var a *integration.Agent
	var err error
	if os.Getenv(envCrash) == "stopped" {
		var cl *integration.Cluster
		if cl, err = integration.StartCluster(ctx, 1); err == nil {
			a = cl.Servers[0]
			err = cl.Stop(ctx, 0)
		}
	} else {
		a, err = integration.StartAgent(ctx, integration.WithName("crash"))
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(3)
	}
	fmt.Printf("agent %s owner %d dir %q\n", a.Addr, os.Getpid(), integration.DataDir(a))
	panic("crashing on purpose, leaving the agent behind")
}

func TestSharedAgentKVRoundTrip(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := t.Context()
	key := "test/" + t.Name()
	t.Cleanup(func() { _, _ = c.KV().Delete(context.Background(), key, nil) })

	_, err := c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte("hello"), Flags: 42}, nil)
	require.NoError(t, err)
	p, meta, err := c.KV().Get(ctx, key, nil)
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, []byte("hello"), p.Value)
	assert.Equal(t, uint64(42), p.Flags)
	assert.NotZero(t, meta.LastIndex)
	assert.True(t, meta.KnownLeader)

	_, err = c.KV().Delete(ctx, key, nil)
	require.NoError(t, err)
	p, _, err = c.KV().Get(ctx, key, nil)
	require.NoError(t, err)
	assert.Nil(t, p)
}

func TestACLAgentDeniesWriteWithoutPermission(t *testing.T) {
	a := integration.NewACLAgent(t)
	require.NotEmpty(t, a.Token)
	ctx := t.Context()

	// The management token may write.
	_, err := a.Client(t).KV().Put(ctx, &api.KVPair{Key: "acl/allowed", Value: []byte("x")}, nil)
	require.NoError(t, err)

	// The anonymous token has no permission under default deny.
	cfg := a.Config()
	cfg.Token = ""
	anon, err := api.NewClient(cfg)
	require.NoError(t, err)
	_, err = anon.KV().Put(ctx, &api.KVPair{Key: "acl/denied", Value: []byte("x")}, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 403, se.Code)
	assert.Equal(t, "PUT", se.Method)

	// An unknown token is "ACL not found", also a permission error.
	cfg.Token = "00000000-0000-4000-8000-000000000001"
	unknown, err := api.NewClient(cfg)
	require.NoError(t, err)
	_, err = unknown.KV().Put(ctx, &api.KVPair{Key: "acl/denied", Value: []byte("x")}, nil)
	assert.ErrorIs(t, err, api.ErrACLNotFound)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
}

func TestClusterElectsNewLeaderAfterLeaderStops(t *testing.T) {
	cl := integration.NewCluster(t, 3)
	ctx := t.Context()

	// A cluster handed out is ready for sessions on every server: the
	// leader has registered each node with its serfHealth check (without
	// it, creating a session fails with "Missing check 'serfHealth'
	// registration", which CI once hit).
	for i := range cl.Servers {
		c := cl.Client(t, i)
		id, _, err := c.Session().Create(ctx, &api.SessionEntry{TTL: 10 * time.Second}, nil)
		require.NoError(t, err, "server %d", i)
		_, err = c.Session().Destroy(ctx, id, nil)
		require.NoError(t, err)
	}

	leader, err := cl.Leader(ctx)
	require.NoError(t, err)
	// Polling the leader (as WaitLeader does, many times a second while a
	// failover takes) must not pile up connections: Consul refuses a
	// client address more than 200 of them, with 429s.
	for i := range 250 {
		_, err := cl.Leader(ctx, 0)
		require.NoError(t, err, "poll %d", i)
	}
	require.NoError(t, cl.Stop(ctx, leader))

	others := without(3, leader)
	next, err := cl.WaitLeader(ctx, others...)
	require.NoError(t, err)
	assert.NotEqual(t, leader, next)

	c := cl.Client(t, others[0])
	_, err = c.KV().Put(ctx, &api.KVPair{Key: "after-failover", Value: []byte("ok")}, nil)
	require.NoError(t, err)

	// The old leader rejoins as a follower and sees the write.
	require.NoError(t, cl.Start(ctx, leader))
	_, err = cl.WaitLeader(ctx)
	require.NoError(t, err)
	old := cl.Client(t, leader)
	require.Eventually(t, func() bool {
		p, _, err := old.KV().Get(ctx, "after-failover", &api.QueryOptions{Consistency: api.ConsistencyStale})
		return err == nil && p != nil && string(p.Value) == "ok"
	}, 30*time.Second, 100*time.Millisecond)
}

func TestPausedServerDoesNotAnswerUntilUnpaused(t *testing.T) {
	cl := integration.NewCluster(t, 3)
	ctx := t.Context()
	leader, err := cl.Leader(ctx)
	require.NoError(t, err)
	victim := without(3, leader)[0]
	c := cl.Client(t, victim)

	require.NoError(t, cl.Pause(ctx, victim))
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = c.Status().Leader(rctx, nil)
	cancel()
	require.Error(t, err, "a paused server answered")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, cl.Unpause(ctx, victim))
	require.Eventually(t, func() bool {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		l, err := c.Status().Leader(rctx, nil)
		return err == nil && l != ""
	}, 30*time.Second, 100*time.Millisecond)
}

func TestDisconnectedLeaderIsReplaced(t *testing.T) {
	cl := integration.NewCluster(t, 3)
	ctx := t.Context()
	leader, err := cl.Leader(ctx)
	require.NoError(t, err)

	err = cl.Disconnect(ctx, leader)
	if cl.Mode == integration.ModeProcess {
		// Processes on loopback share one network: there is nothing to cut.
		require.ErrorIs(t, err, integration.ErrUnsupported)
		t.Skip("process mode cannot cut a server off; docker mode runs this test")
	}
	require.NoError(t, err)
	next, err := cl.WaitLeader(ctx, without(3, leader)...)
	require.NoError(t, err)
	assert.NotEqual(t, leader, next)

	// The cut-off server still answers the test process but cannot write.
	cut := cl.Client(t, leader)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err = cut.KV().Put(wctx, &api.KVPair{Key: "cut", Value: []byte("x")}, nil)
	cancel()
	require.Error(t, err)
	assert.True(t, errors.Is(err, api.ErrNoLeader) || api.IsRetryable(err) || errors.Is(err, context.DeadlineExceeded), "unexpected error: %v", err)

	require.NoError(t, cl.Reconnect(ctx, leader))
	_, err = cl.WaitLeader(ctx)
	require.NoError(t, err)
}

func without(n, skip int) []int {
	var out []int
	for i := range n {
		if i != skip {
			out = append(out, i)
		}
	}
	return out
}

// TestRestartWaitsForItsPort: a restarted process keeps its ports, one of
// which may have been taken while it was stopped; Start then tries again
// until the port is free instead of failing with an exited agent.
func TestRestartWaitsForItsPort(t *testing.T) {
	a := integration.NewAgent(t)
	if a.Mode != integration.ModeProcess {
		t.Skip("containers have addresses of their own: only processes share ports with the test process; the process-mode run covers this")
	}
	ctx := t.Context()
	c := a.Client(t)
	_, err := c.KV().Put(ctx, &api.KVPair{Key: "before", Value: []byte("1")}, nil)
	require.NoError(t, err)
	require.NoError(t, a.Stop(ctx))

	ln, err := net.Listen("tcp", a.Addr)
	require.NoError(t, err)
	freed := time.AfterFunc(time.Second, func() { _ = ln.Close() })
	t.Cleanup(func() { freed.Stop(); _ = ln.Close() })
	require.NoError(t, a.Start(ctx))
	_, err = c.KV().Put(ctx, &api.KVPair{Key: "after", Value: []byte("1")}, nil)
	require.NoError(t, err)
}
