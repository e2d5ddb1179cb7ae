package main

import (
	"bufio"
	"context"
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

func TestMain(m *testing.M) { integration.Main(m) }

func TestDevStartsAnAgentAndRemovesItOnInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev"}, pw, io.Discard)
		_ = pw.Close()
	}()

	var addr string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export CONSUL_HTTP_ADDR="); ok {
			addr = v
			break
		}
	}
	require.NotEmpty(t, addr, "dev printed no address")
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	hc := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	resp, err := hc.Get("http://" + addr + "/v1/status/leader")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel() // as Ctrl-C does
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop")
	}
	hc.CloseIdleConnections()
	assertNoAgent(t, addr, "dev")
}

// assertNoAgent asserts that no Consul agent answers at addr any more,
// after what started it stopped. (Traffic to a removed network can reach
// a gateway that answers 404 itself, so it looks for a working agent
// rather than for a dial error.)
func assertNoAgent(t *testing.T, addr, after string) {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: addr})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	rctx, rcancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer rcancel()
	leader, err := c.Status().Leader(rctx, nil)
	assert.Error(t, err, "an agent still answers after %s stopped (leader %q)", after, leader)
}

// TestDevInterruptedWhileStarting: Ctrl-C before the agent is up is a
// stop, not a failure: dev returns nil (exit status 0) once what it
// started is removed.
func TestDevInterruptedWhileStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // as Ctrl-C does, here before anything could start
	var stderr strings.Builder
	require.NoError(t, run(ctx, []string{"dev"}, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "interrupted")
}

func TestUnknownCommand(t *testing.T) {
	assert.Error(t, run(t.Context(), nil, io.Discard, io.Discard))
	assert.Error(t, run(t.Context(), []string{"nope"}, io.Discard, io.Discard))
	assert.NoError(t, run(t.Context(), []string{"help"}, io.Discard, io.Discard))
}

// TestDevRefusesArguments: dev takes flags only; "consulkit dev acl" (the
// dash forgotten) must be bad usage, not an agent started without ACLs.
func TestDevRefusesArguments(t *testing.T) {
	// Cancelled: an agent that began to start would be stopped at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := run(ctx, []string{"dev", "acl"}, io.Discard, io.Discard)
	assert.Equal(t, 2, exitStatus(err, io.Discard), "%v", err)
}
