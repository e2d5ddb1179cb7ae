package compat_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
)

// cliProc is a `consul lock` child process.
type cliProc struct {
	cmd     *exec.Cmd
	outPath string
	waitMu  sync.Mutex
	done    chan struct{}
	err     error
}

// startConsulLock starts `consul lock -http-addr=<addr> [flags] <prefix>
// <command>` and kills it, if still running, when the test ends.
func startConsulLock(t *testing.T, a *integration.Agent, flags []string, prefix, command string) *cliProc {
	t.Helper()
	bin, err := integration.ConsulBinary(t.Context())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"lock", "-http-addr=" + a.Addr}, flags...)
	args = append(args, prefix, command)
	cmd := exec.CommandContext(ctx, bin, args...)
	// consul lock runs its command with $SHELL -c. Pin it to /bin/sh so
	// the test behaves the same whatever the caller's shell: a CI machine
	// without SHELL gets /bin/sh, which forks the command where bash
	// would exec it.
	cmd.Env = append(os.Environ(), "SHELL=/bin/sh")
	if a.Token != "" {
		cmd.Env = append(cmd.Env, "CONSUL_HTTP_TOKEN="+a.Token)
	}
	// The output goes to a file, not a pipe: the CLI's command inherits
	// it, and a pipe held open by a grandchild that outlives the CLI would
	// keep Wait from returning after the CLI itself has exited.
	out, err := os.Create(filepath.Join(t.TempDir(), "consul-lock.out"))
	require.NoError(t, err)
	defer out.Close() // the child has its own descriptor once started
	p := &cliProc{cmd: cmd, outPath: out.Name(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out
	// Put the CLI and its child in a group of their own, so that cleanup
	// can kill both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	go func() {
		err := cmd.Wait()
		p.waitMu.Lock()
		p.err = err
		p.waitMu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		cancel()
		if t.Failed() {
			t.Logf("consul lock output:\n%s", p.output())
		}
	})
	return p
}

// wait waits for the process to exit and returns its Wait error.
func (p *cliProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("consul lock still running after %v; output:\n%s", limit, p.output())
	}
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	return p.err
}

func (p *cliProc) output() string {
	b, err := os.ReadFile(p.outPath)
	if err != nil {
		return fmt.Sprintf("(cannot read output: %v)", err)
	}
	return string(b)
}

// waitHeld waits until key is held by some session and returns it.
func waitHeld(t *testing.T, c *api.Client, key string, limit time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	var idx uint64
	for {
		p, meta, err := c.KV().Get(ctx, key, &api.QueryOptions{WaitIndex: idx, WaitTime: time.Second})
		require.NoError(t, err, "waiting for %q to be held", key)
		if p != nil && p.Session != "" {
			return p.Session
		}
		idx = api.NextWaitIndex(idx, meta.LastIndex)
	}
}

func TestLockInteropCLIHolds(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	key := prefix + "/.lock"

	// exec: the shell becomes sleep, so the SIGTERM that the CLI forwards
	// to its command reaches sleep itself rather than a shell that would
	// die and leave sleep running.
	cli := startConsulLock(t, a, nil, prefix, "exec sleep 30")
	cliSession := waitHeld(t, c, key, 30*time.Second)
	p := readKey(t, c, key)
	require.Equal(t, lock.Flag, p.Flags, "consul lock uses the lock flag")

	s := newSession(t, c)
	require.NotEqual(t, s.ID(), cliSession)
	l, err := lock.New(c, key, lock.WithSession(s))
	require.NoError(t, err)
	_, err = l.TryLock(t.Context())
	require.ErrorIs(t, err, lock.ErrLocked)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := make(chan lockResult, 1)
	go func() {
		held, err := l.Lock(ctx)
		res <- lockResult{held, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("consulkit Lock returned while consul lock holds the key: %v", r.err)
	case <-time.After(500 * time.Millisecond):
	}

	// SIGTERM: the CLI kills its child, releases the lock and exits 0.
	require.NoError(t, cli.cmd.Process.Signal(syscall.SIGTERM))
	var r lockResult
	select {
	case r = <-res:
	case <-time.After(20 * time.Second):
		t.Fatalf("consulkit Lock did not acquire after consul lock was stopped; output:\n%s", cli.output())
	}
	require.NoError(t, r.err)
	assert.Equal(t, s.ID(), l.Token().Session)
	assert.NoError(t, cli.wait(t, 20*time.Second), "consul lock exit")
	assert.Equal(t, s.ID(), readKey(t, c, key).Session)
	require.NoError(t, l.Unlock(t.Context()))
}

func TestLockInteropConsulkitHoldsCLI(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	key := prefix + "/.lock"
	marker := filepath.Join(t.TempDir(), "marker")

	s := newSession(t, c)
	l, err := lock.New(c, key, lock.WithSession(s), lock.WithValue([]byte("consulkit")))
	require.NoError(t, err)
	_, err = l.Lock(t.Context())
	require.NoError(t, err)

	// While consulkit holds the key, `consul lock -timeout` gives up
	// without running its command.
	start := time.Now()
	cli := startConsulLock(t, a, []string{"-timeout=2s"}, prefix, "touch "+marker)
	err = cli.wait(t, 30*time.Second)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "consul lock must fail while consulkit holds the lock; err=%v output:\n%s", err, cli.output())
	assert.NotZero(t, ee.ExitCode())
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second)
	assert.NoFileExists(t, marker, "consul lock ran its command without the lock")
	p := readKey(t, c, key)
	assert.Equal(t, s.ID(), p.Session)
	assert.Equal(t, "consulkit", string(p.Value))
	assert.Equal(t, lock.Flag, p.Flags)

	// After Unlock, it acquires, runs the command, releases and cleans up.
	require.NoError(t, l.Unlock(t.Context()))
	cli2 := startConsulLock(t, a, []string{"-timeout=10s"}, prefix, "touch "+marker)
	require.NoError(t, cli2.wait(t, 30*time.Second), "output:\n%s", cli2.output())
	assert.FileExists(t, marker)

	// And consulkit can take the key again after the CLI's cleanup.
	_, err = l.TryLock(t.Context())
	require.NoError(t, err)
	require.NoError(t, l.Unlock(t.Context()))
}
