package compat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/semaphore"
)

// semState is the coordination key's value.
type semState struct {
	Limit   int
	Holders map[string]bool
}

// readSemState reads <prefix>/.lock.
func readSemState(t *testing.T, c *api.Client, prefix string) semState {
	t.Helper()
	p := readKey(t, c, prefix+"/.lock")
	require.Equal(t, uint64(consulapi.SemaphoreFlagValue), p.Flags)
	var st semState
	require.NoError(t, json.Unmarshal(p.Value, &st))
	return st
}

// officialSem returns an official semaphore whose blocking reads last at
// most a second, so that a stopCh is noticed within about a second.
func officialSem(t *testing.T, oc *consulapi.Client, prefix string, limit int) *consulapi.Semaphore {
	t.Helper()
	s, err := oc.SemaphoreOpts(&consulapi.SemaphoreOptions{Prefix: prefix, Limit: limit, SemaphoreWaitTime: time.Second})
	require.NoError(t, err)
	return s
}

// acquireOfficial acquires an official slot and releases it when the test
// ends, unless released before.
func acquireOfficial(t *testing.T, sem *consulapi.Semaphore) {
	t.Helper()
	lost, err := sem.Acquire(nil)
	require.NoError(t, err)
	require.NotNil(t, lost, "official Acquire returned without a slot")
	t.Cleanup(func() { _ = sem.Release() })
}

// fillMixed fills a 2-slot semaphore on prefix with one official and one
// consulkit holder.
func fillMixed(t *testing.T, c *api.Client, oc *consulapi.Client, prefix string) (*consulapi.Semaphore, *semaphore.Semaphore) {
	t.Helper()
	o1 := officialSem(t, oc, prefix, 2)
	acquireOfficial(t, o1)

	s1 := newSession(t, c)
	k1, err := semaphore.New(c, prefix, 2, semaphore.WithSession(s1))
	require.NoError(t, err)
	held, err := k1.TryAcquire(t.Context())
	require.NoError(t, err, "consulkit must get the second slot next to an official holder")
	require.NoError(t, held.Err())
	t.Cleanup(func() { _ = k1.Release(context.Background()) })

	st := readSemState(t, c, prefix)
	assert.Equal(t, 2, st.Limit)
	assert.Len(t, st.Holders, 2)
	assert.True(t, st.Holders[s1.ID()], "consulkit session among the holders: %v", st.Holders)
	ids, err := k1.Holders(t.Context())
	require.NoError(t, err)
	assert.Len(t, ids, 2)
	return o1, k1
}

func TestSemaphoreInteropConsulkitWaits(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	o1, _ := fillMixed(t, c, oc, prefix)

	// A third, consulkit, finds no slot.
	s2 := newSession(t, c)
	k2, err := semaphore.New(c, prefix, 2, semaphore.WithSession(s2))
	require.NoError(t, err)
	_, err = k2.TryAcquire(t.Context())
	require.ErrorIs(t, err, semaphore.ErrNoSlot)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := make(chan lockResult, 1)
	go func() {
		held, err := k2.Acquire(ctx)
		res <- lockResult{held, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("consulkit Acquire returned while the semaphore is full: %v", r.err)
	case <-time.After(time.Second):
	}
	assert.Len(t, readSemState(t, c, prefix).Holders, 2)

	// The official holder releases: the consulkit waiter gets its slot.
	released := time.Now()
	require.NoError(t, o1.Release())
	var r lockResult
	select {
	case r = <-res:
	case <-time.After(20 * time.Second):
		t.Fatal("consulkit Acquire did not get the slot the official holder released")
	}
	require.NoError(t, r.err)
	t.Logf("consulkit acquired %v after the official Release", time.Since(released))
	st := readSemState(t, c, prefix)
	assert.Len(t, st.Holders, 2)
	assert.True(t, st.Holders[s2.ID()])
	require.NoError(t, k2.Release(t.Context()))
	assert.ErrorIs(t, context.Cause(r.held), semaphore.ErrReleased)
}

func TestSemaphoreInteropOfficialWaits(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	_, k1 := fillMixed(t, c, oc, prefix)

	// A third, official, finds no slot: stopped after a second, it returns
	// nil, nil.
	o2 := officialSem(t, oc, prefix, 2)
	start := time.Now()
	lost, err := o2.Acquire(stopAfter(time.Second))
	require.NoError(t, err)
	require.Nil(t, lost, "the official client took a third slot of a 2-slot semaphore")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	assert.Len(t, readSemState(t, c, prefix).Holders, 2)

	// A waiting official Acquire gets the slot consulkit releases.
	o3 := officialSem(t, oc, prefix, 2)
	stop := make(chan struct{})
	res := make(chan officialResult, 1)
	go func() {
		lost, err := o3.Acquire(stop)
		res <- officialResult{lost, err}
	}()
	t.Cleanup(func() {
		close(stop)
		if r := <-res; r.lost != nil {
			_ = o3.Release()
		}
	})
	time.Sleep(time.Second)
	select {
	case r := <-res:
		res <- r
		t.Fatalf("official Acquire returned while the semaphore is full: lost=%v err=%v", r.lost, r.err)
	default:
	}

	released := time.Now()
	require.NoError(t, k1.Release(t.Context()))
	var r officialResult
	select {
	case r = <-res:
		res <- r // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("official Acquire did not get the slot consulkit released")
	}
	require.NoError(t, r.err)
	require.NotNil(t, r.lost, "official Acquire returned without a slot")
	t.Logf("official client acquired %v after the consulkit Release", time.Since(released))
	assert.Len(t, readSemState(t, c, prefix).Holders, 2)

	// Still full: consulkit cannot take a third slot.
	_, err = k1.TryAcquire(t.Context())
	assert.ErrorIs(t, err, semaphore.ErrNoSlot)
}

func TestSemaphoreInteropLimitConflict(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)

	o1 := officialSem(t, oc, prefix, 2)
	acquireOfficial(t, o1)
	s := newSession(t, c)
	k, err := semaphore.New(c, prefix, 3, semaphore.WithSession(s))
	require.NoError(t, err)
	_, err = k.TryAcquire(t.Context())
	assert.ErrorIs(t, err, semaphore.ErrLimitConflict)
	assert.Equal(t, 2, readSemState(t, c, prefix).Limit)
}
