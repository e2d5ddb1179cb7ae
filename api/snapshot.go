package api

import (
	"context"
	"io"
	"net/http"
)

// Snapshot is the handle on the /v1/snapshot endpoint: save and restore the
// servers' state (KV, catalog, sessions, ACLs, prepared queries, ...) as a
// gzipped tar archive. Both directions stream; a snapshot is never held in
// memory. Both need a management token when ACLs are on.
type Snapshot struct{ c *Client }

// Snapshot returns the handle on the snapshot endpoint.
func (c *Client) Snapshot() *Snapshot { return &Snapshot{c} }

// Save starts a snapshot and returns its archive as a stream, read from the
// network as the caller reads it. The caller must close it. ctx covers the
// whole transfer: cancelling it ends reading with an error. The snapshot
// comes from the leader, or from the answering server with
// ConsistencyStale.
func (s *Snapshot) Save(ctx context.Context, q *QueryOptions) (io.ReadCloser, *QueryMeta, error) {
	r := s.c.newRequest(http.MethodGet, "/v1/snapshot")
	s.c.applyQuery(r, q)
	resp, d, err := s.c.do(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	return resp.Body, meta, nil
}

// Restore replaces the servers' whole state with the snapshot archive read
// from snap, which is streamed to Consul as it is read (a Save stream can be
// passed on directly). Restore does not close snap. Everything written since the snapshot was taken is
// lost. A damaged archive is a *StatusError and leaves the state unchanged.
func (s *Snapshot) Restore(ctx context.Context, snap io.Reader, w *WriteOptions) (*WriteMeta, error) {
	if snap == nil {
		return nil, &ValidationError{Field: "snapshot", Reason: "nil reader"}
	}
	r := s.c.newRequest(http.MethodPut, "/v1/snapshot")
	s.c.applyWrite(r, w)
	// net/http closes a request body that is an io.Closer; snap belongs to
	// the caller, so only its Read is handed on (sent in chunks).
	r.body = struct{ io.Reader }{snap}
	r.header.Set("Content-Type", "application/octet-stream")
	return s.c.writeRequest(ctx, r, nil)
}
