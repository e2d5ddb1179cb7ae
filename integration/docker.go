package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// EnvImage names the Consul image for docker mode.
const EnvImage = "CONSUL_IMAGE"

const (
	defaultImage = "hashicorp/consul:" + ConsulVersion
	localImage   = "consulkit/consul:" + ConsulVersion + "-local"
	labelHarness = "consulkit.harness"
	labelOwner   = "consulkit.owner"
	labelHost    = "consulkit.host"
)

func newToken() string { return uuid.NewString() }

var (
	dockerOnce sync.Once
	dockerPool *dockertest.Pool
	dockerErr  error
)

func pool() (*dockertest.Pool, error) {
	dockerOnce.Do(func() {
		p, err := dockertest.NewPool("")
		if err != nil {
			dockerErr = err
			return
		}
		if err := p.Client.Ping(); err != nil {
			dockerErr = err
			return
		}
		p.MaxWait = 60 * time.Second
		dockerPool = p
	})
	return dockerPool, dockerErr
}

func dockerAvailable() bool {
	_, err := pool()
	return err == nil
}

// dockerBackend runs agents as containers. Every container gets a static
// address on a network of the backend's own ("ctl"), which the test
// process reaches directly; cluster servers also join a network of their
// cluster's own, which Disconnect cuts.
type dockerBackend struct {
	pool  *dockertest.Pool
	image string

	mu   sync.Mutex
	ctl  *dockerNet
	nets []*dockerNet
}

type dockerNet struct {
	id     string
	prefix string // "10.213.7." for 10.213.7.0/24
	next   int
	free   []string // addresses given back by removed containers
}

// errNoAddress: every address of a network is in use.
var errNoAddress = errors.New("integration: no free address left on the harness's docker network")

// allocIP returns an address for a container: the next one never used
// (from .10 to .254), else the one given back longest ago, so that a
// client left over from a finished test does not reach the next test's
// agent.
func (n *dockerNet) allocIP() (string, error) {
	if n.next+10 <= 254 {
		n.next++
		return n.prefix + strconv.Itoa(n.next+9), nil
	}
	if len(n.free) == 0 {
		return "", errNoAddress
	}
	ip := n.free[0]
	n.free = n.free[1:]
	return ip, nil
}

// freeIP gives an address back for reuse.
func (n *dockerNet) freeIP(ip string) { n.free = append(n.free, ip) }

func newDockerBackend(ctx context.Context) (*dockerBackend, error) {
	p, err := pool()
	if err != nil {
		return nil, fmt.Errorf("integration: docker: %w", err)
	}
	b := &dockerBackend{pool: p}
	b.removeLeftovers()
	if b.image, err = b.ensureImage(ctx); err != nil {
		return nil, err
	}
	if b.ctl, err = b.createNet(ctx, "ctl"); err != nil {
		return nil, err
	}
	return b, nil
}

func labels() map[string]string {
	return map[string]string{labelHarness: "1", labelOwner: ownerPID(), labelHost: hostID()}
}

// leftover reports whether labels belong to a harness run on this host
// whose process is gone.
func leftover(l map[string]string) bool {
	if l[labelHarness] != "1" || l[labelHost] != hostID() {
		return false
	}
	pid, _ := strconv.Atoi(l[labelOwner])
	return !processAlive(pid)
}

func (b *dockerBackend) removeLeftovers() {
	cs, err := b.pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelHarness + "=1"}}})
	if err == nil {
		for _, c := range cs {
			if leftover(c.Labels) {
				_ = b.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
			}
		}
	}
	ns, err := b.pool.Client.ListNetworks()
	if err == nil {
		for _, n := range ns {
			if leftover(n.Labels) {
				_ = b.pool.Client.RemoveNetwork(n.ID)
			}
		}
	}
}

// ensureImage returns an image to run: CONSUL_IMAGE (or the default) when
// present or pullable, else a local image built FROM scratch with the
// Consul binary.
func (b *dockerBackend) ensureImage(ctx context.Context) (string, error) {
	want := os.Getenv(EnvImage)
	explicit := want != ""
	if !explicit {
		want = defaultImage
	}
	if _, err := b.pool.Client.InspectImage(want); err == nil {
		return want, nil
	}
	if !explicit {
		if _, err := b.pool.Client.InspectImage(localImage); err == nil {
			return localImage, nil
		}
	}
	repo, tag, _ := strings.Cut(want, ":")
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := b.pool.Client.PullImage(dc.PullImageOptions{Repository: repo, Tag: tag, Context: pctx}, dc.AuthConfiguration{})
	cancel()
	if err == nil {
		return want, nil
	}
	if err := b.buildLocalImage(ctx); err != nil {
		return "", fmt.Errorf("integration: image %s cannot be pulled and building %s failed: %w", want, localImage, err)
	}
	return localImage, nil
}

func (b *dockerBackend) buildLocalImage(ctx context.Context) error {
	bin, err := ConsulBinary(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "consulkit-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// A lock file keeps concurrent test binaries from building at once.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "consulkit-image.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := b.pool.Client.InspectImage(localImage); err == nil {
		return nil
	}
	if err := os.Link(bin, filepath.Join(dir, "consul")); err != nil {
		raw, rerr := os.ReadFile(bin)
		if rerr != nil {
			return rerr
		}
		if err := os.WriteFile(filepath.Join(dir, "consul"), raw, 0o755); err != nil {
			return err
		}
	}
	dockerfile := "FROM scratch\nCOPY consul /bin/consul\nWORKDIR /tmp\nWORKDIR /data\nENTRYPOINT [\"/bin/consul\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	var out bytes.Buffer
	err = b.pool.Client.BuildImage(dc.BuildImageOptions{
		Name: localImage, ContextDir: dir, Dockerfile: "Dockerfile",
		OutputStream: &out, Context: ctx, Labels: map[string]string{labelHarness + ".image": "1"},
	})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out.String())
	}
	return nil
}

// createTimeout bounds the creation of a network or a container, which is
// not cancelled with the caller's context (see createNet).
const createTimeout = 30 * time.Second

// createNet creates a bridge network on a free 10.213.x.0/24 subnet.
func (b *dockerBackend) createNet(ctx context.Context, role string) (*dockerNet, error) {
	var last error
	for range 20 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("integration: creating a docker network: %w", err)
		}
		x := rand.IntN(256)
		prefix := fmt.Sprintf("10.213.%d.", x)
		// Not cancelled with ctx: the daemon may create a network whose
		// request was cancelled, and nobody would know to remove it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
		n, err := b.pool.Client.CreateNetwork(dc.CreateNetworkOptions{
			Name:    fmt.Sprintf("consulkit-%s-%s-%s", role, ownerPID(), randomSuffix()),
			Driver:  "bridge",
			IPAM:    &dc.IPAMOptions{Driver: "default", Config: []dc.IPAMConfig{{Subnet: prefix + "0/24", Gateway: prefix + "1"}}},
			Labels:  labels(),
			Context: cctx,
		})
		cancel()
		if err != nil {
			last = err
			continue
		}
		if err := ctx.Err(); err != nil {
			_ = b.pool.Client.RemoveNetwork(n.ID)
			return nil, fmt.Errorf("integration: creating a docker network: %w", err)
		}
		dn := &dockerNet{id: n.ID, prefix: prefix}
		b.mu.Lock()
		b.nets = append(b.nets, dn)
		b.mu.Unlock()
		return dn, nil
	}
	return nil, fmt.Errorf("integration: creating a docker network: %w", last)
}

func (b *dockerBackend) removeNet(n *dockerNet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.nets {
		if x == n {
			b.nets = append(b.nets[:i], b.nets[i+1:]...)
			break
		}
	}
	_ = b.pool.Client.RemoveNetwork(n.id)
}

func (b *dockerBackend) close(context.Context) error {
	b.mu.Lock()
	nets := b.nets
	b.nets = nil
	b.mu.Unlock()
	var errs []error
	for _, n := range nets {
		if err := b.pool.Client.RemoveNetwork(n.id); err != nil {
			errs = append(errs, err)
		}
	}
	if t, ok := b.pool.Client.HTTPClient.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// run creates and starts a container with a static address on ctl and,
// when cluster is set, on cluster too.
func (b *dockerBackend) run(ctx context.Context, name string, args []string, ctlIP string, cluster *dockerNet, clusterIP string) (*dockerNode, error) {
	if err := ctx.Err(); err != nil {
		b.releaseIP(ctlIP)
		return nil, fmt.Errorf("integration: creating container: %w", err)
	}
	// Not cancelled with ctx, as in createNet: a container created for a
	// cancelled request would be left behind.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	c, err := b.pool.Client.CreateContainer(dc.CreateContainerOptions{
		Name: "consulkit-" + name,
		Config: &dc.Config{
			Image:      b.image,
			Entrypoint: []string{"/bin/consul"},
			Cmd:        args,
			Labels:     labels(),
			Hostname:   name,
		},
		HostConfig: &dc.HostConfig{},
		NetworkingConfig: &dc.NetworkingConfig{EndpointsConfig: map[string]*dc.EndpointConfig{
			b.ctl.id: {IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: ctlIP}},
		}},
		Context: cctx,
	})
	if err != nil {
		b.releaseIP(ctlIP)
		return nil, fmt.Errorf("integration: creating container: %w", err)
	}
	n := &dockerNode{b: b, id: c.ID, ctlIP: ctlIP, cluster: cluster, clusterIP: clusterIP}
	if err := ctx.Err(); err != nil {
		_ = n.remove(ctx)
		return nil, fmt.Errorf("integration: creating container: %w", err)
	}
	if cluster != nil {
		if err := n.reconnect(ctx); err != nil {
			_ = n.remove(ctx)
			return nil, err
		}
	}
	if err := n.start(ctx); err != nil {
		_ = n.remove(ctx)
		return nil, err
	}
	return n, nil
}

// releaseIP gives a ctl address back once its container is gone.
func (b *dockerBackend) releaseIP(ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctl != nil {
		b.ctl.freeIP(ip)
	}
}

func (b *dockerBackend) startDev(ctx context.Context, spec agentSpec) (*Agent, error) {
	b.mu.Lock()
	ip, err := b.ctl.allocIP()
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	args := []string{"agent", "-dev", "-node", spec.name, "-client", "0.0.0.0", "-bind", ip,
		"-dns-port", "-1", "-log-level", "warn"}
	a := &Agent{Addr: ip + ":8500", Name: spec.name, Mode: ModeDocker}
	if spec.acl {
		a.Token = newToken()
		args = append(args, "-hcl", aclHCL(a.Token))
	}
	args = append(args, spec.args()...)
	n, err := b.run(ctx, spec.name+"-"+randomSuffix(), args, ip, nil, "")
	if err != nil {
		return nil, err
	}
	n.raft = ip + ":8300"
	a.node = n
	return a, nil
}

func (b *dockerBackend) startCluster(ctx context.Context, size int) (*Cluster, error) {
	cnet, err := b.createNet(ctx, "cluster")
	if err != nil {
		return nil, err
	}
	cl := &Cluster{Mode: ModeDocker, closeNet: func() { b.removeNet(cnet) }}
	ips := make([]string, size)
	for i := range ips {
		ips[i], _ = cnet.allocIP() // a new network has room for far more
	}
	for i := range size {
		b.mu.Lock()
		ctlIP, err := b.ctl.allocIP()
		b.mu.Unlock()
		if err != nil {
			_ = cl.Close(ctx)
			return nil, err
		}
		name := fmt.Sprintf("server-%d-%s", i, randomSuffix())
		args := []string{"agent", "-server", "-bootstrap-expect", strconv.Itoa(size), "-node", name,
			"-data-dir", "/data", "-client", "0.0.0.0", "-bind", ips[i], "-dns-port", "-1",
			"-log-level", "warn", "-hcl", "performance { raft_multiplier = 1 }"}
		for j, ip := range ips {
			if j != i {
				args = append(args, "-retry-join", ip)
			}
		}
		n, err := b.run(ctx, name, args, ctlIP, cnet, ips[i])
		if err != nil {
			_ = cl.Close(ctx)
			return nil, err
		}
		n.raft = ips[i] + ":8300"
		cl.Servers = append(cl.Servers, &Agent{Addr: ctlIP + ":8500", Name: name, Mode: ModeDocker, node: n})
	}
	return cl, nil
}

// dockerNode is one agent container.
type dockerNode struct {
	b         *dockerBackend
	id        string
	ctlIP     string
	removed   sync.Once // gives ctlIP back once
	raft      string
	cluster   *dockerNet
	clusterIP string
}

func (n *dockerNode) raftAddr() string { return n.raft }

// alive is always nil: a container's ports are its own.
func (n *dockerNode) alive() error { return nil }

func (n *dockerNode) serfAddr() string {
	if n.clusterIP != "" {
		return n.clusterIP + ":8301"
	}
	host, _, _ := strings.Cut(n.raft, ":")
	return host + ":8301"
}

func (n *dockerNode) logs() string {
	var buf bytes.Buffer
	_ = n.b.pool.Client.Logs(dc.LogsOptions{Container: n.id, OutputStream: &buf, ErrorStream: &buf, Stdout: true, Stderr: true, Tail: "200"})
	return buf.String()
}

func (n *dockerNode) start(ctx context.Context) error {
	err := n.b.pool.Client.StartContainerWithContext(n.id, nil, ctx)
	var already *dc.ContainerAlreadyRunning
	if err != nil && !errors.As(err, &already) {
		return fmt.Errorf("integration: starting container: %w", err)
	}
	return nil
}

func (n *dockerNode) stop(ctx context.Context) error {
	_ = n.b.pool.Client.UnpauseContainer(n.id)
	err := n.b.pool.Client.StopContainerWithContext(n.id, 10, ctx)
	var notRunning *dc.ContainerNotRunning
	if err != nil && !errors.As(err, &notRunning) {
		return fmt.Errorf("integration: stopping container: %w", err)
	}
	return nil
}

func (n *dockerNode) kill(context.Context) error {
	_ = n.b.pool.Client.UnpauseContainer(n.id)
	err := n.b.pool.Client.KillContainer(dc.KillContainerOptions{ID: n.id, Signal: dc.SIGKILL})
	var notRunning *dc.ContainerNotRunning
	if err != nil && !errors.As(err, &notRunning) {
		return fmt.Errorf("integration: killing container: %w", err)
	}
	return nil
}

func (n *dockerNode) pause(context.Context) error   { return n.b.pool.Client.PauseContainer(n.id) }
func (n *dockerNode) unpause(context.Context) error { return n.b.pool.Client.UnpauseContainer(n.id) }

func (n *dockerNode) disconnect(ctx context.Context) error {
	if n.cluster == nil {
		return ErrUnsupported
	}
	return n.b.pool.Client.DisconnectNetwork(n.cluster.id, dc.NetworkConnectionOptions{Container: n.id, Force: true, Context: ctx})
}

func (n *dockerNode) reconnect(ctx context.Context) error {
	if n.cluster == nil {
		return ErrUnsupported
	}
	return n.b.pool.Client.ConnectNetwork(n.cluster.id, dc.NetworkConnectionOptions{
		Container:      n.id,
		EndpointConfig: &dc.EndpointConfig{IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: n.clusterIP}},
		Context:        ctx,
	})
}

func (n *dockerNode) remove(context.Context) error {
	_ = n.b.pool.Client.UnpauseContainer(n.id)
	err := n.b.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: n.id, Force: true, RemoveVolumes: true})
	var noSuch *dc.NoSuchContainer
	if err != nil && !errors.As(err, &noSuch) {
		return err
	}
	n.removed.Do(func() { n.b.releaseIP(n.ctlIP) })
	return nil
}
