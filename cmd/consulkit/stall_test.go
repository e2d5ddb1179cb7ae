package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stalledWriter is a stderr whose reader has stopped reading without
// going away (a hung log collector, a pipe nobody drains): from the
// first write that holds at on, every Write blocks until resume is called.
type stalledWriter struct {
	once    sync.Once
	ready   chan struct{}
	at      string        // the stall begins with a write that holds this ("": the first)
	stalled chan struct{} // closed once a write is stalled
	mu      sync.Mutex
	begun   bool
}

func newStalledWriter(at string) *stalledWriter {
	return &stalledWriter{at: at, ready: make(chan struct{}), stalled: make(chan struct{})}
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.begun && strings.Contains(string(p), w.at) {
		w.begun = true
		close(w.stalled)
	}
	begun := w.begun
	w.mu.Unlock()
	if begun {
		<-w.ready
	}
	return len(p), nil
}

func (w *stalledWriter) resume() { w.once.Do(func() { close(w.ready) }) }

// runStalled runs consulkit with a stalled stderr; the stall ends when the
// test does, so that consulkit can return.
func runStalled(t *testing.T, ctx context.Context, args []string) (*stalledWriter, <-chan error) {
	t.Helper()
	return runStalledAt(t, ctx, "", args)
}

// runStalledAt is runStalled with a stderr that stalls from the first
// write that holds at.
func runStalledAt(t *testing.T, ctx context.Context, at string, args []string) (*stalledWriter, <-chan error) {
	t.Helper()
	stderr := newStalledWriter(at)
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(wg.Wait)
	t.Cleanup(stderr.resume) // runs before wg.Wait
	go func() {
		defer wg.Done()
		done <- run(ctx, args, io.Discard, stderr)
	}()
	return stderr, done
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestLockLostWithAStalledStderrStillStopsTheCommand: consulkit's stderr
// is a pipe whose reader has stalled. When the lock is lost, the command
// must be stopped at once: a warning that cannot be written must not
// keep it running without the lock.
func TestLockLostWithAStalledStderrStillStopsTheCommand(t *testing.T) {
	a, c, key, dir := cliTest(t, "stalled-stderr")
	stderr, done := runStalled(t, t.Context(), []string{"lock", "-http-addr", a.Addr, "-lock-delay", "0s", key, "sh", "-c",
		`trap 'echo stopped > "$D/stopped"; exit 0' TERM; echo "$CONSULKIT_SESSION" > "$D/session"; sleep 60 & wait`})
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))

	_, err := c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(filepath.Join(dir, "stopped")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.FileExists(t, filepath.Join(dir, "stopped"), "the lock was lost 10s ago and the command still runs: consulkit waits to write its warning")
	stderr.resume()
	err = await(t, done, 30*time.Second)
	assert.Equal(t, 1, exitStatus(err, io.Discard), "exit status after a loss: %v", err)
	keyFree(t, c, key)
}

// TestElectDeposedWithAStalledStderrStillStopsTheCommand: as for lock, a
// deposed leader's command must be stopped at once, whether or not
// consulkit can write that it was deposed.
func TestElectDeposedWithAStalledStderrStillStopsTheCommand(t *testing.T) {
	a, c, key, dir := cliTest(t, "stalled-stderr-elect")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr, done := runStalled(t, ctx, []string{"elect", "-http-addr", a.Addr, "-lock-delay", "0s", key, "sh", "-c",
		`trap 'echo stopped >> "$D/stopped"; exit 0' TERM; echo "$CONSULKIT_SESSION" >> "$D/session"; sleep 60 & wait`})
	sid := strings.TrimSpace(waitFile(t, filepath.Join(dir, "session"), 30*time.Second))

	_, err := c.Session().Destroy(t.Context(), sid, nil)
	require.NoError(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(filepath.Join(dir, "stopped")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.FileExists(t, filepath.Join(dir, "stopped"), "deposed 10s ago and the command still runs: consulkit waits to write its warning")
	stderr.resume()
	// Leading again, with a new command: interrupt it as Ctrl-C does.
	deadline = time.Now().Add(30 * time.Second)
	for len(lines(t, filepath.Join(dir, "session"))) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	_ = await(t, done, 30*time.Second)
	keyFree(t, c, key)
}

// TestLockLostBeforeTheCommandStartsRunsNothing: the lock is lost after
// Lock returned but before the command was started (here while consulkit
// waits to write, with -v, that it is starting it): the command must not
// be started without the lock.
func TestLockLostBeforeTheCommandStartsRunsNothing(t *testing.T) {
	a, c, key, dir := cliTest(t, "lost-before-start")
	stderr, done := runStalledAt(t, t.Context(), "starting the command", []string{"lock", "-v", "-http-addr", a.Addr, "-lock-delay", "0s", key, "sh", "-c",
		`echo ran > "$D/ran"`})
	select {
	case <-stderr.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the lock was not acquired")
	}
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	require.NotEmpty(t, pair.Session)
	_, err = c.Session().Destroy(t.Context(), pair.Session, nil)
	require.NoError(t, err)
	time.Sleep(time.Second) // the loss is seen
	stderr.resume()
	err = await(t, done, 30*time.Second)
	assert.NoFileExists(t, filepath.Join(dir, "ran"), "the command was started after the lock was lost")
	assert.Equal(t, 1, exitStatus(err, io.Discard), "%v", err)
	keyFree(t, c, key)
}

// TestElectDeposedBeforeTheCommandStartsRunsNothing: as for lock, a term
// lost before its command was started runs nothing; the next term does.
func TestElectDeposedBeforeTheCommandStartsRunsNothing(t *testing.T) {
	a, c, key, dir := cliTest(t, "deposed-before-start")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr, done := runStalledAt(t, ctx, "starting the command", []string{"elect", "-v", "-http-addr", a.Addr, "-lock-delay", "0s", key, "sh", "-c",
		`echo "$CONSULKIT_SESSION" >> "$D/ran"; sleep 60 & wait`})
	select {
	case <-stderr.stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("not elected")
	}
	pair, _, err := c.KV().Get(t.Context(), key, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	require.NotEmpty(t, pair.Session)
	_, err = c.Session().Destroy(t.Context(), pair.Session, nil)
	require.NoError(t, err)
	time.Sleep(time.Second) // the loss is seen
	stderr.resume()
	next := strings.TrimSpace(waitFile(t, filepath.Join(dir, "ran"), 30*time.Second))
	cancel()
	_ = await(t, done, 30*time.Second)
	assert.NotContains(t, next, pair.Session, "the command was started for a term already lost")
	keyFree(t, c, key)
}
