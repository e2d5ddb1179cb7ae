package ttlcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/consulkit/consulkit/api"
)

func TestRetryDelay(t *testing.T) {
	const floor = 125 * time.Millisecond
	tests := []struct {
		name          string
		d, left, want time.Duration
	}{
		{"far from the end: the backoff", 250 * time.Millisecond, 2 * time.Second, 250 * time.Millisecond},
		{"near the end: half of what is left", time.Second, 1100 * time.Millisecond, 550 * time.Millisecond},
		{"at the very end: the floor", time.Second, 100 * time.Millisecond, floor},
		{"lapsed: the backoff", time.Second, -time.Second, time.Second},
		{"a shorter backoff is kept", 50 * time.Millisecond, 60 * time.Millisecond, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := retryDelay(tt.d, tt.left, floor); got != tt.want {
			t.Errorf("%s: retryDelay(%v, %v) = %v, want %v", tt.name, tt.d, tt.left, got, tt.want)
		}
	}
}

// TestNotSent: a request the api client refused before sending never
// reached the agent, so Run must not deregister an ID it never registered
// (it may be another instance's).
func TestNotSent(t *testing.T) {
	assert.True(t, notSent(&api.ValidationError{Field: "check", Reason: "nil"}))
	assert.True(t, notSent(fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Err: errors.New("refused")})))
	assert.False(t, notSent(&net.OpError{Op: "read", Err: errors.New("reset")}), "a read error: the request may have been applied")
	assert.False(t, notSent(context.DeadlineExceeded))
}
