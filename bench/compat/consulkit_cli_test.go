package compat_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
)

// buildConsulkit builds the consulkit command into the test's temporary
// directory.
func buildConsulkit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "consulkit")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/consulkit/consulkit/cmd/consulkit").CombinedOutput()
	require.NoError(t, err, "building the consulkit command: %s", out)
	return bin
}

// consulkitCLI runs the consulkit command to its end and returns its exit
// status and output.
func consulkitCLI(t *testing.T, bin string, a *integration.Agent, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+a.Addr)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err, "output: %s", out)
	return 0, string(out)
}

// TestCommandLineMeetsConsulLock: what the README says of the two command
// lines. `consul lock <prefix>` holds <prefix>/.lock, which `consulkit lock`
// respects, and the reverse; `consul lock -n N` and `consulkit sem -limit N`
// share slots.
func TestCommandLineMeetsConsulLock(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	marker := filepath.Join(t.TempDir(), "marker")
	bin := buildConsulkit(t)

	cli := startConsulLock(t, a, nil, prefix+"/job", "exec sleep 30")
	waitHeld(t, c, prefix+"/job/.lock", 30*time.Second)
	code, out := consulkitCLI(t, bin, a, "lock", "-try", prefix+"/job/.lock", "touch", marker)
	assert.Equal(t, 1, code, "output: %s", out)
	assert.Contains(t, out, "held by another session")
	assert.NoFileExists(t, marker, "consulkit ran its command while consul lock held the lock")
	require.NoError(t, cli.cmd.Process.Signal(syscall.SIGTERM))
	assert.NoError(t, cli.wait(t, 20*time.Second), "consul lock exit")

	// consulkit holds it: consul lock gives up, for that reason and no
	// other (its output says so); then consulkit's command ends and
	// consul lock gets it.
	consulOut := filepath.Join(t.TempDir(), "consul-lock.out")
	code, out = consulkitCLI(t, bin, a, "lock", "-lock-delay", "0s", prefix+"/job2/.lock", "sh", "-c", tryConsulLock, "sh",
		mustConsul(t), consulOut, "-http-addr="+a.Addr, prefix+"/job2", "touch "+marker)
	assert.Equal(t, 0, code, "consul lock got the lock while consulkit held it, or failed otherwise; output: %s", out)
	assert.NoFileExists(t, marker)
	after := startConsulLock(t, a, []string{"-timeout=10s"}, prefix+"/job2", "touch "+marker)
	require.NoError(t, after.wait(t, 30*time.Second), "output:\n%s", after.output())
	assert.FileExists(t, marker)

	// Two consul lock -n 2 fill the slots; consulkit sem -limit 2 -try
	// finds none.
	for range 2 {
		startConsulLock(t, a, []string{"-n=2"}, prefix+"/slots", "exec sleep 30")
	}
	waitHolders(t, a, prefix+"/slots", 2)
	code, out = consulkitCLI(t, bin, a, "sem", "-limit", "2", "-try", prefix+"/slots", "true")
	assert.Equal(t, 1, code, "output: %s", out)
	assert.Contains(t, out, "no free slot")

	// And the other way: two consulkit sem, one inside the other, hold
	// both slots, so consul lock -n 2 gives up. (consul lock -n 1 would
	// be a lock, not a semaphore.)
	marker2 := filepath.Join(t.TempDir(), "marker2")
	code, out = consulkitCLI(t, bin, a, "sem", "-limit", "2", prefix+"/slot", bin, "sem", "-limit", "2", prefix+"/slot",
		"sh", "-c", tryConsulLock, "sh", mustConsul(t), consulOut, "-http-addr="+a.Addr, "-n=2", prefix+"/slot", "touch "+marker2)
	assert.Equal(t, 0, code, "consul lock -n 2 got a slot while consulkit held both, or failed otherwise; output: %s", out)
	assert.NoFileExists(t, marker2)
}

// tryConsulLock is a command for consulkit to run while it holds
// something: it runs "$1" lock -timeout=1s with the arguments after $2,
// its output in the file $2, and exits 0 only when consul lock gave up
// for its timeout (9 when it got the lock, 8 when it failed otherwise).
const tryConsulLock = `consul="$1"; out="$2"; shift 2
"$consul" lock -timeout=1s "$@" > "$out" 2>&1 && exit 9
grep -q "timeout during lock acquisition" "$out" || { cat "$out"; exit 8; }`

func mustConsul(t *testing.T) string {
	t.Helper()
	bin, err := integration.ConsulBinary(t.Context())
	require.NoError(t, err)
	return bin
}

// waitHolders waits until the semaphore at prefix lists n holders.
func waitHolders(t *testing.T, a *integration.Agent, prefix string, n int) {
	t.Helper()
	c := a.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, _, err := c.KV().Get(t.Context(), prefix+"/.lock", nil)
		require.NoError(t, err)
		if p != nil && strings.Count(string(p.Value), "true") == n {
			return
		}
		require.True(t, time.Now().Before(deadline), "no %d holders at %s", n, prefix)
		time.Sleep(50 * time.Millisecond)
	}
}
