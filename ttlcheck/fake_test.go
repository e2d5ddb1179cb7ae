package ttlcheck_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
)

// fakeAgent is an httptest stand-in for the agent endpoints a Heartbeat
// uses. It keeps TTL checks (with expiry) and services in memory and
// records every request.
type fakeAgent struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	checks   map[string]*fakeCheck
	services map[string]map[string]any
	reqs     []fakeReq
	hung     []hungReq // requests hang held until the client gave up
	// hook, when set, may answer a request instead of the fake: it returns
	// a status code (0 to let the fake answer) and a body.
	hook func(r fakeReq) (int, string)
	// hang, when set, is asked about every request before the fake
	// answers it; a request it returns true for is never answered (the
	// client has to give up), as on a dead connection.
	hang func(r fakeReq) bool
	// late, when set, is asked about a request hang held once the client
	// has given up on it: if it returns a channel, the request is applied
	// (as an agent that finishes a request the client no longer waits
	// for) once that channel is closed.
	late func(r fakeReq) <-chan struct{}
	// unknownCode is how an update of an unknown check is answered: 500
	// "does not have associated TTL" (Consul 1.14) when 0, else this code.
	unknownCode int
}

type fakeCheck struct {
	id, name, serviceID, notes string
	ttl                        time.Duration
	status, output             string
	expires                    time.Time
	updates                    []time.Time
}

type fakeReq struct {
	Method string
	Path   string
	Body   map[string]any
	At     time.Time
}

// hungReq is a request that hang held: Ended is when the client gave up on
// it (its connection was closed), so Ended-At is how long the client let it
// hang, as seen by the agent.
type hungReq struct {
	fakeReq
	Ended time.Time
}

func newFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	f := &fakeAgent{t: t, checks: map[string]*fakeCheck{}, services: map[string]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAgent) client(t *testing.T) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = f.srv.URL
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	return c
}

func (f *fakeAgent) setHook(h func(r fakeReq) (int, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	req := fakeReq{Method: r.Method, Path: r.URL.Path, At: time.Now()}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &req.Body); err != nil {
			http.Error(w, "Request decode failed: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	f.mu.Lock()
	hang, late := f.hang, f.late
	f.mu.Unlock()
	if hang != nil && hang(req) {
		<-r.Context().Done()
		f.mu.Lock()
		f.hung = append(f.hung, hungReq{fakeReq: req, Ended: time.Now()})
		f.mu.Unlock()
		var apply <-chan struct{}
		if late != nil {
			apply = late(req)
		}
		if apply == nil {
			return
		}
		<-apply
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.hook != nil {
		if code, body := f.hook(req); code != 0 {
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	if r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == "/v1/agent/check/register":
		if req.Body["ServiceID"] != nil {
			if _, ok := f.services[req.Body["ServiceID"].(string)]; !ok {
				http.Error(w, fmt.Sprintf("ServiceID %q does not exist", req.Body["ServiceID"]), http.StatusNotFound)
				return
			}
		}
		f.addCheck(req.Body, str(req.Body["ID"]), str(req.Body["ServiceID"]))
	case p == "/v1/agent/service/register":
		id := str(req.Body["ID"])
		if id == "" {
			id = str(req.Body["Name"])
		}
		f.services[id] = req.Body
		if cs, ok := req.Body["Checks"].([]any); ok {
			for _, c := range cs {
				m := c.(map[string]any)
				f.addCheck(m, str(m["CheckID"]), id)
			}
		}
	case strings.HasPrefix(p, "/v1/agent/check/update/"):
		id := strings.TrimPrefix(p, "/v1/agent/check/update/")
		c := f.checks[id]
		if c == nil {
			switch f.unknownCode {
			case 0:
				http.Error(w, fmt.Sprintf("CheckID %q does not have associated TTL", id), http.StatusInternalServerError)
			default:
				http.Error(w, fmt.Sprintf("Unknown check ID %q", id), f.unknownCode)
			}
			return
		}
		c.status, c.output = str(req.Body["Status"]), str(req.Body["Output"])
		c.expires = req.At.Add(c.ttl)
		c.updates = append(c.updates, req.At)
	case strings.HasPrefix(p, "/v1/agent/check/deregister/"):
		delete(f.checks, strings.TrimPrefix(p, "/v1/agent/check/deregister/"))
	case strings.HasPrefix(p, "/v1/agent/service/deregister/"):
		id := strings.TrimPrefix(p, "/v1/agent/service/deregister/")
		if _, ok := f.services[id]; !ok {
			http.Error(w, "Unknown service ID", http.StatusNotFound)
			return
		}
		delete(f.services, id)
		for cid, c := range f.checks {
			if c.serviceID == id {
				delete(f.checks, cid)
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAgent) addCheck(m map[string]any, id, serviceID string) {
	if m["TTL"] == nil {
		return // not a TTL check
	}
	ttl, err := time.ParseDuration(str(m["TTL"]))
	require.NoError(f.t, err)
	status := str(m["Status"])
	if status == "" {
		status = api.HealthCritical
	}
	f.checks[id] = &fakeCheck{
		id: id, name: str(m["Name"]), serviceID: serviceID, notes: str(m["Notes"]),
		ttl: ttl, status: status, expires: time.Now().Add(ttl),
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// check returns a copy of a check's state, with the status it has now
// (critical once its TTL passed), or nil.
func (f *fakeAgent) check(id string) *fakeCheck {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.checks[id]
	if c == nil {
		return nil
	}
	cp := *c
	cp.updates = append([]time.Time(nil), c.updates...)
	if time.Now().After(c.expires) {
		cp.status = api.HealthCritical
	}
	return &cp
}

// forget drops every check and service, like a restarted dev agent.
func (f *fakeAgent) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks = map[string]*fakeCheck{}
	f.services = map[string]map[string]any{}
}

// requests returns the recorded requests whose path starts with prefix.
func (f *fakeAgent) requests(prefix string) []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeReq
	for _, r := range f.reqs {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// hungRequests returns the requests hang held that the client has given
// up on.
func (f *fakeAgent) hungRequests() []hungReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hungReq(nil), f.hung...)
}

// waitCheck waits until cond holds for the check (nil when absent).
func (f *fakeAgent) waitCheck(t *testing.T, id string, within time.Duration, what string, cond func(c *fakeCheck) bool) *fakeCheck {
	t.Helper()
	var c *fakeCheck
	require.Eventually(t, func() bool {
		c = f.check(id)
		return cond(c)
	}, within, 10*time.Millisecond, "check %s: %s", id, what)
	return c
}
