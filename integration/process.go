package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/consulkit/consulkit/api"
)

// processBackend runs agents as child processes on loopback ports.
type processBackend struct {
	bin      string
	stateDir string // one record per running process, for leftover removal
}

func newProcessBackend(ctx context.Context) (*processBackend, error) {
	bin, err := ConsulBinary(ctx)
	if err != nil {
		return nil, err
	}
	dir := processStateDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("integration: state dir: %w", err)
	}
	b := &processBackend{bin: bin, stateDir: dir}
	b.removeLeftovers()
	return b, nil
}

// procRecord is what a run writes down about each process it starts.
type procRecord struct {
	Owner   int
	PID     int
	DataDir string
}

// removeLeftovers kills processes and removes data directories recorded by
// runs whose test process is gone.
func (b *processBackend) removeLeftovers() {
	files, _ := filepath.Glob(filepath.Join(b.stateDir, "*.json"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r procRecord
		if json.Unmarshal(raw, &r) != nil || processAlive(r.Owner) {
			continue
		}
		if r.PID > 0 && isOurConsul(r.PID, r.Owner) {
			_ = syscall.Kill(-r.PID, syscall.SIGKILL)
			_ = syscall.Kill(r.PID, syscall.SIGKILL)
		}
		if r.DataDir != "" {
			_ = os.RemoveAll(r.DataDir)
		}
		_ = os.Remove(f)
	}
}

// isOurConsul reports whether pid runs a consul agent that the harness
// started for the test process owner: its command line carries the
// harness marker with owner's PID, so a PID reused by another run's agent
// is left alone.
func isOurConsul(pid, owner int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "consulkit-harness:"+strconv.Itoa(owner)+"\x00")
}

func (b *processBackend) close(context.Context) error { return nil }

type procPorts struct{ http, grpc, grpcTLS, serfLAN, serfWAN, server int }

func allocPorts() (procPorts, error) {
	var p procPorts
	for _, dst := range []*int{&p.http, &p.grpc, &p.grpcTLS, &p.serfLAN, &p.serfWAN, &p.server} {
		port, err := freePort()
		if err != nil {
			return p, err
		}
		*dst = port
	}
	return p, nil
}

func (p procPorts) args() []string {
	return []string{
		"-client", "127.0.0.1", "-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(p.http),
		"-grpc-port", strconv.Itoa(p.grpc), "-grpc-tls-port", strconv.Itoa(p.grpcTLS),
		"-dns-port", "-1",
		"-serf-lan-port", strconv.Itoa(p.serfLAN),
		"-serf-wan-port", strconv.Itoa(p.serfWAN),
		"-server-port", strconv.Itoa(p.server),
	}
}

func (b *processBackend) startDev(ctx context.Context, spec agentSpec) (*Agent, error) {
	ports, err := allocPorts()
	if err != nil {
		return nil, err
	}
	args := append([]string{"agent", "-dev", "-node", spec.name, "-log-level", "warn",
		"-node-meta", "consulkit-harness:" + ownerPID()}, ports.args()...)
	a := &Agent{Addr: "127.0.0.1:" + strconv.Itoa(ports.http), Name: spec.name, Mode: ModeProcess}
	if spec.acl {
		a.Token = newToken()
		args = append(args, "-hcl", aclHCL(a.Token))
	}
	args = append(args, spec.args()...)
	n := &procNode{b: b, args: args, raft: "127.0.0.1:" + strconv.Itoa(ports.server), serf: "127.0.0.1:" + strconv.Itoa(ports.serfLAN), http: a.Addr, logBuf: &ringBuffer{max: 16 << 10}}
	a.node = n
	if err := n.start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func (b *processBackend) startCluster(ctx context.Context, size int) (*Cluster, error) {
	ports := make([]procPorts, size)
	for i := range ports {
		p, err := allocPorts()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	cl := &Cluster{Mode: ModeProcess}
	for i := range size {
		dir, err := os.MkdirTemp("", "consulkit-server-")
		if err != nil {
			_ = cl.Close(ctx)
			return nil, err
		}
		name := fmt.Sprintf("server-%d-%s", i, randomSuffix())
		args := append([]string{"agent", "-server", "-bootstrap-expect", strconv.Itoa(size),
			"-node", name, "-data-dir", dir, "-log-level", "warn",
			"-node-meta", "consulkit-harness:" + ownerPID(),
			"-hcl", "performance { raft_multiplier = 1 }",
			"-hcl", "leave_on_terminate = false",
		}, ports[i].args()...)
		for j := range size {
			if j != i {
				args = append(args, "-retry-join", "127.0.0.1:"+strconv.Itoa(ports[j].serfLAN))
			}
		}
		n := &procNode{b: b, args: args, dataDir: dir, raft: "127.0.0.1:" + strconv.Itoa(ports[i].server), serf: "127.0.0.1:" + strconv.Itoa(ports[i].serfLAN), http: "127.0.0.1:" + strconv.Itoa(ports[i].http), logBuf: &ringBuffer{max: 16 << 10}}
		cl.Servers = append(cl.Servers, &Agent{Addr: "127.0.0.1:" + strconv.Itoa(ports[i].http), Name: name, Mode: ModeProcess, node: n})
		if err := n.start(ctx); err != nil {
			_ = cl.Close(ctx)
			return nil, err
		}
	}
	return cl, nil
}

// procNode is one agent process. Start after Stop reuses its ports and
// data directory.
type procNode struct {
	b       *processBackend
	args    []string
	dataDir string
	raft    string
	serf    string
	http    string
	logBuf  *ringBuffer
	started bool // start has run before: a start now is a restart

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	record string
}

func (n *procNode) raftAddr() string { return n.raft }
func (n *procNode) serfAddr() string { return n.serf }

func (n *procNode) alive() error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return nil
	}
	select {
	case <-exited:
		return errExited
	default:
		return nil
	}
}
func (n *procNode) logs() string { return n.logBuf.String() }

// start starts the process. The first start returns at once: StartAgent
// and StartCluster wait for the node and, when it exits because a port
// was taken, start over on other ports. A start after stop must keep the
// node's ports, and one of them may have been taken meanwhile (by another
// test's listener, or as the local port of an outgoing connection):
// Consul then exits at once. Such a start waits until the node listens,
// and tries again, for a few seconds, while the port is in use.
func (n *procNode) start(ctx context.Context) error {
	for try := 1; ; try++ {
		restart, err := n.startOnce()
		if err != nil || !restart {
			return err
		}
		err = n.waitListening(ctx)
		if err == nil || !errors.Is(err, errExited) || try == 10 ||
			!strings.Contains(n.logs(), "address already in use") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// waitListening waits until the node answers HTTP (Consul opens that port
// after its others), or has exited. An answer is asked for, not just a
// connection: whoever took the port may be listening on it.
func (n *procNode) waitListening(ctx context.Context) error {
	cfg := api.DefaultConfig()
	cfg.Address = n.http
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	return waitFor(ctx, 60*time.Second, func(ctx context.Context) error {
		if err := n.alive(); err != nil {
			return err
		}
		_, err := c.Status().Leader(ctx, nil)
		return err
	})
}

// startOnce starts the process unless it is running, and reports whether
// it had run before. A process that exited by itself is started again.
func (n *procNode) startOnce() (restart bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.exited:
			n.cmd = nil
		default:
			return false, nil
		}
	}
	restart = n.started
	n.started = true
	// The consulkit-harness node-meta argument lets a later run recognise
	// a leftover process.
	cmd := exec.Command(n.b.bin, n.args...)
	cmd.Stdout = n.logBuf
	cmd.Stderr = n.logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return restart, fmt.Errorf("integration: starting consul: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	rec, _ := json.Marshal(procRecord{Owner: os.Getpid(), PID: cmd.Process.Pid, DataDir: n.dataDir})
	old := n.record
	n.record = filepath.Join(n.b.stateDir, fmt.Sprintf("%d-%d.json", os.Getpid(), cmd.Process.Pid))
	_ = os.WriteFile(n.record, rec, 0o644)
	if old != "" && old != n.record {
		_ = os.Remove(old) // written over by the new record
	}
	return restart, nil
}

// processGone updates the record once the process has exited (n.mu
// held). A data directory kept for a restart stays recorded, without a
// process, until remove deletes it: a run that dies in between leaves it
// to the next run or its reaper.
func (n *procNode) processGone() {
	if n.dataDir == "" {
		_ = os.Remove(n.record)
		return
	}
	rec, _ := json.Marshal(procRecord{Owner: os.Getpid(), DataDir: n.dataDir})
	_ = os.WriteFile(n.record, rec, 0o644)
}

// signalAndWait sends sig and waits for the process to exit, escalating to
// SIGKILL after a grace period.
func (n *procNode) signalAndWait(ctx context.Context, sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	// Signalled through os.Process, which holds a pidfd: a process that
	// exited by itself and was reaped is never confused with another that
	// got its PID since (the signal then fails with os.ErrProcessDone).
	p := n.cmd.Process
	_ = p.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	_ = p.Signal(sig)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-n.exited:
	case <-t.C:
		_ = p.Kill()
		<-n.exited
	case <-ctx.Done():
		_ = p.Kill()
		<-n.exited
	}
	n.cmd = nil
	n.processGone()
	return nil
}

func (n *procNode) stop(ctx context.Context) error { return n.signalAndWait(ctx, syscall.SIGTERM) }
func (n *procNode) kill(ctx context.Context) error { return n.signalAndWait(ctx, syscall.SIGKILL) }

func (n *procNode) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return errors.New("integration: agent is not running")
	}
	return n.cmd.Process.Signal(sig) // see signalAndWait
}

// pause stops the process and returns once every one of its threads has
// stopped: kill(2) returns as soon as the signal is queued, and a thread
// already running could still answer a request.
func (n *procNode) pause(ctx context.Context) error {
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	n.mu.Lock()
	pid := n.cmd.Process.Pid
	n.mu.Unlock()
	return waitFor(ctx, 10*time.Second, func(context.Context) error { return allStopped(pid) })
}

// allStopped returns nil when every thread of pid is in the stopped state.
func allStopped(pid int) error {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("integration: no threads of process %d", pid)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		// The state follows the command name in parentheses: "pid (comm) S ...".
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return fmt.Errorf("integration: unreadable %s", t)
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return fmt.Errorf("integration: thread %s not stopped yet (%c)", t, st)
		}
	}
	return nil
}
func (n *procNode) unpause(context.Context) error { return n.signal(syscall.SIGCONT) }

// disconnect and reconnect need a network of the agent's own, which a
// process on loopback does not have.
func (n *procNode) disconnect(context.Context) error { return ErrUnsupported }
func (n *procNode) reconnect(context.Context) error  { return ErrUnsupported }

func (n *procNode) remove(ctx context.Context) error {
	err := n.kill(ctx)
	if n.dataDir != "" {
		_ = os.RemoveAll(n.dataDir)
	}
	n.mu.Lock()
	if n.record != "" {
		_ = os.Remove(n.record)
	}
	n.mu.Unlock()
	return err
}
