package api

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAgentServiceCheckValidate(t *testing.T) {
	sec := Duration(time.Second)
	tests := []struct {
		name  string
		check AgentServiceCheck
		field string // "" when valid
	}{
		{"ttl", AgentServiceCheck{TTL: sec}, ""},
		{"http", AgentServiceCheck{HTTP: "http://x", Interval: sec}, ""},
		{"tcp", AgentServiceCheck{TCP: "x:1", Interval: sec, Timeout: sec}, ""},
		{"script", AgentServiceCheck{Args: []string{"true"}, Interval: sec}, ""},
		{"docker", AgentServiceCheck{DockerContainerID: "c", Args: []string{"true"}, Interval: sec}, ""},
		{"alias", AgentServiceCheck{AliasService: "web"}, ""},
		{"grpc", AgentServiceCheck{GRPC: "x:1", Interval: sec}, ""},
		{"h2ping", AgentServiceCheck{H2PING: "x:1", Interval: sec}, ""},
		{"udp", AgentServiceCheck{UDP: "x:1", Interval: sec}, ""},
		{"no kind", AgentServiceCheck{Name: "x"}, "check"},
		{"two kinds", AgentServiceCheck{HTTP: "http://x", TCP: "x:1", Interval: sec}, "check"},
		{"http without interval", AgentServiceCheck{HTTP: "http://x"}, "check.Interval"},
		{"docker without args", AgentServiceCheck{DockerContainerID: "c", Interval: sec}, "check.Args"},
		{"negative timeout", AgentServiceCheck{TTL: sec, Timeout: -sec}, "check.Timeout"},
		{"unknown status", AgentServiceCheck{TTL: sec, Status: "fine"}, "check.Status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestInvalidCheckIsNotSent(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"check register", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().CheckRegister(ctx, &AgentCheckRegistration{Name: "x", AgentServiceCheck: AgentServiceCheck{HTTP: "http://x"}}, nil)
			return err
		}, "check.Interval"},
		{"service register", func(ctx context.Context, c *Client) error {
			_, err := c.Agent().ServiceRegister(ctx, &AgentServiceRegistration{Name: "web", Checks: AgentServiceChecks{{TTL: Duration(time.Second)}, {Name: "kindless"}}}, nil)
			return err
		}, "check"},
	})
}
