package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AgentSelf is what the agent reports about itself (/v1/agent/self).
type AgentSelf struct {
	Config AgentSelfConfig
	// DebugConfig is the agent's full runtime configuration, with secrets
	// replaced by "hidden". Its shape changes between Consul versions.
	DebugConfig map[string]any
	// Coord is the agent's LAN network coordinate; nil when coordinates are
	// disabled.
	Coord *Coordinate
	// Member is the agent as its LAN gossip pool sees it; Member.Addr and
	// Member.Port are its Serf LAN address.
	Member AgentMember
	// Stats are the agent's runtime statistics by subsystem (agent, raft,
	// serf_lan, runtime, ...).
	Stats map[string]map[string]string
	// Meta is the node metadata of the agent.
	Meta map[string]string
	// XDS describes the xDS server of the agent, when it runs one.
	XDS *AgentSelfXDS `json:"xDS,omitempty"`
}

// AgentSelfConfig is the summary of the agent's configuration in
// AgentSelf.
type AgentSelfConfig struct {
	Datacenter        string
	PrimaryDatacenter string
	NodeName          string
	NodeID            string
	Partition         string `json:",omitempty"`
	Revision          string
	Server            bool
	Version           string
	BuildDate         string
}

// AgentSelfXDS describes the xDS (Envoy) server of an agent.
type AgentSelfXDS struct {
	// SupportedProxies lists the supported proxy versions by proxy ("envoy").
	SupportedProxies map[string][]string
	// Port is the gRPC port Envoy should use (TLS when enabled).
	Port  int
	Ports AgentSelfXDSPorts
}

// AgentSelfXDSPorts are the gRPC ports of the xDS server.
type AgentSelfXDSPorts struct {
	Plaintext int
	TLS       int
}

// MemberStatus is the gossip status of a cluster member.
type MemberStatus int

// Gossip member statuses, as Serf numbers them.
const (
	MemberStatusNone    MemberStatus = 0
	MemberStatusAlive   MemberStatus = 1
	MemberStatusLeaving MemberStatus = 2
	MemberStatusLeft    MemberStatus = 3
	MemberStatusFailed  MemberStatus = 4
)

// String returns the name of the status ("alive", "failed", ...).
func (s MemberStatus) String() string {
	switch s {
	case MemberStatusNone:
		return "none"
	case MemberStatusAlive:
		return "alive"
	case MemberStatusLeaving:
		return "leaving"
	case MemberStatusLeft:
		return "left"
	case MemberStatusFailed:
		return "failed"
	}
	return fmt.Sprintf("unknown(%d)", int(s))
}

// AgentMember is a member of a gossip pool (LAN or WAN).
type AgentMember struct {
	Name string
	// Addr and Port are the member's gossip address.
	Addr string
	Port uint16
	// Tags carry the member's role, datacenter, version and ports.
	Tags        map[string]string
	Status      MemberStatus
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

// AgentHostInfo describes the host the agent runs on (/v1/agent/host).
// The nested objects use the field names of the gopsutil library that
// Consul reports them with; only the commonly useful fields are typed.
type AgentHostInfo struct {
	Memory *AgentHostMemory
	CPU    []AgentHostCPU
	Host   *AgentHostSystem
	Disk   *AgentHostDisk
	// CollectionTime is when the information was collected, in nanoseconds
	// since the Unix epoch.
	CollectionTime int64
	// Errors are the collection errors. Consul encodes Go error values,
	// which usually carry no fields, so an entry is often just {}.
	Errors []json.RawMessage
}

// AgentHostMemory is the memory usage of the host, in bytes.
type AgentHostMemory struct {
	Total       uint64  `json:"total"`
	Available   uint64  `json:"available"`
	Used        uint64  `json:"used"`
	UsedPercent float64 `json:"usedPercent"`
	Free        uint64  `json:"free"`
}

// AgentHostCPU is one CPU of the host.
type AgentHostCPU struct {
	CPU       int32   `json:"cpu"`
	VendorID  string  `json:"vendorId"`
	Family    string  `json:"family"`
	Model     string  `json:"model"`
	Cores     int32   `json:"cores"`
	ModelName string  `json:"modelName"`
	Mhz       float64 `json:"mhz"`
}

// AgentHostSystem describes the host's operating system.
type AgentHostSystem struct {
	Hostname        string `json:"hostname"`
	Uptime          uint64 `json:"uptime"`
	BootTime        uint64 `json:"bootTime"`
	Procs           uint64 `json:"procs"`
	OS              string `json:"os"`
	Platform        string `json:"platform"`
	PlatformFamily  string `json:"platformFamily"`
	PlatformVersion string `json:"platformVersion"`
	KernelVersion   string `json:"kernelVersion"`
	KernelArch      string `json:"kernelArch"`
	HostID          string `json:"hostId"`
}

// AgentHostDisk is the usage of the disk holding "/" on the host, in bytes.
type AgentHostDisk struct {
	Path        string  `json:"path"`
	Fstype      string  `json:"fstype"`
	Total       uint64  `json:"total"`
	Free        uint64  `json:"free"`
	Used        uint64  `json:"used"`
	UsedPercent float64 `json:"usedPercent"`
}

// AgentVersion is what /v1/agent/version reports (Consul 1.15 and later).
type AgentVersion struct {
	SHA          string
	BuildDate    string
	HumanVersion string
	FIPS         string
}

// MetricsInfo is one snapshot of the agent's in-memory metrics.
type MetricsInfo struct {
	Timestamp string
	Gauges    []GaugeValue
	Points    []PointValue
	Counters  []SampledValue
	Samples   []SampledValue
}

// GaugeValue is the value of a gauge.
type GaugeValue struct {
	Name   string
	Value  float32
	Labels map[string]string
}

// PointValue is a series of points of a metric.
type PointValue struct {
	Name   string
	Points []float32
}

// SampledValue is the summary of a counter or a sample over the interval.
type SampledValue struct {
	Name   string
	Count  int
	Rate   float64
	Sum    float64
	Min    float64
	Max    float64
	Mean   float64
	Stddev float64
	Labels map[string]string
}

// AgentServiceChecksInfo is a local service with its checks and their
// aggregated status, as the agent's health endpoints report it.
type AgentServiceChecksInfo struct {
	AggregatedStatus string
	Service          *AgentService
	Checks           HealthChecks
}

// AgentAuthorizeParams asks whether a client certificate may connect to a
// Connect service.
type AgentAuthorizeParams struct {
	// Target is the name of the destination service.
	Target string
	// ClientCertURI is the SPIFFE URI SAN of the client certificate.
	ClientCertURI string
	// ClientCertSerial is the client certificate's serial number,
	// colon-separated hex.
	ClientCertSerial string
}

// AgentAuthorize is the answer to a Connect authorization request.
type AgentAuthorize struct {
	Authorized bool
	Reason     string
}

// LeafCert is a Connect leaf certificate issued to a service.
type LeafCert struct {
	// SerialNumber is colon-separated hex.
	SerialNumber string
	// CertPEM is the PEM-encoded certificate, possibly followed by
	// intermediates; PrivateKeyPEM is its private key.
	CertPEM       string
	PrivateKeyPEM string
	Service       string
	ServiceURI    string
	ValidAfter    time.Time
	ValidBefore   time.Time
	Namespace     string `json:",omitempty"`
	Partition     string `json:",omitempty"`
	CreateIndex   uint64
	ModifyIndex   uint64
}

// AgentTokenKind names one of the ACL tokens an agent holds.
type AgentTokenKind string

// Agent token kinds (PUT /v1/agent/token/<kind>).
const (
	// AgentTokenDefault is used for requests that carry no token.
	AgentTokenDefault AgentTokenKind = "default"
	// AgentTokenAgent is used for the agent's own operations.
	AgentTokenAgent AgentTokenKind = "agent"
	// AgentTokenAgentRecovery allows agent operations when the servers
	// cannot be reached.
	AgentTokenAgentRecovery AgentTokenKind = "agent_recovery"
	// AgentTokenReplication is used by secondary datacenters to replicate
	// ACLs.
	AgentTokenReplication AgentTokenKind = "replication"
	// AgentTokenConfigFileServiceRegistration registers the services of
	// the agent's configuration files (Consul 1.15 and later).
	AgentTokenConfigFileServiceRegistration AgentTokenKind = "config_file_service_registration"
)

func (k AgentTokenKind) valid() bool {
	switch k {
	case AgentTokenDefault, AgentTokenAgent, AgentTokenAgentRecovery,
		AgentTokenReplication, AgentTokenConfigFileServiceRegistration:
		return true
	}
	return false
}

// MembersOptions select the gossip pool that Members lists.
type MembersOptions struct {
	// WAN lists the WAN pool (servers of every datacenter) instead of the
	// LAN pool.
	WAN bool
	// Segment restricts the LAN pool to one network segment (Consul
	// Enterprise); "_all" lists every segment.
	Segment string
}

// ForceLeaveOptions modify ForceLeave.
type ForceLeaveOptions struct {
	// Prune removes the node from the member list at once instead of
	// leaving it in the "left" state until it is reaped.
	Prune bool
	// WAN acts on the WAN pool; the node name must then carry the
	// datacenter suffix ("node.dc1").
	WAN bool
}

// MonitorOptions select what Monitor streams.
type MonitorOptions struct {
	// LogLevel is the lowest level streamed: trace, debug, info (the
	// default), warn or error.
	LogLevel string
	// JSON streams each line as a JSON object.
	JSON bool
}

// Self returns the agent's configuration summary, member entry, statistics
// and metadata. It needs agent:read.
func (a *Agent) Self(ctx context.Context, q *QueryOptions) (*AgentSelf, *QueryMeta, error) {
	var out AgentSelf
	meta, err := a.c.query(ctx, "/v1/agent/self", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// Host returns information about the host the agent runs on: memory,
// CPUs, operating system and disk. It needs operator:read.
func (a *Agent) Host(ctx context.Context, q *QueryOptions) (*AgentHostInfo, *QueryMeta, error) {
	var out AgentHostInfo
	meta, err := a.c.query(ctx, "/v1/agent/host", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// Version returns the agent's version (/v1/agent/version). Consul added
// the endpoint in 1.15: older agents answer 404, a *StatusError matching
// ErrNotFound; AgentSelf.Config.Version carries the version there.
func (a *Agent) Version(ctx context.Context, q *QueryOptions) (*AgentVersion, *QueryMeta, error) {
	var out AgentVersion
	meta, err := a.c.query(ctx, "/v1/agent/version", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// Reload makes the agent reload its configuration files, as SIGHUP does.
// It needs agent:write.
func (a *Agent) Reload(ctx context.Context, w *WriteOptions) (*WriteMeta, error) {
	return a.c.write(ctx, http.MethodPut, "/v1/agent/reload", w, nil, nil)
}

// Members lists the members of the agent's LAN gossip pool, or of the WAN
// pool when opts.WAN is set. A nil opts lists the LAN pool.
func (a *Agent) Members(ctx context.Context, opts *MembersOptions, q *QueryOptions) ([]*AgentMember, *QueryMeta, error) {
	r := a.c.newRequest(http.MethodGet, "/v1/agent/members")
	a.c.applyQuery(r, q)
	if opts != nil {
		if opts.WAN {
			if opts.Segment != "" && opts.Segment != "_all" {
				return nil, nil, &ValidationError{Field: "MembersOptions.Segment", Reason: "cannot be set with WAN"}
			}
			r.params.Set("wan", "1")
		}
		if opts.Segment != "" {
			r.params.Set("segment", opts.Segment)
		}
	}
	var out []*AgentMember
	meta, err := a.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Join makes the agent join the gossip pool of the agent at addr (host or
// host:port of its Serf LAN port, or Serf WAN port when wan is set). A
// failed join is a *StatusError (500) carrying Consul's reason.
func (a *Agent) Join(ctx context.Context, addr string, wan bool, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("address", addr); err != nil {
		return nil, err
	}
	r := a.c.newRequest(http.MethodPut, "/v1/agent/join/"+escapeKey(addr))
	a.c.applyWrite(r, w)
	if wan {
		r.params.Set("wan", "1")
	}
	return a.c.writeRequest(ctx, r, nil)
}

// Leave makes the agent leave the cluster gracefully and shut down. The
// agent answers before it stops; it does not come back on its own.
func (a *Agent) Leave(ctx context.Context, w *WriteOptions) (*WriteMeta, error) {
	return a.c.write(ctx, http.MethodPut, "/v1/agent/leave", w, nil, nil)
}

// ForceLeave moves a failed member of the gossip pool to the "left" state
// (or removes it at once with opts.Prune). It needs operator:write. An
// unknown node is a *StatusError (500) on Consul 1.14, not a 404. A nil
// opts means neither prune nor WAN.
func (a *Agent) ForceLeave(ctx context.Context, node string, opts *ForceLeaveOptions, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("node", node); err != nil {
		return nil, err
	}
	r := a.c.newRequest(http.MethodPut, "/v1/agent/force-leave/"+escapeKey(node))
	a.c.applyWrite(r, w)
	if opts != nil {
		if opts.Prune {
			r.params.Set("prune", "1")
		}
		if opts.WAN {
			r.params.Set("wan", "1")
		}
	}
	return a.c.writeRequest(ctx, r, nil)
}

// EnableNodeMaintenance puts the agent's node in maintenance mode: a
// critical "_node_maintenance" check takes all its services out of DNS and
// health queries. reason is shown in the check's notes.
func (a *Agent) EnableNodeMaintenance(ctx context.Context, reason string, w *WriteOptions) (*WriteMeta, error) {
	r := a.c.newRequest(http.MethodPut, "/v1/agent/maintenance")
	a.c.applyWrite(r, w)
	r.params.Set("enable", "true")
	if reason != "" {
		r.params.Set("reason", reason)
	}
	return a.c.writeRequest(ctx, r, nil)
}

// DisableNodeMaintenance takes the agent's node out of maintenance mode.
// It is not an error when the node is not in maintenance.
func (a *Agent) DisableNodeMaintenance(ctx context.Context, w *WriteOptions) (*WriteMeta, error) {
	r := a.c.newRequest(http.MethodPut, "/v1/agent/maintenance")
	a.c.applyWrite(r, w)
	r.params.Set("enable", "false")
	return a.c.writeRequest(ctx, r, nil)
}

// EnableServiceMaintenance puts a local service in maintenance mode: a
// critical "_service_maintenance:<id>" check takes it out of DNS and health
// queries. An unknown service ID is a *StatusError matching ErrNotFound.
func (a *Agent) EnableServiceMaintenance(ctx context.Context, serviceID, reason string, w *WriteOptions) (*WriteMeta, error) {
	return a.serviceMaintenance(ctx, serviceID, true, reason, w)
}

// DisableServiceMaintenance takes a local service out of maintenance mode.
// An unknown service ID is a *StatusError matching ErrNotFound.
func (a *Agent) DisableServiceMaintenance(ctx context.Context, serviceID string, w *WriteOptions) (*WriteMeta, error) {
	return a.serviceMaintenance(ctx, serviceID, false, "", w)
}

func (a *Agent) serviceMaintenance(ctx context.Context, serviceID string, enable bool, reason string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("service ID", serviceID); err != nil {
		return nil, err
	}
	r := a.c.newRequest(http.MethodPut, "/v1/agent/service/maintenance/"+escapeKey(serviceID))
	a.c.applyWrite(r, w)
	if enable {
		r.params.Set("enable", "true")
		if reason != "" {
			r.params.Set("reason", reason)
		}
	} else {
		r.params.Set("enable", "false")
	}
	return a.c.writeRequest(ctx, r, nil)
}

// Metrics returns the agent's current in-memory metrics (the last
// complete interval and the current one). It needs agent:read.
func (a *Agent) Metrics(ctx context.Context, q *QueryOptions) (*MetricsInfo, *QueryMeta, error) {
	var out MetricsInfo
	meta, err := a.c.query(ctx, "/v1/agent/metrics", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// MetricsPrometheus returns the agent's metrics in the Prometheus text
// exposition format, as it serves them to a scraper. The agent serves
// them only when telemetry.prometheus_retention_time is positive; otherwise
// Consul 1.14 answers 200 with an empty body and the reason in
// X-Consul-Reason (later versions answer 415): both are reported as a
// *StatusError with code 415 and the reason as its body.
func (a *Agent) MetricsPrometheus(ctx context.Context, q *QueryOptions) ([]byte, *QueryMeta, error) {
	r := a.c.newRequest(http.MethodGet, "/v1/agent/metrics")
	a.c.applyQuery(r, q)
	r.params.Set("format", "prometheus")
	resp, d, err := a.c.do(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	defer closeBody(resp)
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, nil, ctxErr
		}
		return nil, nil, &transportError{err: err}
	}
	if len(b) == 0 {
		if reason := resp.Header.Get("X-Consul-Reason"); reason != "" {
			return nil, nil, &StatusError{Method: r.method, Path: r.path, Code: http.StatusUnsupportedMediaType, Body: reason}
		}
	}
	return b, meta, nil
}

// Services returns the services registered with the agent, by service ID.
// q.Filter applies a filter expression.
func (a *Agent) Services(ctx context.Context, q *QueryOptions) (map[string]*AgentService, *QueryMeta, error) {
	var out map[string]*AgentService
	meta, err := a.c.query(ctx, "/v1/agent/services", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Service returns one service registered with the agent. An unknown
// service ID is (nil, meta, nil). The read blocks when q.WaitHash is set
// (hash-based blocking: pass meta.LastContentHash, which equals the
// service's ContentHash); it does not support WaitIndex.
func (a *Agent) Service(ctx context.Context, serviceID string, q *QueryOptions) (*AgentService, *QueryMeta, error) {
	if err := requireID("service ID", serviceID); err != nil {
		return nil, nil, err
	}
	// These are the agent's service write endpoints, which a read of a
	// service so named would reach instead.
	if err := refuseReserved("service ID", serviceID, []string{"register", "deregister", "maintenance"}); err != nil {
		return nil, nil, err
	}
	r := a.c.newRequest(http.MethodGet, "/v1/agent/service/"+escapeKey(serviceID))
	a.c.applyQuery(r, q)
	resp, d, err := a.c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	var out AgentService
	if err := decode(resp, &out); err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// HealthServiceByID returns the aggregated health of a local service
// instance: HealthPassing, HealthWarning, HealthCritical or HealthMaint,
// and the service with its checks. Consul signals a warning with HTTP 429
// and critical or maintenance with 503; these are answers here, not
// errors. An unknown service ID is ("", nil, nil).
func (a *Agent) HealthServiceByID(ctx context.Context, serviceID string, q *QueryOptions) (string, *AgentServiceChecksInfo, error) {
	if err := requireID("service ID", serviceID); err != nil {
		return "", nil, err
	}
	var out AgentServiceChecksInfo
	found, err := a.healthService(ctx, "/v1/agent/health/service/id/"+escapeKey(serviceID), q, &out)
	if err != nil || !found {
		return "", nil, err
	}
	return out.AggregatedStatus, &out, nil
}

// HealthServiceByName returns the worst aggregated health of the local
// instances of a service, and each instance with its checks. Status codes
// 429 and 503 are answers, as for HealthServiceByID. A name without local
// instances is ("", nil, nil).
func (a *Agent) HealthServiceByName(ctx context.Context, service string, q *QueryOptions) (string, []*AgentServiceChecksInfo, error) {
	if err := requireID("service name", service); err != nil {
		return "", nil, err
	}
	var out []*AgentServiceChecksInfo
	found, err := a.healthService(ctx, "/v1/agent/health/service/name/"+escapeKey(service), q, &out)
	if err != nil || !found || len(out) == 0 {
		return "", nil, err
	}
	status := HealthPassing
	for _, info := range out {
		if healthRank(info.AggregatedStatus) > healthRank(status) {
			status = info.AggregatedStatus
		}
	}
	return status, out, nil
}

// healthRank orders statuses from best to worst, the way the agent picks
// the status of several instances.
func healthRank(s string) int {
	switch s {
	case HealthPassing:
		return 0
	case HealthWarning:
		return 1
	case HealthCritical:
		return 2
	case HealthMaint:
		return 3
	}
	return 2
}

func (a *Agent) healthService(ctx context.Context, path string, q *QueryOptions, out any) (bool, error) {
	r := a.c.newRequest(http.MethodGet, path)
	a.c.applyQuery(r, q)
	resp, _, err := a.c.do(ctx, r, http.StatusNotFound, http.StatusTooManyRequests, http.StatusServiceUnavailable)
	if err != nil {
		return false, err
	}
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return false, nil
	}
	if err := decode(resp, out); err != nil {
		return false, err
	}
	return true, nil
}

// ConnectAuthorize asks the agent whether a client with the certificate
// described by p may connect to p.Target, according to the intentions. The
// answer (and its reason) is in the result, not in the error.
func (a *Agent) ConnectAuthorize(ctx context.Context, p *AgentAuthorizeParams, w *WriteOptions) (*AgentAuthorize, *WriteMeta, error) {
	if p == nil {
		return nil, nil, &ValidationError{Field: "params", Reason: "nil"}
	}
	if err := requireID("Target", p.Target); err != nil {
		return nil, nil, err
	}
	if err := requireID("ClientCertURI", p.ClientCertURI); err != nil {
		return nil, nil, err
	}
	var out AgentAuthorize
	meta, err := a.c.write(ctx, http.MethodPost, "/v1/agent/connect/authorize", w, p, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// ConnectCARoots returns the trusted Connect CA roots, from the agent's
// cache. It supports blocking queries (WaitIndex).
func (a *Agent) ConnectCARoots(ctx context.Context, q *QueryOptions) (*CARootList, *QueryMeta, error) {
	var out CARootList
	meta, err := a.c.query(ctx, "/v1/agent/connect/ca/roots", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// ConnectCALeaf returns a leaf certificate for the service named service
// (a service name, not an instance ID), issued by the Connect CA and cached
// by the agent. A blocking query (WaitIndex = meta.LastIndex) returns when
// the certificate is renewed or rotated. Without Connect, Consul answers
// a *StatusError.
func (a *Agent) ConnectCALeaf(ctx context.Context, service string, q *QueryOptions) (*LeafCert, *QueryMeta, error) {
	if err := requireID("service", service); err != nil {
		return nil, nil, err
	}
	var out LeafCert
	meta, err := a.c.query(ctx, "/v1/agent/connect/ca/leaf/"+escapeKey(service), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// UpdateToken sets one of the agent's ACL tokens. The agent needs ACLs
// enabled (otherwise Consul answers a *StatusError with code 401), and
// the call needs agent:write. Consul 1.14 does not know
// AgentTokenConfigFileServiceRegistration: it answers 404 (ErrNotFound).
func (a *Agent) UpdateToken(ctx context.Context, kind AgentTokenKind, token string, w *WriteOptions) (*WriteMeta, error) {
	if !kind.valid() {
		return nil, &ValidationError{Field: "token kind", Reason: fmt.Sprintf("unknown kind %q", string(kind))}
	}
	body := struct{ Token string }{token}
	return a.c.write(ctx, http.MethodPut, "/v1/agent/token/"+string(kind), w, body, nil)
}

// ErrStreamClosed is returned by Stream.Next after Close.
var ErrStreamClosed = errors.New("consul: stream closed")

// Stream is a response that the agent streams item by item (Monitor,
// MetricsStream). It starts no goroutine: Next reads from the connection
// in the caller's goroutine. The stream ends when the context given to the
// call that opened it ends, when Close is called, or when the agent ends
// the response; Close releases the connection and must always be called.
type Stream[T any] struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	// ctxErr reports why the caller's context ended, if it did.
	ctxErr func() error
	read   func() (T, error)

	mu     sync.Mutex
	closed bool
}

func newStream[T any](ctx context.Context, c *Client, r *request, read func(*Stream[T]) func() (T, error)) (*Stream[T], error) {
	// Streams have no wait: they last until ctx ends or Close is called.
	r.blocking = false
	sctx, cancel := context.WithCancel(ctx)
	resp, _, err := c.do(sctx, r)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Stream[T]{body: resp.Body, cancel: cancel, ctxErr: ctx.Err}
	s.read = read(s)
	return s, nil
}

// streamDecodeError is an item the stream could not decode: the
// connection is fine, the content is not.
type streamDecodeError struct{ err error }

func (e *streamDecodeError) Error() string { return "consul: decoding stream item: " + e.err.Error() }
func (e *streamDecodeError) Unwrap() error { return e.err }

// Next blocks until the next item arrives and returns it. Next must not be
// called from several goroutines at once. When the stream
// ends it returns io.EOF (the agent ended the response),
// context.Canceled or context.DeadlineExceeded (the caller's context
// ended), ErrStreamClosed (after Close), or the transport error.
func (s *Stream[T]) Next() (T, error) {
	var zero T
	if s.isClosed() {
		return zero, ErrStreamClosed
	}
	v, err := s.read()
	if err == nil {
		return v, nil
	}
	switch {
	case s.isClosed():
		return zero, ErrStreamClosed
	case s.ctxErr() != nil:
		return zero, s.ctxErr()
	case errors.Is(err, io.EOF):
		return zero, io.EOF
	}
	var de *streamDecodeError
	if errors.As(err, &de) {
		return zero, err
	}
	return zero, &transportError{err: err}
}

// Close ends the stream and releases its connection. It is safe to call
// more than once and from another goroutine than the one in Next, which
// then returns ErrStreamClosed.
func (s *Stream[T]) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	_ = s.body.Close()
	return nil
}

func (s *Stream[T]) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Monitor streams the agent's log lines at opts.LogLevel and above, one
// line per Next (without the trailing newline, and cut at MaxMonitorLine:
// a cut JSON line no longer parses), until ctx ends or the stream is
// closed. Lines are JSON objects when opts.JSON is set. A nil
// opts streams info and above as text. It needs agent:read.
func (a *Agent) Monitor(ctx context.Context, opts *MonitorOptions, q *QueryOptions) (*Stream[string], error) {
	r := a.c.newRequest(http.MethodGet, "/v1/agent/monitor")
	a.c.applyQuery(r, q)
	if opts != nil {
		if opts.LogLevel != "" {
			switch strings.ToLower(opts.LogLevel) {
			case "trace", "debug", "info", "warn", "err", "error":
			default:
				return nil, &ValidationError{Field: "MonitorOptions.LogLevel", Reason: fmt.Sprintf("unknown level %q", opts.LogLevel)}
			}
			r.params.Set("loglevel", opts.LogLevel)
		}
		if opts.JSON {
			r.params.Set("logjson", "")
		}
	}
	return newStream(ctx, a.c, r, func(s *Stream[string]) func() (string, error) {
		br := bufio.NewReader(s.body)
		return func() (string, error) {
			for {
				line, err := readLine(br, MaxMonitorLine)
				if err != nil {
					if line != "" && errors.Is(err, io.EOF) {
						return strings.TrimRight(line, "\r\n"), nil
					}
					return "", err
				}
				line = strings.TrimRight(line, "\r\n")
				if line == "" {
					continue
				}
				return line, nil
			}
		}
	})
}

// MaxMonitorLine bounds a line of Monitor: a longer one is cut to this
// many bytes (the rest, up to its newline, is skipped), so that an agent
// cannot make the client buffer without limit.
const MaxMonitorLine = 1 << 20

// readLine reads up to and including the next newline, keeping at most
// limit bytes of it.
func readLine(br *bufio.Reader, limit int) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		if room := limit - len(b); room > 0 {
			b = append(b, frag[:min(len(frag), room)]...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return string(b), err
		}
	}
}

// MetricsStream streams the agent's metrics: one MetricsInfo per metrics
// interval (10 seconds by default; the first one arrives at the end of the
// current interval), until ctx ends or the stream is closed. It needs
// agent:read.
func (a *Agent) MetricsStream(ctx context.Context, q *QueryOptions) (*Stream[MetricsInfo], error) {
	r := a.c.newRequest(http.MethodGet, "/v1/agent/metrics/stream")
	a.c.applyQuery(r, q)
	return newStream(ctx, a.c, r, func(s *Stream[MetricsInfo]) func() (MetricsInfo, error) {
		dec := json.NewDecoder(s.body)
		return func() (MetricsInfo, error) {
			var m MetricsInfo
			err := dec.Decode(&m)
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				err = &streamDecodeError{err: err}
			}
			return m, err
		}
	})
}
