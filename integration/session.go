package integration

import (
	"context"
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
