package election_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// markAcquisitions installs a hook on ht that records the lock
// acquisition transactions it sees, and returns a function telling
// whether r is one (usable in ReplaceNextBody's match, after the body has
// been sent).
func markAcquisitions(ht *integration.HookTransport) func(*http.Request) bool {
	var seen sync.Map
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodPut && r.URL.Path == "/v1/txn" &&
			bytes.Contains(integration.Body(r), []byte(`"Verb":"lock"`)) {
			seen.Store(r, true)
		}
		return nil
	})
	return func(r *http.Request) bool { _, ok := seen.Load(r); return ok }
}

// A Run whose acquisition is answered 200 with an empty body (a broken
// proxy) must campaign again, not return: it is a standby that would
// otherwise be gone.
func TestRunCampaignsAgainAfterAnEmptyAcquisitionAnswer(t *testing.T) {
	c, ht := integration.Shared(t).HookedClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	isAcquire := markAcquisitions(ht)
	replaced := ht.ReplaceNextBody(func(r *http.Request, resp *http.Response) bool {
		return isAcquire(r) && resp.StatusCode == http.StatusOK
	}, http.NoBody)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	led := make(chan struct{})
	runErr := make(chan error, 1)
	go func() {
		runErr <- e.Run(ctx, []byte("a"), func(leading context.Context) error {
			close(led)
			<-leading.Done()
			return nil
		})
	}()
	select {
	case <-led:
	case err := <-runErr:
		t.Fatalf("Run returned instead of campaigning again: %v", err)
	case <-ctx.Done():
		t.Fatal("never led")
	}
	assert.True(t, replaced())
	cancel()
	assert.ErrorIs(t, <-runErr, context.Canceled)
}

// A Resign whose release hangs past its short ctx, delivered late after
// the same Election campaigned again through the same session: the new
// term must keep the key, with a newer token, and a standby must take over
// once it resigns.
func TestResignHungThenCampaignAgainSurvivesTheLateRelease(t *testing.T) {
	c, ht := integration.Shared(t).HookedClient(t)
	key := electionKey(t)
	s := integration.NewSession(t, c, session.WithLockDelay(0))
	e, err := election.New(c, key, election.WithSession(s))
	require.NoError(t, err)
	ctx := t.Context()
	_, err = e.Campaign(ctx, []byte("a"))
	require.NoError(t, err)
	tok1 := e.Token()

	var late <-chan struct{}
	var mu sync.Mutex
	ht.Set(func(r *http.Request) error {
		if r.Method == http.MethodPut && r.URL.Path == "/v1/txn" && bytes.Contains(integration.Body(r), []byte(`"Verb":"unlock"`)) {
			mu.Lock()
			if late == nil {
				late = ht.DeliverLate(r, 2*time.Second)
			}
			mu.Unlock()
			<-r.Context().Done()
			return r.Context().Err()
		}
		return nil
	})
	rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = e.Resign(rctx)
	rcancel()
	t.Logf("hung Resign: %v", err)
	ht.Set(nil)

	leading, err := e.Campaign(ctx, []byte("b"))
	require.NoError(t, err)
	tok2 := e.Token()
	assert.True(t, tok2.Newer(tok1), "token %+v not newer than %+v", tok2, tok1)
	mu.Lock()
	l := late
	mu.Unlock()
	if l != nil {
		<-l
	}
	time.Sleep(500 * time.Millisecond)
	assert.NoError(t, leading.Err(), "the new term ended: %v", context.Cause(leading))
	cur, err := e.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, s.ID(), cur.Session, "the late release freed the new term's key")

	s2 := integration.NewSession(t, newClient(t), session.WithLockDelay(0))
	e2, err := election.New(newClient(t), key, election.WithSession(s2))
	require.NoError(t, err)
	require.NoError(t, e.Resign(ctx))
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	_, err = e2.Campaign(cctx, []byte("c"))
	require.NoError(t, err)
	require.NoError(t, e2.Resign(ctx))
}
