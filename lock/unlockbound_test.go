package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestUnlockRenewKeepsTheCallersCtx: Unlock finds the key let go before
// it (Consul invalidating the session, most often) and renews the session
// to find out; with the agent hanging the session's requests, that renew
// must end with Unlock's ctx, not run on for Renew's own 10 s.
func TestUnlockRenewKeepsTheCallersCtx(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	direct := a.Client(t)
	sc, p := a.ProxiedClient(t)
	hc, ht := a.HookedClient(t)
	ctx := t.Context()
	s := integration.NewSession(t, sc, session.WithLockDelay(0), session.WithTTL(time.Minute))
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	l, err := lock.New(hc, key(t), lock.WithSession(s))
	require.NoError(t, err)
	// Before Lock: the watcher must not see the release below first.
	ht.Set(integration.HangBlocking)
	t.Cleanup(func() { ht.Set(nil) })
	_, err = l.Lock(ctx)
	require.NoError(t, err)

	_, _, err = direct.KV().Release(ctx, &api.KVPair{Key: key(t), Session: s.ID(), Flags: lock.Flag}, nil)
	require.NoError(t, err)
	p.Set(integration.Hang) // the session's renews hang from now on
	uctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	err = integration.Within(t, 6*time.Second, "Unlock overran its ctx in the session renew", func() error {
		return l.Unlock(uctx)
	}, func() { p.Set(integration.Pass) })
	t.Logf("Unlock returned after %s: %v", time.Since(start), err)
	assert.ErrorIs(t, err, lock.ErrLost)
	p.Set(integration.Pass)
}
