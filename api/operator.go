package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Operator is the handle on the /v1/operator endpoints: Raft peers,
// autopilot, the gossip keyring and usage. Most need an operator:read or
// operator:write token.
type Operator struct{ c *Client }

// Operator returns the handle on the operator endpoints.
func (c *Client) Operator() *Operator { return &Operator{c} }

// RaftServer is a server of the Raft configuration.
type RaftServer struct {
	// ID is the server's Raft ID (its node ID).
	ID string
	// Node is the server's node name, or "(unknown)".
	Node string
	// Address is the server's Raft address (ip:port).
	Address string
	Leader  bool
	// ProtocolVersion is the Raft protocol version the server speaks.
	ProtocolVersion string
	// Voter is false for a server that is still being promoted, or a
	// non-voting server.
	Voter bool
	// LastIndex is the last Raft log index the server has.
	LastIndex uint64
}

// RaftConfiguration is the Raft peer set.
type RaftConfiguration struct {
	Servers []*RaftServer
	// Index is the Raft index of this configuration.
	Index uint64
}

// RaftGetConfiguration returns the Raft peer set, as the leader sees it (as
// the answering server sees it with ConsistencyStale).
func (o *Operator) RaftGetConfiguration(ctx context.Context, q *QueryOptions) (*RaftConfiguration, *QueryMeta, error) {
	var out RaftConfiguration
	meta, err := o.c.query(ctx, "/v1/operator/raft/configuration", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// RaftRemovePeerByID removes the server with Raft ID id from the peer set.
// Use it only for a server that is gone for good and that Consul did not
// remove by itself. An ID that is not in the peer set is a *StatusError
// (500, "... not found in the Raft configuration").
func (o *Operator) RaftRemovePeerByID(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("Raft server ID", id); err != nil {
		return nil, err
	}
	return o.removePeer(ctx, "id", id, w)
}

// RaftRemovePeerByAddress removes the server with Raft address addr
// (ip:port) from the peer set, like RaftRemovePeerByID.
func (o *Operator) RaftRemovePeerByAddress(ctx context.Context, addr string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("Raft server address", addr); err != nil {
		return nil, err
	}
	return o.removePeer(ctx, "address", addr, w)
}

func (o *Operator) removePeer(ctx context.Context, param, v string, w *WriteOptions) (*WriteMeta, error) {
	r := o.c.newRequest(http.MethodDelete, "/v1/operator/raft/peer")
	o.c.applyWrite(r, w)
	r.params.Set(param, v)
	return o.c.writeRequest(ctx, r, nil)
}

// RaftTransferLeader asks the leader to hand leadership to the server with
// Raft ID id, or to any other voter when id is empty, and reports whether
// Consul says the transfer succeeded. Consul 1.14 does not serve this
// endpoint (it came with 1.15): it answers a *StatusError matching
// ErrNotFound.
func (o *Operator) RaftTransferLeader(ctx context.Context, id string, w *WriteOptions) (bool, *WriteMeta, error) {
	if id != "" {
		if err := requireID("Raft server ID", id); err != nil {
			return false, nil, err
		}
	}
	r := o.c.newRequest(http.MethodPost, "/v1/operator/raft/transfer-leader")
	o.c.applyWrite(r, w)
	if id != "" {
		r.params.Set("id", id)
	}
	var out struct{ Success bool }
	meta, err := o.c.writeRequest(ctx, r, &out)
	return out.Success, meta, err
}

// AutopilotConfiguration is the autopilot configuration of the servers.
type AutopilotConfiguration struct {
	// CleanupDeadServers removes failed servers from the peer set when a
	// new server joins.
	CleanupDeadServers bool
	// LastContactThreshold is how long a server may go without contact
	// from the leader before it counts as unhealthy. Zero leaves Consul's
	// default (200ms) when setting.
	LastContactThreshold Duration `json:",omitempty"`
	// MaxTrailingLogs is how many log entries a server may lag behind
	// before it counts as unhealthy.
	MaxTrailingLogs uint64
	// MinQuorum is the server count below which autopilot stops pruning
	// dead servers.
	MinQuorum uint
	// ServerStabilizationTime is how long a new server must be healthy
	// before it is promoted to voter. Zero leaves Consul's default (10s)
	// when setting.
	ServerStabilizationTime Duration `json:",omitempty"`
	// RedundancyZoneTag, DisableUpgradeMigration and UpgradeVersionTag are
	// Consul Enterprise settings.
	RedundancyZoneTag       string
	DisableUpgradeMigration bool
	UpgradeVersionTag       string
	CreateIndex             uint64
	// ModifyIndex is the index for AutopilotCASConfiguration.
	ModifyIndex uint64
}

// AutopilotGetConfiguration returns the autopilot configuration.
func (o *Operator) AutopilotGetConfiguration(ctx context.Context, q *QueryOptions) (*AutopilotConfiguration, *QueryMeta, error) {
	var out AutopilotConfiguration
	meta, err := o.c.query(ctx, "/v1/operator/autopilot/configuration", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// AutopilotSetConfiguration replaces the autopilot configuration with conf
// unconditionally.
func (o *Operator) AutopilotSetConfiguration(ctx context.Context, conf *AutopilotConfiguration, w *WriteOptions) (*WriteMeta, error) {
	if conf == nil {
		return nil, &ValidationError{Field: "autopilot configuration", Reason: "nil"}
	}
	return o.c.write(ctx, http.MethodPut, "/v1/operator/autopilot/configuration", w, conf, nil)
}

// AutopilotCASConfiguration replaces the autopilot configuration with conf
// only if its ModifyIndex still equals conf.ModifyIndex, and reports
// whether it did.
func (o *Operator) AutopilotCASConfiguration(ctx context.Context, conf *AutopilotConfiguration, w *WriteOptions) (bool, *WriteMeta, error) {
	if conf == nil {
		return false, nil, &ValidationError{Field: "autopilot configuration", Reason: "nil"}
	}
	r := o.c.newRequest(http.MethodPut, "/v1/operator/autopilot/configuration")
	o.c.applyWrite(r, w)
	r.params.Set("cas", strconv.FormatUint(conf.ModifyIndex, 10))
	if err := r.jsonBody(conf); err != nil {
		return false, nil, err
	}
	var ok bool
	meta, err := o.c.writeRequest(ctx, r, &ok)
	return ok, meta, err
}

// ServerHealth is the health of one server as the leader's autopilot sees
// it.
type ServerHealth struct {
	ID      string
	Name    string
	Address string
	// SerfStatus is the server's gossip status ("alive", "failed", ...).
	SerfStatus string
	Version    string
	Leader     bool
	// LastContact is the time since the leader last heard from the server.
	LastContact Duration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	Voter       bool
	// StableSince is when Healthy last changed.
	StableSince time.Time
}

// OperatorHealthReply is the health of the servers.
type OperatorHealthReply struct {
	// Healthy is true when every server is healthy.
	Healthy bool
	// FailureTolerance is how many servers may fail without losing quorum.
	FailureTolerance int
	Servers          []ServerHealth
}

// AutopilotServerHealth returns the health of the servers. Consul answers
// HTTP 429 when a server is unhealthy; that answer is returned as a reply
// with Healthy false, not as an error. A 429 without a health report (a
// rate limit) is a *StatusError matching ErrRateLimited.
func (o *Operator) AutopilotServerHealth(ctx context.Context, q *QueryOptions) (*OperatorHealthReply, *QueryMeta, error) {
	r := o.c.newRequest(http.MethodGet, "/v1/operator/autopilot/health")
	o.c.applyQuery(r, q)
	resp, d, err := o.c.do(ctx, r, http.StatusTooManyRequests)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusTooManyRequests {
		defer closeBody(resp)
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if rerr != nil && ctx.Err() != nil {
			return nil, meta, ctx.Err()
		}
		var out OperatorHealthReply
		if rerr != nil || json.Unmarshal(b, &out) != nil || len(out.Servers) == 0 {
			if len(b) > maxErrorBody {
				b = b[:maxErrorBody]
			}
			return nil, meta, &StatusError{Method: r.method, Path: r.path, Code: resp.StatusCode, Body: string(b)}
		}
		return &out, meta, nil
	}
	var out OperatorHealthReply
	if err := decode(resp, &out); err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// Autopilot server statuses (AutopilotServer.Status).
const (
	AutopilotServerNone     = "none"
	AutopilotServerLeader   = "leader"
	AutopilotServerVoter    = "voter"
	AutopilotServerNonVoter = "non-voter"
	AutopilotServerStaging  = "staging"
)

// AutopilotServer is one server in the autopilot state.
type AutopilotServer struct {
	ID      string
	Name    string
	Address string
	// NodeStatus is the server's gossip status ("alive", ...).
	NodeStatus  string
	Version     string
	LastContact Duration
	LastTerm    uint64
	LastIndex   uint64
	Healthy     bool
	StableSince time.Time
	// RedundancyZone, UpgradeVersion and ReadReplica are Consul
	// Enterprise fields.
	RedundancyZone string `json:",omitempty"`
	UpgradeVersion string `json:",omitempty"`
	ReadReplica    bool
	// Status is one of the AutopilotServer constants.
	Status string
	Meta   map[string]string
	// NodeType is "voter" in open-source Consul.
	NodeType string
}

// AutopilotZone is a redundancy zone (Consul Enterprise).
type AutopilotZone struct {
	Servers          []string
	Voters           []string
	FailureTolerance int
}

// AutopilotUpgrade is the state of an automated upgrade (Consul
// Enterprise).
type AutopilotUpgrade struct {
	Status                    string
	TargetVersion             string   `json:",omitempty"`
	TargetVersionVoters       []string `json:",omitempty"`
	TargetVersionNonVoters    []string `json:",omitempty"`
	TargetVersionReadReplicas []string `json:",omitempty"`
	OtherVersionVoters        []string `json:",omitempty"`
	OtherVersionNonVoters     []string `json:",omitempty"`
	OtherVersionReadReplicas  []string `json:",omitempty"`
}

// AutopilotState is autopilot's view of the servers.
type AutopilotState struct {
	Healthy                    bool
	FailureTolerance           int
	OptimisticFailureTolerance int
	// Servers maps Raft IDs to servers.
	Servers map[string]AutopilotServer
	// Leader is the leader's Raft ID.
	Leader          string
	Voters          []string
	ReadReplicas    []string                 `json:",omitempty"`
	RedundancyZones map[string]AutopilotZone `json:",omitempty"`
	Upgrade         *AutopilotUpgrade        `json:",omitempty"`
}

// AutopilotState returns autopilot's view of the servers.
func (o *Operator) AutopilotState(ctx context.Context, q *QueryOptions) (*AutopilotState, *QueryMeta, error) {
	var out AutopilotState
	meta, err := o.c.query(ctx, "/v1/operator/autopilot/state", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// KeyringResponse is the keyring of one gossip pool.
type KeyringResponse struct {
	// WAN is true for the WAN pool of the servers.
	WAN        bool
	Datacenter string
	Segment    string `json:",omitempty"`
	Partition  string `json:",omitempty"`
	// Messages holds per-node messages from the gossip layer.
	Messages map[string]string `json:",omitempty"`
	// Keys maps each installed key to the number of nodes that have it.
	Keys map[string]int
	// PrimaryKeys maps each primary key to the number of nodes using it.
	PrimaryKeys map[string]int
	NumNodes    int
}

// KeyringOptions are the options of the keyring calls.
type KeyringOptions struct {
	// RelayFactor (0..5) makes that many nodes relay each reply, for
	// networks that lose packets.
	RelayFactor int
	// LocalOnly asks only the servers of the local datacenter (KeyringList
	// only).
	LocalOnly bool
}

func (k *KeyringOptions) apply(r *request, list bool) error {
	if k == nil {
		return nil
	}
	if k.RelayFactor < 0 || k.RelayFactor > 5 {
		return &ValidationError{Field: "KeyringOptions.RelayFactor", Reason: fmt.Sprintf("%d is outside 0..5", k.RelayFactor)}
	}
	if k.RelayFactor > 0 {
		r.params.Set("relay-factor", strconv.Itoa(k.RelayFactor))
	}
	if k.LocalOnly {
		if !list {
			return &ValidationError{Field: "KeyringOptions.LocalOnly", Reason: "applies to KeyringList only"}
		}
		r.params.Set("local-only", "true")
	}
	return nil
}

// KeyringList returns the keyring of every gossip pool. On agents without
// gossip encryption Consul answers a *StatusError (500, "Keyring is
// empty (encryption not enabled)"); IsKeyringDisabled reports it. Errors of
// single pools or nodes are a *StatusError too: Consul then sends no keys.
func (o *Operator) KeyringList(ctx context.Context, opts *KeyringOptions, q *QueryOptions) ([]*KeyringResponse, *QueryMeta, error) {
	r := o.c.newRequest(http.MethodGet, "/v1/operator/keyring")
	o.c.applyQuery(r, q)
	if err := opts.apply(r, true); err != nil {
		return nil, nil, err
	}
	var out []*KeyringResponse
	meta, err := o.c.queryRequest(ctx, r, &out)
	return out, meta, err
}

// KeyringInstall adds key (base64 of 16, 24 or 32 bytes) to every keyring
// without making it primary.
func (o *Operator) KeyringInstall(ctx context.Context, key string, opts *KeyringOptions, w *WriteOptions) (*WriteMeta, error) {
	return o.keyringWrite(ctx, http.MethodPost, key, opts, w)
}

// KeyringUse makes the installed key the primary key, used to encrypt.
func (o *Operator) KeyringUse(ctx context.Context, key string, opts *KeyringOptions, w *WriteOptions) (*WriteMeta, error) {
	return o.keyringWrite(ctx, http.MethodPut, key, opts, w)
}

// KeyringRemove removes key from every keyring; the primary key cannot be
// removed.
func (o *Operator) KeyringRemove(ctx context.Context, key string, opts *KeyringOptions, w *WriteOptions) (*WriteMeta, error) {
	return o.keyringWrite(ctx, http.MethodDelete, key, opts, w)
}

func (o *Operator) keyringWrite(ctx context.Context, method, key string, opts *KeyringOptions, w *WriteOptions) (*WriteMeta, error) {
	if err := validateGossipKey(key); err != nil {
		return nil, err
	}
	r := o.c.newRequest(method, "/v1/operator/keyring")
	o.c.applyWrite(r, w)
	if err := opts.apply(r, false); err != nil {
		return nil, err
	}
	if err := r.jsonBody(struct{ Key string }{key}); err != nil {
		return nil, err
	}
	return o.c.writeRequest(ctx, r, nil)
}

func validateGossipKey(key string) error {
	if key == "" {
		return &ValidationError{Field: "key", Reason: "empty"}
	}
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return &ValidationError{Field: "key", Reason: "not standard base64"}
	}
	switch len(b) {
	case 16, 24, 32:
		return nil
	}
	return &ValidationError{Field: "key", Reason: fmt.Sprintf("decodes to %d bytes, not 16, 24 or 32", len(b))}
}

// IsKeyringDisabled reports whether err is Consul's answer to a keyring call
// on agents that run without gossip encryption.
func IsKeyringDisabled(err error) bool {
	var se *StatusError
	return asStatus(err, &se) && se.Code == http.StatusInternalServerError &&
		(contains(se.Body, "encryption not enabled") || contains(se.Body, "Keyring is empty"))
}

// ServiceUsage counts the services of one datacenter.
type ServiceUsage struct {
	// Services counts unique service names.
	Services int
	// ServiceInstances counts service instances.
	ServiceInstances int
	// ConnectServiceInstances counts mesh instances by kind
	// ("connect-proxy", "mesh-gateway", ...).
	ConnectServiceInstances map[string]int
	// BillableServiceInstances counts typical instances, without Consul's
	// own (relevant to Consul Enterprise).
	BillableServiceInstances int
	// Nodes counts nodes (newer Consul versions).
	Nodes int `json:",omitempty"`
	// The PartitionNamespace* maps are Consul Enterprise breakdowns.
	PartitionNamespaceServices                 map[string]map[string]int            `json:",omitempty"`
	PartitionNamespaceServiceInstances         map[string]map[string]int            `json:",omitempty"`
	PartitionNamespaceBillableServiceInstances map[string]map[string]int            `json:",omitempty"`
	PartitionNamespaceConnectServiceInstances  map[string]map[string]map[string]int `json:",omitempty"`
}

// Usage is service usage by datacenter.
type Usage struct {
	Usage map[string]ServiceUsage
}

// Usage returns service usage of the local datacenter, or of every known
// datacenter when global is true. The open-source Consul 1.14 server does
// not serve this endpoint: it answers a *StatusError matching ErrNotFound.
func (o *Operator) Usage(ctx context.Context, global bool, q *QueryOptions) (*Usage, *QueryMeta, error) {
	r := o.c.newRequest(http.MethodGet, "/v1/operator/usage")
	o.c.applyQuery(r, q)
	if global {
		r.params.Set("global", "true")
	}
	var out Usage
	meta, err := o.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}
