package ttlcheck

import (
	"testing"
	"time"
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
