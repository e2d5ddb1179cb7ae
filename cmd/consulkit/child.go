package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// exitError carries a child's exit status out of run, so that main exits
// with it and prints nothing more: the child has already said what it had to.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

// child is a command run while something is held. It runs in a process
// group of its own, so that stopping it reaches whatever it started (a
// shell's children included): it cannot read from the terminal, since its
// group is not the terminal's foreground group. It inherits the stdin and
// the environment of consulkit, plus env. When consulkit dies without
// stopping it (SIGKILL, a crash), the kernel kills it (Linux: the parent
// death signal), so that it does not run on without the hold: only the
// command itself, not processes it started.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's result, set before done is closed
}

func startChild(argv, env []string, stdout, stderr io.Writer) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Output that is not a file is copied by goroutines of os/exec, which
	// a grandchild keeping the pipe open would hold up forever.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// stop asks the child's process group to end with SIGTERM and, when the
// child has not exited after grace, kills the group. It returns once the
// child has exited.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
}

// status is the child's exit status, as a shell reports it (128+n for a
// child killed by signal n); -1 when it could not be waited for. Output
// cut short because a process the child started kept its pipes open
// (exec.ErrWaitDelay) does not change the status.
func (c *child) status() int {
	ps := c.cmd.ProcessState
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// result turns the child's exit into run's result: nil for status 0,
// otherwise an *exitError with the status.
func (c *child) result() error {
	switch code := c.status(); code {
	case 0:
		return nil
	case -1:
		return fmt.Errorf("waiting for the command: %w", c.err)
	default:
		return &exitError{code: code}
	}
}
