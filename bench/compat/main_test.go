// Package compat_test checks that consulkit's primitives interoperate with
// Consul's own tools on the same keys: the official Go client
// (github.com/hashicorp/consul/api) and the `consul lock` command. It lives
// in the nested bench module so that the library's go.mod never depends on
// the official client.
package compat_test

import (
	"context"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/session"
)

func TestMain(m *testing.M) { integration.Main(m) }

// official returns an official Go client for the shared agent.
func official(t *testing.T, a *integration.Agent) *consulapi.Client {
	t.Helper()
	oc, err := consulapi.NewClient(&consulapi.Config{Address: a.Addr, Token: a.Token})
	require.NoError(t, err)
	return oc
}

// newSession creates a consulkit session without lock delay, closed when
// the test ends.
func newSession(t *testing.T, c *api.Client) *session.Session {
	t.Helper()
	return integration.NewSession(t, c, session.WithLockDelay(0), session.WithName(t.Name()))
}

// keyFor returns a key unique to the test.
func keyFor(t *testing.T, suffix string) string {
	return "compat/" + t.Name() + "/" + suffix
}

// stopAfter returns a channel closed after d.
func stopAfter(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

// cleanupTree deletes everything under prefix when the test ends.
func cleanupTree(t *testing.T, c *api.Client, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.KV().DeleteTree(ctx, prefix, nil)
	})
}
