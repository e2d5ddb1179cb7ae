package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// waitCheck waits until the agent reports check id with status and
// output, and returns it. (A check is registered with its status but no
// output, which the beat right after sets.)
func waitCheck(t *testing.T, c *api.Client, id, status, output string, d time.Duration) *api.HealthCheck {
	t.Helper()
	deadline := time.Now().Add(d)
	var last *api.HealthCheck
	for {
		checks, _, err := c.Agent().Checks(t.Context(), nil)
		require.NoError(t, err)
		last = checks[id]
		if last != nil && last.Status == status && (output == "" || last.Output == output) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("check %s not %s (%q) within %s; last seen: %+v", id, status, output, d, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func checkGone(t *testing.T, c *api.Client, id string) {
	t.Helper()
	checks, _, err := c.Agent().Checks(t.Context(), nil)
	require.NoError(t, err)
	assert.NotContains(t, checks, id, "the check was left registered")
}

func TestHeartbeatReportsTheProbeWhileTheCommandRuns(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	dir := t.TempDir()
	t.Setenv("D", dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "healthy"), nil, 0o600))

	probe := `if [ -e "$D/healthy" ]; then echo all good; elif [ -e "$D/slow" ]; then echo slow; exit 1; else echo db down; exit 2; fi`
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := runAsync(t, ctx, []string{"heartbeat", "-http-addr", a.Addr, "-id", id, "-ttl", "3s", "-probe", probe, "sh", "-c",
		`trap 'exit 0' TERM; echo "$CONSULKIT_CHECK_ID" > "$D/id"; sleep 60 & wait`}, &out)

	assert.Equal(t, id+"\n", waitFile(t, filepath.Join(dir, "id"), 30*time.Second))
	hc := waitCheck(t, c, id, api.HealthPassing, "all good", 10*time.Second)
	assert.Equal(t, id, hc.Name)

	require.NoError(t, os.Rename(filepath.Join(dir, "healthy"), filepath.Join(dir, "slow")))
	waitCheck(t, c, id, api.HealthWarning, "slow", 10*time.Second)

	require.NoError(t, os.Remove(filepath.Join(dir, "slow")))
	waitCheck(t, c, id, api.HealthCritical, "db down", 10*time.Second)

	cancel() // as Ctrl-C does: the command is stopped, the check removed
	require.NoError(t, await(t, done, 30*time.Second), "output: %s", out.String())
	checkGone(t, c, id)
}

func TestHeartbeatEndsWithTheCommand(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	dir := t.TempDir()
	t.Setenv("D", dir)

	done := runAsync(t, t.Context(), []string{"heartbeat", "-http-addr", a.Addr, "-id", id, "-name", "app alive", "-ttl", "2s", "sh", "-c",
		`while [ ! -e "$D/stop" ]; do sleep 0.02; done; exit 6`}, io.Discard)
	hc := waitCheck(t, c, id, api.HealthPassing, "", 10*time.Second)
	assert.Equal(t, "app alive", hc.Name)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stop"), nil, 0o600))

	err := await(t, done, 30*time.Second)
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 6, ee.code)
	checkGone(t, c, id)
}

func TestHeartbeatRefusedStillRunsTheCommand(t *testing.T) {
	a := integration.Shared(t)
	id := "cli-" + uuid.NewString()[:8]
	dir := t.TempDir()
	t.Setenv("D", dir)

	// A service the agent does not know: the registration is refused for
	// good. The command still runs to its end, and consulkit then fails.
	var out syncBuffer
	err := run(t.Context(), []string{"heartbeat", "-http-addr", a.Addr, "-id", id, "-service-id", "no-such-service-" + id, "sh", "-c",
		`sleep 0.5; echo ran > "$D/ran"`}, &out, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "heartbeat for check "+id)
	assert.Equal(t, 1, exitStatus(err, io.Discard))
	assert.Equal(t, "ran\n", waitFile(t, filepath.Join(dir, "ran"), time.Second))
	assert.Contains(t, out.String(), "heartbeat ended; the command keeps running")
}

// TestProbeDiesWithConsulkit: consulkit killed with SIGKILL cannot end a
// probe it is running; the probe must not outlive it (as the command does
// not, see TestCommandDiesWithConsulkit).
func TestProbeDiesWithConsulkit(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	dir := t.TempDir()
	bin := buildConsulkit(t, dir)
	t.Cleanup(func() { _, _ = c.Agent().CheckDeregister(context.WithoutCancel(t.Context()), id, nil) })

	diesWithConsulkit(t, dir, "the probe", bin, "heartbeat", "-http-addr", a.Addr, "-id", id, "-ttl", "60s",
		"-probe", `echo $$ > "$D/pid"; exec sleep 60`, "sleep", "60")
}
