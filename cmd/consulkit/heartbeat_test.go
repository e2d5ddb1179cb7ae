package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/ttlcheck"
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

// TestHeartbeatDeregisterFailureIsNotTheCommandsStatus: the command exits
// 4 and the deregistration that follows fails (Consul answers 500): the
// check is left registered. As for a failed release after lock's command,
// consulkit must fail (exit 1, and say so), not exit with the command's
// status as if the check had been removed.
func TestHeartbeatDeregisterFailureIsNotTheCommandsStatus(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	dir := t.TempDir()
	t.Setenv("D", dir)
	t.Cleanup(func() { _, _ = c.Agent().CheckDeregister(context.WithoutCancel(t.Context()), id, nil) })
	p := integration.NewFaultProxy(t, a.Addr)

	var out syncBuffer
	done := runAsync(t, t.Context(), []string{"heartbeat", "-http-addr", p.Addr, "-id", id, "-ttl", "30s", "sh", "-c",
		`while [ ! -e "$D/stop" ]; do sleep 0.02; done; exit 4`}, &out)
	waitCheck(t, c, id, api.HealthPassing, "", 10*time.Second)
	p.Set(integration.ServerError)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stop"), nil, 0o600))
	err := await(t, done, 60*time.Second)
	p.Set(integration.Pass)

	checks, _, cerr := c.Agent().Checks(t.Context(), nil)
	require.NoError(t, cerr)
	require.Contains(t, checks, id, "precondition: the deregistration failed")
	var stderr syncBuffer
	code := exitStatus(err, &stderr)
	assert.Equal(t, 1, code, "the check was left registered, yet consulkit exited with the command's status (err %v)", err)
	assert.Contains(t, stderr.String(), id)
}

// TestProbeOutputIsBounded: a probe that writes far more than a check
// keeps (a health page, a dump, a runaway loop) must not have all of it
// held in consulkit's memory, which the command's life depends on (it
// dies with consulkit); and a note that was cut says so, with the
// library's marker, as a note cut by ttlcheck does.
func TestProbeOutputIsBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	status, note := shellProbe(`head -c 100000000 /dev/zero | tr '\0' a`)(ctx)
	runtime.ReadMemStats(&after)
	require.NoError(t, ctx.Err(), "precondition: the probe ended in time")
	assert.Equal(t, ttlcheck.Passing, status)
	// Over the limit by a byte, for ttlcheck to cut with its marker.
	assert.Len(t, note, ttlcheck.MaxNoteSize+1)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "the probe's 100 MB of output were held in memory")

	// Cut output that invalid UTF-8 makes shorter still says it was cut.
	_, note = shellProbe(`head -c 10000 /dev/zero | tr '\0' '\377'`)(ctx)
	assert.True(t, strings.HasSuffix(note, ttlcheck.TruncatedMarker), "a cut note does not say so: %q", note)

	// Output that fits is kept whole.
	status, note = shellProbe(`echo "  db down  "; exit 2`)(ctx)
	assert.Equal(t, ttlcheck.Critical, status)
	assert.Equal(t, "db down", note)
}

// The agent gets a probe's long output cut to the note limit, ending with
// the marker that says it was cut.
func TestHeartbeatCutsALongProbeOutput(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := runAsync(t, ctx, []string{"heartbeat", "-http-addr", a.Addr, "-id", id, "-ttl", "3s",
		"-probe", `head -c 100000 /dev/zero | tr '\0' a`, "sh", "-c", `trap 'exit 0' TERM; sleep 60 & wait`}, io.Discard)
	deadline := time.Now().Add(10 * time.Second)
	var out string
	for {
		checks, _, err := c.Agent().Checks(t.Context(), nil)
		require.NoError(t, err)
		if hc := checks[id]; hc != nil && hc.Output != "" {
			out = hc.Output
			break
		}
		require.True(t, time.Now().Before(deadline), "no output reached the agent")
		time.Sleep(50 * time.Millisecond)
	}
	assert.LessOrEqual(t, len(out), ttlcheck.MaxNoteSize)
	assert.True(t, strings.HasSuffix(out, ttlcheck.TruncatedMarker), "a cut note does not say so: ...%q", out[max(len(out)-40, 0):])
	cancel()
	require.NoError(t, await(t, done, 30*time.Second))
	checkGone(t, c, id)
}

// TestHeartbeatRefusedWhileTheCommandEndsKeepsItsStatus: the first
// registration is refused (an unknown service) while consulkit is
// already stopping the command, which has exited 3 and left a process in
// its group that takes a moment to end. Nothing was registered: as when
// the refusal comes first (TestHeartbeatRefusedStillRunsTheCommand),
// consulkit must exit with the command's status, not say that removing
// the check failed and that it may stay registered.
func TestHeartbeatRefusedWhileTheCommandEndsKeepsItsStatus(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	p := integration.NewFaultProxy(t, a.Addr)
	p.SetDelay(300 * time.Millisecond) // the refusal comes while the command's group is stopped

	var out syncBuffer
	err := run(t.Context(), []string{"heartbeat", "-http-addr", p.Addr, "-id", id, "-service-id", "no-such-service-" + id, "sh", "-c",
		`(trap '' TERM; sleep 1) >/dev/null 2>&1 & exit 3`}, &out, &out)
	require.Error(t, err)
	require.Positive(t, p.Requests(), "precondition: the registration was sent")
	assert.NotContains(t, err.Error(), "removing the check failed", "nothing was registered")
	var ee *exitError
	if assert.ErrorAs(t, err, &ee, "the command's status was lost: %v", err) {
		assert.Equal(t, 3, ee.code)
	}
	checkGone(t, c, id)
}
