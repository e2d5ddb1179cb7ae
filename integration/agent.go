package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/consulkit/consulkit/api"
)

// Mode is where agents come from.
type Mode string

// Modes.
const (
	ModeExternal Mode = "external" // CONSUL_HTTP_ADDR, run by someone else
	ModeDocker   Mode = "docker"   // containers through dockertest
	ModeProcess  Mode = "process"  // child processes of the test binary
)

// EnvMode forces a mode: docker, process or external.
const EnvMode = "CONSULKIT_MODE"

// ErrUnsupported is returned by operations the current mode cannot
// perform (cutting a server's network in process mode).
var ErrUnsupported = errors.New("integration: not supported in this mode")

// Agent is a running Consul agent.
type Agent struct {
	// Addr is the agent's HTTP address, host:port.
	Addr string
	// Token is the management token of an agent with ACLs enabled.
	Token string
	// Name is the agent's node name.
	Name string
	// Mode says where the agent runs.
	Mode Mode

	node node // nil for an external agent
	// external is the configuration from the environment that an external
	// agent is reached with (scheme, TLS, token file, basic auth...).
	external *api.Config
}

// Config returns an api.Config for the agent, carrying the management
// token when ACLs are enabled; for an external agent, the configuration
// from the environment (api.ConfigFromEnv).
func (a *Agent) Config() api.Config {
	if a.external != nil {
		return *a.external
	}
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	cfg.Token = a.Token
	return cfg
}

// NewClient returns a client for the agent.
func (a *Agent) NewClient() (*api.Client, error) { return api.NewClient(a.Config()) }

// Client returns a client for the agent and fails tb if it cannot. Its
// idle connections are closed when the test ends, so that many tests do not
// pile up connections to one agent (Consul limits them per client address).
func (a *Agent) Client(tb TB) *api.Client {
	tb.Helper()
	c, err := a.NewClient()
	if err != nil {
		tb.Fatalf("integration: client: %v", err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// Stop stops the agent, keeping what it needs to Start again. A dev agent
// keeps no state: it starts empty.
func (a *Agent) Stop(ctx context.Context) error {
	if a.node == nil {
		return ErrUnsupported
	}
	return a.node.stop(ctx)
}

// Kill stops the agent abruptly (SIGKILL).
func (a *Agent) Kill(ctx context.Context) error {
	if a.node == nil {
		return ErrUnsupported
	}
	return a.node.kill(ctx)
}

// Start starts a stopped agent again on the same address and waits until
// it answers.
func (a *Agent) Start(ctx context.Context) error {
	if a.node == nil {
		return ErrUnsupported
	}
	if err := a.node.start(ctx); err != nil {
		return err
	}
	return a.waitAnswering(ctx)
}

// Restart stops and starts the agent.
func (a *Agent) Restart(ctx context.Context) error {
	if err := a.Stop(ctx); err != nil {
		return err
	}
	return a.Start(ctx)
}

// Pause freezes the agent's process (SIGSTOP, docker pause): it keeps its
// connections but answers nothing until Unpause.
func (a *Agent) Pause(ctx context.Context) error {
	if a.node == nil {
		return ErrUnsupported
	}
	return a.node.pause(ctx)
}

// Unpause resumes a paused agent.
func (a *Agent) Unpause(ctx context.Context) error {
	if a.node == nil {
		return ErrUnsupported
	}
	return a.node.unpause(ctx)
}

// Close stops the agent for good and removes everything it left.
func (a *Agent) Close(ctx context.Context) error {
	if a.node == nil {
		return nil
	}
	return a.node.remove(ctx)
}

// waitAnswering waits until the agent has a leader and, with ACLs, accepts
// its management token.
func (a *Agent) waitAnswering(ctx context.Context) error {
	c, err := a.NewClient()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	return waitFor(ctx, 60*time.Second, func(ctx context.Context) error {
		if err := a.node.alive(); err != nil {
			return err
		}
		leader, err := c.Status().Leader(ctx, nil)
		if err != nil {
			return err
		}
		if leader == "" {
			return errors.New("no leader yet")
		}
		// A write proves the leader has settled (and, with ACLs, that the
		// management token is in force).
		if _, err = c.KV().Put(ctx, &api.KVPair{Key: "consulkit/harness/ready", Value: []byte(a.Name)}, nil); err != nil {
			return err
		}
		return a.registered(ctx)
	})
}

// registered returns nil once the agent's node is in the catalog with a
// passing serfHealth check. Before that, creating a session on it fails
// with "Missing node registration" or "Missing check 'serfHealth'
// registration": the leader registers the node and its check some time
// after it has been elected, and in a cluster a write can be accepted
// before the leader has got round to every member.
func (a *Agent) registered(ctx context.Context) error {
	c, err := a.NewClient()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	checks, _, err := c.Health().Node(ctx, a.Name, nil)
	if err != nil {
		return err
	}
	for _, ch := range checks {
		if ch.CheckID == "serfHealth" {
			if ch.Status != api.HealthPassing {
				return fmt.Errorf("node %s: serfHealth is %s", a.Name, ch.Status)
			}
			return nil
		}
	}
	return fmt.Errorf("node %s: serfHealth not registered yet", a.Name)
}

// waitFor calls try until it succeeds, ctx ends or limit passes, and
// returns the last error.
func waitFor(ctx context.Context, limit time.Duration, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		err := try(rctx)
		rcancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) {
			return err
		}
		last = err
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("integration: waiting: %w (last error: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// AgentOption configures StartAgent.
type AgentOption func(*agentSpec)

type agentSpec struct {
	acl       bool
	name      string
	gossipKey string
	hcl       []string
}

// args returns the agent arguments the options add.
func (s agentSpec) args() []string {
	var args []string
	if s.gossipKey != "" {
		args = append(args, "-encrypt", s.gossipKey)
	}
	for _, h := range s.hcl {
		args = append(args, "-hcl", h)
	}
	return args
}

// WithGossipKey starts the agent with gossip encryption under key (32
// bytes, base64), so that its keyring can be listed and changed.
func WithGossipKey(key string) AgentOption { return func(s *agentSpec) { s.gossipKey = key } }

// WithHCL adds a fragment of agent configuration (-hcl), such as
// "limits { http_max_conns_per_client = 2000 }" for a test that holds more
// blocking queries at once than Consul's default limit of 200 per client
// address.
func WithHCL(hcl string) AgentOption { return func(s *agentSpec) { s.hcl = append(s.hcl, hcl) } }

// WithACL enables ACLs with default policy deny; Agent.Token is the
// management token.
func WithACL() AgentOption { return func(s *agentSpec) { s.acl = true } }

// WithName sets the node name.
func WithName(name string) AgentOption { return func(s *agentSpec) { s.name = name } }

// DetectMode returns the mode the harness uses for the shared dev agent:
// EnvMode if set, else external when CONSUL_HTTP_ADDR is set, else docker
// when a Docker engine answers, else process.
func DetectMode() Mode {
	switch m := Mode(strings.ToLower(os.Getenv(EnvMode))); m {
	case ModeDocker, ModeProcess, ModeExternal:
		return m
	case "":
	default:
		warnModeOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "integration: ignoring %s=%q: want %s, %s or %s\n", EnvMode, m, ModeDocker, ModeProcess, ModeExternal)
		})
	}
	if os.Getenv(api.EnvHTTPAddr) != "" {
		return ModeExternal
	}
	if dockerAvailable() {
		return ModeDocker
	}
	return ModeProcess
}

var warnModeOnce sync.Once

// provisionMode is the mode used for agents the harness must start itself
// (ACL agents, clusters, private agents): docker or process.
func provisionMode() Mode { return ProvisionMode() }

// ProvisionMode returns the mode used for agents the harness starts itself
// (private and ACL agents, clusters): docker or process.
func ProvisionMode() Mode {
	switch m := DetectMode(); m {
	case ModeDocker, ModeProcess:
		return m
	}
	if dockerAvailable() {
		return ModeDocker
	}
	return ModeProcess
}

// StartAgent starts a dev agent of its own (docker or process mode,
// whatever CONSUL_HTTP_ADDR says) and waits until it answers. The caller
// must Close it.
func StartAgent(ctx context.Context, opts ...AgentOption) (*Agent, error) {
	spec := agentSpec{}
	for _, o := range opts {
		o(&spec)
	}
	if spec.name == "" {
		spec.name = "dev-" + randomSuffix()
	}
	b, err := getBackend(ctx, provisionMode())
	if err != nil {
		return nil, err
	}
	// In process mode a free port can be taken by someone else between
	// the moment it is picked and the moment the agent binds it: the agent
	// then exits at once, and is started again on other ports.
	for attempt := 1; ; attempt++ {
		a, err := b.startDev(ctx, spec)
		if err != nil {
			return nil, err
		}
		err = a.waitAnswering(ctx)
		if err == nil {
			return a, nil
		}
		logs := a.node.logs()
		_ = a.Close(context.WithoutCancel(ctx))
		if !errors.Is(err, errExited) || attempt == 3 {
			return nil, fmt.Errorf("integration: agent %s did not come up: %w\n%s", spec.name, err, logs)
		}
	}
}

// errExited: the agent's process ended while the harness waited for it.
var errExited = errors.New("integration: agent process exited")

// join asks the agent to join the Serf LAN member at addr.
func (a *Agent) join(ctx context.Context, addr string) error {
	c, err := a.NewClient()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	_, err = c.Agent().Join(ctx, addr, false, nil)
	return err
}

// KeyPrefix returns a KV prefix unique to the test, base/<test name> with
// the name reduced to [a-z0-9/-], and deletes every key under it when the
// test ends.
func (a *Agent) KeyPrefix(tb TB, base string) string {
	tb.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(tb.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '/' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	prefix := strings.TrimSuffix(base, "/") + "/" + b.String()
	tb.Cleanup(func() {
		c, err := a.NewClient()
		if err != nil {
			return
		}
		defer c.CloseIdleConnections()
		// Bounded: a test may fail while its agent is paused.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.KV().DeleteTree(ctx, prefix+"/", nil)
	})
	return prefix
}
