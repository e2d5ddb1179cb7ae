// Package logq writes the log lines of a goroutine that others wait on (a
// holder's watcher, a session's renew loop) from a goroutine of their own,
// so that a handler that blocks (one writing to a stderr whose reader has
// stalled, a log driver that blocks) cannot hold up what must not wait:
// the watch of a held key, the renews of a session, and the Unlock,
// Release or Close that waits for them.
package logq

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// maxPending bounds the lines waiting to be written: when a line comes
// while that many wait, the oldest waiting is dropped, and the next one
// written says how many were. The newest lines are kept: most lines are
// those of retries, which repeat, and the last one (a loss, after the
// retries that led to it) says how things stand.
const maxPending = 8

// Queue writes lines to a logger in order, one at a time, from a goroutine
// that runs only while there are lines to write: it ends once the last of
// them is written, so nothing is left behind once a handler that blocked
// returns. A nil Queue (no logger) drops every line.
type Queue struct {
	logger *slog.Logger

	mu      sync.Mutex
	pending []line
	writing bool // the writer goroutine runs
	dropped int  // lines dropped since the last one written
	wg      sync.WaitGroup
}

// line is a record made when it was queued: its time is when it was
// logged, not when a stalled handler got to it.
type line = slog.Record

// New returns a Queue that writes to l, nil if l is nil.
func New(l *slog.Logger) *Queue {
	if l == nil {
		return nil
	}
	return &Queue{logger: l}
}

// Log queues a line at level, if the logger is enabled for it; it never
// waits for the handler to write it.
func (q *Queue) Log(level slog.Level, msg string, args ...any) { q.log(level, msg, args) }

// Debug queues a line at debug level.
func (q *Queue) Debug(msg string, args ...any) { q.log(slog.LevelDebug, msg, args) }

// Info queues a line at info level.
func (q *Queue) Info(msg string, args ...any) { q.log(slog.LevelInfo, msg, args) }

// Warn queues a line at warning level.
func (q *Queue) Warn(msg string, args ...any) { q.log(slog.LevelWarn, msg, args) }

// Error queues a line at error level.
func (q *Queue) Error(msg string, args ...any) { q.log(slog.LevelError, msg, args) }

// Wait waits until the lines queued so far are written, for an owner that
// promises that none of its goroutines outlives it. No line may be queued
// while it waits.
func (q *Queue) Wait() {
	if q != nil {
		q.wg.Wait()
	}
}

func (q *Queue) log(level slog.Level, msg string, args []any) {
	if q == nil || !q.logger.Enabled(context.Background(), level) {
		return
	}
	// The caller's caller, as slog.Logger records it (for AddSource).
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.Add(args...)
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == maxPending {
		q.pending = q.pending[1:]
		q.dropped++
	}
	q.pending = append(q.pending, r)
	if !q.writing {
		q.writing = true
		q.wg.Add(1)
		go q.write()
	}
}

// write writes the pending lines until there are none.
func (q *Queue) write() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		l := q.pending[0]
		q.pending = q.pending[1:]
		if q.dropped > 0 {
			// Every line dropped was older than l.
			l.Add("dropped_before", q.dropped)
			q.dropped = 0
		}
		q.mu.Unlock()
		_ = q.logger.Handler().Handle(context.Background(), l)
	}
}
