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
