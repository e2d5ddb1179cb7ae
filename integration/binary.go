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
)

// ConsulVersion is the Consul version the harness builds and expects.
const ConsulVersion = "1.14.8"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// ConsulBinary returns the path of a Consul binary: CONSUL_BINARY, the
// cached build of scripts/build-consul.sh (built now if this package's
// source tree is available and it is missing), or "consul" on PATH.
func ConsulBinary(ctx context.Context) (string, error) {
	binOnce.Do(func() { binPath, binErr = findBinary(ctx) })
	return binPath, binErr
}

func findBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("CONSUL_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("integration: CONSUL_BINARY: %w", err)
		}
		return p, nil
	}
	if p := cachedBinary(); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if script := buildScript(); script != "" {
		fmt.Fprintf(os.Stderr, "integration: building Consul %s (the first build takes several minutes)...\n", ConsulVersion)
		out, err := exec.CommandContext(ctx, script).Output()
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
	return "", errors.New("integration: no Consul binary: set CONSUL_BINARY or run scripts/build-consul.sh")
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
// which exists when the harness runs from a consulkit checkout.
func buildScript() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	p := filepath.Join(filepath.Dir(file), "..", "scripts", "build-consul.sh")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
