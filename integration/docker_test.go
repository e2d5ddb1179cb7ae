package integration

import (
	"context"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Addresses of removed containers are reused, and running out of them is
// an error rather than an invalid address.
func TestDockerNetAddresses(t *testing.T) {
	n := &dockerNet{prefix: "10.213.9."}
	seen := map[string]bool{}
	for range 245 {
		ip, err := n.allocIP()
		require.NoError(t, err)
		require.False(t, seen[ip], "address %s given twice", ip)
		seen[ip] = true
	}
	_, err := n.allocIP()
	require.ErrorIs(t, err, errNoAddress)
	n.freeIP("10.213.9.77")
	n.freeIP("10.213.9.12")
	ip, err := n.allocIP()
	require.NoError(t, err)
	require.Equal(t, "10.213.9.77", ip, "the address given back first is reused first")
	ip, err = n.allocIP()
	require.NoError(t, err)
	require.Equal(t, "10.213.9.12", ip)
	require.True(t, seen["10.213.9.254"])
	require.False(t, seen["10.213.9.255"])
}

// TestCancelledStartsLeaveNothing: a start whose context ends at any
// point (Ctrl-C on consulkit dev) leaves no container or network behind,
// even when the daemon goes on to create what a cancelled request asked
// for.
func TestCancelledStartsLeaveNothing(t *testing.T) {
	if DetectMode() != ModeDocker {
		t.Skip("containers and networks are docker mode's")
	}
	// The backend (its image and control network) is up first.
	warm, err := StartAgent(t.Context())
	require.NoError(t, err)
	require.NoError(t, warm.Close(t.Context()))

	name := "cancelled-" + randomSuffix()
	for d := time.Duration(0); d <= 150*time.Millisecond; d += 5 * time.Millisecond {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		a, err := StartAgent(ctx, WithName(name))
		cancel()
		if err == nil {
			require.NoError(t, a.Close(t.Context()))
		}
		ctx, cancel = context.WithTimeout(t.Context(), d)
		cl, err := StartCluster(ctx, 1)
		cancel()
		if err == nil {
			require.NoError(t, cl.Close(t.Context()))
		}
	}
	p, err := pool()
	require.NoError(t, err)
	cs, err := p.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"name": {"consulkit-" + name}}})
	require.NoError(t, err)
	assert.Empty(t, cs, "containers of cancelled starts are left")
	ns, err := p.Client.FilteredListNetworks(dc.NetworkFilterOpts{"name": {"consulkit-cluster-" + ownerPID() + "-": true}})
	require.NoError(t, err)
	assert.Empty(t, ns, "networks of cancelled cluster starts are left")
}
