package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that travels as a Go duration string ("10s"),
// the form Consul reads for check intervals, timeouts and TTLs. It decodes
// from a string or from a number of nanoseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("consul: duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("consul: duration %s: %w", b, err)
	}
	*d = Duration(n)
	return nil
}

// Health check states.
const (
	HealthAny      = "any"
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
	HealthMaint    = "maintenance"
)

// Node is a node of the catalog.
type Node struct {
	ID              string `json:",omitempty"`
	Node            string
	Address         string
	Datacenter      string            `json:",omitempty"`
	TaggedAddresses map[string]string `json:",omitempty"`
	Meta            map[string]string `json:",omitempty"`
	Partition       string            `json:",omitempty"`
	PeerName        string            `json:",omitempty"`
	CreateIndex     uint64            `json:",omitempty"`
	ModifyIndex     uint64            `json:",omitempty"`
}

// ServiceAddress is an address and port of a service.
type ServiceAddress struct {
	Address string
	Port    int
}

// AgentWeights are the DNS SRV weights of a service.
type AgentWeights struct {
	Passing int
	Warning int
}

// ServiceKind is the kind of a service: "" for a typical service, or a
// Connect proxy or gateway kind.
type ServiceKind string

// Service kinds.
const (
	ServiceKindTypical            ServiceKind = ""
	ServiceKindConnectProxy       ServiceKind = "connect-proxy"
	ServiceKindMeshGateway        ServiceKind = "mesh-gateway"
	ServiceKindTerminatingGateway ServiceKind = "terminating-gateway"
	ServiceKindIngressGateway     ServiceKind = "ingress-gateway"
	ServiceKindAPIGateway         ServiceKind = "api-gateway"
)

// AgentService is a service as the agent and the catalog describe it.
type AgentService struct {
	Kind              ServiceKind `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string          `json:",omitempty"`
	Meta              map[string]string `json:",omitempty"`
	Port              int
	Address           string
	SocketPath        string                    `json:",omitempty"`
	TaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	Weights           AgentWeights
	EnableTagOverride bool
	CreateIndex       uint64                          `json:",omitempty"`
	ModifyIndex       uint64                          `json:",omitempty"`
	ContentHash       string                          `json:",omitempty"`
	Proxy             *AgentServiceConnectProxyConfig `json:",omitempty"`
	Connect           *AgentServiceConnect            `json:",omitempty"`
	PeerName          string                          `json:",omitempty"`
	Namespace         string                          `json:",omitempty"`
	Partition         string                          `json:",omitempty"`
	Datacenter        string                          `json:",omitempty"`
}

// AgentServiceConnect is the Connect configuration of a service.
type AgentServiceConnect struct {
	Native         bool                      `json:",omitempty"`
	SidecarService *AgentServiceRegistration `json:",omitempty"`
}

// Upstream is an upstream of a Connect proxy.
type Upstream struct {
	DestinationType      string `json:",omitempty"`
	DestinationPartition string `json:",omitempty"`
	DestinationNamespace string `json:",omitempty"`
	DestinationPeer      string `json:",omitempty"`
	DestinationName      string
	Datacenter           string            `json:",omitempty"`
	LocalBindAddress     string            `json:",omitempty"`
	LocalBindPort        int               `json:",omitempty"`
	LocalBindSocketPath  string            `json:",omitempty"`
	LocalBindSocketMode  string            `json:",omitempty"`
	Config               map[string]any    `json:",omitempty"`
	MeshGateway          MeshGatewayConfig `json:",omitzero"`
	CentrallyConfigured  bool              `json:",omitempty"`
}

// MeshGatewayConfig selects how traffic reaches a mesh gateway.
type MeshGatewayConfig struct {
	Mode string `json:",omitempty"`
}

// ExposeConfig exposes paths of a proxied service.
type ExposeConfig struct {
	Checks bool         `json:",omitempty"`
	Paths  []ExposePath `json:",omitempty"`
}

// ExposePath is one exposed path.
type ExposePath struct {
	ListenerPort    int    `json:",omitempty"`
	Path            string `json:",omitempty"`
	LocalPathPort   int    `json:",omitempty"`
	Protocol        string `json:",omitempty"`
	ParsedFromCheck bool   `json:",omitempty"`
}

// TransparentProxyConfig configures transparent proxying.
type TransparentProxyConfig struct {
	OutboundListenerPort int  `json:",omitempty"`
	DialedDirectly       bool `json:",omitempty"`
}

// AgentServiceConnectProxyConfig is the proxy configuration of a
// connect-proxy service.
type AgentServiceConnectProxyConfig struct {
	DestinationServiceName string                  `json:",omitempty"`
	DestinationServiceID   string                  `json:",omitempty"`
	LocalServiceAddress    string                  `json:",omitempty"`
	LocalServicePort       int                     `json:",omitempty"`
	LocalServiceSocketPath string                  `json:",omitempty"`
	Mode                   string                  `json:",omitempty"`
	TransparentProxy       *TransparentProxyConfig `json:",omitempty"`
	Config                 map[string]any          `json:",omitempty"`
	Upstreams              []Upstream              `json:",omitempty"`
	MeshGateway            MeshGatewayConfig       `json:",omitzero"`
	Expose                 ExposeConfig            `json:",omitzero"`
}

// HealthCheckDefinition is how a check is run, as the catalog reports it.
// It has every field of Consul's own (agent/structs.HealthCheckDefinition),
// so that a check read from the catalog can be registered again unchanged.
type HealthCheckDefinition struct {
	HTTP                           string              `json:",omitempty"`
	Header                         map[string][]string `json:",omitempty"`
	Method                         string              `json:",omitempty"`
	Body                           string              `json:",omitempty"`
	DisableRedirects               bool                `json:",omitempty"`
	TLSServerName                  string              `json:",omitempty"`
	TLSSkipVerify                  bool                `json:",omitempty"`
	TCP                            string              `json:",omitempty"`
	UDP                            string              `json:",omitempty"`
	GRPC                           string              `json:",omitempty"`
	GRPCUseTLS                     bool                `json:",omitempty"`
	H2PING                         string              `json:",omitempty"`
	H2PingUseTLS                   bool                `json:",omitempty"`
	OSService                      string              `json:",omitempty"`
	ScriptArgs                     []string            `json:",omitempty"`
	DockerContainerID              string              `json:",omitempty"`
	Shell                          string              `json:",omitempty"`
	AliasNode                      string              `json:",omitempty"`
	AliasService                   string              `json:",omitempty"`
	OutputMaxSize                  uint                `json:",omitempty"`
	Interval                       Duration            `json:",omitempty"`
	Timeout                        Duration            `json:",omitempty"`
	TTL                            Duration            `json:",omitempty"`
	DeregisterCriticalServiceAfter Duration            `json:",omitempty"`
}

// HealthCheck is a check and its state.
type HealthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Interval    string `json:",omitempty"`
	Timeout     string `json:",omitempty"`
	ExposedPort int    `json:",omitempty"`
	Namespace   string `json:",omitempty"`
	Partition   string `json:",omitempty"`
	PeerName    string `json:",omitempty"`
	Definition  HealthCheckDefinition
	CreateIndex uint64
	ModifyIndex uint64
}

// HealthChecks is a list of checks.
type HealthChecks []*HealthCheck

// AggregatedStatus folds the checks into one status: maintenance, then
// critical, then warning, then passing.
func (c HealthChecks) AggregatedStatus() string {
	var passing, warning, critical, maint bool
	for _, ch := range c {
		if ch.CheckID == "_node_maintenance" || strings.HasPrefix(ch.CheckID, "_service_maintenance:") {
			maint = true
			continue
		}
		switch ch.Status {
		case HealthPassing:
			passing = true
		case HealthWarning:
			warning = true
		case HealthCritical:
			critical = true
		default:
			return ""
		}
	}
	switch {
	case maint:
		return HealthMaint
	case critical:
		return HealthCritical
	case warning:
		return HealthWarning
	case passing:
		return HealthPassing
	}
	return HealthPassing
}

// AgentServiceCheck defines a check to register with a service or on its
// own. Exactly one kind is set: Args (script), HTTP, TCP, UDP, TTL,
// DockerContainerID with Args, GRPC, H2PING, OSService, or AliasNode /
// AliasService. DisableRedirects makes an HTTP check report a redirect
// instead of following it; OutputMaxSize caps the output Consul keeps (0:
// the agent's check_output_max_size, 4 KiB by default).
type AgentServiceCheck struct {
	CheckID           string              `json:",omitempty"`
	Name              string              `json:",omitempty"`
	Args              []string            `json:"ScriptArgs,omitempty"`
	DockerContainerID string              `json:",omitempty"`
	Shell             string              `json:",omitempty"`
	Interval          Duration            `json:",omitempty"`
	Timeout           Duration            `json:",omitempty"`
	TTL               Duration            `json:",omitempty"`
	HTTP              string              `json:",omitempty"`
	Header            map[string][]string `json:",omitempty"`
	Method            string              `json:",omitempty"`
	Body              string              `json:",omitempty"`
	DisableRedirects  bool                `json:",omitempty"`
	TCP               string              `json:",omitempty"`
	UDP               string              `json:",omitempty"`
	Status            string              `json:",omitempty"`
	Notes             string              `json:",omitempty"`
	TLSServerName     string              `json:",omitempty"`
	TLSSkipVerify     bool                `json:",omitempty"`
	GRPC              string              `json:",omitempty"`
	GRPCUseTLS        bool                `json:",omitempty"`
	H2PING            string              `json:",omitempty"`
	// H2PingUseTLS: nil leaves Consul's default, which is TLS on for an
	// H2PING check; point it at false for a ping without TLS (Consul
	// turns an absent or omitted value into true).
	H2PingUseTLS           *bool  `json:",omitempty"`
	OSService              string `json:",omitempty"`
	AliasNode              string `json:",omitempty"`
	AliasService           string `json:",omitempty"`
	SuccessBeforePassing   int    `json:",omitempty"`
	FailuresBeforeWarning  int    `json:",omitempty"`
	FailuresBeforeCritical int    `json:",omitempty"`
	OutputMaxSize          int    `json:",omitempty"`
	// DeregisterCriticalServiceAfter removes the service when the check has
	// been critical this long (at least one minute; Consul reaps about every
	// 30 seconds).
	DeregisterCriticalServiceAfter Duration `json:",omitempty"`
}

// AgentServiceChecks is a list of check definitions.
type AgentServiceChecks []*AgentServiceCheck

// AgentServiceRegistration registers a service with the local agent.
type AgentServiceRegistration struct {
	Kind              ServiceKind                     `json:",omitempty"`
	ID                string                          `json:",omitempty"`
	Name              string                          `json:",omitempty"`
	Tags              []string                        `json:",omitempty"`
	Port              int                             `json:",omitempty"`
	Address           string                          `json:",omitempty"`
	SocketPath        string                          `json:",omitempty"`
	TaggedAddresses   map[string]ServiceAddress       `json:",omitempty"`
	EnableTagOverride bool                            `json:",omitempty"`
	Meta              map[string]string               `json:",omitempty"`
	Weights           *AgentWeights                   `json:",omitempty"`
	Check             *AgentServiceCheck              `json:",omitempty"`
	Checks            AgentServiceChecks              `json:",omitempty"`
	Proxy             *AgentServiceConnectProxyConfig `json:",omitempty"`
	Connect           *AgentServiceConnect            `json:",omitempty"`
	Namespace         string                          `json:",omitempty"`
	Partition         string                          `json:",omitempty"`
}

// AgentCheckRegistration registers a check with the local agent, on its own
// or attached to ServiceID.
type AgentCheckRegistration struct {
	ID        string `json:",omitempty"`
	Name      string `json:",omitempty"`
	Notes     string `json:",omitempty"`
	ServiceID string `json:",omitempty"`
	AgentServiceCheck
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
}

// Validate checks a check definition before it is sent: exactly one kind
// (script, Docker, HTTP, TCP, UDP, TTL, gRPC, H2PING, OS service or alias),
// an Interval for the kinds the agent runs on a timer, no negative
// durations and a known initial Status.
func (c *AgentServiceCheck) Validate() error {
	if c == nil {
		return &ValidationError{Field: "check", Reason: "nil"}
	}
	var kinds []string
	timed := false
	add := func(set bool, kind string, needsInterval bool) {
		if set {
			kinds = append(kinds, kind)
			timed = timed || needsInterval
		}
	}
	add(c.DockerContainerID == "" && len(c.Args) > 0, "script", true)
	add(c.DockerContainerID != "", "docker", true)
	add(c.HTTP != "", "HTTP", true)
	add(c.TCP != "", "TCP", true)
	add(c.UDP != "", "UDP", true)
	add(c.GRPC != "", "gRPC", true)
	add(c.H2PING != "", "H2PING", true)
	add(c.OSService != "", "OS service", true)
	add(c.TTL > 0, "TTL", false)
	add(c.AliasNode != "" || c.AliasService != "", "alias", false)
	switch {
	case len(kinds) == 0:
		return &ValidationError{Field: "check", Reason: "no kind set (script args, Docker, HTTP, TCP, UDP, TTL, gRPC, H2PING, OS service or alias)"}
	case len(kinds) > 1:
		return &ValidationError{Field: "check", Reason: "more than one kind set: " + strings.Join(kinds, ", ")}
	}
	if c.DockerContainerID != "" && len(c.Args) == 0 {
		return &ValidationError{Field: "check.Args", Reason: "a Docker check needs the command to run (Args)"}
	}
	if timed && c.Interval <= 0 {
		return &ValidationError{Field: "check.Interval", Reason: "a " + kinds[0] + " check needs an Interval"}
	}
	if c.OutputMaxSize < 0 {
		return &ValidationError{Field: "check.OutputMaxSize", Reason: "negative"}
	}
	for name, d := range map[string]Duration{"Interval": c.Interval, "Timeout": c.Timeout, "TTL": c.TTL, "DeregisterCriticalServiceAfter": c.DeregisterCriticalServiceAfter} {
		if d < 0 {
			return &ValidationError{Field: "check." + name, Reason: "negative"}
		}
	}
	switch c.Status {
	case "", HealthPassing, HealthWarning, HealthCritical:
	default:
		return &ValidationError{Field: "check.Status", Reason: "must be passing, warning or critical, not " + c.Status}
	}
	return nil
}
