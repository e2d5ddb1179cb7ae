package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Consistency is the consistency mode of a read.
type Consistency int

const (
	// ConsistencyDefault is Consul's default mode: reads go to the leader,
	// which may serve them without a quorum check. No parameter is sent,
	// so an agent configured with discovery_max_stale serves /v1/catalog
	// and /v1/health reads stale instead (X-Consul-Effective-Consistency:
	// stale); Params{"leader": ""} asks for the leader there.
	ConsistencyDefault Consistency = iota
	// ConsistencyStale lets any server answer, possibly with stale data.
	ConsistencyStale
	// ConsistencyConsistent makes the leader confirm its leadership with a
	// quorum before answering.
	ConsistencyConsistent
)

func (c Consistency) String() string {
	switch c {
	case ConsistencyStale:
		return "stale"
	case ConsistencyConsistent:
		return "consistent"
	default:
		return "default"
	}
}

// QueryOptions are the options of a read. A nil *QueryOptions means none.
type QueryOptions struct {
	Datacenter string
	// Token overrides the client's ACL token for this request.
	Token string
	// Consistency overrides the client's default consistency mode.
	Consistency Consistency
	// WaitIndex makes the read a blocking query: it returns when the
	// result's index exceeds WaitIndex or WaitTime passes.
	WaitIndex uint64
	// WaitHash is the hash-based equivalent of WaitIndex for endpoints that
	// support it (agent service and health endpoints).
	WaitHash string
	// WaitTime bounds a blocking query: 0 means Config.WaitTime (5m by
	// default); more than 10 minutes (Consul's cap) is sent as 10 minutes.
	WaitTime time.Duration
	// Near sorts results by round-trip time from a node ("_agent" for the
	// agent answering).
	Near string
	// NodeMeta filters nodes by metadata. A key may not be empty or
	// contain ':' (Consul splits each filter at its first ':', so such a
	// key would filter on another key and value): a *ValidationError.
	NodeMeta map[string]string
	// Filter is a filter expression.
	Filter    string
	Namespace string
	Partition string
	// Peer reads a cluster peer's imported instances. Consul (1.14) reads
	// it on the health service, connect and ingress endpoints only; any
	// other read refuses it with a *ValidationError before sending, as
	// Consul would ignore it there and answer with local entries, as if
	// they were the peer's.
	Peer string
	// UseCache serves the read from the agent's cache where supported;
	// MaxAge and StaleIfError control freshness through Cache-Control, in
	// whole seconds, rounded down (below a second, max-age=0 asks for a
	// fresh answer). They apply only with UseCache; negative, they are a
	// *ValidationError.
	UseCache     bool
	MaxAge       time.Duration
	StaleIfError time.Duration
	// Params are extra query parameters, for endpoint options this package
	// does not name. The blocking-query parameters (index, hash, wait) are
	// refused there: WaitIndex, WaitHash and WaitTime set them, and the
	// client bounds the request by them.
	Params map[string]string
}

// WriteOptions are the options of a write. A nil *WriteOptions means none.
type WriteOptions struct {
	Datacenter string
	// Token overrides the client's ACL token for this request.
	Token     string
	Namespace string
	Partition string
}

// QueryMeta is the metadata Consul returns with a read.
type QueryMeta struct {
	// LastIndex is X-Consul-Index: pass it as WaitIndex to block for a change.
	LastIndex uint64
	// LastContentHash is X-Consul-ContentHash, for WaitHash.
	LastContentHash string
	// LastContact is how long ago the answering server heard from the leader.
	LastContact time.Duration
	// KnownLeader reports whether the answering server knew of a leader.
	KnownLeader bool
	// ConsistencyLevel is X-Consul-Effective-Consistency.
	ConsistencyLevel string
	// DefaultACLPolicy is X-Consul-Default-ACL-Policy.
	DefaultACLPolicy string
	// ResultsFilteredByACLs is X-Consul-Results-Filtered-By-ACLs.
	ResultsFilteredByACLs bool
	// AddressTranslationEnabled is X-Consul-Translate-Addresses.
	AddressTranslationEnabled bool
	// QueryBackend is X-Consul-Query-Backend (blocking-query or streaming).
	QueryBackend string
	// CacheHit and CacheAge describe an answer served from the agent cache.
	CacheHit bool
	CacheAge time.Duration
	// RequestTime is how long the request took.
	RequestTime time.Duration
}

// WriteMeta is the metadata of a write.
type WriteMeta struct {
	RequestTime time.Duration
}

func (c *Client) applyQuery(r *request, q *QueryOptions) {
	cons := c.consistency
	if q != nil && q.Consistency != ConsistencyDefault {
		cons = q.Consistency
	}
	switch cons {
	case ConsistencyStale:
		r.params.Set("stale", "")
	case ConsistencyConsistent:
		r.params.Set("consistent", "")
	}
	if q == nil {
		c.applyDefaults(r, "", "", "", "")
		return
	}
	c.applyDefaults(r, q.Datacenter, q.Token, q.Namespace, q.Partition)
	if q.WaitIndex != 0 {
		r.params.Set("index", strconv.FormatUint(q.WaitIndex, 10))
		r.blocking = true
	}
	if q.WaitHash != "" {
		r.params.Set("hash", q.WaitHash)
		r.blocking = true
	}
	if q.WaitTime < 0 {
		r.err = &ValidationError{Field: "QueryOptions.WaitTime", Reason: "negative"}
	}
	wait := q.WaitTime
	if wait <= 0 && r.blocking {
		wait = c.waitTime
	}
	if wait <= 0 && r.blocking {
		// Send the wait the request is bounded by: left out, the
		// server's default_query_time (configurable) would apply.
		wait = 5 * time.Minute
	}
	if wait > maxWait {
		wait = maxWait
	}
	if wait > 0 && r.blocking {
		r.params.Set("wait", durationParam(wait))
		r.wait = wait
	} else if q.WaitTime > 0 {
		r.params.Set("wait", durationParam(wait))
	}
	if q.Near != "" {
		r.params.Set("near", q.Near)
	}
	for k, v := range q.NodeMeta {
		if k == "" || strings.Contains(k, ":") {
			r.err = &ValidationError{Field: "QueryOptions.NodeMeta", Reason: "key " + strconv.Quote(k) + ": Consul splits a node-meta filter at its first ':', so a key must be non-empty and hold none"}
		}
		r.params.Add("node-meta", k+":"+v)
	}
	if q.Filter != "" {
		r.params.Set("filter", q.Filter)
	}
	if q.Peer != "" {
		if !peerAware(r.path) {
			r.err = &ValidationError{Field: "QueryOptions.Peer", Reason: "Consul ignores it on " + r.path + " and would answer with local entries (Health().Service reads a peer's instances)"}
		}
		r.params.Set("peer", q.Peer)
	}
	if q.MaxAge < 0 {
		r.err = &ValidationError{Field: "QueryOptions.MaxAge", Reason: "negative"}
	}
	if q.StaleIfError < 0 {
		r.err = &ValidationError{Field: "QueryOptions.StaleIfError", Reason: "negative"}
	}
	if q.UseCache {
		if cons == ConsistencyConsistent {
			// Consul answers 400 to ?cached with ?consistent.
			r.err = &ValidationError{Field: "QueryOptions.UseCache", Reason: "a cached read cannot be consistent (consistency " + cons.String() + ")"}
		}
		r.params.Set("cached", "")
		var cc []string
		if q.MaxAge > 0 {
			cc = append(cc, "max-age="+strconv.Itoa(int(q.MaxAge/time.Second)))
		}
		if q.StaleIfError > 0 {
			cc = append(cc, "stale-if-error="+strconv.Itoa(int(q.StaleIfError/time.Second)))
		}
		if len(cc) > 0 {
			r.header.Set("Cache-Control", strings.Join(cc, ", "))
		}
	}
	for k, v := range q.Params {
		switch k {
		case "index", "hash", "wait":
			r.err = &ValidationError{Field: "QueryOptions.Params", Reason: strconv.Quote(k) + " makes a blocking query: use WaitIndex, WaitHash and WaitTime"}
		}
		r.params.Set(k, v)
	}
}

// peerAware reports whether Consul reads the peer parameter on path: only
// its health service, connect and ingress endpoints do.
func peerAware(path string) bool {
	for _, p := range []string{"/v1/health/service/", "/v1/health/connect/", "/v1/health/ingress/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (c *Client) applyWrite(r *request, w *WriteOptions) {
	if w == nil {
		c.applyDefaults(r, "", "", "", "")
		return
	}
	c.applyDefaults(r, w.Datacenter, w.Token, w.Namespace, w.Partition)
}

func (c *Client) applyDefaults(r *request, dc, token, ns, partition string) {
	if dc == "" {
		dc = c.datacenter
	}
	if dc != "" {
		r.params.Set("dc", dc)
	}
	if token == "" {
		token = c.token
	}
	if token != "" {
		r.header.Set("X-Consul-Token", token)
	}
	if ns == "" {
		ns = c.namespace
	}
	if ns != "" {
		r.params.Set("ns", ns)
	}
	if partition == "" {
		partition = c.partition
	}
	if partition != "" {
		r.params.Set("partition", partition)
	}
}

// durationParam renders d the way Consul parses durations in query
// parameters: whole milliseconds, or seconds when exact.
func durationParam(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	ms := int64(d / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

func parseQueryMeta(h http.Header, m *QueryMeta) {
	if v := h.Get("X-Consul-Index"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			m.LastIndex = n
		}
	}
	m.LastContentHash = h.Get("X-Consul-ContentHash")
	if v := h.Get("X-Consul-LastContact"); v != "" {
		ms, _ := strconv.ParseUint(v, 10, 64)
		m.LastContact = time.Duration(ms) * time.Millisecond
	}
	m.KnownLeader = h.Get("X-Consul-KnownLeader") == "true"
	m.ConsistencyLevel = h.Get("X-Consul-Effective-Consistency")
	m.DefaultACLPolicy = h.Get("X-Consul-Default-ACL-Policy")
	m.ResultsFilteredByACLs = h.Get("X-Consul-Results-Filtered-By-ACLs") == "true"
	m.AddressTranslationEnabled = h.Get("X-Consul-Translate-Addresses") == "true"
	m.QueryBackend = h.Get("X-Consul-Query-Backend")
	switch strings.ToUpper(h.Get("X-Cache")) {
	case "HIT":
		m.CacheHit = true
		if v := h.Get("Age"); v != "" {
			s, _ := strconv.ParseUint(v, 10, 64)
			m.CacheAge = time.Duration(s) * time.Second
		}
	}
}

// escapeKey escapes each segment of a slash-separated path suffix.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
