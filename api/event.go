package api

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Event is the handle on the /v1/event endpoints: user events spread by
// gossip.
type Event struct{ c *Client }

// Event returns the handle on the user event endpoints.
func (c *Client) Event() *Event { return &Event{c} }

// UserEvent is a user event. Name and Payload are set by the sender, with
// optional filters that select the agents that act on it; ID, Version and
// LTime are set by Consul.
type UserEvent struct {
	ID   string
	Name string
	// Payload is the event's opaque body. Events are small: Consul refuses
	// (500) an event whose name and payload exceed serf's user event size
	// limit, 512 bytes by default.
	Payload []byte
	// NodeFilter, ServiceFilter and TagFilter are regular expressions on
	// node names, service names and service tags. TagFilter needs
	// ServiceFilter.
	NodeFilter    string
	ServiceFilter string
	TagFilter     string
	Version       int
	// LTime is the Lamport time at which the agent received the event;
	// it is 0 in the answer to Fire.
	LTime uint64
}

// Fire sends a user event through the datacenter (w.Datacenter: another
// one). It returns the event as Consul accepted it, with its ID. Bad
// filters and a missing name fail before any request.
func (e *Event) Fire(ctx context.Context, ev *UserEvent, w *WriteOptions) (*UserEvent, *WriteMeta, error) {
	if ev == nil {
		return nil, nil, &ValidationError{Field: "event", Reason: "nil"}
	}
	if err := requireID("event Name", ev.Name); err != nil {
		return nil, nil, err
	}
	if ev.TagFilter != "" && ev.ServiceFilter == "" {
		return nil, nil, &ValidationError{Field: "TagFilter", Reason: "needs ServiceFilter"}
	}
	for _, f := range []struct{ field, re string }{
		{"NodeFilter", ev.NodeFilter}, {"ServiceFilter", ev.ServiceFilter}, {"TagFilter", ev.TagFilter},
	} {
		if f.re == "" {
			continue
		}
		if _, err := regexp.Compile(f.re); err != nil {
			return nil, nil, &ValidationError{Field: f.field, Reason: err.Error()}
		}
	}
	r := e.c.newRequest(http.MethodPut, "/v1/event/fire/"+escapeKey(ev.Name))
	e.c.applyWrite(r, w)
	if ev.NodeFilter != "" {
		r.params.Set("node", ev.NodeFilter)
	}
	if ev.ServiceFilter != "" {
		r.params.Set("service", ev.ServiceFilter)
	}
	if ev.TagFilter != "" {
		r.params.Set("tag", ev.TagFilter)
	}
	if len(ev.Payload) > 0 {
		r.body = bytes.NewReader(ev.Payload)
		r.header.Set("Content-Type", "application/octet-stream")
	}
	var out UserEvent
	meta, err := e.c.writeRequest(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// List returns the recent user events the agent has seen (a ring of the
// last 256), oldest first, only those named name when name is not empty.
// It supports blocking queries: Consul's index here is derived from the
// ID of the last event (see EventIDToIndex), so it changes with every new
// event but does not grow.
func (e *Event) List(ctx context.Context, name string, q *QueryOptions) ([]*UserEvent, *QueryMeta, error) {
	r := e.c.newRequest(http.MethodGet, "/v1/event/list")
	e.c.applyQuery(r, q)
	if name != "" {
		if err := requireID("event name", name); err != nil {
			return nil, nil, err
		}
		r.params.Set("name", name)
	}
	var out []*UserEvent
	meta, err := e.c.queryRequest(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// EventIDToIndex converts an event ID (a UUID) into the index Consul's
// event list reports when that event is the last one: the XOR of the
// UUID's two 64-bit halves. It returns 0 for a malformed ID.
func EventIDToIndex(id string) uint64 {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return 0
	}
	hex := strings.ReplaceAll(id, "-", "")
	if len(hex) != 32 {
		return 0
	}
	lo, err1 := strconv.ParseUint(hex[:16], 16, 64)
	hi, err2 := strconv.ParseUint(hex[16:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return lo ^ hi
}
