package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// exitError carries a child's exit status out of run, so that main exits
// with it and prints nothing more: the child has already said what it had to.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

// child is a command run while something is held. It runs in a process
// group of its own, so that stopping it reaches whatever it started (a
// shell's children included). It inherits the environment of consulkit,
// plus env, and its stdin, except a terminal: the command's group is not
// the terminal's foreground group, where a read would stop it (SIGTTIN),
// holding the lock for nothing; it reads /dev/null instead. When
// consulkit dies without stopping it (SIGKILL, a crash), the kernel kills
// it (Linux: the parent death signal), so that it does not run on without
// the hold: only the command itself, not processes it started.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's result, set before done is closed
}

// checkCommand finds argv[0] as starting it would, so that a command line
// naming no program is refused before anything is held.
func checkCommand(argv []string) error {
	if _, err := exec.LookPath(argv[0]); err != nil {
		return &usageError{msg: fmt.Sprintf("command %s: %v", argv[0], err)}
	}
	return nil
}

func startChild(argv, env []string, stdout, stderr io.Writer) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	if !isTerminal(os.Stdin) {
		cmd.Stdin = os.Stdin
	}
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

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// stop ends the child's whole process group: SIGTERM, then SIGKILL to
// what is left of the group after grace. It returns once the child has
// exited and no process of its group runs any more, also when the child
// itself had already exited and left processes behind: nothing the
// command started in its group may outlive the hold (a process that moved
// to a group of its own, as setsid or GNU timeout do, escapes it). After
// the SIGKILL it waits at most a second more for the group, then for the
// command itself, however long: the hold is kept until the command is gone.
func (c *child) stop(grace time.Duration) {
	pgid := c.cmd.Process.Pid
	if !groupRunning(pgid) {
		<-c.done
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT) // a stopped process gets the SIGTERM too
	if !waitGroup(pgid, grace) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		waitGroup(pgid, time.Second)
	}
	<-c.done
}

// exited reports whether the child's process has exited: done is closed,
// or the process is reaped or a zombie (done waits for its output to be
// copied too).
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
	}
	f, err := procStat(strconv.Itoa(c.cmd.Process.Pid))
	if err != nil {
		// Gone from /proc: reaped. Without /proc (a sandbox), only done
		// can tell.
		_, serr := os.Stat("/proc/self/stat")
		return errors.Is(err, os.ErrNotExist) && serr == nil
	}
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (which may hold spaces and parentheses): state, ppid, pgrp, ...
func procStat(pid string) ([]string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, nil
	}
	return strings.Fields(s[i+1:]), nil
}

// waitGroup waits up to d for process group pgid to have no running
// process, and reports whether it came to that.
func waitGroup(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for groupRunning(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // a scan of /proc is not free
	}
	return true
}

// groupRunning reports whether a process of group pgid runs: exists and
// is not a zombie (a zombie waits for its parent, which for an orphan
// may be an init that never reaps it).
func groupRunning(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell zombies apart: trust kill
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		f, err := procStat(e.Name())
		if err != nil {
			continue
		}
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
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
