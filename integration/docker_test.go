package integration

import (
	"testing"

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
