package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyQuery(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		q         *QueryOptions
		want      url.Values
		header    map[string]string // expected request headers ("" = absent)
		blocking  bool
		timeBound time.Duration // r.wait
	}{
		{name: "nil", q: nil, want: url.Values{}},
		{name: "zero", q: &QueryOptions{}, want: url.Values{}},
		{name: "stale", q: &QueryOptions{Consistency: ConsistencyStale}, want: url.Values{"stale": {""}}},
		{name: "consistent", q: &QueryOptions{Consistency: ConsistencyConsistent}, want: url.Values{"consistent": {""}}},
		{
			name: "client default stale",
			cfg:  func(c *Config) { c.Consistency = ConsistencyStale },
			q:    nil,
			want: url.Values{"stale": {""}},
		},
		{
			name: "client default with empty options",
			cfg:  func(c *Config) { c.Consistency = ConsistencyConsistent },
			q:    &QueryOptions{Filter: "x"},
			want: url.Values{"consistent": {""}, "filter": {"x"}},
		},
		{
			name: "request overrides client default",
			cfg:  func(c *Config) { c.Consistency = ConsistencyStale },
			q:    &QueryOptions{Consistency: ConsistencyConsistent},
			want: url.Values{"consistent": {""}},
		},
		{
			name:      "blocking",
			q:         &QueryOptions{WaitIndex: 17, WaitTime: 90 * time.Second},
			want:      url.Values{"index": {"17"}, "wait": {"90s"}},
			blocking:  true,
			timeBound: 90 * time.Second,
		},
		{
			name:      "blocking in milliseconds",
			q:         &QueryOptions{WaitIndex: 1, WaitTime: 1500 * time.Millisecond},
			want:      url.Values{"index": {"1"}, "wait": {"1500ms"}},
			blocking:  true,
			timeBound: 1500 * time.Millisecond,
		},
		{
			name:      "wait capped at 10m",
			q:         &QueryOptions{WaitIndex: 3, WaitTime: time.Hour},
			want:      url.Values{"index": {"3"}, "wait": {"600s"}},
			blocking:  true,
			timeBound: 10 * time.Minute,
		},
		{
			name:      "client default wait",
			cfg:       func(c *Config) { c.WaitTime = 30 * time.Second },
			q:         &QueryOptions{WaitIndex: 3},
			want:      url.Values{"index": {"3"}, "wait": {"30s"}},
			blocking:  true,
			timeBound: 30 * time.Second,
		},
		{
			name:      "default wait, sent explicitly",
			q:         &QueryOptions{WaitIndex: 3},
			want:      url.Values{"index": {"3"}, "wait": {"300s"}},
			blocking:  true,
			timeBound: 5 * time.Minute,
		},
		{
			name:      "hash",
			q:         &QueryOptions{WaitHash: "abc123", WaitTime: time.Minute},
			want:      url.Values{"hash": {"abc123"}, "wait": {"60s"}},
			blocking:  true,
			timeBound: time.Minute,
		},
		{
			name: "wait without index is not blocking",
			cfg:  func(c *Config) { c.WaitTime = 30 * time.Second },
			q:    &QueryOptions{WaitTime: 2 * time.Second},
			want: url.Values{"wait": {"2s"}},
		},
		{
			name: "client default wait alone sends nothing",
			cfg:  func(c *Config) { c.WaitTime = 30 * time.Second },
			q:    &QueryOptions{},
			want: url.Values{},
		},
		{name: "near", q: &QueryOptions{Near: "_agent"}, want: url.Values{"near": {"_agent"}}},
		{
			name: "node meta",
			q:    &QueryOptions{NodeMeta: map[string]string{"rack": "r1", "env": "prod"}},
			want: url.Values{"node-meta": {"env:prod", "rack:r1"}},
		},
		{
			name: "filter",
			q:    &QueryOptions{Filter: `Meta.env == "prod" and "web" in Tags`},
			want: url.Values{"filter": {`Meta.env == "prod" and "web" in Tags`}},
		},
		{name: "peer", q: &QueryOptions{Peer: "other"}, want: url.Values{"peer": {"other"}}},
		{
			name:   "cached",
			q:      &QueryOptions{UseCache: true},
			want:   url.Values{"cached": {""}},
			header: map[string]string{"Cache-Control": ""},
		},
		{
			name:   "cached with max-age",
			q:      &QueryOptions{UseCache: true, MaxAge: 30 * time.Second},
			want:   url.Values{"cached": {""}},
			header: map[string]string{"Cache-Control": "max-age=30"},
		},
		{
			name:   "cached with max-age and stale-if-error",
			q:      &QueryOptions{UseCache: true, MaxAge: 90 * time.Second, StaleIfError: 10 * time.Minute},
			want:   url.Values{"cached": {""}},
			header: map[string]string{"Cache-Control": "max-age=90, stale-if-error=600"},
		},
		{
			name:   "stale-if-error alone",
			q:      &QueryOptions{UseCache: true, StaleIfError: time.Minute},
			want:   url.Values{"cached": {""}},
			header: map[string]string{"Cache-Control": "stale-if-error=60"},
		},
		{
			name:   "max-age without cache is ignored",
			q:      &QueryOptions{MaxAge: 30 * time.Second},
			want:   url.Values{},
			header: map[string]string{"Cache-Control": ""},
		},
		{
			name: "params",
			q:    &QueryOptions{Params: map[string]string{"segment": "alpha", "wan": ""}},
			want: url.Values{"segment": {"alpha"}, "wan": {""}},
		},
		{
			name: "client defaults",
			cfg: func(c *Config) {
				c.Datacenter, c.Namespace, c.Partition, c.Token = "dc1", "ns1", "p1", "ct"
			},
			q:      &QueryOptions{},
			want:   url.Values{"dc": {"dc1"}, "ns": {"ns1"}, "partition": {"p1"}},
			header: map[string]string{"X-Consul-Token": "ct"},
		},
		{
			name: "request overrides",
			cfg: func(c *Config) {
				c.Datacenter, c.Namespace, c.Partition, c.Token = "dc1", "ns1", "p1", "ct"
			},
			q:      &QueryOptions{Datacenter: "dc2", Namespace: "ns2", Partition: "p2", Token: "rt"},
			want:   url.Values{"dc": {"dc2"}, "ns": {"ns2"}, "partition": {"p2"}},
			header: map[string]string{"X-Consul-Token": "rt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			c, err := NewClient(cfg)
			require.NoError(t, err)
			r := c.newRequest(http.MethodGet, "/v1/health/service/x")
			c.applyQuery(r, tt.q)
			require.NoError(t, r.err)

			got := url.Values{}
			for k, vs := range r.params {
				got[k] = vs
			}
			if nm := got["node-meta"]; len(nm) > 1 {
				// Map order: compare as a set.
				assert.ElementsMatch(t, tt.want["node-meta"], nm)
				delete(got, "node-meta")
				want := url.Values{}
				for k, v := range tt.want {
					want[k] = v
				}
				delete(want, "node-meta")
				tt.want = want
			}
			assert.Equal(t, tt.want, got)
			for k, v := range tt.header {
				assert.Equal(t, v, r.header.Get(k), k)
			}
			assert.Equal(t, tt.blocking, r.blocking)
			assert.Equal(t, tt.timeBound, r.wait)
		})
	}
}

// TestParamsRefuseBlockingParameters: a blocking query set up through
// Params would not be bounded by the client (it knows of no wait).
func TestParamsRefuseBlockingParameters(t *testing.T) {
	c, f := newFake(t)
	for _, k := range []string{"index", "hash", "wait"} {
		_, _, err := c.KV().Get(t.Context(), "a", &QueryOptions{Params: map[string]string{k: "5"}})
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, k)
		assert.Equal(t, "QueryOptions.Params", ve.Field, k)
	}
	assert.Empty(t, f.all(), "nothing sent")
}

// TestNodeMetaAndCacheAgesRefusedBeforeSending: a node-meta key Consul
// would split differently, and negative cache ages (silently dropped
// before), are refused with nothing sent.
func TestNodeMetaAndCacheAgesRefusedBeforeSending(t *testing.T) {
	c, f := newFake(t)
	for name, q := range map[string]*QueryOptions{
		"node-meta key with a colon": {NodeMeta: map[string]string{"a:b": "c"}},
		"empty node-meta key":        {NodeMeta: map[string]string{"": "c"}},
		"negative max-age":           {UseCache: true, MaxAge: -time.Second},
		"negative stale-if-error":    {UseCache: true, StaleIfError: -time.Second},
	} {
		_, _, err := c.Catalog().Nodes(t.Context(), q)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, name)
	}
	assert.Empty(t, f.all(), "nothing sent")
}

// TestPeerOnlyWhereConsulReadsIt: Consul reads ?peer on its health
// service, connect and ingress endpoints only; elsewhere it would answer
// with local entries as if they were the peer's, so the client refuses
// the option there before sending.
func TestPeerOnlyWhereConsulReadsIt(t *testing.T) {
	c, f := newFake(t)
	q := &QueryOptions{Peer: "other"}
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"kv":      func() error { _, _, err := c.KV().Get(ctx, "a", q); return err },
		"catalog": func() error { _, _, err := c.Catalog().Service(ctx, "web", nil, q); return err },
		"checks":  func() error { _, _, err := c.Health().Checks(ctx, "web", q); return err },
		"agent":   func() error { _, _, err := c.Agent().Services(ctx, q); return err },
	} {
		err := call()
		assert.ErrorIs(t, err, ErrInvalid, name)
		var ve *ValidationError
		if assert.ErrorAs(t, err, &ve, name) {
			assert.Equal(t, "QueryOptions.Peer", ve.Field, name)
		}
	}
	assert.Empty(t, f.all(), "nothing sent")

	for _, path := range []string{"/v1/health/service/web", "/v1/health/connect/web", "/v1/health/ingress/web"} {
		f.reply(fakeReply{Body: "[]"})
		_, err := c.query(ctx, path, q, nil)
		require.NoError(t, err, path)
		assert.Equal(t, "peer=other", f.last(t).RawQuery, path)
	}
}

// TestQueryOptionsOnTheWire checks the rendered query string, flags
// included.
func TestQueryOptionsOnTheWire(t *testing.T) {
	c, f := newFake(t)
	_, err := c.query(t.Context(), "/v1/health/service/web", &QueryOptions{
		Consistency: ConsistencyStale, WaitIndex: 10, WaitTime: 5 * time.Second,
		UseCache: true, MaxAge: time.Minute, Near: "_agent",
	}, nil)
	require.NoError(t, err)
	got := f.last(t)
	assert.Equal(t, "cached&index=10&near=_agent&stale&wait=5s", got.RawQuery)
	assert.Equal(t, "max-age=60", got.Header.Get("Cache-Control"))
}

// TestCachedConsistentRefused: Consul refuses a cached read in consistent
// mode (400); the combination is refused before anything is sent, whether
// the consistency comes from the request or from the client's default.
func TestCachedConsistentRefused(t *testing.T) {
	c, f := newFake(t)
	_, err := c.query(t.Context(), "/v1/health/service/web", &QueryOptions{Consistency: ConsistencyConsistent, UseCache: true}, nil)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "QueryOptions.UseCache", ve.Field)

	c = newFakeClient(t, f.Server.URL, func(c *Config) { c.Consistency = ConsistencyConsistent })
	_, err = c.query(t.Context(), "/v1/health/service/web", &QueryOptions{UseCache: true}, nil)
	require.ErrorAs(t, err, &ve)
	assert.Empty(t, f.all())

	// A request that asks for stale reads overrides the default.
	_, err = c.query(t.Context(), "/v1/health/service/web", &QueryOptions{UseCache: true, Consistency: ConsistencyStale}, nil)
	require.NoError(t, err)
}

func TestApplyWrite(t *testing.T) {
	tests := []struct {
		name   string
		w      *WriteOptions
		want   url.Values
		header string
	}{
		{name: "nil", w: nil, want: url.Values{"dc": {"dc1"}}, header: "ct"},
		{name: "overrides", w: &WriteOptions{Datacenter: "dc9", Token: "wt", Namespace: "n", Partition: "p"},
			want: url.Values{"dc": {"dc9"}, "ns": {"n"}, "partition": {"p"}}, header: "wt"},
	}
	c, err := NewClient(Config{Address: "127.0.0.1:8500", Datacenter: "dc1", Token: "ct", Consistency: ConsistencyStale})
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.newRequest(http.MethodPut, "/v1/x")
			c.applyWrite(r, tt.w)
			// Writes never carry a consistency mode.
			assert.Equal(t, tt.want, r.params)
			assert.Equal(t, tt.header, r.header.Get("X-Consul-Token"))
			assert.False(t, r.blocking)
		})
	}
}

func TestDurationParam(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1s"},
		{5 * time.Minute, "300s"},
		{1500 * time.Millisecond, "1500ms"},
		{250 * time.Millisecond, "250ms"},
		{time.Microsecond, "1ms"},
		{1999 * time.Microsecond, "1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, durationParam(tt.d))
		})
	}
}

func TestParseQueryMeta(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   QueryMeta
	}{
		{name: "none", header: nil, want: QueryMeta{}},
		{
			name: "all",
			header: map[string]string{
				"X-Consul-Index":                    "4711",
				"X-Consul-ContentHash":              "a1b2c3",
				"X-Consul-LastContact":              "250",
				"X-Consul-KnownLeader":              "true",
				"X-Consul-Effective-Consistency":    "stale",
				"X-Consul-Default-ACL-Policy":       "deny",
				"X-Consul-Results-Filtered-By-ACLs": "true",
				"X-Consul-Translate-Addresses":      "true",
				"X-Consul-Query-Backend":            "streaming",
				"X-Cache":                           "HIT",
				"Age":                               "14",
			},
			want: QueryMeta{
				LastIndex: 4711, LastContentHash: "a1b2c3", LastContact: 250 * time.Millisecond,
				KnownLeader: true, ConsistencyLevel: "stale", DefaultACLPolicy: "deny",
				ResultsFilteredByACLs: true, AddressTranslationEnabled: true, QueryBackend: "streaming",
				CacheHit: true, CacheAge: 14 * time.Second,
			},
		},
		{
			name:   "leader unknown, cache miss",
			header: map[string]string{"X-Consul-KnownLeader": "false", "X-Cache": "MISS", "Age": "3", "X-Consul-Index": "1"},
			want:   QueryMeta{LastIndex: 1},
		},
		{
			name:   "garbage numbers",
			header: map[string]string{"X-Consul-Index": "x", "X-Consul-LastContact": "-1"},
			want:   QueryMeta{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			var m QueryMeta
			parseQueryMeta(h, &m)
			assert.Equal(t, tt.want, m)
		})
	}
}

// TestQueryMetaFromResponse: the pipeline fills QueryMeta from the answer.
func TestQueryMetaFromResponse(t *testing.T) {
	c, _ := newFake(t, fakeReply{Header: map[string]string{
		"X-Consul-Index": "99", "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0",
		"X-Consul-Effective-Consistency": "leader",
	}, Body: `[]`})
	meta, err := c.query(t.Context(), "/v1/catalog/nodes", nil, &[]any{})
	require.NoError(t, err)
	assert.Equal(t, uint64(99), meta.LastIndex)
	assert.True(t, meta.KnownLeader)
	assert.Equal(t, "leader", meta.ConsistencyLevel)
	assert.Positive(t, meta.RequestTime)
}

func TestConsistencyString(t *testing.T) {
	assert.Equal(t, "default", ConsistencyDefault.String())
	assert.Equal(t, "stale", ConsistencyStale.String())
	assert.Equal(t, "consistent", ConsistencyConsistent.String())
	assert.Equal(t, "default", Consistency(9).String())
}
