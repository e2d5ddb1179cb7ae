package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// snapshotSize is larger than any buffer on the way (net/http's, bufio's,
// the kernel's socket buffers), so that streaming is what is tested.
const snapshotSize = 16 << 20

// snapshotSource generates n deterministic bytes without holding them.
type snapshotSource struct {
	n, off int64
}

func (s *snapshotSource) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	if rem := s.n - s.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	for i := range p {
		p[i] = byte((s.off + int64(i)) * 7)
	}
	s.off += int64(len(p))
	return len(p), nil
}

func snapshotDigest(t *testing.T, n int64) []byte {
	t.Helper()
	h := sha256.New()
	_, err := io.Copy(h, &snapshotSource{n: n})
	require.NoError(t, err)
	return h.Sum(nil)
}

func TestSnapshotSaveStreams(t *testing.T) {
	firstRead := make(chan struct{})
	type seen struct {
		method, path, query, token string
	}
	got := make(chan seen, 1)
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Consul-Token")}
		w.Header().Set("X-Consul-Index", "42")
		w.Header().Set("X-Consul-KnownLeader", "true")
		w.Header().Set("Content-Type", "application/x-gzip")
		src := &snapshotSource{n: snapshotSize}
		// Send the first part, then wait until the client has read from
		// the stream: a Save that buffered the whole body would never
		// return, and the test would time out.
		_, _ = io.CopyN(w, src, 1<<20)
		w.(http.Flusher).Flush()
		select {
		case <-firstRead:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			t.Error("the client did not read before the whole snapshot was sent")
			return
		}
		_, _ = io.Copy(w, src)
	}, withToken("mgmt"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, meta, err := c.Snapshot().Save(ctx, &QueryOptions{Consistency: ConsistencyStale})
	require.NoError(t, err)
	defer rc.Close()
	assert.Equal(t, uint64(42), meta.LastIndex)
	assert.True(t, meta.KnownLeader)
	assert.Equal(t, seen{"GET", "/v1/snapshot", "stale", "mgmt"}, <-got)

	h := sha256.New()
	first := make([]byte, 1)
	_, err = io.ReadFull(rc, first)
	require.NoError(t, err)
	h.Write(first)
	close(firstRead)
	n, err := io.Copy(h, rc)
	require.NoError(t, err)
	assert.Equal(t, int64(snapshotSize), n+1)
	assert.Equal(t, snapshotDigest(t, snapshotSize), h.Sum(nil))
	require.NoError(t, rc.Close())
}

func TestSnapshotSaveCancelStopsTheStream(t *testing.T) {
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(w, &snapshotSource{n: 1 << 20}, 1<<20)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := c.Snapshot().Save(ctx, nil)
	require.NoError(t, err)
	defer rc.Close()
	_, err = io.ReadFull(rc, make([]byte, 1<<20))
	require.NoError(t, err)
	cancel()
	_, err = io.Copy(io.Discard, rc)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSnapshotSaveError(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Status: 403, Body: "Permission denied: token with AccessorID 'x' lacks permission 'acl:write'"})
	rc, meta, err := c.Snapshot().Save(context.Background(), nil)
	assert.Nil(t, rc)
	assert.Nil(t, meta)
	assert.ErrorIs(t, err, ErrPermissionDenied)
	assert.Equal(t, "GET", f.last(t).Method)
}

// snapshotGate is a reader that stops after the first MiB until the
// server has received data: a Restore that read the whole input before
// sending would deadlock.
type snapshotGate struct {
	src      *snapshotSource
	received <-chan struct{}
	closed   bool
}

func (g *snapshotGate) Read(p []byte) (int, error) {
	if g.src.off >= 1<<20 {
		select {
		case <-g.received:
		case <-time.After(10 * time.Second):
			return 0, errors.New("the server received nothing before the whole snapshot was read")
		}
	}
	return g.src.Read(p)
}

func (g *snapshotGate) Close() error { g.closed = true; return nil }

func TestSnapshotRestoreStreams(t *testing.T) {
	received := make(chan struct{})
	type seen struct {
		method, path, token, ctype string
		n                          int64
		sum                        []byte
	}
	got := make(chan seen, 1)
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		first := make([]byte, 1)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			t.Errorf("reading the first byte: %v", err)
			return
		}
		h.Write(first)
		close(received)
		n, err := io.Copy(h, r.Body)
		if err != nil {
			t.Errorf("reading the body: %v", err)
		}
		got <- seen{r.Method, r.URL.Path, r.Header.Get("X-Consul-Token"), r.Header.Get("Content-Type"), n + 1, h.Sum(nil)}
	})

	gate := &snapshotGate{src: &snapshotSource{n: snapshotSize}, received: received}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Snapshot().Restore(ctx, gate, &WriteOptions{Token: "mgmt"})
	require.NoError(t, err)
	s := <-got
	assert.Equal(t, "PUT", s.method)
	assert.Equal(t, "/v1/snapshot", s.path)
	assert.Equal(t, "mgmt", s.token)
	assert.Equal(t, "application/octet-stream", s.ctype)
	assert.Equal(t, int64(snapshotSize), s.n)
	assert.Equal(t, snapshotDigest(t, snapshotSize), s.sum)
	assert.False(t, gate.closed, "Restore closed the caller's reader")
}

func TestSnapshotRestoreErrors(t *testing.T) {
	c, f := newTokenFake(t, fakeReply{Status: 500, Body: "failed to read snapshot file: gzip: invalid header"})
	_, err := c.Snapshot().Restore(context.Background(), bytes.NewReader([]byte("not a snapshot")), nil)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 500, se.Code)
	assert.Equal(t, []byte("not a snapshot"), f.last(t).Body)

	_, err = c.Snapshot().Restore(context.Background(), nil, nil)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "snapshot", ve.Field)
}

// brokenSource yields n bytes, then fails with err.
type brokenSource struct {
	n   int
	err error
}

func (s *brokenSource) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, s.err
	}
	k := min(len(p), s.n)
	clear(p[:k])
	s.n -= k
	return k, nil
}

// TestSnapshotRestoreSourceError: a failure of the caller's reader is the
// caller's error, not a network failure that repeating Restore (with the
// same, half-read reader) could mend.
func TestSnapshotRestoreSourceError(t *testing.T) {
	c, _ := newFakeHandler(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})
	broken := errors.New("disk read error")
	_, err := c.Snapshot().Restore(t.Context(), &brokenSource{n: 100 << 10, err: broken}, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, broken)
	assert.False(t, IsRetryable(err), "the caller's reader failed: %v", err)

	// Even when what the reader reports is itself a network error (a Save
	// stream from another cluster, cut off).
	netErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	_, err = c.Snapshot().Restore(t.Context(), &brokenSource{n: 10, err: netErr}, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	assert.False(t, IsRetryable(err), "the caller's reader failed: %v", err)
}
