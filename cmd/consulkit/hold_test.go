package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/semaphore"
)

// syncBuffer is a bytes.Buffer that several commands' output may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runAsync runs consulkit with args in a goroutine the test awaits.
func runAsync(t *testing.T, ctx context.Context, args []string, out io.Writer) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(wg.Wait)
	go func() {
		defer wg.Done()
		done <- run(ctx, args, out, out)
	}()
	return done
}

func await(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("consulkit did not return within %s", d)
		return nil
	}
}

// waitFile waits until path exists and returns its content.
func waitFile(t *testing.T, path string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", filepath.Base(path), d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Fields(string(b))
}

// keyFree asserts that key exists with no holder (or does not exist).
func keyFree(t *testing.T, c *api.Client, key string) {
	t.Helper()
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	if pair != nil {
		assert.Empty(t, pair.Session, "%s is still held", key)
	}
}

// cliTest returns the shared agent, a client of it, a key of the test's
// own ending in name, and a directory for the commands' files, which they find
// in $D.
func cliTest(t *testing.T, name string) (*integration.Agent, *api.Client, string, string) {
	t.Helper()
	a := integration.Shared(t)
	dir := t.TempDir()
	t.Setenv("D", dir)
	return a, a.Client(t), a.KeyPrefix(t, "cli") + "/" + name, dir
}

// exclusiveScript fails with status 9 when another copy of it is inside
// at the same time (mkdir is atomic), and appends what it was told to log.
const exclusiveScript = `mkdir "$D/in" || exit 9; echo "$CONSULKIT_FENCING_TOKEN" >> "$D/log"; sleep 0.1; rmdir "$D/in"`

func TestLockRunsCommandsOneAtATimeWithGrowingTokens(t *testing.T) {
	a, c, key, dir := cliTest(t, "job")

	var out syncBuffer
	var dones []<-chan error
	for range 4 {
		dones = append(dones, runAsync(t, t.Context(),
			[]string{"lock", "-http-addr", a.Addr, "-lock-delay", "0s", key, "sh", "-c", exclusiveScript}, &out))
	}
	for _, d := range dones {
		require.NoError(t, await(t, d, time.Minute), "output: %s", out.String())
	}
	toks := lines(t, filepath.Join(dir, "log"))
	require.Len(t, toks, 4)
	prev := uint64(0)
	for _, s := range toks {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		assert.Greater(t, n, prev, "fencing tokens must grow in the order the commands ran: %v", toks)
		prev = n
	}
	keyFree(t, c, key)
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit lock "+key), "a session was left behind")
}

func TestLockTellsTheCommandItsToken(t *testing.T) {
	a, c, key, dir := cliTest(t, "token")

	err := run(t.Context(), []string{"lock", "-http-addr", a.Addr, "-value", "me", key, "sh", "-c",
		`echo "$CONSULKIT_KEY $CONSULKIT_SESSION $CONSULKIT_LOCK_INDEX $CONSULKIT_FENCING_TOKEN" > "$D/env"`},
		io.Discard, io.Discard)
	require.NoError(t, err)
	f := strings.Fields(waitFile(t, filepath.Join(dir, "env"), time.Second))
	require.Len(t, f, 4)
	assert.Equal(t, key, f[0])
	assert.Len(t, f[1], 36, "session ID")
	assert.NotEqual(t, "0", f[2])
	assert.NotEqual(t, "0", f[3])

	// The token is the key's ModifyIndex at acquisition: the key moved on
	// only by its release since.
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	tok, _ := strconv.ParseUint(f[3], 10, 64)
	assert.Less(t, tok, pair.ModifyIndex)
	assert.Equal(t, "me", string(pair.Value))
	assert.Equal(t, lock.Flag, pair.Flags)
}

func TestLockExitStatusIsTheCommands(t *testing.T) {
	a := integration.Shared(t)
	key := a.KeyPrefix(t, "cli") + "/status"
	err := run(t.Context(), []string{"lock", "-http-addr", a.Addr, key, "sh", "-c", "exit 3"}, io.Discard, io.Discard)
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.code)
	assert.Equal(t, 3, exitStatus(err, io.Discard))

	err = run(t.Context(), []string{"lock", "-http-addr", a.Addr, key, "sh", "-c", "kill -9 $$"}, io.Discard, io.Discard)
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 128+9, ee.code)

	// A "--" between the key and the command is dropped, as the usage
	// of other tools has taught users to write.
	err = run(t.Context(), []string{"lock", "-http-addr", a.Addr, key, "--", "sh", "-c", "exit 4"}, io.Discard, io.Discard)
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 4, ee.code)

	// A command that cannot be found is refused before the lock is taken.
	err = run(t.Context(), []string{"lock", "-http-addr", a.Addr, key + "-never", "/nonexistent/command"}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/command")
	assert.Equal(t, 2, exitStatus(err, io.Discard))
	pair, _, err := a.Client(t).KV().Get(t.Context(), key+"-never", nil)
	require.NoError(t, err)
	assert.Nil(t, pair, "the lock was taken for a command that does not exist")
	keyFree(t, a.Client(t), key)
}

// TestLockLostStopsWhatTheCommandStarted: a process the command started,
// deaf to SIGTERM, is killed after -grace before the hold is given up,
// even once the command itself has exited.
func TestLockLostStopsWhatTheCommandStarted(t *testing.T) {
	a, c, key, dir := cliTest(t, "lost-group")

	done := runAsync(t, t.Context(), []string{"lock", "-http-addr", a.Addr, "-grace", "300ms", "-lock-delay", "0s", key, "sh", "-c",
		`(trap '' TERM; while :; do sleep 0.05; done) & echo $! > "$D/worker"; echo "$CONSULKIT_SESSION" > "$D/session"; wait`}, io.Discard)
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))
	worker, err := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(dir, "worker"), time.Second)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(worker, syscall.SIGKILL) })
	_, err = c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	require.ErrorIs(t, await(t, done, 30*time.Second), lock.ErrLost)
	assert.False(t, alive(worker), "a process the command started runs on after the loss")
}

func TestLockExitStopsWhatTheCommandLeftRunning(t *testing.T) {
	a, c, key, dir := cliTest(t, "leftover")

	err := run(t.Context(), []string{"lock", "-http-addr", a.Addr, key, "sh", "-c",
		`sleep 60 & echo $! > "$D/bg"; exit 0`}, io.Discard, io.Discard)
	require.NoError(t, err)
	bg, err := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(dir, "bg"), time.Second)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(bg, syscall.SIGKILL) })
	assert.False(t, alive(bg), "what the command left running outlived the lock")
	keyFree(t, c, key)
}

// TestHoldRefusesChecksThatCannotBackASession: a check that is missing or
// critical is reported at once, also by elect, whose campaigns would
// otherwise retry the session's creation forever.
func TestHoldRefusesChecksThatCannotBackASession(t *testing.T) {
	a, c, key, _ := cliTest(t, "bad-checks")
	id := "cli-critical-" + filepath.Base(t.TempDir())
	_, err := c.Agent().CheckRegister(t.Context(), &api.AgentCheckRegistration{
		ID: id, Name: id, AgentServiceCheck: api.AgentServiceCheck{TTL: api.Duration(time.Hour), Status: api.HealthCritical},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = c.Agent().CheckDeregister(context.WithoutCancel(t.Context()), id, nil) })

	for _, cmd := range []string{"lock", "elect"} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := run(ctx, []string{cmd, "-http-addr", a.Addr, "-checks", "no-such-check", key, "true"}, io.Discard, io.Discard)
		require.Error(t, err, cmd)
		assert.Contains(t, err.Error(), `check "no-such-check" is not registered`, cmd)
		err = run(ctx, []string{cmd, "-http-addr", a.Addr, "-checks", id, key, "true"}, io.Discard, io.Discard)
		require.Error(t, err, cmd)
		assert.Contains(t, err.Error(), "is critical", cmd)
		assert.NoError(t, ctx.Err(), "%s waited instead of failing", cmd)
		cancel()
	}
}

func TestLockLostStopsTheCommand(t *testing.T) {
	a, c, key, dir := cliTest(t, "lost")

	var out syncBuffer
	done := runAsync(t, t.Context(), []string{"lock", "-http-addr", a.Addr, "-lock-delay", "0s", key, "sh", "-c",
		`trap 'echo stopped > "$D/stopped"; exit 0' TERM; echo "$CONSULKIT_SESSION" > "$D/session"; sleep 60 & wait`}, &out)
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))

	_, err := c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	err = await(t, done, 30*time.Second)
	require.ErrorIs(t, err, lock.ErrLost, "output: %s", out.String())
	assert.Contains(t, err.Error(), "lost while the command ran")
	assert.Equal(t, 1, exitStatus(err, io.Discard), "a loss is a failure even when the command exits 0")
	assert.Equal(t, "stopped\n", waitFile(t, filepath.Join(dir, "stopped"), time.Second), "the command was not sent SIGTERM")
	keyFree(t, c, key)
}

func TestLockLostKillsACommandThatIgnoresSIGTERM(t *testing.T) {
	a, c, key, dir := cliTest(t, "stubborn")

	done := runAsync(t, t.Context(), []string{"lock", "-http-addr", a.Addr, "-grace", "300ms", "-lock-delay", "0s", key, "sh", "-c",
		`trap '' TERM; echo "$CONSULKIT_SESSION" > "$D/session"; while :; do sleep 0.05; done`}, io.Discard)
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))
	_, err := c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	require.ErrorIs(t, await(t, done, 30*time.Second), lock.ErrLost)
}

func TestLockTryFailsAtOnceWhenHeld(t *testing.T) {
	a, c, key, dir := cliTest(t, "try")

	l, err := lock.New(c, key, lock.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)
	defer func() { assert.NoError(t, l.Unlock(context.WithoutCancel(t.Context()))) }()

	err = run(t.Context(), []string{"lock", "-http-addr", a.Addr, "-try", key, "sh", "-c", `touch "$D/ran"`}, io.Discard, io.Discard)
	require.ErrorIs(t, err, lock.ErrLocked)
	assert.NoFileExists(t, filepath.Join(dir, "ran"))
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit lock "+key), "a session was left behind")
}

func TestLockInterruptedWhileWaitingRunsNothing(t *testing.T) {
	a, c, key, dir := cliTest(t, "interrupt-wait")

	l, err := lock.New(c, key, lock.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)
	defer func() { assert.NoError(t, l.Unlock(context.WithoutCancel(t.Context()))) }()

	ctx, cancel := context.WithCancel(t.Context())
	done := runAsync(t, ctx, []string{"lock", "-http-addr", a.Addr, key, "sh", "-c", `touch "$D/ran"`}, io.Discard)
	integration.WaitSessionNamed(t, c, "consulkit lock "+key)
	cancel() // as Ctrl-C does
	err = await(t, done, 30*time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "interrupted while waiting")
	assert.NoFileExists(t, filepath.Join(dir, "ran"))
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit lock "+key), "a session was left behind")
}

func TestLockInterruptStopsTheCommandThenReleases(t *testing.T) {
	a, c, key, dir := cliTest(t, "interrupt-run")

	ctx, cancel := context.WithCancel(t.Context())
	done := runAsync(t, ctx, []string{"lock", "-http-addr", a.Addr, key, "sh", "-c",
		`trap 'exit 5' TERM; echo 1 > "$D/started"; sleep 60 & wait`}, io.Discard)
	waitFile(t, filepath.Join(dir, "started"), 30*time.Second)
	cancel()
	err := await(t, done, 30*time.Second)
	var ee *exitError
	require.ErrorAs(t, err, &ee, "the command's own status after an interrupt")
	assert.Equal(t, 5, ee.code)
	keyFree(t, c, key)
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit lock "+key), "a session was left behind")
}

func TestSemRunsAtMostLimitCommands(t *testing.T) {
	a, c, prefix, dir := cliTest(t, "slots")

	// Each command takes one of two slot directories; a third command
	// inside at once finds both taken and fails with 9.
	script := `if mkdir "$D/1" 2>/dev/null; then s=1; elif mkdir "$D/2" 2>/dev/null; then s=2; else exit 9; fi
echo "$CONSULKIT_PREFIX $CONSULKIT_LIMIT" >> "$D/env"; sleep 0.1; rmdir "$D/$s"`
	var out syncBuffer
	var dones []<-chan error
	for range 5 {
		dones = append(dones, runAsync(t, t.Context(), []string{"sem", "-http-addr", a.Addr, "-limit", "2", prefix, "sh", "-c", script}, &out))
	}
	for _, d := range dones {
		require.NoError(t, await(t, d, time.Minute), "output: %s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat(prefix+" 2\n", 5), string(b))

	s, err := semaphore.New(c, prefix, 2, semaphore.WithSession(integration.NewSession(t, c)))
	require.NoError(t, err)
	holders, err := s.Holders(t.Context())
	require.NoError(t, err)
	assert.Empty(t, holders)
	keys, _, err := c.KV().Keys(t.Context(), prefix+"/", "", nil)
	require.NoError(t, err)
	assert.Equal(t, []string{prefix + "/" + semaphore.LockKey}, keys, "contender keys left behind")
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit sem "+prefix), "a session was left behind")
}

func TestElectFailsOverAndStopsTheDeposed(t *testing.T) {
	a, c, key, dir := cliTest(t, "leader")

	// A leader logs its session and token, then runs until stopped; two
	// leaders at once fail with 9. The lock-delay is what keeps the next
	// leader from starting before the deposed one's command has stopped:
	// with none, they may overlap (the README says to keep -grace below it).
	script := `mkdir "$D/in" || exit 9; trap 'rmdir "$D/in"; exit 0' TERM
echo "$CONSULKIT_SESSION $CONSULKIT_FENCING_TOKEN" >> "$D/log"; sleep 60 & wait`
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	args := []string{"elect", "-http-addr", a.Addr, "-lock-delay", "3s", "-grace", "2s", key, "sh", "-c", script}
	d1 := runAsync(t, ctx, args, &out)
	d2 := runAsync(t, ctx, args, &out)

	first := strings.Fields(waitFile(t, filepath.Join(dir, "log"), 30*time.Second))
	_, err := c.Session().Destroy(t.Context(), first[0], nil)
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for len(lines(t, filepath.Join(dir, "log"))) < 4 {
		require.True(t, time.Now().Before(deadline), "no second term; output: %s", out.String())
		time.Sleep(20 * time.Millisecond)
	}
	second := lines(t, filepath.Join(dir, "log"))[2:4]
	assert.NotEqual(t, first[0], second[0], "the second term has the deposed session")
	t1, _ := strconv.ParseUint(first[1], 10, 64)
	t2, _ := strconv.ParseUint(second[1], 10, 64)
	assert.Greater(t, t2, t1, "fencing tokens must grow across terms")

	cancel()
	require.NoError(t, await(t, d1, 30*time.Second), "output: %s", out.String())
	require.NoError(t, await(t, d2, 30*time.Second), "output: %s", out.String())
	assert.NoDirExists(t, filepath.Join(dir, "in"), "a leader's command was not stopped")
	keyFree(t, c, key)
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit elect "+key), "a session was left behind")
}

func TestElectEndsWithTheLeadersCommand(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	key := a.KeyPrefix(t, "cli") + "/leader-exit"
	err := run(t.Context(), []string{"elect", "-http-addr", a.Addr, key, "sh", "-c", "exit 4"}, io.Discard, io.Discard)
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 4, ee.code)
	keyFree(t, c, key)
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit elect "+key), "a session was left behind")
}

// TestElectDoesNotRunAFinishedCommandAgain: the command exits 0 while
// leading, leaving a process that ignores SIGTERM; leadership is lost
// while that process is being stopped (-grace). The job is done: elect
// must not campaign and run it again, and it reports the loss (exit 1).
func TestElectDoesNotRunAFinishedCommandAgain(t *testing.T) {
	a, c, key, dir := cliTest(t, "finished")
	var out syncBuffer
	done := runAsync(t, t.Context(), []string{"elect", "-http-addr", a.Addr, "-lock-delay", "0s", "-grace", "3s", key, "sh", "-c",
		`echo "$CONSULKIT_SESSION" >> "$D/runs"; (trap '' TERM; exec sleep 30) & exit 0`}, &out)
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "runs"), 30*time.Second))
	time.Sleep(time.Second) // the command has exited; its leftover is in its grace
	_, err := c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	err = await(t, done, 30*time.Second)
	assert.Len(t, lines(t, filepath.Join(dir, "runs")), 1, "the command, which ended while leading, ran again; output: %s", out.String())
	require.ErrorIs(t, err, election.ErrDeposed)
	assert.Equal(t, 1, exitStatus(err, io.Discard))
	keyFree(t, c, key)
}

func TestBadCommandLinesSendNothing(t *testing.T) {
	// Nothing listens on this address: a command line that got as far as
	// Consul would fail with a connection error, not a usage error.
	addr := "127.0.0.1:1"
	for _, args := range [][]string{
		{"lock", "-http-addr", addr},
		{"lock", "-http-addr", addr, "key"},
		{"lock", "-http-addr", addr, "", "true"},
		{"lock", "-http-addr", addr, "key", ""},
		{"lock", "-http-addr", addr, "-grace", "0s", "key", "true"},
		{"sem", "-http-addr", addr, "prefix", "true"},
		{"sem", "-http-addr", addr, "-limit", "-1", "prefix", "true"},
		{"elect", "-http-addr", addr, "key"},
		{"lock", "-http-addr", addr, "-checks", "a,,b", "key", "true"},
		{"elect", "-http-addr", addr, "-checks", "a, b", "key", "true"},
		{"heartbeat", "-http-addr", addr, "true"},
		{"heartbeat", "-http-addr", addr, "-id", "x"},
		{"heartbeat", "-http-addr", addr, "-id", "x", "-grace", "-1s", "true"},
	} {
		err := run(t.Context(), args, io.Discard, io.Discard)
		var ue *usageError
		assert.ErrorAs(t, err, &ue, "%q", args)
		assert.Equal(t, 2, exitStatus(err, io.Discard), "%q", args)
	}
	for _, args := range [][]string{
		{"lock", "-http-addr", addr, "-ttl", "1s", "key", "true"},
		{"lock", "-http-addr", addr, "-lock-delay", "2m", "key", "true"},
		{"lock", "-http-addr", addr, "/key", "true"},
		{"sem", "-http-addr", addr, "-limit", "2", "-ttl", "25h", "prefix", "true"},
		{"elect", "-http-addr", addr, "-lock-delay", "-1s", "key", "true"},
		{"heartbeat", "-http-addr", addr, "-id", "x", "-ttl", "10ms", "true"},
		// -checks reads the agent's checks, but only once the rest is valid.
		{"lock", "-http-addr", addr, "-checks", "app", "-ttl", "1s", "key", "true"},
		{"lock", "-http-addr", addr, "-checks", "app", "/key", "true"},
		{"sem", "-http-addr", addr, "-checks", "app", "-limit", "2", "-ttl", "25h", "prefix", "true"},
		{"sem", "-http-addr", addr, "-checks", "app", "-limit", "2", "/prefix", "true"},
		{"elect", "-http-addr", addr, "-checks", "app", "-lock-delay", "-1s", "key", "true"},
		{"elect", "-http-addr", addr, "-checks", "app", "key//x", "true"},
		// An address that could never be dialled is bad usage too.
		{"lock", "-http-addr", "127.0.0.1:99999", "key", "true"},
		{"sem", "-http-addr", "http://[::1", "-limit", "2", "prefix", "true"},
		{"heartbeat", "-http-addr", "127.0.0.1:99999", "-id", "x", "true"},
	} {
		err := run(t.Context(), args, io.Discard, io.Discard)
		require.Error(t, err, "%q", args)
		assert.ErrorIs(t, err, api.ErrInvalid, "%q: want a validation error, sent before anything is sent", args)
		assert.Equal(t, 2, exitStatus(err, io.Discard), "%q", args)
	}
	for _, args := range [][]string{nil, {"frob"}, {"lock", "-bogus", "key", "true"}, {"heartbeat", "-ttl", "x"}} {
		err := run(t.Context(), args, io.Discard, io.Discard)
		assert.Equal(t, 2, exitStatus(err, io.Discard), "%q: %v", args, err)
	}
	assert.Equal(t, 0, exitStatus(run(t.Context(), []string{"lock", "-h"}, io.Discard, io.Discard), io.Discard))
}

// buildConsulkit builds this command into dir, for the tests that signal
// it as a process.
func buildConsulkit(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "consulkit")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// TestHangupStopsAndReleasesAndCtrlZIsIgnored: the terminal closing
// (SIGHUP) ends consulkit as SIGTERM does, and Ctrl-Z (SIGTSTP) does not
// stop it, which would let its session lapse while the command runs on.
func TestHangupStopsAndReleasesAndCtrlZIsIgnored(t *testing.T) {
	a, c, key, dir := cliTest(t, "hangup")
	bin := buildConsulkit(t, dir)

	ck := exec.Command(bin, "lock", "-http-addr", a.Addr, key, "sh", "-c",
		`trap 'echo stopped > "$D/stopped"; exit 0' TERM; echo 1 > "$D/started"; sleep 60 & wait`)
	require.NoError(t, ck.Start())
	t.Cleanup(func() {
		_ = ck.Process.Kill()
		_ = ck.Wait()
	})
	waitFile(t, filepath.Join(dir, "started"), 30*time.Second)

	require.NoError(t, ck.Process.Signal(syscall.SIGTSTP))
	time.Sleep(200 * time.Millisecond)
	assert.True(t, alive(ck.Process.Pid) && !stopped(ck.Process.Pid), "Ctrl-Z stopped consulkit")

	require.NoError(t, ck.Process.Signal(syscall.SIGHUP))
	require.NoError(t, waitExit(t, ck, "on SIGHUP"), "consulkit's status is the command's, which exited 0 on SIGTERM")
	assert.Equal(t, "stopped\n", waitFile(t, filepath.Join(dir, "stopped"), time.Second))
	keyFree(t, c, key)
	assert.Empty(t, integration.SessionsNamed(t, c, "consulkit lock "+key), "a session was left behind")
}

// TestLostWithABrokenStderrStillStopsTheCommand: consulkit's stdout and
// stderr are a pipe whose reader has gone. The warning it writes when the
// lock is lost must not kill it (SIGPIPE) before it has stopped what the
// command started, and it exits 1, as after any loss.
func TestLostWithABrokenStderrStillStopsTheCommand(t *testing.T) {
	a, c, key, dir := cliTest(t, "sigpipe")
	bin := buildConsulkit(t, dir)
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	ck := exec.Command(bin, "lock", "-http-addr", a.Addr, "-lock-delay", "0s", "-grace", "1s", key, "sh", "-c",
		`echo "$CONSULKIT_SESSION" > "$D/session"; sleep 60 & echo $! > "$D/bg"; wait`)
	ck.Stdout, ck.Stderr = pw, pw
	require.NoError(t, ck.Start())
	require.NoError(t, pw.Close())
	require.NoError(t, pr.Close()) // nobody reads what consulkit writes
	t.Cleanup(func() {
		_ = ck.Process.Kill()
		_ = ck.Wait()
	})
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))
	bg, err := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(dir, "bg"), time.Second)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(bg, syscall.SIGKILL) })

	_, err = c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	t.Logf("consulkit: %v", waitExit(t, ck, "after the loss"))
	assert.Equal(t, 1, ck.ProcessState.ExitCode(), "exit status after a loss (%s)", ck.ProcessState)
	assert.False(t, alive(bg), "what the command started runs on after the loss")
}

// TestCommandDiesWithConsulkit: consulkit killed with SIGKILL cannot stop
// its command or release the lock; the command must not run on without
// the lock, whose session outlives consulkit by up to its TTL.
func TestCommandDiesWithConsulkit(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	key := a.KeyPrefix(t, "cli") + "/parent-death"
	dir := t.TempDir()
	bin := buildConsulkit(t, dir)

	diesWithConsulkit(t, dir, "the command", bin, "lock", "-http-addr", a.Addr, "-lock-delay", "0s", key,
		"sh", "-c", `echo $$ > "$D/pid"; exec sleep 60`)
	// The session consulkit left lapses by itself; the test removes it now.
	for _, id := range integration.SessionsNamed(t, c, "consulkit lock "+key) {
		_, err := c.Session().Destroy(t.Context(), id, nil)
		assert.NoError(t, err)
	}
}

// diesWithConsulkit runs consulkit (bin, with args, and D=dir in its
// environment) until a process it starts has written its PID to dir/pid,
// kills consulkit with SIGKILL, and fails the test unless that process
// (what) dies within 10 seconds.
func diesWithConsulkit(t *testing.T, dir, what, bin string, args ...string) {
	t.Helper()
	ck := exec.Command(bin, args...)
	ck.Env = append(os.Environ(), "D="+dir)
	require.NoError(t, ck.Start())
	t.Cleanup(func() {
		_ = ck.Process.Kill()
		_ = ck.Wait()
	})
	pid, err := strconv.Atoi(strings.TrimSpace(waitFile(t, filepath.Join(dir, "pid"), 30*time.Second)))
	require.NoError(t, err)
	require.True(t, alive(pid), "%s is not running", what)

	require.NoError(t, ck.Process.Kill())
	_ = ck.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s runs on after consulkit was killed", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit waits up to 30 seconds for consulkit, started as ck, to exit,
// and returns what Wait returned; when (a few words) says after what.
func waitExit(t *testing.T, ck *exec.Cmd, when string) error {
	t.Helper()
	waitErr := make(chan error, 1)
	go func() { waitErr <- ck.Wait() }()
	select {
	case err := <-waitErr:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("consulkit did not end %s", when)
		return nil
	}
}

// stopped reports whether process pid is stopped (by SIGTSTP, say).
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'T'
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// TestLockLostWhenItsCheckTurnsCritical: -checks ties the hold to a health
// check (a consulkit heartbeat's, say): Consul invalidates the session when
// the check turns critical, and the command is stopped.
func TestLockLostWhenItsCheckTurnsCritical(t *testing.T) {
	a, c, key, dir := cliTest(t, "checked")
	id := "cli-check-" + filepath.Base(dir)
	_, err := c.Agent().CheckRegister(t.Context(), &api.AgentCheckRegistration{
		ID: id, Name: id, AgentServiceCheck: api.AgentServiceCheck{TTL: api.Duration(time.Hour), Status: api.HealthPassing},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = c.Agent().CheckDeregister(context.WithoutCancel(t.Context()), id, nil) })

	var out syncBuffer
	done := runAsync(t, t.Context(), []string{"lock", "-http-addr", a.Addr, "-checks", id, "-lock-delay", "0s", key, "sh", "-c",
		`trap 'echo stopped > "$D/stopped"; exit 0' TERM; echo "$CONSULKIT_SESSION" > "$D/session"; sleep 60 & wait`}, &out)
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))
	se, _, err := c.Session().Info(t.Context(), sid, nil)
	require.NoError(t, err)
	require.NotNil(t, se)
	assert.ElementsMatch(t, []string{"serfHealth", id}, se.NodeChecks, "the session is not tied to the check")

	_, err = c.Agent().FailTTL(t.Context(), id, "app down", nil)
	require.NoError(t, err)
	err = await(t, done, 30*time.Second)
	require.ErrorIs(t, err, lock.ErrLost, "output: %s", out.String())
	assert.Equal(t, "stopped\n", waitFile(t, filepath.Join(dir, "stopped"), time.Second))
	keyFree(t, c, key)
}
