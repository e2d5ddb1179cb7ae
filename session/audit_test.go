package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

// A renew that Consul answered (and applied) but whose answer arrives
// empty, as a broken proxy or connection leaves it, says nothing about the
// session: it must not be reported lost (ErrInvalidated: "Consul no
// longer knows the session"), and Close must still destroy it, or the keys
// it holds stay held until Consul drops it, twice the TTL later.
func TestEmptiedRenewAnswerIsNotALoss(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	c, ht := a.HookedClient(t)
	direct := a.Client(t)
	s, err := session.New(t.Context(), c, session.WithTTL(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = direct.Session().Destroy(context.Background(), s.ID(), nil) })

	emptied := ht.ReplaceNextBody(func(r *http.Request, resp *http.Response) bool {
		return strings.HasPrefix(r.URL.Path, "/v1/session/renew/") && resp.StatusCode == http.StatusOK
	}, http.NoBody)
	err = s.Renew(t.Context())
	require.True(t, emptied(), "no renew answer was emptied")
	require.Error(t, err, "an empty answer is no renew")
	assert.NotErrorIs(t, err, session.ErrInvalidated)
	assert.True(t, api.IsRetryable(err), "an empty answer is a transient fault: %v", err)
	assert.NoError(t, s.Err(), "a session Consul still holds (and just renewed) was reported lost")

	info, _, err := direct.Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	require.NotNil(t, info, "Consul holds the session")
	require.NoError(t, s.Close(t.Context()))
	info, _, err = direct.Session().Info(t.Context(), s.ID(), nil)
	require.NoError(t, err)
	assert.Nil(t, info, "Close left the session to Consul's TTL")
}

// Renews that hang, over a transport slow to give a request up once its
// context ends (as the one of TestCloseWaitsForARenewInFlight): the loss
// must be reported at the deadline, not once the transport lets the
// renew goroutine's attempts go. Holders trust the session until Done
// is closed; past Deadline, Consul may already be counting it down.
func TestLossIsReportedAtTheDeadlineWhateverTheTransport(t *testing.T) {
	t.Parallel()
	c, ht := integration.Shared(t).HookedClient(t)
	ht.Set(func(r *http.Request) error {
		if !strings.HasPrefix(r.URL.Path, "/v1/session/renew/") {
			return nil
		}
		<-r.Context().Done()
		time.Sleep(6 * time.Second) // slow to give the request up
		return r.Context().Err()
	})
	s, err := session.New(t.Context(), c, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() {
		ht.Set(nil)
		_ = s.Close(context.Background())
	})
	deadline := s.Deadline()
	select {
	case <-s.Done():
		assert.False(t, time.Now().Before(deadline), "lost before the deadline: %v", s.Err())
		assert.ErrorIs(t, s.Err(), session.ErrExpired)
	case <-time.After(time.Until(deadline.Add(2 * time.Second))):
		t.Fatalf("Deadline passed 2 s ago and Done is still open (Deadline now %v in the past)", time.Since(s.Deadline()))
	}
}

// A Renew answered with a shorter TTL (which the package adopts) moves
// the deadline closer while the renew goroutine's round, timed by the old
// deadline, waits on renews that hang: the loss must be reported by the
// new deadline, which Deadline returns, not by the old one.
func TestShorterTTLDuringARoundMovesTheLoss(t *testing.T) {
	t.Parallel()
	const id = "adc2e0b4-0000-4000-8000-0000000000a1"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/session/create":
			_, _ = w.Write([]byte(`{"ID":"` + id + `"}`))
		case strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
			if r.Header.Get("X-Test-Tag") == "" {
				<-r.Context().Done() // the renew goroutine's renews hang
				return
			}
			_, _ = w.Write([]byte(`[{"ID":"` + id + `","TTL":"2s","LockDelay":0,"Behavior":"release"}]`))
		default:
			_, _ = w.Write([]byte(`true`))
		}
	}))
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = srv.Listener.Addr().String()
	cfg.Transport = tagTransport{http.DefaultTransport.(*http.Transport).Clone()}
	c, err := api.NewClient(cfg)
	require.NoError(t, err)

	s, err := session.New(t.Context(), c, session.WithTTL(20*time.Second)) // the round starts at 10 s
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	time.Sleep(time.Until(s.Deadline().Add(-9 * time.Second))) // the round is on
	require.NoError(t, s.Renew(tagged(t.Context(), "renew")))
	require.Equal(t, 2*time.Second, s.TTL())
	deadline := s.Deadline()
	select {
	case <-s.Done():
		assert.ErrorIs(t, s.Err(), session.ErrExpired)
	case <-time.After(time.Until(deadline.Add(2 * time.Second))):
		t.Fatalf("Deadline passed 2 s ago and Done is still open")
	}
}

// tagTransport marks the requests of a tagged ctx with a header, so that
// a fake agent tells a Renew's renew from the renew goroutine's.
type tagTransport struct{ base *http.Transport }

func (tt tagTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if v := tagOf(r); v != "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Test-Tag", v)
	}
	return tt.base.RoundTrip(r)
}
