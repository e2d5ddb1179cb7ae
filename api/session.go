package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Session behaviors: what happens to the keys a session holds when it is
// invalidated.
const (
	SessionBehaviorRelease = "release"
	SessionBehaviorDelete  = "delete"
)

// Session TTL and lock-delay bounds that Consul enforces.
const (
	SessionTTLMin       = 10 * time.Second
	SessionTTLMax       = 24 * time.Hour
	SessionLockDelayMax = 60 * time.Second
)

// ServiceCheck names a service check a session is tied to.
type ServiceCheck struct {
	ID        string
	Namespace string `json:",omitempty"`
}

// SessionEntry is a Consul session.
type SessionEntry struct {
	ID   string
	Name string
	Node string
	// LockDelay is the time during which a key released by this session's
	// invalidation cannot be acquired again. Zero means no delay: it is
	// sent as "0s", not left to Consul's default of 15s.
	LockDelay time.Duration
	// Behavior is SessionBehaviorRelease (the default) or
	// SessionBehaviorDelete.
	Behavior string
	// TTL is the session's time to live; zero means none.
	TTL time.Duration
	// NodeChecks are the node health checks the session is tied to. nil
	// lets Consul use its default (the serfHealth check); an empty, non-nil
	// slice ties the session to no node check.
	NodeChecks []string
	// ServiceChecks are service health checks the session is tied to.
	ServiceChecks []ServiceCheck
	Namespace     string
	Partition     string
	CreateIndex   uint64
	ModifyIndex   uint64
}

type sessionWire struct {
	ID            string         `json:",omitempty"`
	Name          string         `json:",omitempty"`
	Node          string         `json:",omitempty"`
	LockDelay     any            `json:",omitempty"`
	Behavior      string         `json:",omitempty"`
	TTL           string         `json:",omitempty"`
	NodeChecks    []string       `json:",omitzero"`
	ServiceChecks []ServiceCheck `json:",omitempty"`
	Namespace     string         `json:",omitempty"`
	Partition     string         `json:",omitempty"`
	CreateIndex   uint64         `json:",omitempty"`
	ModifyIndex   uint64         `json:",omitempty"`
}

// MarshalJSON writes LockDelay and TTL as duration strings, which Consul
// parses exactly (a bare number below 1000 would be read as seconds).
func (s SessionEntry) MarshalJSON() ([]byte, error) {
	w := sessionWire{
		ID: s.ID, Name: s.Name, Node: s.Node, Behavior: s.Behavior,
		NodeChecks: s.NodeChecks, ServiceChecks: s.ServiceChecks,
		Namespace: s.Namespace, Partition: s.Partition,
		CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
		LockDelay: s.LockDelay.String(),
	}
	if s.TTL > 0 {
		w.TTL = s.TTL.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads Consul's form: LockDelay in nanoseconds, TTL a
// duration string.
func (s *SessionEntry) UnmarshalJSON(b []byte) error {
	var w struct {
		sessionWire
		LockDelay json.RawMessage
		TTL       string
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = SessionEntry{
		ID: w.ID, Name: w.Name, Node: w.Node, Behavior: w.Behavior,
		NodeChecks: w.NodeChecks, ServiceChecks: w.ServiceChecks,
		Namespace: w.Namespace, Partition: w.Partition,
		CreateIndex: w.CreateIndex, ModifyIndex: w.ModifyIndex,
	}
	if len(w.LockDelay) > 0 && string(w.LockDelay) != "null" {
		var ns int64
		if err := json.Unmarshal(w.LockDelay, &ns); err == nil {
			s.LockDelay = time.Duration(ns)
		} else {
			var str string
			if err := json.Unmarshal(w.LockDelay, &str); err != nil {
				return fmt.Errorf("consul: session LockDelay: %w", err)
			}
			if s.LockDelay, err = time.ParseDuration(str); err != nil {
				return fmt.Errorf("consul: session LockDelay: %w", err)
			}
		}
	}
	if w.TTL != "" {
		d, err := time.ParseDuration(w.TTL)
		if err != nil {
			return fmt.Errorf("consul: session TTL: %w", err)
		}
		s.TTL = d
	}
	return nil
}

// Validate checks the fields of a session to create.
func (s *SessionEntry) Validate() error {
	if s.TTL != 0 && (s.TTL < SessionTTLMin || s.TTL > SessionTTLMax) {
		return &ValidationError{Field: "SessionEntry.TTL", Reason: fmt.Sprintf("%s is outside 10s..24h", s.TTL)}
	}
	if s.LockDelay < 0 || s.LockDelay > SessionLockDelayMax {
		return &ValidationError{Field: "SessionEntry.LockDelay", Reason: fmt.Sprintf("%s is outside 0..60s", s.LockDelay)}
	}
	if s.LockDelay > 0 && s.LockDelay < time.Microsecond {
		// Consul reads a lock delay below 1000ns as a number of seconds.
		return &ValidationError{Field: "SessionEntry.LockDelay", Reason: fmt.Sprintf("%s is below 1µs, which Consul would read as seconds", s.LockDelay)}
	}
	switch s.Behavior {
	case "", SessionBehaviorRelease, SessionBehaviorDelete:
	default:
		return &ValidationError{Field: "SessionEntry.Behavior", Reason: fmt.Sprintf("%q is neither release nor delete", s.Behavior)}
	}
	return nil
}

// SessionHandle is the handle on the /v1/session endpoints.
type SessionHandle struct{ c *Client }

// Session returns the handle on the session endpoints.
func (c *Client) Session() *SessionHandle { return &SessionHandle{c} }

// Create creates a session and returns its ID. A nil entry creates a
// session with Consul's defaults.
func (s *SessionHandle) Create(ctx context.Context, se *SessionEntry, w *WriteOptions) (string, *WriteMeta, error) {
	if se == nil {
		se = &SessionEntry{LockDelay: 15 * time.Second}
	}
	if err := se.Validate(); err != nil {
		return "", nil, err
	}
	var out struct{ ID string }
	meta, err := s.c.write(ctx, http.MethodPut, "/v1/session/create", w, se, &out)
	return out.ID, meta, err
}

// Destroy invalidates a session; destroying an unknown session is not an
// error.
func (s *SessionHandle) Destroy(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireSegment("session ID", id); err != nil {
		return nil, err
	}
	return s.c.write(ctx, http.MethodPut, "/v1/session/destroy/"+escapeKey(id), w, nil, nil)
}

// Renew resets a session's TTL and returns the session as Consul now holds
// it (Consul may answer with a longer TTL than asked). An unknown or
// expired session is a *StatusError matching ErrNotFound. A 200 whose body
// is empty (or null), which Consul never sends but a broken proxy or
// connection leaves, is a retryable error wrapping io.ErrUnexpectedEOF:
// the renew may well have been applied, so it says nothing of the session.
func (s *SessionHandle) Renew(ctx context.Context, id string, w *WriteOptions) (*SessionEntry, *WriteMeta, error) {
	if err := requireSegment("session ID", id); err != nil {
		return nil, nil, err
	}
	var answer *[]*SessionEntry
	meta, err := s.c.write(ctx, http.MethodPut, "/v1/session/renew/"+escapeKey(id), w, nil, &answer)
	if err != nil {
		return nil, meta, err
	}
	if answer == nil {
		return nil, meta, fmt.Errorf("consul: %s /v1/session/renew/%s: empty answer: %w", http.MethodPut, id, io.ErrUnexpectedEOF)
	}
	out := *answer
	if len(out) == 0 {
		return nil, meta, &StatusError{Method: http.MethodPut, Path: "/v1/session/renew/" + id, Code: http.StatusNotFound, Body: "session not found"}
	}
	return out[0], meta, nil
}

// Info returns a session, or nil when it does not exist.
func (s *SessionHandle) Info(ctx context.Context, id string, q *QueryOptions) (*SessionEntry, *QueryMeta, error) {
	if err := requireSegment("session ID", id); err != nil {
		return nil, nil, err
	}
	var out []*SessionEntry
	meta, err := s.c.query(ctx, "/v1/session/info/"+escapeKey(id), q, &out)
	if err != nil || len(out) == 0 {
		return nil, meta, err
	}
	return out[0], meta, nil
}

// List returns every session of the datacenter.
func (s *SessionHandle) List(ctx context.Context, q *QueryOptions) ([]*SessionEntry, *QueryMeta, error) {
	var out []*SessionEntry
	meta, err := s.c.query(ctx, "/v1/session/list", q, &out)
	return out, meta, err
}

// Node returns the sessions of one node.
func (s *SessionHandle) Node(ctx context.Context, node string, q *QueryOptions) ([]*SessionEntry, *QueryMeta, error) {
	if err := requireID("node", node); err != nil {
		return nil, nil, err
	}
	var out []*SessionEntry
	meta, err := s.c.query(ctx, "/v1/session/node/"+escapeKey(node), q, &out)
	return out, meta, err
}
