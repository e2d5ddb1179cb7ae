package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
	"github.com/stretchr/testify/require"
)

// A run that dies without cleaning up (here a panic, after which Go runs
// no cleanup) leaves nothing behind: its reaper removes the agent it
// started, whichever mode it ran in.
func TestReaperRemovesWhatACrashedRunLeft(t *testing.T) {
	if DetectMode() == ModeExternal {
		t.Skip("external mode starts nothing that could be left behind")
	}
	// "stopped": a cluster server stopped before the crash, whose data
	// directory the harness keeps for a restart, must go too.
	for _, how := range []string{"1", "stopped"} {
		t.Run(how, func(t *testing.T) {
			exe, err := os.Executable()
			require.NoError(t, err)
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "CONSULKIT_TEST_CRASH="+how)
			out, err := cmd.Output()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "the crashing run must fail: %v\n%s", err, out)
			var addr, dir string
			var owner int
			_, err = fmt.Sscanf(string(out), "agent %s owner %d dir %q", &addr, &owner, &dir)
			require.NoError(t, err, "crashing run's output: %s", out)

			require.Eventually(t, func() bool { return !hasLeftovers(t, owner) }, time.Minute, 200*time.Millisecond,
				"what run %d started (agent %s) is still there", owner, addr)
			if dir != "" {
				require.NoDirExists(t, dir, "the data directory of run %d's agent is still there", owner)
			}
		})
	}
}

// hasLeftovers reports whether anything the harness started for owner is
// still there: containers or networks labelled with it, or processes the
// process backend recorded for it.
func hasLeftovers(t *testing.T, owner int) bool {
	t.Helper()
	id := strconv.Itoa(owner)
	if dockerAvailable() {
		p, err := pool()
		require.NoError(t, err)
		filter := map[string][]string{"label": {labelHarness + "=1", labelOwner + "=" + id}}
		cs, err := p.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: filter})
		require.NoError(t, err)
		ns, err := p.Client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelHarness + "=1": true, labelOwner + "=" + id: true}})
		require.NoError(t, err)
		if len(cs)+len(ns) > 0 {
			return true
		}
	}
	files, _ := filepath.Glob(filepath.Join(processStateDir(), "*.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r procRecord
		if json.Unmarshal(raw, &r) == nil && r.Owner == owner {
			return true
		}
	}
	return false
}

// TestIsOurConsulMatchesTheOwner: a leftover record's PID is killed only
// if that process carries the marker of the run that wrote the record; a
// PID since reused by another run's agent (another owner) is left alone.
func TestIsOurConsulMatchesTheOwner(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30", "consulkit-harness:123")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Until the child has exec'd, its command line is the test binary's.
	require.Eventually(t, func() bool { return isOurConsul(cmd.Process.Pid, 123) }, 5*time.Second, 5*time.Millisecond)
	require.False(t, isOurConsul(cmd.Process.Pid, 12), "another owner whose PID is a prefix")
	require.False(t, isOurConsul(cmd.Process.Pid, 456))
}
