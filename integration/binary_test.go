package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIsWantedChecksTheBinary: a cached binary is used only if it runs and
// is the wanted version; one cut short (a build killed while writing it,
// a full disk) or of another version is built again.
func TestIsWantedChecksTheBinary(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
		return p
	}
	assert.True(t, isWanted(t.Context(), script("good", `echo "Consul v`+ConsulVersion+`"; echo "Revision x"`)))
	assert.False(t, isWanted(t.Context(), script("other", `echo "Consul v1.15.0"`)))
	assert.False(t, isWanted(t.Context(), script("fails", `echo "Consul v`+ConsulVersion+`"; exit 1`)))
	truncated := filepath.Join(dir, "truncated")
	require.NoError(t, os.WriteFile(truncated, []byte("\x7fELF\x02\x01\x01"), 0o755))
	assert.False(t, isWanted(t.Context(), truncated))
	assert.False(t, isWanted(t.Context(), filepath.Join(dir, "missing")))
}

// TestBuildStopsWithItsContext: when the caller's context ends during the
// build, the build is killed (go build included) and findBinary returns,
// rather than waiting for the build to end.
func TestBuildStopsWithItsContext(t *testing.T) {
	if buildScript() == "" {
		t.Skip("no build script: not a consulkit checkout")
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("the build script serialises builds with flock, which is not installed")
	}
	bin := t.TempDir()
	marker := "consulkit-fake-go-" + filepath.Base(bin)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "go"), []byte("#!/bin/sh\nexec sh -c 'sleep 300; :' "+marker+"\n"), 0o755))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("CONSULKIT_CACHE", t.TempDir())
	t.Setenv("CONSUL_BINARY", "")

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := findBinary(ctx); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(30 * time.Second):
		t.Fatal("findBinary still waits for a build whose context ended")
	}
	out, _ := exec.Command("pgrep", "-f", marker).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "the build's go command runs on")
}

// TestConsulBinaryNotPoisonedByACancelledCaller: a first caller whose
// context had ended (a test with a short deadline, Ctrl-C during consulkit
// dev) made every later call of the test binary fail, though the cached
// binary was there and good: the first call's answer was kept for good.
func TestConsulBinaryNotPoisonedByACancelledCaller(t *testing.T) {
	good, err := ConsulBinary(t.Context())
	require.NoError(t, err)
	// A cache holding a good binary, as scripts/build-consul.sh leaves it.
	cache := t.TempDir()
	dir := filepath.Join(cache, "consul-"+ConsulVersion)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.Symlink(good, filepath.Join(dir, "consul")))
	t.Setenv("CONSULKIT_CACHE", cache)
	t.Setenv("CONSUL_BINARY", "")
	binMu.Lock()
	savedDone, savedPath := binDone, binPath  // a success: binErr is nil
	binDone, binPath, binErr = false, "", nil // as at the start of a test binary
	binMu.Unlock()
	t.Cleanup(func() {
		binMu.Lock()
		binDone, binPath, binErr = savedDone, savedPath, nil
		binMu.Unlock()
	})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ConsulBinary(cancelled)
	require.Error(t, err)
	p, err := ConsulBinary(t.Context())
	require.NoError(t, err, "a later caller with a live context got the first caller's cancellation")
	assert.Equal(t, filepath.Join(dir, "consul"), p)
}
