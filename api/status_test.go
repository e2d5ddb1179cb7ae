package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusLeader(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "leader", body: `"10.1.10.12:8300"`, want: "10.1.10.12:8300"},
		{name: "no leader", body: `""`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, fakeReply{Body: tt.body})
			leader, err := c.Status().Leader(t.Context(), &QueryOptions{Datacenter: "dc2", Token: "tok"})
			require.NoError(t, err)
			assert.Equal(t, tt.want, leader)
			got := f.last(t)
			assert.Equal(t, http.MethodGet, got.Method)
			assert.Equal(t, "/v1/status/leader", got.Path)
			assert.Equal(t, "dc=dc2", got.RawQuery)
			assert.Equal(t, "tok", got.Header.Get("X-Consul-Token"))
		})
	}
}

func TestStatusPeers(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: `["10.1.10.12:8300","10.1.10.11:8300","10.1.10.10:8300"]`})
	peers, err := c.Status().Peers(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"10.1.10.12:8300", "10.1.10.11:8300", "10.1.10.10:8300"}, peers)
	got := f.last(t)
	assert.Equal(t, "/v1/status/peers", got.Path)
	assert.Empty(t, got.RawQuery)
}

func TestStatusErrors(t *testing.T) {
	c, _ := newFake(t, fakeReply{Status: 500, Body: "No cluster leader"})
	_, err := c.Status().Leader(t.Context(), nil)
	assert.ErrorIs(t, err, ErrNoLeader)
	_, err = c.Status().Peers(t.Context(), nil)
	assert.ErrorIs(t, err, ErrNoLeader)
	assert.True(t, IsRetryable(err))
}
