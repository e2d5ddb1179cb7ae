package lock_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// holdAnswerTransport holds the answer of the first acquisition (a
// transaction that locks) until expired is done, then delivers it whole.
type holdAnswerTransport struct {
	base    http.RoundTripper
	armed   atomic.Bool
	onSend  func()
	expired <-chan struct{}
}

func (h *holdAnswerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || r.URL.Path != "/v1/txn" || !strings.Contains(string(integration.Body(r)), `"Verb":"lock"`) || !h.armed.CompareAndSwap(true, false) {
		return h.base.RoundTrip(r)
	}
	h.onSend()
	resp, err := h.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	select {
	case <-h.expired:
	case <-time.After(30 * time.Second):
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestLockAcquiredAsSessionExpiresLeavesKeyFree: an acquisition that
// Consul applied is answered just after the session expired here (Consul
// still has it: it allows twice the TTL). Lock fails with the session's
// error, and must not leave the key held by that session, for nobody,
// until Consul drops it: as the watcher does for a hold whose session
// expires, it lets the key go.
func TestLockAcquiredAsSessionExpiresLeavesKeyFree(t *testing.T) {
	a := integration.Shared(t)
	direct := a.Client(t)
	sc, p := a.ProxiedClient(t)
	s := integration.NewSession(t, sc, session.WithLockDelay(0), session.WithTTL(10*time.Second))
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	ht := &holdAnswerTransport{base: base, expired: s.Done(), onSend: func() { p.Set(integration.Hang) }}
	ht.armed.Store(true)
	cfg := a.Config()
	cfg.Transport = ht
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	k := key(t)
	l, err := lock.New(c, k, lock.WithSession(s))
	require.NoError(t, err)
	ctx := t.Context()
	held, err := l.Lock(ctx)
	p.Set(integration.Pass)
	require.ErrorIs(t, err, session.ErrExpired)
	assert.Nil(t, held)
	assert.True(t, l.Token().IsZero())
	pair, _, err := direct.KV().Get(ctx, k, nil)
	require.NoError(t, err)
	require.NotNil(t, pair)
	assert.Empty(t, pair.Session, "the key is left held by the expired session, for nobody")
}
