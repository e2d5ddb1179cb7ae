package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ConsulVersion is the Consul version the harness builds and expects.
const ConsulVersion = "1.14.8"

var (
	binMu   sync.Mutex
	binDone bool // binPath, binErr hold the answer
	binPath string
	binErr  error
)

// ConsulBinary returns the path of a Consul binary: CONSUL_BINARY, the
// cached build of scripts/build-consul.sh (built now if this package's
// source tree is available and it is missing), or "consul" on PATH.
func ConsulBinary(ctx context.Context) (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if binDone {
		return binPath, binErr
	}
	p, err := findBinary(ctx)
	if err != nil && ctx.Err() != nil {
		// This caller's context ended: the answer is not the binary's, and
		// the next caller looks again.
		return "", err
	}
	binPath, binErr, binDone = p, err, true
	return p, err
}

func findBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("CONSUL_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("integration: CONSUL_BINARY: %w", err)
		}
		return p, nil
	}
	if p := cachedBinary(); p != "" && isWanted(ctx, p) {
		return p, nil
	}
	if script := buildScript(); script != "" {
		fmt.Fprintf(os.Stderr, "integration: building Consul %s (the first build takes several minutes)...\n", ConsulVersion)
		cmd := exec.CommandContext(ctx, script)
		// The script runs go build in a subshell: when ctx ends, the
		// whole group is killed, or the build would run on and hold the
		// output pipe (and this call) until it is done.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil && ctx.Err() != nil {
			return "", fmt.Errorf("integration: building Consul: %w", ctx.Err())
		}
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("integration: building Consul: %w\n%s", err, ee.Stderr)
			}
			return "", fmt.Errorf("integration: building Consul: %w", err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("integration: no Consul %s binary: set CONSUL_BINARY to one, put consul on PATH, or run scripts/build-consul.sh from a consulkit checkout", ConsulVersion)
}

// isWanted reports whether the binary at p runs and is Consul
// ConsulVersion, as scripts/build-consul.sh checks it: a cached binary
// that is cut short or of another version is built again.
func isWanted(ctx context.Context, p string) bool {
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(vctx, p, "version").Output()
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return first == "Consul v"+ConsulVersion
}

// cachedBinary is where scripts/build-consul.sh puts the binary.
func cachedBinary() string {
	root := os.Getenv("CONSULKIT_CACHE")
	if root == "" {
		if c, err := os.UserCacheDir(); err == nil {
			root = filepath.Join(c, "consulkit")
		} else {
			// No HOME (a bare environment): as scripts/build-consul.sh.
			root = filepath.Join(os.TempDir(), "consulkit-cache")
		}
	}
	return filepath.Join(root, "consul-"+ConsulVersion, "consul")
}

// buildScript finds scripts/build-consul.sh next to this package's source,
// with the tools/consul module it builds, which exist when the harness
// runs from a consulkit checkout. From the module cache (the harness used
// in another module's tests) the script is not executable and tools/consul,
// a module of its own, is not there: "" then, and a consul on PATH or
// CONSUL_BINARY is used instead.
func buildScript() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..")
	p := filepath.Join(root, "scripts", "build-consul.sh")
	fi, err := os.Stat(p)
	if err != nil || fi.Mode()&0o111 == 0 {
		return ""
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "consul", "go.mod")); err != nil {
		return ""
	}
	return p
}
