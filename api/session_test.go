package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	sessionID = "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
	// sessionJSON is a session as Consul 1.14 returns it: LockDelay in
	// nanoseconds, TTL a duration string.
	sessionJSON = `{"ID":"adf4238a-882b-9ddc-4a9d-5b6758e4159e","Name":"billing-worker","Node":"node-1",` +
		`"LockDelay":15000000000,"Behavior":"release","TTL":"30s","NodeChecks":["serfHealth"],` +
		`"ServiceChecks":[{"ID":"web-alive","Namespace":""}],"CreateIndex":1086449,"ModifyIndex":1086449}`
)

var sessionWant = &SessionEntry{
	ID: sessionID, Name: "billing-worker", Node: "node-1", LockDelay: 15 * time.Second,
	Behavior: SessionBehaviorRelease, TTL: 30 * time.Second, NodeChecks: []string{"serfHealth"},
	ServiceChecks: []ServiceCheck{{ID: "web-alive"}}, CreateIndex: 1086449, ModifyIndex: 1086449,
}

func TestSessionCreate(t *testing.T) {
	tests := []struct {
		name string
		se   *SessionEntry
		want string // request body
	}{
		{
			name: "nil uses Consul's defaults",
			se:   nil,
			want: `{"LockDelay":"15s"}`,
		},
		{
			name: "zero lock delay is sent",
			se:   &SessionEntry{},
			want: `{"LockDelay":"0s"}`,
		},
		{
			name: "every option",
			se: &SessionEntry{
				Name: "billing-worker", Node: "node-1", LockDelay: 1500 * time.Millisecond,
				Behavior: SessionBehaviorDelete, TTL: 45 * time.Second,
				NodeChecks:    []string{"serfHealth", "disk"},
				ServiceChecks: []ServiceCheck{{ID: "web-alive"}, {ID: "db-alive", Namespace: "ns1"}},
				Namespace:     "ns1", Partition: "p1",
			},
			want: `{"Name":"billing-worker","Node":"node-1","LockDelay":"1.5s","Behavior":"delete","TTL":"45s",` +
				`"NodeChecks":["serfHealth","disk"],"ServiceChecks":[{"ID":"web-alive"},{"ID":"db-alive","Namespace":"ns1"}],` +
				`"Namespace":"ns1","Partition":"p1"}`,
		},
		{
			name: "no node checks",
			se:   &SessionEntry{NodeChecks: []string{}, TTL: 10 * time.Second, LockDelay: time.Minute},
			want: `{"LockDelay":"1m0s","TTL":"10s","NodeChecks":[]}`,
		},
		{
			name: "longest TTL",
			se:   &SessionEntry{TTL: SessionTTLMax},
			want: `{"LockDelay":"0s","TTL":"24h0m0s"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newFake(t, fakeReply{Body: `{"ID":"` + sessionID + `"}`})
			id, meta, err := c.Session().Create(t.Context(), tt.se, &WriteOptions{Token: "wt", Datacenter: "dc1"})
			require.NoError(t, err)
			assert.Equal(t, sessionID, id)
			assert.NotNil(t, meta)
			got := f.last(t)
			assert.Equal(t, http.MethodPut, got.Method)
			assert.Equal(t, "/v1/session/create", got.Path)
			assert.Equal(t, "dc=dc1", got.RawQuery)
			assert.Equal(t, "wt", got.Header.Get("X-Consul-Token"))
			assert.JSONEq(t, tt.want, string(got.Body))
		})
	}
}

func TestSessionValidate(t *testing.T) {
	tests := []struct {
		name  string
		se    SessionEntry
		field string // "" when valid
	}{
		{name: "zero", se: SessionEntry{}},
		{name: "TTL min", se: SessionEntry{TTL: 10 * time.Second}},
		{name: "TTL max", se: SessionEntry{TTL: 24 * time.Hour}},
		{name: "TTL too short", se: SessionEntry{TTL: 9 * time.Second}, field: "SessionEntry.TTL"},
		{name: "TTL too long", se: SessionEntry{TTL: 24*time.Hour + time.Second}, field: "SessionEntry.TTL"},
		{name: "TTL negative", se: SessionEntry{TTL: -time.Second}, field: "SessionEntry.TTL"},
		{name: "lock delay max", se: SessionEntry{LockDelay: 60 * time.Second}},
		{name: "lock delay 1µs", se: SessionEntry{LockDelay: time.Microsecond}},
		{name: "lock delay too long", se: SessionEntry{LockDelay: 61 * time.Second}, field: "SessionEntry.LockDelay"},
		{name: "lock delay negative", se: SessionEntry{LockDelay: -1}, field: "SessionEntry.LockDelay"},
		{name: "lock delay read as seconds", se: SessionEntry{LockDelay: 500}, field: "SessionEntry.LockDelay"},
		{name: "behavior release", se: SessionEntry{Behavior: "release"}},
		{name: "behavior delete", se: SessionEntry{Behavior: "delete"}},
		{name: "behavior unknown", se: SessionEntry{Behavior: "destroy"}, field: "SessionEntry.Behavior"},
	}
	c, f := newFake(t, fakeReply{Body: `{"ID":"x"}`})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.se.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)

			n := len(f.all())
			_, _, err = c.Session().Create(t.Context(), &tt.se, nil)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Len(t, f.all(), n, "Create must validate before sending")
		})
	}
}

func TestSessionEntryJSON(t *testing.T) {
	var got SessionEntry
	require.NoError(t, json.Unmarshal([]byte(sessionJSON), &got))
	assert.Equal(t, *sessionWant, got)

	tests := []struct {
		name string
		in   string
		want SessionEntry
	}{
		{name: "lock delay string", in: `{"ID":"a","LockDelay":"250ms"}`, want: SessionEntry{ID: "a", LockDelay: 250 * time.Millisecond}},
		{name: "lock delay null", in: `{"ID":"a","LockDelay":null,"TTL":""}`, want: SessionEntry{ID: "a"}},
		{name: "no node checks", in: `{"ID":"a","NodeChecks":[]}`, want: SessionEntry{ID: "a", NodeChecks: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s SessionEntry
			require.NoError(t, json.Unmarshal([]byte(tt.in), &s))
			assert.Equal(t, tt.want, s)
		})
	}
	for _, bad := range []string{`{"LockDelay":"soon"}`, `{"LockDelay":true}`, `{"TTL":"forever"}`, `[`} {
		t.Run("bad "+bad, func(t *testing.T) {
			var s SessionEntry
			assert.Error(t, json.Unmarshal([]byte(bad), &s))
		})
	}

	// What we send round-trips through what we read.
	b, err := json.Marshal(sessionWant)
	require.NoError(t, err)
	var back SessionEntry
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, *sessionWant, back)
}

func TestSessionInfo(t *testing.T) {
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "1086449"}, Body: "[" + sessionJSON + "]"})
	s, meta, err := c.Session().Info(t.Context(), sessionID, &QueryOptions{Consistency: ConsistencyStale})
	require.NoError(t, err)
	assert.Equal(t, sessionWant, s)
	assert.Equal(t, uint64(1086449), meta.LastIndex)
	got := f.last(t)
	assert.Equal(t, http.MethodGet, got.Method)
	assert.Equal(t, "/v1/session/info/"+sessionID, got.Path)
	assert.Equal(t, "stale", got.RawQuery)

	for _, body := range []string{"[]", "null"} {
		f.reply(fakeReply{Header: map[string]string{"X-Consul-Index": "7"}, Body: body})
		s, meta, err = c.Session().Info(t.Context(), "gone", nil)
		require.NoError(t, err, body)
		assert.Nil(t, s, body)
		assert.Equal(t, uint64(7), meta.LastIndex)
	}
}

func TestSessionListAndNode(t *testing.T) {
	body := "[" + sessionJSON + `,{"ID":"b","Node":"node-1","LockDelay":0,"Behavior":"delete","TTL":"","NodeChecks":[],"CreateIndex":3,"ModifyIndex":3}]`
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "3"}, Body: body})

	list, meta, err := c.Session().List(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, sessionWant, list[0])
	assert.Equal(t, &SessionEntry{ID: "b", Node: "node-1", Behavior: "delete", NodeChecks: []string{}, CreateIndex: 3, ModifyIndex: 3}, list[1])
	assert.Equal(t, uint64(3), meta.LastIndex)
	assert.Equal(t, "/v1/session/list", f.last(t).Path)

	list, _, err = c.Session().Node(t.Context(), "node 1", &QueryOptions{WaitIndex: 2})
	require.NoError(t, err)
	assert.Len(t, list, 2)
	got := f.last(t)
	assert.Equal(t, "/v1/session/node/node%201", got.RawPath)
	assert.Equal(t, "index=2&wait=300s", got.RawQuery)
}

func TestSessionRenew(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: "[" + sessionJSON + "]"})
	s, meta, err := c.Session().Renew(t.Context(), sessionID, &WriteOptions{Token: "wt"})
	require.NoError(t, err)
	assert.Equal(t, sessionWant, s)
	assert.NotNil(t, meta)
	got := f.last(t)
	assert.Equal(t, http.MethodPut, got.Method)
	assert.Equal(t, "/v1/session/renew/"+sessionID, got.Path)
	assert.Equal(t, "wt", got.Header.Get("X-Consul-Token"))
	assert.Empty(t, got.Body)

	// Consul answers 404 for a session it does not know.
	f.reply(fakeReply{Status: 404, Body: "Session id '" + sessionID + "' not found"})
	s, _, err = c.Session().Renew(t.Context(), sessionID, nil)
	assert.Nil(t, s)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.False(t, IsRetryable(err))

	// An empty answer means the same.
	f.reply(fakeReply{Body: "[]"})
	_, _, err = c.Session().Renew(t.Context(), sessionID, nil)
	assert.ErrorIs(t, err, ErrNotFound)

	f.reply(fakeReply{Status: 500, Body: "rpc error"})
	_, _, err = c.Session().Renew(t.Context(), sessionID, nil)
	assert.True(t, IsRetryable(err))
}

func TestSessionDestroy(t *testing.T) {
	c, f := newFake(t, fakeReply{Body: "true"})
	_, err := c.Session().Destroy(t.Context(), sessionID, &WriteOptions{Datacenter: "dc2"})
	require.NoError(t, err)
	got := f.last(t)
	assert.Equal(t, http.MethodPut, got.Method)
	assert.Equal(t, "/v1/session/destroy/"+sessionID, got.Path)
	assert.Equal(t, "dc=dc2", got.RawQuery)
}

func TestSessionInvalidIDs(t *testing.T) {
	c, f := newFake(t)
	s := c.Session()
	ctx := t.Context()
	for _, id := range []string{"", " ", "a\nb"} {
		_, err := s.Destroy(ctx, id, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		_, _, err = s.Renew(ctx, id, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		_, _, err = s.Info(ctx, id, nil)
		assert.ErrorIs(t, err, ErrInvalid)
		_, _, err = s.Node(ctx, id, nil)
		assert.ErrorIs(t, err, ErrInvalid)
	}
	assert.Empty(t, f.all())
}

// A 200 without a body (a broken proxy or connection: Consul answers a
// renew with the session, or 404) is no news of the session: retryable,
// not ErrNotFound, which would have the session reported lost.
func TestSessionRenewEmptyAnswerIsRetryable(t *testing.T) {
	c, _ := newFake(t, fakeReply{Body: ""})
	_, _, err := c.Session().Renew(t.Context(), sessionID, nil)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNotFound)
	assert.True(t, IsRetryable(err), "%v", err)
}
