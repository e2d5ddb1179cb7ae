package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// TestHangupIgnoredUnderNohup: consulkit started with SIGHUP ignored
// (by nohup, or a shell's trap) must keep it ignored, as every program
// that honours nohup does: a hangup must not stop the command and
// release. SIGTERM still does.
func TestHangupIgnoredUnderNohup(t *testing.T) {
	a, c, key, dir := cliTest(t, "nohup")
	bin := buildConsulkit(t, dir)

	// sh's trap '' HUP sets SIG_IGN, which exec passes on, as nohup does.
	ck := exec.Command("sh", "-c", `trap '' HUP; exec "$0" "$@"`, bin, "lock", "-http-addr", a.Addr, key, "sh", "-c",
		`trap 'echo stopped > "$D/stopped"; exit 0' TERM; echo 1 > "$D/started"; sleep 60 & wait`)
	require.NoError(t, ck.Start())
	t.Cleanup(func() {
		_ = ck.Process.Kill()
		_ = ck.Wait()
	})
	waitFile(t, filepath.Join(dir, "started"), 30*time.Second)

	require.NoError(t, ck.Process.Signal(syscall.SIGHUP))
	time.Sleep(time.Second)
	assert.NoFileExists(t, filepath.Join(dir, "stopped"), "a hangup stopped the command although consulkit was started with SIGHUP ignored (nohup)")
	assert.True(t, alive(ck.Process.Pid), "consulkit ended on a hangup it was started ignoring (nohup)")

	require.NoError(t, ck.Process.Signal(syscall.SIGTERM))
	_ = waitExit(t, ck, "on SIGTERM")
	assert.Equal(t, "stopped\n", waitFile(t, filepath.Join(dir, "stopped"), time.Second))
	keyFree(t, c, key)
}

// TestQuitStopsAndReleases: SIGQUIT (Ctrl-\ at the terminal, which reaches
// consulkit's foreground group but not the command's own group) must not
// leave the lock held and what the command started running without it,
// nor exit 2, which means "bad usage".
func TestQuitStopsAndReleases(t *testing.T) {
	a, c, key, dir := cliTest(t, "quit")
	bin := buildConsulkit(t, dir)

	ck := exec.Command(bin, "lock", "-http-addr", a.Addr, key, "sh", "-c",
		`sleep 60 & echo $! > "$D/bg"; echo 1 > "$D/started"; wait`)
	require.NoError(t, ck.Start())
	t.Cleanup(func() {
		_ = ck.Process.Kill()
		_ = ck.Wait()
	})
	waitFile(t, filepath.Join(dir, "started"), 30*time.Second)
	bg, err := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(dir, "bg"), time.Second)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(bg, syscall.SIGKILL) })

	require.NoError(t, ck.Process.Signal(syscall.SIGQUIT))
	_ = waitExit(t, ck, "on SIGQUIT")
	t.Logf("consulkit: %s", ck.ProcessState)
	assert.NotEqual(t, 2, ck.ProcessState.ExitCode(), "exit status 2 means bad usage")
	assert.False(t, alive(bg), "what the command started runs on after SIGQUIT")
	keyFree(t, c, key)
	for _, id := range integration.SessionsNamed(t, c, "consulkit lock "+key) {
		_, _ = c.Session().Destroy(t.Context(), id, nil)
	}
}

// TestProbeThatLeavesAProcessIsItsShellsStatus: a probe that exits 0
// is passing (README: "exit 0 is passing"), also when it started a
// process that keeps its output open; and nothing a probe started
// outlives the probe.
func TestProbeThatLeavesAProcessIsItsShellsStatus(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	id := "cli-" + uuid.NewString()[:8]
	dir := t.TempDir()
	t.Setenv("D", dir)

	ctx := t.Context()
	var out syncBuffer
	done := runAsync(t, ctx, []string{"heartbeat", "-http-addr", a.Addr, "-id", id, "-ttl", "3s", "-probe",
		`sleep 30 & echo $! >> "$D/probe-bg"; echo all good`, "sh", "-c", `sleep 4`}, &out)
	t.Cleanup(func() {
		b, _ := os.ReadFile(filepath.Join(dir, "probe-bg"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	time.Sleep(3 * time.Second)
	checks, _, err := c.Agent().Checks(t.Context(), nil)
	require.NoError(t, err)
	hc := checks[id]
	require.NotNil(t, hc)
	assert.Equal(t, api.HealthPassing, hc.Status, "the probe exited 0; output %q", hc.Output)
	_ = await(t, done, 30*time.Second)
	b, _ := os.ReadFile(filepath.Join(dir, "probe-bg"))
	left := 0
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && alive(pid) {
			left++
		}
	}
	assert.Zero(t, left, "processes the probes started outlived them and consulkit (%d probes)", len(strings.Fields(string(b))))
}

// TestElectResignFailureIsNotTheCommandsStatus: the leader's
// command exits 4, and the resign that follows fails (Consul answers
// 500): the key stays held by the session. lock reports a failed release
// after the command (exit 1, with a message); elect must not exit with
// the command's status as if all went well.
func TestElectResignFailureIsNotTheCommandsStatus(t *testing.T) {
	a, c, key, dir := cliTest(t, "resign-fails")
	p := integration.NewFaultProxy(t, a.Addr)
	var out syncBuffer
	done := runAsync(t, t.Context(), []string{"elect", "-http-addr", p.Addr, "-ttl", "1h", key, "sh", "-c",
		`echo 1 > "$D/started"; while [ ! -e "$D/go" ]; do sleep 0.02; done; exit 4`}, &out)
	waitFile(t, filepath.Join(dir, "started"), 30*time.Second)
	p.Set(integration.ServerError)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), []byte("1"), 0o600))
	err := await(t, done, 90*time.Second)
	p.Set(integration.Pass)
	t.Logf("err: %v", err)
	t.Logf("output: %s", out.String())
	pair, _, gerr := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, gerr)
	if pair != nil {
		t.Logf("key's session after elect returned: %q", pair.Session)
	}
	var stderr syncBuffer
	code := exitStatus(err, &stderr)
	t.Logf("exit status %d, printed %q", code, stderr.String())
	assert.Equal(t, 1, code, "a failed resign (key left held) must fail consulkit, as a failed release does for lock")
	for _, id := range integration.SessionsNamed(t, c, "consulkit elect "+key) {
		_, _ = c.Session().Destroy(t.Context(), id, nil)
	}
}

// TestHTTPAddrKeepsTheTLSAskedFor: CONSUL_HTTP_SSL=true asks for TLS,
// which an http:// address does not turn off (api.ConfigFromEnv, as the
// consul CLI): the same must hold for -http-addr. The agent here speaks
// plain HTTP, so a client that keeps TLS must fail to reach it.
func TestHTTPAddrKeepsTheTLSAskedFor(t *testing.T) {
	a, c, key, _ := cliTest(t, "tls")
	t.Setenv("CONSUL_HTTP_SSL", "true")

	// Through the environment, TLS stays on: the plain agent is not reached.
	t.Setenv("CONSUL_HTTP_ADDR", "http://"+a.Addr)
	err := run(t.Context(), []string{"lock", key, "true"}, io.Discard, io.Discard)
	require.Error(t, err, "CONSUL_HTTP_ADDR=http://... turned TLS off")
	t.Logf("env: %v", err)

	// Through -http-addr, it must stay on as well.
	t.Setenv("CONSUL_HTTP_ADDR", "")
	err = run(t.Context(), []string{"lock", "-http-addr", "http://" + a.Addr, key, "true"}, io.Discard, io.Discard)
	assert.Error(t, err, "-http-addr http://... turned off the TLS that CONSUL_HTTP_SSL=true asked for: the request (and token) went in clear")
	for _, id := range integration.SessionsNamed(t, c, "consulkit lock "+key) {
		_, _ = c.Session().Destroy(t.Context(), id, nil)
	}
}

// TestChecksMayNameSerfHealth: -checks says serfHealth is always
// included; naming it explicitly must not fail the hold.
func TestChecksMayNameSerfHealth(t *testing.T) {
	a, c, key, _ := cliTest(t, "serf")
	err := run(t.Context(), []string{"lock", "-http-addr", a.Addr, "-checks", "serfHealth", key, "true"}, io.Discard, io.Discard)
	assert.NoError(t, err)
	keyFree(t, c, key)
}
