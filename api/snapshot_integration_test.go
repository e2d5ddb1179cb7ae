package api_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// TestSnapshotIntegration saves a snapshot to a file and restores it. A
// restore replaces the whole state of the servers, so it runs on a private
// dev agent, not on the shared one.
func TestSnapshotIntegration(t *testing.T) {
	a := integration.NewAgent(t)
	c := a.Client(t)
	ctx := t.Context()
	kv := c.KV()
	key := "snapshot/" + aclName(t, "k")
	later := key + "-later"

	_, err := kv.Put(ctx, &api.KVPair{Key: key, Value: []byte("before")}, nil)
	require.NoError(t, err)
	// Random values of a few hundred KiB (gzip cannot shrink them) make
	// the archive larger than the buffers on the way, so the copy to the
	// file is a real stream.
	big := make([]byte, 400<<10)
	for i := range 4 {
		_, err := rand.Read(big)
		require.NoError(t, err)
		_, err = kv.Put(ctx, &api.KVPair{Key: key + "/big/" + string(rune('a'+i)), Value: big}, nil)
		require.NoError(t, err)
	}

	rc, meta, err := c.Snapshot().Save(ctx, nil)
	require.NoError(t, err)
	assert.NotZero(t, meta.LastIndex)
	assert.True(t, meta.KnownLeader)
	path := filepath.Join(t.TempDir(), "consul.snap")
	f, err := os.Create(path)
	require.NoError(t, err)
	n, err := io.Copy(f, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.NoError(t, f.Close())
	assert.Greater(t, n, int64(4*len(big)), "the archive holds the values")

	// A gzip stream.
	f, err = os.Open(path)
	require.NoError(t, err)
	magic := make([]byte, 2)
	_, err = io.ReadFull(f, magic)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x1f, 0x8b}, magic)
	require.NoError(t, f.Close())

	// Change the state, then restore the snapshot from the file.
	_, err = kv.Put(ctx, &api.KVPair{Key: key, Value: []byte("after")}, nil)
	require.NoError(t, err)
	_, err = kv.Put(ctx, &api.KVPair{Key: later, Value: []byte("x")}, nil)
	require.NoError(t, err)

	f, err = os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = c.Snapshot().Restore(ctx, bufio.NewReader(f), nil)
	require.NoError(t, err)

	p, _, err := kv.Get(ctx, key, &api.QueryOptions{Consistency: api.ConsistencyConsistent})
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, "before", string(p.Value))
	p, _, err = kv.Get(ctx, later, nil)
	require.NoError(t, err)
	assert.Nil(t, p, "written after the snapshot")
	p, _, err = kv.Get(ctx, key+"/big/d", nil)
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, big, p.Value)

	// A stream that is not a snapshot is refused and changes nothing.
	_, err = c.Snapshot().Restore(ctx, strings.NewReader("not a snapshot"), nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.GreaterOrEqual(t, se.Code, 400)
	p, _, err = kv.Get(ctx, key, nil)
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, "before", string(p.Value))
}

// TestSnapshotPipeIntegration passes a Save stream straight to Restore,
// without a file.
func TestSnapshotPipeIntegration(t *testing.T) {
	a := integration.NewAgent(t)
	c := a.Client(t)
	ctx := t.Context()
	key := "snapshot/" + aclName(t, "k")
	_, err := c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte("v1")}, nil)
	require.NoError(t, err)

	rc, _, err := c.Snapshot().Save(ctx, nil)
	require.NoError(t, err)
	// Read the whole archive through a pipe: Save hands out the network
	// stream, Restore reads from the pipe while the copy runs.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(pw, rc)
		_ = rc.Close()
		_ = pw.CloseWithError(err)
		done <- err
	}()
	_, err = c.KV().Put(ctx, &api.KVPair{Key: key, Value: []byte("v2")}, nil)
	require.NoError(t, err)
	_, err = c.Snapshot().Restore(context.WithoutCancel(ctx), pr, nil)
	require.NoError(t, err)
	require.NoError(t, <-done)

	p, _, err := c.KV().Get(ctx, key, nil)
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, "v1", string(p.Value))
}
