package logq

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
