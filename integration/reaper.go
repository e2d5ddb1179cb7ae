package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The reaper removes what the harness started when the process that
// started it dies without cleaning up: a test that panics (Go then runs
// no cleanup but that test's), a test binary killed by go test -timeout,
// Ctrl-C, SIGKILL. Containers, networks and cluster data directories
// would otherwise stay until the next run on the same host.
//
// It is the same executable, started again with envReaper set: the init
// function below turns it into the reaper before anything else runs. It
// reads its stdin, a pipe from the owner: a quit byte means the owner
// cleaned up itself; end of file without it means the owner is gone. The
// reaper then waits for the owner's process to disappear and removes the
// leftovers of dead owners, as the next run would.
const envReaper = "CONSULKIT_HARNESS_REAPER"

const reaperQuit = 'q'

func init() {
	if owner := os.Getenv(envReaper); owner != "" {
		os.Exit(runReaper(owner))
	}
}

func runReaper(owner string) int {
	// Ctrl-C reaches the whole foreground process group: the reaper has
	// its own, but ignores the signals anyway.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	pid, err := strconv.Atoi(owner)
	if err != nil {
		return 2
	}
	var b [1]byte
	if n, _ := io.ReadFull(os.Stdin, b[:]); n == 1 && b[0] == reaperQuit {
		return 0
	}
	// The owner is gone or going: wait until its process has been reaped
	// (a zombie still counts as alive), then clean up.
	for deadline := time.Now().Add(30 * time.Second); processAlive(pid) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	removeAllLeftovers()
	// A request the owner sent just before it died (a network or a
	// container being created) is carried out by the daemon all the same,
	// after the sweep above: sweep again until such a request is over.
	for end := time.Now().Add(createTimeout + 5*time.Second); time.Now().Before(end); {
		time.Sleep(time.Second)
		removeAllLeftovers()
	}
	return 0
}

// removeAllLeftovers removes, in every mode this host can run, what runs
// whose process is gone left behind.
func removeAllLeftovers() {
	if dockerAvailable() {
		if p, err := pool(); err == nil {
			(&dockerBackend{pool: p}).removeLeftovers()
		}
	}
	if dir := processStateDir(); dir != "" {
		(&processBackend{stateDir: dir}).removeLeftovers()
	}
}

// reaper is this process's reaper, when one runs.
var reaper struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	pipe *os.File // the write end of the reaper's stdin
}

// startReaper starts the reaper unless it runs already. A reaper that
// cannot be started costs only the cleanup after a crash: the error is
// returned for the caller to report, not to fail on.
func startReaper() error {
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if reaper.cmd != nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envReaper+"="+ownerPID())
	cmd.Stdin = r
	// Stdout and stderr go to the null device: a reaper holding the test
	// binary's output pipe would keep go test waiting for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return fmt.Errorf("integration: starting the reaper: %w", err)
	}
	_ = r.Close()
	reaper.cmd, reaper.pipe = cmd, w
	return nil
}

// stopReaper tells the reaper that everything was cleaned up, and waits
// for it to exit. A reaper that is gone already (killed from outside) or
// does not exit is reported on stderr, not as an error: everything was
// cleaned up without it.
func stopReaper(ctx context.Context) {
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if reaper.cmd == nil {
		return
	}
	cmd, w := reaper.cmd, reaper.pipe
	reaper.cmd, reaper.pipe = nil, nil
	_, werr := w.Write([]byte{reaperQuit})
	_ = w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("did not exit: %w", ctx.Err())
	}
	if err = errors.Join(werr, err); err != nil {
		fmt.Fprintf(os.Stderr, "integration: reaper: %v\n", err)
	}
}

// processStateDir is where the process backend records what it starts.
func processStateDir() string {
	bin := cachedBinary()
	if bin == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(bin), "..", "run")
}
