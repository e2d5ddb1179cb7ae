package ttlcheck_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/ttlcheck"
)

// startRun runs hb.Run in a goroutine and returns a function that cancels
// it and returns Run's error (also called at cleanup).
func startRun(t *testing.T, hb *ttlcheck.Heartbeat) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- hb.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// logRecorder is a slog.Handler that keeps the records it is given.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRec
}

type logRec struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// records returns the records with message msg.
func (h *logRecorder) records(msg string) []logRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRec
	for _, r := range h.recs {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// transitions returns the "to" statuses of the status-change records.
func (h *logRecorder) transitions() []string {
	var out []string
	for _, r := range h.records("ttlcheck: status changed") {
		out = append(out, r.Attrs["to"])
	}
	return out
}

// runThenCutOff runs hb until the fake agent has accepted a Passing
// update, then makes the agent fail every update (503 "No cluster
// leader") until down is set to false. stop ends Run.
func runThenCutOff(t *testing.T, f *fakeAgent, hb *ttlcheck.Heartbeat) (stop func() error, down *atomic.Bool) {
	t.Helper()
	stop = startRun(t, hb)
	id := hb.Check().ID
	f.waitCheck(t, id, 3*time.Second, "passing", func(c *fakeCheck) bool {
		return c != nil && len(c.updates) > 0 && c.status == api.HealthPassing
	})
	down = &atomic.Bool{}
	down.Store(true)
	f.setHook(func(r fakeReq) (int, string) {
		if down.Load() && strings.HasPrefix(r.Path, "/v1/agent/check/update/") {
			return http.StatusServiceUnavailable, "rpc error: No cluster leader"
		}
		return 0, ""
	})
	return stop, down
}
