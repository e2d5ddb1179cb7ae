package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Config entry kinds that this package decodes into typed structs. Entries
// of any other kind decode into *RawConfigEntry.
const (
	ServiceDefaults    = "service-defaults"
	ProxyDefaults      = "proxy-defaults"
	ServiceRouter      = "service-router"
	ServiceSplitter    = "service-splitter"
	ServiceResolver    = "service-resolver"
	IngressGateway     = "ingress-gateway"
	TerminatingGateway = "terminating-gateway"
	ServiceIntentions  = "service-intentions"
	MeshConfig         = "mesh"
	ExportedServices   = "exported-services"
)

// Fixed names of singleton config entries.
const (
	// ProxyConfigGlobal is the only name a proxy-defaults entry may have.
	ProxyConfigGlobal = "global"
	// MeshConfigMesh is the name of the (only) mesh entry.
	MeshConfigMesh = "mesh"
)

// ConfigEntry is a centralized configuration entry of one kind. The typed
// structs of this package (*ServiceConfigEntry, *ProxyConfigEntry, ...)
// implement it, and *RawConfigEntry carries an entry of any kind.
type ConfigEntry interface {
	// GetKind returns the entry's kind; typed entries return their own
	// kind whatever their Kind field says.
	GetKind() string
	GetName() string
	GetNamespace() string
	GetPartition() string
	GetMeta() map[string]string
	GetCreateIndex() uint64
	GetModifyIndex() uint64
}

// ConfigEntries is the handle on the /v1/config endpoints.
type ConfigEntries struct{ c *Client }

// ConfigEntries returns the handle on the config entry endpoints.
func (c *Client) ConfigEntries() *ConfigEntries { return &ConfigEntries{c} }

// newConfigEntry returns an empty entry to decode a kind into: a typed
// struct for the kinds this package knows, a *RawConfigEntry otherwise.
func newConfigEntry(kind string) ConfigEntry {
	switch kind {
	case ServiceDefaults:
		return &ServiceConfigEntry{}
	case ProxyDefaults:
		return &ProxyConfigEntry{}
	case ServiceRouter:
		return &ServiceRouterConfigEntry{}
	case ServiceSplitter:
		return &ServiceSplitterConfigEntry{}
	case ServiceResolver:
		return &ServiceResolverConfigEntry{}
	case IngressGateway:
		return &IngressGatewayConfigEntry{}
	case TerminatingGateway:
		return &TerminatingGatewayConfigEntry{}
	case ServiceIntentions:
		return &ServiceIntentionsConfigEntry{}
	case MeshConfig:
		return &MeshConfigEntry{}
	case ExportedServices:
		return &ExportedServicesConfigEntry{}
	default:
		return &RawConfigEntry{}
	}
}

// DecodeConfigEntry decodes one config entry as Consul encodes it: its
// "Kind" field selects the typed struct, and an entry of a kind this
// package does not know becomes a *RawConfigEntry. A missing Kind is an
// error.
func DecodeConfigEntry(data []byte) (ConfigEntry, error) {
	var head struct{ Kind string }
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("consul: decoding config entry: %w", err)
	}
	if head.Kind == "" {
		return nil, fmt.Errorf("consul: decoding config entry: no Kind")
	}
	e := newConfigEntry(head.Kind)
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("consul: decoding %s config entry: %w", head.Kind, err)
	}
	return e, nil
}

// encodeConfigEntry encodes e with its Kind set from GetKind, so that a
// typed entry whose Kind field was left empty is still accepted.
func encodeConfigEntry(e ConfigEntry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("consul: encoding config entry: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("consul: encoding config entry: %w", err)
	}
	kind, _ := json.Marshal(e.GetKind())
	fields["Kind"] = kind
	return json.Marshal(fields)
}

func validateConfigEntry(e ConfigEntry) error {
	if e == nil {
		return &ValidationError{Field: "entry", Reason: "nil"}
	}
	if err := requireSegment("entry Kind", e.GetKind()); err != nil {
		return err
	}
	return requireSegment("entry Name", e.GetName())
}

func configEntryPath(kind, name string) string {
	return "/v1/config/" + escapeKey(kind) + "/" + escapeKey(name)
}

// Get reads the entry of a kind and name (for the mesh entry, the name is
// MeshConfigMesh). A missing entry is (nil, meta, nil): Consul answers 404
// "Config entry not found". A kind Consul does not know is a *StatusError.
func (ce *ConfigEntries) Get(ctx context.Context, kind, name string, q *QueryOptions) (ConfigEntry, *QueryMeta, error) {
	if err := requireSegment("kind", kind); err != nil {
		return nil, nil, err
	}
	if err := requireSegment("name", name); err != nil {
		return nil, nil, err
	}
	r := ce.c.newRequest(http.MethodGet, configEntryPath(kind, name))
	ce.c.applyQuery(r, q)
	resp, d, err := ce.c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	var raw json.RawMessage
	if err := decode(resp, &raw); err != nil {
		return nil, meta, err
	}
	e, err := DecodeConfigEntry(raw)
	return e, meta, err
}

// List reads every entry of a kind. A kind without entries gives an empty
// list; a kind Consul does not know is a *StatusError (500 "invalid config
// entry kind" in Consul 1.14).
func (ce *ConfigEntries) List(ctx context.Context, kind string, q *QueryOptions) ([]ConfigEntry, *QueryMeta, error) {
	if err := requireSegment("kind", kind); err != nil {
		return nil, nil, err
	}
	var raws []json.RawMessage
	meta, err := ce.c.query(ctx, "/v1/config/"+escapeKey(kind), q, &raws)
	if err != nil {
		return nil, meta, err
	}
	entries := make([]ConfigEntry, 0, len(raws))
	for _, raw := range raws {
		e, err := DecodeConfigEntry(raw)
		if err != nil {
			return nil, meta, err
		}
		entries = append(entries, e)
	}
	return entries, meta, nil
}

// Set creates or replaces an entry. It reports what Consul answered
// (true when the entry was written). An entry that Consul rejects (an
// invalid field, a protocol that does not allow a router, ...) is a
// *StatusError.
func (ce *ConfigEntries) Set(ctx context.Context, entry ConfigEntry, w *WriteOptions) (bool, *WriteMeta, error) {
	return ce.set(ctx, entry, nil, w)
}

// CAS writes entry only if the stored entry's ModifyIndex equals index
// (0: only if no such entry exists). It reports whether the write
// happened; a lost race is (false, meta, nil). Consul (1.14) skips a write
// that would leave the stored entry unchanged and answers true for it
// whatever the index.
func (ce *ConfigEntries) CAS(ctx context.Context, entry ConfigEntry, index uint64, w *WriteOptions) (bool, *WriteMeta, error) {
	return ce.set(ctx, entry, &index, w)
}

func (ce *ConfigEntries) set(ctx context.Context, entry ConfigEntry, cas *uint64, w *WriteOptions) (bool, *WriteMeta, error) {
	if err := validateConfigEntry(entry); err != nil {
		return false, nil, err
	}
	body, err := encodeConfigEntry(entry)
	if err != nil {
		return false, nil, err
	}
	r := ce.c.newRequest(http.MethodPut, "/v1/config")
	ce.c.applyWrite(r, w)
	if cas != nil {
		r.params.Set("cas", strconv.FormatUint(*cas, 10))
	}
	if err := r.jsonBody(json.RawMessage(body)); err != nil {
		return false, nil, err
	}
	var ok bool
	meta, err := ce.c.writeRequest(ctx, r, &ok)
	return ok, meta, err
}

// Delete removes the entry of a kind and name; a missing entry is not an
// error.
func (ce *ConfigEntries) Delete(ctx context.Context, kind, name string, w *WriteOptions) (*WriteMeta, error) {
	_, meta, err := ce.delete(ctx, kind, name, nil, w)
	return meta, err
}

// DeleteCAS removes the entry only if its ModifyIndex equals index. It
// reports whether the entry was removed; a lost race is (false, meta,
// nil).
func (ce *ConfigEntries) DeleteCAS(ctx context.Context, kind, name string, index uint64, w *WriteOptions) (bool, *WriteMeta, error) {
	return ce.delete(ctx, kind, name, &index, w)
}

func (ce *ConfigEntries) delete(ctx context.Context, kind, name string, cas *uint64, w *WriteOptions) (bool, *WriteMeta, error) {
	if err := requireSegment("kind", kind); err != nil {
		return false, nil, err
	}
	if err := requireSegment("name", name); err != nil {
		return false, nil, err
	}
	r := ce.c.newRequest(http.MethodDelete, configEntryPath(kind, name))
	ce.c.applyWrite(r, w)
	if cas == nil {
		// Consul answers {} to a plain delete.
		meta, err := ce.c.writeRequest(ctx, r, nil)
		return err == nil, meta, err
	}
	r.params.Set("cas", strconv.FormatUint(*cas, 10))
	var ok bool
	meta, err := ce.c.writeRequest(ctx, r, &ok)
	return ok, meta, err
}

// RawConfigEntry is a config entry of any kind, kept as the JSON object
// Consul sent. DecodeConfigEntry returns one for kinds this package has no
// struct for; it can also be built by hand to write such a kind.
type RawConfigEntry struct {
	Kind        string
	Name        string
	Namespace   string
	Partition   string
	Meta        map[string]string
	CreateIndex uint64
	ModifyIndex uint64
	// Fields holds every top-level field of the entry, those above
	// included, as raw JSON. When the entry is encoded, the fields above
	// replace their counterparts in Fields where they are set (Kind always).
	Fields map[string]json.RawMessage
}

// GetKind returns e.Kind.
func (e *RawConfigEntry) GetKind() string { return e.Kind }

// GetName returns e.Name, or MeshConfigMesh for a mesh entry without one
// (Consul's mesh entry has no name).
func (e *RawConfigEntry) GetName() string {
	if e.Name == "" && e.Kind == MeshConfig {
		return MeshConfigMesh
	}
	return e.Name
}

// GetNamespace returns e.Namespace.
func (e *RawConfigEntry) GetNamespace() string { return e.Namespace }

// GetPartition returns e.Partition.
func (e *RawConfigEntry) GetPartition() string { return e.Partition }

// GetMeta returns e.Meta.
func (e *RawConfigEntry) GetMeta() map[string]string { return e.Meta }

// GetCreateIndex returns e.CreateIndex.
func (e *RawConfigEntry) GetCreateIndex() uint64 { return e.CreateIndex }

// GetModifyIndex returns e.ModifyIndex.
func (e *RawConfigEntry) GetModifyIndex() uint64 { return e.ModifyIndex }

// UnmarshalJSON keeps every field in Fields and copies the common ones into
// the struct.
func (e *RawConfigEntry) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	var common struct {
		Kind        string
		Name        string
		Namespace   string
		Partition   string
		Meta        map[string]string
		CreateIndex uint64
		ModifyIndex uint64
	}
	if err := json.Unmarshal(b, &common); err != nil {
		return err
	}
	*e = RawConfigEntry{
		Kind: common.Kind, Name: common.Name, Namespace: common.Namespace,
		Partition: common.Partition, Meta: common.Meta,
		CreateIndex: common.CreateIndex, ModifyIndex: common.ModifyIndex,
		Fields: fields,
	}
	return nil
}

// MarshalJSON writes Fields with Kind, and Name, Namespace, Partition and
// Meta where they are set, on top. The mesh entry has no Name field in
// Consul, so a raw mesh entry is written without one.
func (e RawConfigEntry) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(e.Fields)+5)
	for k, v := range e.Fields {
		out[k] = v
	}
	out["Kind"] = e.Kind
	if e.Name != "" && e.Kind != MeshConfig {
		out["Name"] = e.Name
	}
	if e.Kind == MeshConfig {
		delete(out, "Name")
	}
	if e.Namespace != "" {
		out["Namespace"] = e.Namespace
	}
	if e.Partition != "" {
		out["Partition"] = e.Partition
	}
	if e.Meta != nil {
		out["Meta"] = e.Meta
	}
	return json.Marshal(out)
}
