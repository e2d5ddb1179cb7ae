package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
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
// passed on directly). Restore does not close snap. Everything written since
// the snapshot was taken is lost. A damaged archive is a *StatusError and
// leaves the state unchanged.
//
// An error returned by snap itself is returned wrapped (errors.Is finds
// it) and is not retryable: repeating Restore needs a fresh reader. When
// ctx ends, Restore returns once a Read of snap in progress has returned
// (net/http waits for it): a snap that can stall for long (a pipe, a
// download) should end its reads when ctx ends, as a Save stream opened
// with the same ctx does, or be closed by the caller.
func (s *Snapshot) Restore(ctx context.Context, snap io.Reader, w *WriteOptions) (*WriteMeta, error) {
	if snap == nil {
		return nil, &ValidationError{Field: "snapshot", Reason: "nil reader"}
	}
	r := s.c.newRequest(http.MethodPut, "/v1/snapshot")
	s.c.applyWrite(r, w)
	// net/http closes a request body that is an io.Closer; snap belongs to
	// the caller, so only its Read is handed on (sent in chunks).
	body := &sourceReader{src: snap}
	r.body = body
	r.header.Set("Content-Type", "application/octet-stream")
	meta, err := s.c.writeRequest(ctx, r, nil)
	if err != nil && ctx.Err() == nil {
		if serr := body.failure(); serr != nil {
			return nil, &sourceError{err: serr}
		}
	}
	return meta, err
}

// sourceError is the failure of a reader the caller handed to the client
// (the snapshot of Snapshot.Restore): the request was abandoned because its
// body could not be read. It is not retryable, whatever err is.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "consul: reading the snapshot: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// sourceReader passes src's Read on and records its failure. It has no
// Close, so that net/http does not close src.
type sourceReader struct {
	src io.Reader
	mu  sync.Mutex // net/http may still read after the request returned
	err error
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}
	return n, err
}

func (r *sourceReader) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
