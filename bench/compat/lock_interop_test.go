package compat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
)

// lockResult is what a Lock call running in a goroutine returned.
type lockResult struct {
	held context.Context
	err  error
}

// officialResult is what an official Lock or Acquire call returned.
type officialResult struct {
	lost <-chan struct{}
	err  error
}

// readKey reads key with a consistent read and requires it to exist.
func readKey(t *testing.T, c *api.Client, key string) *api.KVPair {
	t.Helper()
	p, _, err := c.KV().Get(t.Context(), key, &api.QueryOptions{Consistency: api.ConsistencyConsistent})
	require.NoError(t, err)
	require.NotNil(t, p, "key %q missing", key)
	return p
}

func TestLockInteropOfficialHolds(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	key := keyFor(t, "lock")
	cleanupTree(t, c, "compat/"+t.Name())

	ol, err := oc.LockOpts(&consulapi.LockOptions{Key: key, Value: []byte("official"), LockWaitTime: time.Second})
	require.NoError(t, err)
	lost, err := ol.Lock(nil)
	require.NoError(t, err)
	require.NotNil(t, lost)
	officialSession := readKey(t, c, key).Session
	require.NotEmpty(t, officialSession)

	s := newSession(t, c)
	l, err := lock.New(c, key, lock.WithSession(s), lock.WithValue([]byte("consulkit")))
	require.NoError(t, err)

	_, err = l.TryLock(t.Context())
	require.ErrorIs(t, err, lock.ErrLocked, "consulkit TryLock must not take a key the official client holds")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res := make(chan lockResult, 1)
	go func() {
		held, err := l.Lock(ctx)
		res <- lockResult{held, err}
	}()
	select {
	case r := <-res:
		t.Fatalf("consulkit Lock returned while the official client holds the key: err=%v", r.err)
	case <-time.After(time.Second):
	}
	p := readKey(t, c, key)
	assert.Equal(t, officialSession, p.Session, "the official holder kept the key")
	assert.Equal(t, "official", string(p.Value))

	released := time.Now()
	require.NoError(t, ol.Unlock())
	var r lockResult
	select {
	case r = <-res:
	case <-time.After(15 * time.Second):
		t.Fatal("consulkit Lock did not acquire after the official client unlocked")
	}
	require.NoError(t, r.err)
	t.Logf("consulkit acquired %v after the official Unlock", time.Since(released))
	assert.NoError(t, r.held.Err())
	tok := l.Token()
	assert.Equal(t, s.ID(), tok.Session)
	p = readKey(t, c, key)
	assert.Equal(t, s.ID(), p.Session)
	assert.Equal(t, lock.Flag, p.Flags)
	assert.Equal(t, uint64(consulapi.LockFlagValue), p.Flags)
	assert.Equal(t, "consulkit", string(p.Value))
	assert.Equal(t, p.ModifyIndex, tok.ModifyIndex)

	// The official lock's own monitor sees it no longer holds the key.
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Error("the official lock's channel stayed open after its Unlock")
	}

	require.NoError(t, l.Unlock(t.Context()))
	assert.ErrorIs(t, context.Cause(r.held), lock.ErrUnlocked)
	assert.Empty(t, readKey(t, c, key).Session)
}

func TestLockInteropConsulkitHolds(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	key := keyFor(t, "lock")
	cleanupTree(t, c, "compat/"+t.Name())

	s := newSession(t, c)
	l, err := lock.New(c, key, lock.WithSession(s), lock.WithValue([]byte("consulkit-holder")))
	require.NoError(t, err)
	held, err := l.Lock(t.Context())
	require.NoError(t, err)
	before := readKey(t, c, key)
	require.Equal(t, s.ID(), before.Session)

	// The official Lock blocks, and gives up (nil, nil) when stopped.
	ol, err := oc.LockOpts(&consulapi.LockOptions{Key: key, Value: []byte("official"), LockWaitTime: time.Second})
	require.NoError(t, err)
	start := time.Now()
	lost, err := ol.Lock(stopAfter(time.Second))
	require.NoError(t, err)
	require.Nil(t, lost, "the official client acquired a key consulkit holds")
	assert.GreaterOrEqual(t, time.Since(start), time.Second)

	// It left the holder's key alone: same session, value, flags, index.
	after := readKey(t, c, key)
	assert.Equal(t, s.ID(), after.Session)
	assert.Equal(t, "consulkit-holder", string(after.Value))
	assert.Equal(t, lock.Flag, after.Flags)
	assert.Equal(t, before.ModifyIndex, after.ModifyIndex)
	assert.Equal(t, before.LockIndex, after.LockIndex)
	assert.NoError(t, held.Err())

	// A waiting official Lock acquires once consulkit unlocks.
	ol2, err := oc.LockOpts(&consulapi.LockOptions{Key: key, Value: []byte("official"), LockWaitTime: time.Second})
	require.NoError(t, err)
	stop := make(chan struct{})
	res := make(chan officialResult, 1)
	go func() {
		lost, err := ol2.Lock(stop)
		res <- officialResult{lost, err}
	}()
	t.Cleanup(func() {
		close(stop)
		if r := <-res; r.lost != nil {
			_ = ol2.Unlock()
		}
	})
	time.Sleep(500 * time.Millisecond)
	select {
	case r := <-res:
		res <- r
		t.Fatalf("official Lock returned while consulkit holds the key: lost=%v err=%v", r.lost, r.err)
	default:
	}

	released := time.Now()
	require.NoError(t, l.Unlock(t.Context()))
	assert.ErrorIs(t, context.Cause(held), lock.ErrUnlocked)
	var r officialResult
	select {
	case r = <-res:
		res <- r // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("official Lock did not acquire after consulkit unlocked")
	}
	require.NoError(t, r.err)
	require.NotNil(t, r.lost, "official Lock returned without the lock")
	t.Logf("official client acquired %v after the consulkit Unlock", time.Since(released))
	p := readKey(t, c, key)
	assert.NotEqual(t, s.ID(), p.Session)
	assert.NotEmpty(t, p.Session)
	assert.Equal(t, "official", string(p.Value))

	// consulkit's next attempt, starting from the index of its release,
	// sees the official holder.
	_, err = l.TryLock(t.Context())
	assert.ErrorIs(t, err, lock.ErrLocked)
}

func TestLockInteropSemaphoreFlags(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	oc := official(t, a)
	prefix := "compat/" + t.Name()
	cleanupTree(t, c, prefix)
	key := prefix + "/.lock"

	// An official semaphore on the prefix writes <prefix>/.lock with the
	// semaphore's flag.
	sem, err := oc.SemaphorePrefix(prefix, 2)
	require.NoError(t, err)
	lost, err := sem.Acquire(nil)
	require.NoError(t, err)
	require.NotNil(t, lost)
	t.Cleanup(func() { _ = sem.Release() })
	p := readKey(t, c, key)
	require.Equal(t, uint64(consulapi.SemaphoreFlagValue), p.Flags)

	s := newSession(t, c)
	l, err := lock.New(c, key, lock.WithSession(s))
	require.NoError(t, err)
	_, err = l.TryLock(t.Context())
	assert.ErrorIs(t, err, lock.ErrConflict)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = l.Lock(ctx)
	assert.ErrorIs(t, err, lock.ErrConflict)
	assert.False(t, errors.Is(err, context.DeadlineExceeded))

	after := readKey(t, c, key)
	assert.Equal(t, p.Value, after.Value, "the semaphore's key was not touched")
	assert.Equal(t, p.ModifyIndex, after.ModifyIndex)
	assert.Empty(t, after.Session)

	// And the other way: the official semaphore refuses a prefix whose
	// .lock key is a consulkit lock.
	prefix2 := prefix + "/second"
	l2, err := lock.New(c, prefix2+"/.lock", lock.WithSession(s))
	require.NoError(t, err)
	_, err = l2.Lock(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = l2.Unlock(context.Background()) })
	sem2, err := oc.SemaphoreOpts(&consulapi.SemaphoreOptions{Prefix: prefix2, Limit: 2, SemaphoreTryOnce: true, SemaphoreWaitTime: time.Second})
	require.NoError(t, err)
	lost2, err := sem2.Acquire(nil)
	assert.ErrorIs(t, err, consulapi.ErrSemaphoreConflict)
	assert.Nil(t, lost2)
}
