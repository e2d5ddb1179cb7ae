package main

import (
	"go.uber.org/goleak"

	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSampleQuantiles(t *testing.T) {
	var s sample
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(201-i)*time.Millisecond)
	}
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"median", s.median(), 100 * time.Millisecond},
		{"p99", s.p99(), 198 * time.Millisecond},
		{"max", s.quantile(1), 200 * time.Millisecond},
		{"min", s.quantile(0), time.Millisecond},
		{"empty", sample{}.median(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		name, method, url string
		blocking          bool
		want              string
	}{
		{"kv get", "GET", "/v1/kv/a/b", false, "GET /v1/kv/…"},
		{"kv watch", "GET", "/v1/kv/a/b?consistent&index=7", true, "GET /v1/kv/…?consistent (blocking)"},
		{"acquire", "PUT", "/v1/kv/a?acquire=x&flags=1", false, "PUT /v1/kv/…?acquire"},
		{"txn", "PUT", "/v1/txn", false, "PUT /v1/txn"},
		{"destroy", "PUT", "/v1/session/destroy/abc", false, "PUT /v1/session/destroy/…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, nil)
			assert.Equal(t, tt.want, kind(r, tt.blocking))
		})
	}
}

func TestCanRotate(t *testing.T) {
	assert.True(t, canRotate("127.0.0.1:8500"))
	assert.False(t, canRotate("172.17.0.2:8500"))
	assert.False(t, canRotate("[::1]:8500"))
	assert.False(t, canRotate("consul:8500"))
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
