package compat_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
)

// TestSemaphoreCLIHoldsASlot: `consul lock -n 2` holds one slot and
// consulkit shares the prefix: one more fits, a third waits for the CLI.
func TestSemaphoreCLIHoldsASlot(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)

	cli := startConsulLock(t, a, []string{"-n=2"}, prefix, "exec sleep 30")
	require.Eventually(t, func() bool {
		p, _, err := c.KV().Get(t.Context(), prefix+"/.lock", nil)
		return err == nil && p != nil && len(p.Value) > 0 && readSemState(t, c, prefix).Holders != nil && len(readSemState(t, c, prefix).Holders) == 1
	}, 30*time.Second, 50*time.Millisecond)

	k1, err := semaphore.New(c, prefix, 2, semaphore.WithSession(newSession(t, c)))
	require.NoError(t, err)
	_, err = k1.TryAcquire(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = k1.Release(context.Background()) })

	k2, err := semaphore.New(c, prefix, 2, semaphore.WithSession(newSession(t, c)))
	require.NoError(t, err)
	_, err = k2.TryAcquire(t.Context())
	require.ErrorIs(t, err, semaphore.ErrNoSlot)

	res := make(chan lockResult, 1)
	go func() { h, err := k2.Acquire(t.Context()); res <- lockResult{h, err} }()
	select {
	case r := <-res:
		t.Fatalf("acquired while full: %v", r.err)
	case <-time.After(time.Second):
	}
	require.NoError(t, cli.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case r := <-res:
		require.NoError(t, r.err)
	case <-time.After(20 * time.Second):
		t.Fatalf("no slot after the CLI stopped; output:\n%s", cli.output())
	}
	assert.NoError(t, cli.wait(t, 20*time.Second))
	require.NoError(t, k2.Release(t.Context()))
}

// TestSemaphoreFullForTheCLI: consulkit fills a 2-slot semaphore, so
// `consul lock -n 2 -timeout` gives up without running its command, and runs
// it once a slot is free.
func TestSemaphoreFullForTheCLI(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	marker := filepath.Join(t.TempDir(), "marker")
	var sems []*semaphore.Semaphore
	for range 2 {
		k, err := semaphore.New(c, prefix, 2, semaphore.WithSession(newSession(t, c)))
		require.NoError(t, err)
		_, err = k.TryAcquire(t.Context())
		require.NoError(t, err)
		sems = append(sems, k)
	}
	cli := startConsulLock(t, a, []string{"-n=2", "-timeout=2s"}, prefix, "touch "+marker)
	err := cli.wait(t, 30*time.Second)
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "err=%v output:\n%s", err, cli.output())
	assert.NoFileExists(t, marker)
	require.NoError(t, sems[0].Release(t.Context()))
	cli2 := startConsulLock(t, a, []string{"-n=2", "-timeout=10s"}, prefix, "touch "+marker)
	require.NoError(t, cli2.wait(t, 30*time.Second), "output:\n%s", cli2.output())
	assert.FileExists(t, marker)
	_, err = sems[0].TryAcquire(t.Context())
	require.NoError(t, err, "the CLI gave its slot back")
	require.NoError(t, sems[0].Release(t.Context()))
	require.NoError(t, sems[1].Release(t.Context()))
}

// TestSemaphoreDeadHoldersArePrunedBothWays: an official holder whose
// session is destroyed frees its slot for a waiting consulkit Acquire, and
// the reverse.
func TestSemaphoreDeadHoldersArePrunedBothWays(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)

	sid, _, err := oc.Session().Create(&consulapi.SessionEntry{Behavior: consulapi.SessionBehaviorDelete, TTL: "30s", LockDelay: time.Nanosecond}, nil)
	require.NoError(t, err)
	o, err := oc.SemaphoreOpts(&consulapi.SemaphoreOptions{Prefix: prefix, Limit: 1, Session: sid, SemaphoreWaitTime: time.Second})
	require.NoError(t, err)
	lost, err := o.Acquire(nil)
	require.NoError(t, err)
	require.NotNil(t, lost)

	k, err := semaphore.New(c, prefix, 1, semaphore.WithSession(newSession(t, c)))
	require.NoError(t, err)
	res := make(chan lockResult, 1)
	go func() { h, err := k.Acquire(t.Context()); res <- lockResult{h, err} }()
	time.Sleep(500 * time.Millisecond)
	_, err = oc.Session().Destroy(sid, nil)
	require.NoError(t, err)
	var r lockResult
	select {
	case r = <-res:
		require.NoError(t, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("consulkit did not prune the dead official holder")
	}

	// Reverse: consulkit holder (caller's session, behavior release) dies;
	// a waiting official Acquire prunes it.
	o2 := officialSem(t, oc, prefix, 1)
	ores := make(chan officialResult, 1)
	stop := make(chan struct{})
	go func() { l, err := o2.Acquire(stop); ores <- officialResult{l, err} }()
	t.Cleanup(func() { close(stop) })
	time.Sleep(500 * time.Millisecond)
	ids, err := k.Holders(t.Context())
	require.NoError(t, err)
	require.Len(t, ids, 1)
	_, err = c.Session().Destroy(t.Context(), ids[0], nil)
	require.NoError(t, err)
	select {
	case or := <-ores:
		require.NoError(t, or.err)
		require.NotNil(t, or.lost)
		_ = o2.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("official client did not get the slot of the dead consulkit holder")
	}
	integration.WaitDone(t, r.held, 5*time.Second)
}
