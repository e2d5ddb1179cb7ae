package integration

import (
	"context"
	"log/slog"
	"sync"
)

// StalledHandler is a slog.Handler whose writes block until Release, as
// those of a handler writing to a stderr whose reader has stalled (a full
// pipe, a log driver that blocks) do: for tests that a library's logging
// cannot hold up what must not wait.
type StalledHandler struct {
	entered   chan struct{}
	free      chan struct{}
	enterOnce sync.Once
	freeOnce  sync.Once
}

// NewStalledHandler returns a StalledHandler released when tb ends.
func NewStalledHandler(tb TB) *StalledHandler {
	h := &StalledHandler{entered: make(chan struct{}), free: make(chan struct{})}
	tb.Cleanup(h.Release)
	return h
}

// Entered is closed when the first record arrives.
func (h *StalledHandler) Entered() <-chan struct{} { return h.entered }

// Release lets every write, blocked or to come, through.
func (h *StalledHandler) Release() { h.freeOnce.Do(func() { close(h.free) }) }

// Enabled implements slog.Handler: every level.
func (h *StalledHandler) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler: it blocks until Release.
func (h *StalledHandler) Handle(context.Context, slog.Record) error {
	h.enterOnce.Do(func() { close(h.entered) })
	<-h.free
	return nil
}

// WithAttrs implements slog.Handler.
func (h *StalledHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup implements slog.Handler.
func (h *StalledHandler) WithGroup(string) slog.Handler { return h }
