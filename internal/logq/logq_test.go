package logq

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gate is a handler that blocks until opened, and keeps what it wrote.
type gate struct {
	open  chan struct{}
	mu    sync.Mutex
	msgs  []string
	times []time.Time
}

func (g *gate) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (g *gate) Handle(_ context.Context, r slog.Record) error {
	<-g.open
	g.mu.Lock()
	g.msgs = append(g.msgs, r.Message)
	g.times = append(g.times, r.Time)
	g.mu.Unlock()
	return nil
}
func (g *gate) WithAttrs([]slog.Attr) slog.Handler { return g }
func (g *gate) WithGroup(string) slog.Handler      { return g }

// A handler that blocks holds up no caller; lines are written in order,
// those beyond maxPending dropped, and Wait returns once all are written.
func TestQueueNeverWaitsForTheHandler(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	q := New(slog.New(g))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range maxPending + 5 {
			q.Warn("w")
		}
		q.Debug("not enabled")
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a line waited for the handler")
	}
	opened := time.Now()
	close(g.open)
	q.Wait()
	for _, at := range g.times {
		assert.True(t, at.Before(opened), "a line is stamped when written, not when logged")
	}
	assert.LessOrEqual(t, len(g.msgs), maxPending+1)
	assert.GreaterOrEqual(t, len(g.msgs), maxPending)
	assert.NotContains(t, g.msgs, "not enabled")

	var none *Queue
	none.Warn("dropped") // no logger: nothing, no panic
	none.Wait()
	assert.Nil(t, New(nil))
}

// recorder is a gate that also keeps each record.
type recorder struct {
	gate
	recs []slog.Record
}

func (r *recorder) Handle(ctx context.Context, rec slog.Record) error {
	_ = r.gate.Handle(ctx, rec)
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// While the handler blocks, retries fill the queue, and the line that
// matters comes last (a loss, after the retries that led to it): it must
// be written once the handler returns, and the lines dropped counted,
// although nothing is logged after it.
func TestQueueKeepsTheLastLineAndCountsTheDropped(t *testing.T) {
	h := &recorder{gate: gate{open: make(chan struct{})}}
	q := New(slog.New(h))
	const retries = 3 * maxPending
	for range retries {
		q.Warn("retrying")
	}
	q.Warn("lost")
	close(h.open)
	q.Wait()

	require.NotEmpty(t, h.msgs)
	assert.Equal(t, "lost", h.msgs[len(h.msgs)-1], "the last line was dropped")
	dropped := 0
	for _, r := range h.recs {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "dropped_before" {
				dropped += int(a.Value.Int64())
			}
			return true
		})
	}
	assert.Equal(t, retries+1-len(h.msgs), dropped, "the lines dropped are not all counted")
}

// A line keeps its caller, for a handler with AddSource.
func TestQueueKeepsTheSource(t *testing.T) {
	h := &recorder{gate: gate{open: make(chan struct{})}}
	close(h.open)
	q := New(slog.New(h))
	q.Warn("here")
	q.Wait()
	require.Len(t, h.recs, 1)
	src := h.recs[0].Source()
	require.NotNil(t, src, "no source")
	assert.Contains(t, src.File, "logq_test.go")
}
