package api_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

// Helpers shared by the agent, catalog, health, coordinate and event
// integration tests.

var epSeq atomic.Uint64

// epName returns a name unique to the test and to this run (leftovers of
// a killed run on an external agent must not collide): lower-case
// letters, digits and dashes, as Consul wants service and node names.
func epName(t *testing.T, suffix string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	base := strings.TrimPrefix(strings.Trim(b.String(), "-"), "test")
	if len(base) > 30 {
		base = base[len(base)-30:]
	}
	id := strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + strconv.FormatUint(epSeq.Add(1), 36)
	name := strings.Trim(base, "-") + "-" + id
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// epCtx returns a context for one test's calls.
func epCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// epRegister registers a service with the agent and removes it when the
// test ends.
func epRegister(t *testing.T, c *api.Client, reg *api.AgentServiceRegistration) {
	t.Helper()
	_, err := c.Agent().ServiceRegister(t.Context(), reg, nil)
	require.NoError(t, err, "registering %s", reg.Name)
	id := reg.ID
	if id == "" {
		id = reg.Name
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Agent().ServiceDeregister(ctx, id, nil); err != nil && !errors.Is(err, api.ErrNotFound) {
			t.Logf("deregistering %s: %v", id, err)
		}
	})
}

// epTTLService registers service id (named name) with one TTL check
// "<id>-ttl" and returns the check ID.
func epTTLService(t *testing.T, c *api.Client, id, name string) string {
	t.Helper()
	checkID := id + "-ttl"
	epRegister(t, c, &api.AgentServiceRegistration{
		ID: id, Name: name, Port: 8080, Tags: []string{"v1"},
		Check: &api.AgentServiceCheck{CheckID: checkID, Name: "ttl", TTL: api.Duration(5 * time.Minute)},
	})
	return checkID
}

// epEventually retries f until it succeeds or the wait is over.
func epEventually(t *testing.T, wait time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			require.NoError(t, err, "condition not reached within %s", wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAgentSelfHostMembersIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)

	self, meta, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)
	require.NotNil(t, meta)
	assert.NotEmpty(t, self.Config.NodeName)
	assert.NotEmpty(t, self.Config.Datacenter)
	assert.True(t, self.Config.Server, "dev agents are servers")
	assert.NotEmpty(t, self.Config.Version)
	assert.Equal(t, self.Config.NodeName, self.Member.Name)
	assert.Equal(t, api.MemberStatusAlive, self.Member.Status)
	assert.NotZero(t, self.Member.Port)
	require.NotNil(t, self.Coord)
	assert.Len(t, self.Coord.Vec, 8)
	assert.Contains(t, self.Stats, "agent")
	assert.NotEmpty(t, self.DebugConfig)

	host, _, err := c.Agent().Host(ctx, nil)
	require.NoError(t, err)
	require.NotNil(t, host.Host)
	assert.NotEmpty(t, host.Host.OS)
	require.NotNil(t, host.Memory)
	assert.NotZero(t, host.Memory.Total)
	assert.NotZero(t, host.CollectionTime)

	lan, _, err := c.Agent().Members(ctx, nil, nil)
	require.NoError(t, err)
	names := make([]string, len(lan))
	for i, m := range lan {
		names[i] = m.Name
	}
	assert.Contains(t, names, self.Config.NodeName)

	wan, _, err := c.Agent().Members(ctx, &api.MembersOptions{WAN: true}, nil)
	require.NoError(t, err)
	names = names[:0]
	for _, m := range wan {
		names = append(names, m.Name)
	}
	assert.Contains(t, names, self.Config.NodeName+"."+self.Config.Datacenter)

	// A segment with WAN is refused before any request; Consul refuses it
	// too ("Cannot provide a segment with wan=true").
	_, _, err = c.Agent().Members(ctx, &api.MembersOptions{WAN: true, Segment: "alpha"}, nil)
	assert.ErrorIs(t, err, api.ErrInvalid)
}

func TestAgentVersionIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	self, _, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)
	v, _, err := c.Agent().Version(ctx, nil)
	if strings.HasPrefix(self.Config.Version, "1.14.") {
		// /v1/agent/version arrived in Consul 1.15: the test server answers
		// 404 "Invalid URL path".
		require.Error(t, err)
		assert.ErrorIs(t, err, api.ErrNotFound)
		return
	}
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(self.Config.Version, v.HumanVersion), "%s vs %s", self.Config.Version, v.HumanVersion)
}

func TestAgentReloadIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	_, err := c.Agent().Reload(epCtx(t), nil)
	require.NoError(t, err)
	// Still answering afterwards.
	_, _, err = c.Agent().Self(epCtx(t), nil)
	require.NoError(t, err)
}

func TestAgentJoinIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	self, _, err := c.Agent().Self(ctx, nil)
	require.NoError(t, err)

	// A single agent can join its own LAN pool (a no-op that succeeds).
	lanAddr := net.JoinHostPort(self.Member.Addr, strconv.Itoa(int(self.Member.Port)))
	_, err = c.Agent().Join(ctx, lanAddr, false, nil)
	require.NoError(t, err, "LAN join to self at %s", lanAddr)

	// And its own WAN pool, at the address of its WAN member.
	wan, _, err := c.Agent().Members(ctx, &api.MembersOptions{WAN: true}, nil)
	require.NoError(t, err)
	var wanAddr string
	for _, m := range wan {
		if m.Name == self.Config.NodeName+"."+self.Config.Datacenter {
			wanAddr = net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
		}
	}
	require.NotEmpty(t, wanAddr)
	_, err = c.Agent().Join(ctx, wanAddr, true, nil)
	require.NoError(t, err, "WAN join to self at %s", wanAddr)

	// Nobody listens on port 1: Consul answers 500 with the reason.
	_, err = c.Agent().Join(ctx, "127.0.0.1:1", false, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusInternalServerError, se.Code)
	assert.Contains(t, se.Body, "Failed to join")
}

// TestAgentLeaveForceLeaveIntegration runs on two private agents: b joins
// a's WAN pool (two dev servers must not share a LAN pool: each has its
// own Raft), then b leaves, then a prunes b with a force-leave. The shared
// agent is never asked to leave.
func TestAgentLeaveForceLeaveIntegration(t *testing.T) {
	a := integration.NewAgent(t)
	b := integration.NewAgent(t)
	ca, cb := a.Client(t), b.Client(t)
	ctx := epCtx(t)

	selfA, _, err := ca.Agent().Self(ctx, nil)
	require.NoError(t, err)
	selfB, _, err := cb.Agent().Self(ctx, nil)
	require.NoError(t, err)
	wanName := func(s *api.AgentSelf) string { return s.Config.NodeName + "." + s.Config.Datacenter }
	var wanA string
	wan, _, err := ca.Agent().Members(ctx, &api.MembersOptions{WAN: true}, nil)
	require.NoError(t, err)
	for _, m := range wan {
		if m.Name == wanName(selfA) {
			wanA = net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
		}
	}
	require.NotEmpty(t, wanA)
	_, err = cb.Agent().Join(ctx, wanA, true, nil)
	require.NoError(t, err)

	memberOfA := func() (*api.AgentMember, error) {
		ms, _, err := ca.Agent().Members(ctx, &api.MembersOptions{WAN: true}, nil)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.Name == wanName(selfB) {
				return m, nil
			}
		}
		return nil, nil
	}
	epEventually(t, 30*time.Second, func() error {
		m, err := memberOfA()
		if err == nil && (m == nil || m.Status != api.MemberStatusAlive) {
			err = errors.New("b not yet an alive WAN member of a")
		}
		return err
	})

	// An unknown node: Consul 1.14 answers 500, not 404.
	_, err = ca.Agent().ForceLeave(ctx, "no-such-node", nil, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusInternalServerError, se.Code)
	assert.Contains(t, se.Body, "No node found")

	// b leaves gracefully: the agent answers, then shuts down.
	_, err = cb.Agent().Leave(ctx, nil)
	require.NoError(t, err)
	epEventually(t, 60*time.Second, func() error {
		if _, _, err := cb.Agent().Self(ctx, nil); err == nil {
			return errors.New("b still answers after leaving")
		}
		return nil
	})
	epEventually(t, 60*time.Second, func() error {
		m, err := memberOfA()
		if err == nil && m != nil && m.Status != api.MemberStatusLeft {
			err = errors.New("b not yet left: " + m.Status.String())
		}
		return err
	})

	// Prune removes the left member from a's WAN pool at once.
	_, err = ca.Agent().ForceLeave(ctx, wanName(selfB), &api.ForceLeaveOptions{Prune: true, WAN: true}, nil)
	require.NoError(t, err)
	epEventually(t, 30*time.Second, func() error {
		m, err := memberOfA()
		if err == nil && m != nil {
			err = errors.New("b still listed: " + m.Status.String())
		}
		return err
	})
}

// TestAgentNodeMaintenanceIntegration uses a private agent: node
// maintenance takes every service of the node out of health queries,
// which would disturb the other tests on the shared agent.
func TestAgentNodeMaintenanceIntegration(t *testing.T) {
	c := integration.NewAgent(t).Client(t)
	ctx := epCtx(t)
	_, err := c.Agent().EnableNodeMaintenance(ctx, "kernel upgrade", nil)
	require.NoError(t, err)
	checks, _, err := c.Agent().Checks(ctx, nil)
	require.NoError(t, err)
	require.Contains(t, checks, "_node_maintenance")
	assert.Equal(t, api.HealthCritical, checks["_node_maintenance"].Status)
	assert.Equal(t, "kernel upgrade", checks["_node_maintenance"].Notes)

	_, err = c.Agent().DisableNodeMaintenance(ctx, nil)
	require.NoError(t, err)
	checks, _, err = c.Agent().Checks(ctx, nil)
	require.NoError(t, err)
	assert.NotContains(t, checks, "_node_maintenance")
	// Disabling twice is fine.
	_, err = c.Agent().DisableNodeMaintenance(ctx, nil)
	require.NoError(t, err)
}

func TestAgentServiceIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	id := name + "-1"
	epRegister(t, c, &api.AgentServiceRegistration{
		ID: id, Name: name, Tags: []string{"v1"}, Port: 8080, Address: "10.0.0.5",
		Meta: map[string]string{"team": "a"}, Weights: &api.AgentWeights{Passing: 3, Warning: 1},
	})

	svc, meta, err := c.Agent().Service(ctx, id, nil)
	require.NoError(t, err)
	require.NotNil(t, svc)
	assert.Equal(t, name, svc.Service)
	assert.Equal(t, []string{"v1"}, svc.Tags)
	assert.Equal(t, "a", svc.Meta["team"])
	assert.Equal(t, api.AgentWeights{Passing: 3, Warning: 1}, svc.Weights)
	require.NotEmpty(t, meta.LastContentHash)
	assert.Equal(t, svc.ContentHash, meta.LastContentHash)

	all, _, err := c.Agent().Services(ctx, &api.QueryOptions{Filter: "Service == " + strconv.Quote(name)})
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Contains(t, all, id)

	missing, meta2, err := c.Agent().Service(ctx, id+"-missing", nil)
	require.NoError(t, err)
	assert.Nil(t, missing)
	assert.NotNil(t, meta2)

	// Hash-based blocking: the read returns once the service changes.
	type result struct {
		svc  *api.AgentService
		meta *api.QueryMeta
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		s, m, err := c.Agent().Service(ctx, id, &api.QueryOptions{WaitHash: meta.LastContentHash, WaitTime: 30 * time.Second})
		done <- result{s, m, err}
	}()
	time.Sleep(300 * time.Millisecond)
	_, err = c.Agent().ServiceRegister(ctx, &api.AgentServiceRegistration{
		ID: id, Name: name, Tags: []string{"v2"}, Port: 8080, Address: "10.0.0.5",
	}, nil)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	assert.Less(t, time.Since(start), 25*time.Second, "the blocking read should end on the change")
	assert.Equal(t, []string{"v2"}, r.svc.Tags)
	assert.NotEqual(t, meta.LastContentHash, r.meta.LastContentHash)

	// Deregistering an unknown service is a 404.
	_, err = c.Agent().ServiceDeregister(ctx, id+"-missing", nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
}

func TestAgentServiceMaintenanceIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	id := name + "-1"
	checkID := epTTLService(t, c, id, name)
	_, err := c.Agent().PassTTL(ctx, checkID, "", nil)
	require.NoError(t, err)

	_, err = c.Agent().EnableServiceMaintenance(ctx, id, "deploying", nil)
	require.NoError(t, err)
	status, info, err := c.Agent().HealthServiceByID(ctx, id, nil)
	require.NoError(t, err)
	assert.Equal(t, api.HealthMaint, status)
	require.NotNil(t, info)
	var notes string
	for _, ch := range info.Checks {
		if ch.CheckID == "_service_maintenance:"+id {
			notes = ch.Notes
		}
	}
	assert.Equal(t, "deploying", notes)

	_, err = c.Agent().DisableServiceMaintenance(ctx, id, nil)
	require.NoError(t, err)
	status, _, err = c.Agent().HealthServiceByID(ctx, id, nil)
	require.NoError(t, err)
	assert.Equal(t, api.HealthPassing, status)

	_, err = c.Agent().EnableServiceMaintenance(ctx, id+"-missing", "", nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
}

// TestAgentHealthServiceIntegration drives a TTL check through every
// status and reads the aggregated health by service ID and by name. The
// agent answers warning with 429 and critical with 503: answers, not
// errors.
func TestAgentHealthServiceIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	id1, id2 := name+"-1", name+"-2"
	check1 := epTTLService(t, c, id1, name)
	check2 := epTTLService(t, c, id2, name)

	byID := func(want string) {
		t.Helper()
		status, info, err := c.Agent().HealthServiceByID(ctx, id1, nil)
		require.NoError(t, err)
		assert.Equal(t, want, status)
		require.NotNil(t, info)
		assert.Equal(t, want, info.AggregatedStatus)
		require.NotNil(t, info.Service)
		assert.Equal(t, id1, info.Service.ID)
		require.Len(t, info.Checks, 1)
		assert.Equal(t, check1, info.Checks[0].CheckID)
	}
	// A TTL check starts critical.
	byID(api.HealthCritical)
	_, err := c.Agent().PassTTL(ctx, check1, "ok", nil)
	require.NoError(t, err)
	byID(api.HealthPassing)
	_, err = c.Agent().WarnTTL(ctx, check1, "slow", nil)
	require.NoError(t, err)
	byID(api.HealthWarning)
	_, err = c.Agent().FailTTL(ctx, check1, "down", nil)
	require.NoError(t, err)
	byID(api.HealthCritical)
	_, err = c.Agent().UpdateTTL(ctx, check1, "all good", api.HealthPassing, nil)
	require.NoError(t, err)
	byID(api.HealthPassing)

	checks, _, err := c.Agent().Checks(ctx, &api.QueryOptions{Filter: "CheckID == " + strconv.Quote(check1)})
	require.NoError(t, err)
	require.Contains(t, checks, check1)
	assert.Equal(t, "all good", checks[check1].Output)
	assert.Equal(t, "ttl", checks[check1].Type)

	// By name: the worst instance wins.
	_, err = c.Agent().WarnTTL(ctx, check2, "", nil)
	require.NoError(t, err)
	status, infos, err := c.Agent().HealthServiceByName(ctx, name, nil)
	require.NoError(t, err)
	assert.Equal(t, api.HealthWarning, status)
	assert.Len(t, infos, 2)
	_, err = c.Agent().PassTTL(ctx, check2, "", nil)
	require.NoError(t, err)
	status, _, err = c.Agent().HealthServiceByName(ctx, name, nil)
	require.NoError(t, err)
	assert.Equal(t, api.HealthPassing, status)

	// Unknown ID and name.
	status, info, err := c.Agent().HealthServiceByID(ctx, id1+"-missing", nil)
	require.NoError(t, err)
	assert.Empty(t, status)
	assert.Nil(t, info)
	status, infos, err = c.Agent().HealthServiceByName(ctx, name+"-missing", nil)
	require.NoError(t, err)
	assert.Empty(t, status)
	assert.Nil(t, infos)
}

func TestAgentChecksIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	id := name + "-1"
	epTTLService(t, c, id, name)

	checkID := name + "-mem"
	_, err := c.Agent().CheckRegister(ctx, &api.AgentCheckRegistration{
		ID: checkID, Name: "memory", Notes: "free memory", ServiceID: id,
		AgentServiceCheck: api.AgentServiceCheck{TTL: api.Duration(time.Minute), Status: api.HealthWarning},
	}, nil)
	require.NoError(t, err)
	checks, _, err := c.Agent().Checks(ctx, nil)
	require.NoError(t, err)
	require.Contains(t, checks, checkID)
	assert.Equal(t, api.HealthWarning, checks[checkID].Status)
	assert.Equal(t, id, checks[checkID].ServiceID)
	assert.Equal(t, name, checks[checkID].ServiceName)

	_, err = c.Agent().CheckDeregister(ctx, checkID, nil)
	require.NoError(t, err)
	_, err = c.Agent().CheckDeregister(ctx, checkID, nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
	_, err = c.Agent().UpdateTTL(ctx, checkID, "", api.HealthPassing, nil)
	assert.True(t, api.IsUnknownCheck(err), "%v", err)

	// A check on an unknown service is a 404.
	_, err = c.Agent().CheckRegister(ctx, &api.AgentCheckRegistration{
		Name: "orphan", ServiceID: id + "-missing", AgentServiceCheck: api.AgentServiceCheck{TTL: api.Duration(time.Minute)},
	}, nil)
	assert.ErrorIs(t, err, api.ErrNotFound)
}

// TestAgentCheckKindsIntegration registers a service with a check of
// every kind the agent runs and reads back their types. Script and Docker
// checks need enable_script_checks, and OS service checks need Windows:
// the dev agent refuses them, which is tested too.
func TestAgentCheckKindsIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)

	// Targets for the HTTP and TCP checks (reachable from a process-mode
	// agent; from a container they just fail, which does not matter here).
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(hs.Close)
	hostPort := strings.TrimPrefix(hs.URL, "http://")

	name := epName(t, "")
	id := name + "-1"
	iv := api.Duration(10 * time.Second)
	// The alias check follows this service's health.
	peer := name + "-peer"
	peerCheck := epTTLService(t, c, peer, peer)
	_, err := c.Agent().PassTTL(ctx, peerCheck, "", nil)
	require.NoError(t, err)
	epRegister(t, c, &api.AgentServiceRegistration{
		ID: id, Name: name, Port: 8080,
		Checks: api.AgentServiceChecks{
			{CheckID: id + "-ttl", Name: "ttl", TTL: api.Duration(time.Minute), DeregisterCriticalServiceAfter: api.Duration(time.Hour)},
			{CheckID: id + "-http", Name: "http", HTTP: hs.URL + "/health", Method: "POST", Body: "{}",
				Header: map[string][]string{"X-Probe": {"1"}}, Interval: iv, Timeout: api.Duration(time.Second), TLSSkipVerify: true},
			{CheckID: id + "-tcp", Name: "tcp", TCP: hostPort, Interval: iv},
			{CheckID: id + "-udp", Name: "udp", UDP: "127.0.0.1:53", Interval: iv},
			{CheckID: id + "-grpc", Name: "grpc", GRPC: hostPort, GRPCUseTLS: false, Interval: iv},
			{CheckID: id + "-h2", Name: "h2ping", H2PING: hostPort, H2PingUseTLS: ptr(false), Interval: iv},
			{CheckID: id + "-alias", Name: "alias", AliasService: peer},
			{CheckID: id + "-thresholds", Name: "thresholds", TCP: hostPort, Interval: iv,
				SuccessBeforePassing: 2, FailuresBeforeWarning: 1, FailuresBeforeCritical: 3},
		},
	})
	checks, _, err := c.Agent().Checks(ctx, &api.QueryOptions{Filter: "ServiceID == " + strconv.Quote(id)})
	require.NoError(t, err)
	want := map[string]string{
		"-ttl": "ttl", "-http": "http", "-tcp": "tcp", "-udp": "udp", "-grpc": "grpc",
		"-h2": "h2ping", "-alias": "alias", "-thresholds": "tcp",
	}
	for suffix, typ := range want {
		ch, ok := checks[id+suffix]
		if assert.True(t, ok, "check %s missing", suffix) {
			assert.Equal(t, typ, ch.Type, suffix)
		}
	}
	epEventually(t, 30*time.Second, func() error {
		checks, _, err := c.Agent().Checks(ctx, &api.QueryOptions{Filter: "CheckID == " + strconv.Quote(id+"-alias")})
		if err != nil {
			return err
		}
		if st := checks[id+"-alias"].Status; st != api.HealthPassing {
			return errors.New("alias of a passing service is " + st)
		}
		return nil
	})

	refused := []struct {
		name  string
		check *api.AgentServiceCheck
		body  string
	}{
		{"script", &api.AgentServiceCheck{Args: []string{"/bin/true"}, Interval: iv}, "Scripts are disabled"},
		{"docker", &api.AgentServiceCheck{DockerContainerID: "abc", Shell: "/bin/sh", Args: []string{"true"}, Interval: iv}, "Scripts are disabled"},
		{"os service", &api.AgentServiceCheck{OSService: "sshd", Interval: iv}, ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			sid := epName(t, "")
			_, err := c.Agent().ServiceRegister(ctx, &api.AgentServiceRegistration{ID: sid, Name: sid, Check: tc.check}, nil)
			t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), sid, nil) })
			var se *api.StatusError
			require.ErrorAs(t, err, &se)
			assert.Contains(t, se.Body, tc.body)
		})
	}
}

func TestAgentMetricsIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	m, _, err := c.Agent().Metrics(ctx, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, m.Timestamp)
	assert.NotEmpty(t, m.Gauges)

	// The dev agent keeps no Prometheus metrics (no retention time).
	_, _, err = c.Agent().MetricsPrometheus(ctx, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusUnsupportedMediaType, se.Code)
	assert.Contains(t, se.Body, "Prometheus is not enabled")
}

// epStreamLeakCheck snapshots the goroutines now and, at cleanup time,
// fails if any new one is left. The stream under test must use a client
// of its own (a transport of its own), so that its connection goroutines
// can only be the stream's.
func epStreamLeakCheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func TestAgentMonitorIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	_, _, err := c.Agent().Self(epCtx(t), nil) // an idle connection, reused below
	require.NoError(t, err)
	sc := a.Client(t) // the stream's own client
	epStreamLeakCheck(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sc.Agent().Monitor(ctx, &api.MonitorOptions{LogLevel: "debug"}, nil)
	require.NoError(t, err)
	defer s.Close()

	// Requests are logged at debug level: make some until a line arrives.
	lines := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		l, err := s.Next()
		if err != nil {
			errc <- err
			return
		}
		lines <- l
	}()
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case l := <-lines:
			assert.NotEmpty(t, l)
			break wait
		case err := <-errc:
			t.Fatalf("monitor: %v", err)
		case <-timeout:
			t.Fatal("no log line within 30s")
		case <-time.After(200 * time.Millisecond):
			_, _, _ = c.Agent().Self(ctx, nil)
		}
	}

	cancel()
	for {
		_, err := s.Next()
		if err != nil {
			assert.ErrorIs(t, err, context.Canceled)
			break
		}
	}
	require.NoError(t, s.Close())
	_, err = s.Next()
	assert.ErrorIs(t, err, api.ErrStreamClosed)
}

func TestAgentMonitorJSONIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	_, _, err := c.Agent().Self(epCtx(t), nil)
	require.NoError(t, err)
	sc := a.Client(t)
	epStreamLeakCheck(t)

	s, err := sc.Agent().Monitor(context.Background(), &api.MonitorOptions{LogLevel: "trace", JSON: true}, nil)
	require.NoError(t, err)
	got := make(chan string, 1)
	go func() {
		l, err := s.Next()
		if err == nil {
			got <- l
		}
		close(got)
	}()
	var line string
	for line == "" {
		select {
		case l, ok := <-got:
			require.True(t, ok, "stream ended before a line")
			line = l
		case <-time.After(200 * time.Millisecond):
			_, _, _ = c.Agent().Self(epCtx(t), nil)
		}
	}
	assert.True(t, strings.HasPrefix(line, "{"), "JSON line: %s", line)
	// Close (not ctx) ends this stream.
	require.NoError(t, s.Close())
	_, err = s.Next()
	assert.ErrorIs(t, err, api.ErrStreamClosed)
}

func TestAgentMetricsStreamIntegration(t *testing.T) {
	a := integration.Shared(t)
	sc := a.Client(t)
	epStreamLeakCheck(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sc.Agent().MetricsStream(ctx, nil)
	require.NoError(t, err)
	defer s.Close()
	// The first summary comes at the end of the current 10s interval.
	type item struct {
		m   api.MetricsInfo
		err error
	}
	first := make(chan item, 1)
	go func() {
		m, err := s.Next()
		first <- item{m, err}
	}()
	select {
	case it := <-first:
		require.NoError(t, it.err)
		assert.NotEmpty(t, it.m.Timestamp)
	case <-time.After(40 * time.Second):
		t.Fatal("no metrics within 40s")
	}
	cancel()
	_, err = s.Next()
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())
}

func TestAgentUpdateTokenIntegration(t *testing.T) {
	t.Run("ACLs disabled", func(t *testing.T) {
		c := integration.Shared(t).Client(t)
		_, err := c.Agent().UpdateToken(epCtx(t), api.AgentTokenDefault, "x", nil)
		var se *api.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusUnauthorized, se.Code)
		assert.Contains(t, se.Body, "ACL support disabled")
	})
	t.Run("ACLs enabled", func(t *testing.T) {
		acl := integration.NewACLAgent(t)
		c := acl.Client(t)
		ctx := epCtx(t)
		for _, kind := range []api.AgentTokenKind{api.AgentTokenDefault, api.AgentTokenAgentRecovery, api.AgentTokenReplication, api.AgentTokenAgent} {
			_, err := c.Agent().UpdateToken(ctx, kind, acl.Token, nil)
			require.NoError(t, err, kind)
		}
		// Consul 1.14 does not know this kind yet.
		_, err := c.Agent().UpdateToken(ctx, api.AgentTokenConfigFileServiceRegistration, acl.Token, nil)
		assert.ErrorIs(t, err, api.ErrNotFound)

		// Without a token (the default one is anonymous: deny), agent:write
		// is missing.
		anon, err := api.NewClient(api.Config{Address: acl.Addr})
		require.NoError(t, err)
		_, err = anon.Agent().UpdateToken(ctx, api.AgentTokenDefault, "", &api.WriteOptions{Token: "anonymous"})
		assert.ErrorIs(t, err, api.ErrPermissionDenied)
	})
}

func TestAgentConnectIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)

	roots, meta, err := c.Agent().ConnectCARoots(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, roots.Roots)
	assert.NotEmpty(t, roots.TrustDomain)
	assert.NotZero(t, meta.LastIndex)
	var active bool
	for _, r := range roots.Roots {
		if r.ID == roots.ActiveRootID {
			active = r.Active
			assert.Contains(t, r.RootCert, "BEGIN CERTIFICATE")
		}
	}
	assert.True(t, active, "the active root is listed")

	name := epName(t, "")
	leaf, lmeta, err := c.Agent().ConnectCALeaf(ctx, name, nil)
	require.NoError(t, err)
	assert.Equal(t, name, leaf.Service)
	assert.Contains(t, leaf.ServiceURI, "/svc/"+name)
	assert.Contains(t, leaf.CertPEM, "BEGIN CERTIFICATE")
	assert.Contains(t, leaf.PrivateKeyPEM, "PRIVATE KEY")
	assert.True(t, leaf.ValidBefore.After(time.Now()))
	require.NotZero(t, lmeta.LastIndex)

	// Blocking on the leaf's index returns the same certificate once the
	// wait is over (nothing rotates in a second).
	start := time.Now()
	leaf2, lmeta2, err := c.Agent().ConnectCALeaf(ctx, name, &api.QueryOptions{WaitIndex: lmeta.LastIndex, WaitTime: time.Second})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the read blocked")
	assert.Equal(t, leaf.SerialNumber, leaf2.SerialNumber)
	assert.Equal(t, lmeta.LastIndex, lmeta2.LastIndex)

	// Authorization follows the default (allow on a dev agent) and the
	// intentions.
	uri := "spiffe://" + roots.TrustDomain + "/ns/default/dc/dc1/svc/" + name + "-client"
	auth, _, err := c.Agent().ConnectAuthorize(ctx, &api.AgentAuthorizeParams{Target: name, ClientCertURI: uri, ClientCertSerial: leaf.SerialNumber}, nil)
	require.NoError(t, err)
	assert.True(t, auth.Authorized)
	assert.NotEmpty(t, auth.Reason)

	ixn := &api.ServiceIntentionsConfigEntry{
		Kind: api.ServiceIntentions, Name: name,
		Sources: []*api.SourceIntention{{Name: name + "-client", Action: api.IntentionActionDeny}},
	}
	ok, _, err := c.ConfigEntries().Set(ctx, ixn, nil)
	require.NoError(t, err)
	require.True(t, ok)
	t.Cleanup(func() { _, _ = c.ConfigEntries().Delete(context.Background(), api.ServiceIntentions, name, nil) })
	epEventually(t, 30*time.Second, func() error {
		auth, _, err := c.Agent().ConnectAuthorize(ctx, &api.AgentAuthorizeParams{Target: name, ClientCertURI: uri}, nil)
		if err != nil {
			return err
		}
		if auth.Authorized {
			return errors.New("still authorized: " + auth.Reason)
		}
		assert.Contains(t, auth.Reason, "Matched")
		return nil
	})

	// A URI that is not a SPIFFE service ID is refused by Consul.
	_, _, err = c.Agent().ConnectAuthorize(ctx, &api.AgentAuthorizeParams{Target: name, ClientCertURI: "not-a-uri"}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.True(t, slices.Contains([]int{http.StatusBadRequest, http.StatusInternalServerError}, se.Code), "code %d", se.Code)
}

// TestAgentServiceReRegisterIntegration: registering a service again keeps
// the checks it no longer names, unless ReplaceExistingChecks is set; a
// check kept that way (a TTL check nobody beats any more) would turn the
// instance critical.
func TestAgentServiceReRegisterIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	for _, replace := range []bool{false, true} {
		id := epName(t, map[bool]string{false: "keep", true: "replace"}[replace])
		t.Cleanup(func() { _, _ = c.Agent().ServiceDeregister(context.Background(), id, nil) })
		_, err := c.Agent().ServiceRegister(ctx, &api.AgentServiceRegistration{ID: id, Name: id, Port: 80,
			Checks: api.AgentServiceChecks{{CheckID: id + "-old", Name: "old", TTL: api.Duration(time.Minute)}}}, nil)
		require.NoError(t, err)
		_, err = c.Agent().ServiceRegisterOpts(ctx, &api.AgentServiceRegistration{ID: id, Name: id, Port: 81,
			Checks: api.AgentServiceChecks{{CheckID: id + "-new", Name: "new", TTL: api.Duration(time.Minute), Status: api.HealthPassing}}},
			api.ServiceRegisterOptions{ReplaceExistingChecks: replace}, nil)
		require.NoError(t, err)

		checks, _, err := c.Agent().Checks(ctx, &api.QueryOptions{Filter: `ServiceID == "` + id + `"`})
		require.NoError(t, err)
		var ids []string
		for k := range checks {
			ids = append(ids, k)
		}
		status, _, err := c.Agent().HealthServiceByID(ctx, id, nil)
		require.NoError(t, err)
		if replace {
			assert.ElementsMatch(t, []string{id + "-new"}, ids)
			assert.Equal(t, api.HealthPassing, status)
		} else {
			assert.ElementsMatch(t, []string{id + "-old", id + "-new"}, ids)
			assert.Equal(t, api.HealthCritical, status)
		}
	}
}

// DisableRedirects and OutputMaxSize reach the agent and act there. The
// check target is the agent's own HTTP API, whose / redirects to /ui/: it
// is reachable from the agent in every harness mode.
func TestAgentCheckRedirectsAndOutputSizeIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	ctx := epCtx(t)
	name := epName(t, "")
	target := "http://" + a.Addr + "/"
	got := epCheckOutputs(t, c, map[string]api.AgentServiceCheck{
		name + "-true":  {HTTP: target, Interval: api.Duration(time.Second), OutputMaxSize: 100},
		name + "-false": {HTTP: target, Interval: api.Duration(time.Second), DisableRedirects: true, OutputMaxSize: 100},
	})
	followed, stopped := got[name+"-true"], got[name+"-false"]
	t.Logf("followed: %s %q", followed.Status, followed.Output)
	t.Logf("stopped: %s %q", stopped.Status, stopped.Output)
	assert.Equal(t, api.HealthPassing, followed.Status, "the redirect to /ui/ is followed")
	assert.Less(t, len(followed.Output), 300, "the UI page's body is cut to about OutputMaxSize")
	assert.Equal(t, api.HealthCritical, stopped.Status, "with DisableRedirects the 301 itself is the answer")
	assert.Contains(t, stopped.Output, "301")

	_, err := c.Agent().CheckRegister(ctx, &api.AgentCheckRegistration{ID: name + "-neg", Name: "neg", AgentServiceCheck: api.AgentServiceCheck{
		TTL: api.Duration(time.Minute), OutputMaxSize: -1,
	}}, nil)
	assert.ErrorIs(t, err, api.ErrInvalid, "a negative OutputMaxSize is refused before sending")
}

func ptr[T any](v T) *T { return &v }

// epCheckOutputs registers checks (by ID) on the agent, removes them when
// the test ends, and returns them once each has run and reported output.
func epCheckOutputs(t *testing.T, c *api.Client, checks map[string]api.AgentServiceCheck) map[string]*api.HealthCheck {
	t.Helper()
	ctx := epCtx(t)
	for id, chk := range checks {
		_, err := c.Agent().CheckRegister(ctx, &api.AgentCheckRegistration{ID: id, Name: id, AgentServiceCheck: chk}, nil)
		require.NoError(t, err)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = c.Agent().CheckDeregister(ctx, id, nil)
		})
	}
	got := map[string]*api.HealthCheck{}
	require.Eventually(t, func() bool {
		all, _, err := c.Agent().Checks(ctx, nil)
		require.NoError(t, err)
		for id := range checks {
			if all[id] == nil || all[id].Output == "" {
				return false
			}
			got[id] = all[id]
		}
		return true
	}, 20*time.Second, 100*time.Millisecond)
	return got
}

// An H2PING check runs with TLS unless told otherwise: Consul turns an
// absent H2PingUseTLS into true, so false must be sent to turn it off.
// The target is the agent's own plain-HTTP API: with TLS the ping fails
// in the TLS handshake, without it in HTTP/2 itself.
func TestAgentCheckH2PingWithoutTLSIntegration(t *testing.T) {
	a := integration.Shared(t)
	c := a.Client(t)
	name := epName(t, "")
	got := epCheckOutputs(t, c, map[string]api.AgentServiceCheck{
		name + "-default": {H2PING: a.Addr, Interval: api.Duration(time.Second)},
		name + "-plain":   {H2PING: a.Addr, H2PingUseTLS: ptr(false), Interval: api.Duration(time.Second)},
	})
	withTLS, plain := got[name+"-default"], got[name+"-plain"]
	t.Logf("default: %q", withTLS.Output)
	t.Logf("plain: %q", plain.Output)
	assert.Contains(t, withTLS.Output, "tls:", "an H2PING check defaults to TLS")
	assert.NotContains(t, plain.Output, "tls:", "H2PingUseTLS false was not sent")
}

// TestAgentCheckRegisterCheckIDIntegration registers a check named by the
// CheckID that AgentCheckRegistration promotes from AgentServiceCheck.
// Consul's /v1/agent/check/register takes the check ID as "ID" only
// (structs.CheckDefinition has no CheckID field, and the body is decoded
// with unknown fields refused): a "CheckID" in the body is a 400.
func TestAgentCheckRegisterCheckIDIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	ctx := epCtx(t)
	checkID := epName(t, "chk")
	_, err := c.Agent().CheckRegister(ctx, &api.AgentCheckRegistration{
		Name:              "by check id",
		AgentServiceCheck: api.AgentServiceCheck{CheckID: checkID, TTL: api.Duration(time.Minute)},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.Agent().CheckDeregister(ctx, checkID, nil)
	})
	checks, _, err := c.Agent().Checks(ctx, nil)
	require.NoError(t, err)
	require.Contains(t, checks, checkID)
	assert.Equal(t, "by check id", checks[checkID].Name)
}
