package integration

import (
	"context"
	"slices"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/session"
)

// NewSession creates a consulkit session through c for the length of the
// test: it fails the test when Consul refuses it, and closes it (which
// destroys it) when the test ends.
func NewSession(tb TB, c *api.Client, opts ...session.Option) *session.Session {
	tb.Helper()
	s, err := session.New(tb.Context(), c, opts...)
	if err != nil {
		tb.Fatalf("integration: creating a session: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// SessionsNamed returns the IDs of the sessions named name.
func SessionsNamed(tb TB, c *api.Client, name string) []string {
	tb.Helper()
	list, _, err := c.Session().List(tb.Context(), nil)
	if err != nil {
		tb.Fatalf("integration: listing sessions: %v", err)
	}
	var ids []string
	for _, se := range list {
		if se.Name == name {
			ids = append(ids, se.ID)
		}
	}
	return ids
}

// WaitSessionNamed waits for a session named name that is not in skip and
// returns its ID, failing tb after 10 seconds. It finds the session a Lock,
// Semaphore or Election made for itself, given a name with session.WithName.
func WaitSessionNamed(tb TB, c *api.Client, name string, skip ...string) string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids := SessionsNamed(tb, c, name)
		for _, id := range ids {
			if !slices.Contains(skip, id) {
				return id
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("integration: no new session named %q (sessions of that name: %v)", name, ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
