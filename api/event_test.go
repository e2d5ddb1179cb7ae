package api

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventCalls(t *testing.T) {
	runWireCases(t, []wireCase{
		{
			name: "fire with payload and filters",
			reply: fakeReply{Body: `{"ID": "b54fe110-7af5-cafc-d1fb-afc8ba432b1c", "Name": "deploy", "Payload": "djEuMi4z",
				"NodeFilter": "^web-", "ServiceFilter": "web", "TagFilter": "v1", "Version": 1, "LTime": 0}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Event().Fire(ctx, &UserEvent{
					Name: "deploy", Payload: []byte("v1.2.3"), NodeFilter: "^web-", ServiceFilter: "web", TagFilter: "v1",
				}, &WriteOptions{Datacenter: "dc2"})
				return e, err
			},
			method: "PUT", path: "/v1/event/fire/deploy", query: "dc=dc2&node=%5Eweb-&service=web&tag=v1", body: "v1.2.3",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				e := got.(*UserEvent)
				assert.Equal(t, "b54fe110-7af5-cafc-d1fb-afc8ba432b1c", e.ID)
				assert.Equal(t, []byte("v1.2.3"), e.Payload)
				assert.Equal(t, 1, e.Version)
			},
		},
		{
			name:  "fire without payload",
			reply: fakeReply{Body: `{"ID": "b54fe110-7af5-cafc-d1fb-afc8ba432b1c", "Name": "ping", "Payload": null, "NodeFilter": "", "ServiceFilter": "", "TagFilter": "", "Version": 1, "LTime": 0}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Event().Fire(ctx, &UserEvent{Name: "ping"}, nil)
				return e, err
			},
			method: "PUT", path: "/v1/event/fire/ping",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Nil(t, got.(*UserEvent).Payload)
			},
		},
		{
			name:  "fire denied",
			reply: fakeReply{Status: 403, Body: "Permission denied"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Event().Fire(ctx, &UserEvent{Name: "deploy"}, nil)
				return e, err
			},
			method: "PUT", path: "/v1/event/fire/deploy",
			check: wantStatus(403, ErrPermissionDenied),
		},
		{
			name:  "fire too large",
			reply: fakeReply{Status: 500, Body: "UserEvent exceeds limit of 512 bytes"},
			call: func(ctx context.Context, c *Client) (any, error) {
				e, _, err := c.Event().Fire(ctx, &UserEvent{Name: "big", Payload: make([]byte, 600)}, nil)
				return e, err
			},
			method: "PUT", path: "/v1/event/fire/big", body: string(make([]byte, 600)),
			check: wantStatus(500, nil),
		},
		{
			name: "list by name, blocking",
			reply: fakeReply{Header: map[string]string{"X-Consul-Index": "12345"}, Body: `[{"ID": "b54fe110-7af5-cafc-d1fb-afc8ba432b1c", "Name": "deploy",
				"Payload": "djEuMi4z", "NodeFilter": "", "ServiceFilter": "", "TagFilter": "", "Version": 1, "LTime": 19}]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, meta, err := c.Event().List(ctx, "deploy", &QueryOptions{WaitIndex: 99, WaitTime: 10 * time.Second})
				if err == nil {
					assert.Equal(t, uint64(12345), meta.LastIndex)
				}
				return l, err
			},
			method: "GET", path: "/v1/event/list", query: "index=99&name=deploy&wait=10s",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				l := got.([]*UserEvent)
				require.Len(t, l, 1)
				assert.Equal(t, uint64(19), l[0].LTime)
				assert.Equal(t, []byte("v1.2.3"), l[0].Payload)
			},
		},
		{
			name:  "list all",
			reply: fakeReply{Header: map[string]string{"X-Consul-Index": "1"}, Body: `[]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.Event().List(ctx, "", nil)
				return l, err
			},
			method: "GET", path: "/v1/event/list",
			check: func(t *testing.T, got any, err error) {
				require.NoError(t, err)
				assert.Empty(t, got)
			},
		},
	})
}

func TestEventValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"nil", func(ctx context.Context, c *Client) error {
			_, _, err := c.Event().Fire(ctx, nil, nil)
			return err
		}, "event"},
		{"no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.Event().Fire(ctx, &UserEvent{}, nil)
			return err
		}, "event Name"},
		{"tag without service", func(ctx context.Context, c *Client) error {
			_, _, err := c.Event().Fire(ctx, &UserEvent{Name: "x", TagFilter: "v1"}, nil)
			return err
		}, "TagFilter"},
		{"bad node regexp", func(ctx context.Context, c *Client) error {
			_, _, err := c.Event().Fire(ctx, &UserEvent{Name: "x", NodeFilter: "("}, nil)
			return err
		}, "NodeFilter"},
		{"bad service regexp", func(ctx context.Context, c *Client) error {
			_, _, err := c.Event().Fire(ctx, &UserEvent{Name: "x", ServiceFilter: "[a-"}, nil)
			return err
		}, "ServiceFilter"},
		{"list name with control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.Event().List(ctx, "a\x01", nil)
			return err
		}, "event name"},
	})
}

func TestEventIDToIndex(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want uint64
	}{
		// Halves 0x0000000100000002 and 0x0000000000000003.
		{"small", "00000001-0000-0002-0000-000000000003", 0x0000000100000002 ^ 0x3},
		{"same halves", "01234567-89ab-cdef-0123-456789abcdef", 0},
		{"upper case", "FFFFFFFF-FFFF-FFFF-0000-000000000000", 0xffffffffffffffff},
		{"too short", "0123", 0},
		{"dashes misplaced", "0123456789ab-cdef-0123-456789abcdef-", 0},
		{"not hex", "zzzzzzzz-0000-0000-0000-000000000000", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, EventIDToIndex(tt.id)) })
	}
}
