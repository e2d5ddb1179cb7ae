package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// node is one agent started by a backend.
type node interface {
	start(ctx context.Context) error
	stop(ctx context.Context) error
	kill(ctx context.Context) error
	pause(ctx context.Context) error
	unpause(ctx context.Context) error
	disconnect(ctx context.Context) error
	reconnect(ctx context.Context) error
	remove(ctx context.Context) error
	// raftAddr is the address other servers and /v1/status/leader know
	// this server by.
	raftAddr() string
	// serfAddr is the node's Serf LAN address.
	serfAddr() string
	// alive returns errExited when the node has stopped by itself.
	alive() error
	logs() string
}

// backend starts agents in one mode.
type backend interface {
	startDev(ctx context.Context, spec agentSpec) (*Agent, error)
	startCluster(ctx context.Context, n int) (*Cluster, error)
	// close removes what the backend itself created (networks).
	close(ctx context.Context) error
}

var (
	backendsMu sync.Mutex
	backends   = map[Mode]backend{}
)

// getBackend returns the process-wide backend of mode m, creating it (and
// removing leftovers of killed earlier runs) on first use.
func getBackend(ctx context.Context, m Mode) (backend, error) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if b, ok := backends[m]; ok {
		return b, nil
	}
	var (
		b   backend
		err error
	)
	switch m {
	case ModeDocker:
		b, err = newDockerBackend(ctx)
	case ModeProcess:
		b, err = newProcessBackend(ctx)
	default:
		return nil, fmt.Errorf("integration: cannot start agents in %s mode", m)
	}
	if err == nil {
		if rerr := startReaper(); rerr != nil {
			fmt.Fprintf(os.Stderr, "integration: %v (what this run starts is removed by the next run if it crashes)\n", rerr)
		}
	}
	if err != nil {
		return nil, err
	}
	backends[m] = b
	return b, nil
}

// closeBackends closes every backend created by this process.
func closeBackends(ctx context.Context) error {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	var errs []error
	for m, b := range backends {
		errs = append(errs, b.close(ctx))
		delete(backends, m)
	}
	stopReaper(ctx)
	return errors.Join(errs...)
}

// ownerLabel values identify the process that started something, so that a
// later run can tell leftovers of a dead process from the live work of a
// concurrent one.
func ownerPID() string { return strconv.Itoa(os.Getpid()) }

func hostID() string {
	h, _ := os.Hostname()
	return h
}

// processAlive reports whether a process with the given PID exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// freePort returns a loopback port free for both TCP and UDP (Serf uses
// both) at the time of the call.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return port, nil
	}
	return 0, errors.New("integration: no free port")
}

// ringBuffer keeps the last bytes written to it, for logs of failed starts.
type ringBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (r *ringBuffer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Write(p)
	if over := r.buf.Len() - r.max; over > 0 {
		r.buf.Next(over)
	}
	return len(p), nil
}

func (r *ringBuffer) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// aclHCL is the agent configuration of ACLs with default deny and a known
// management token.
func aclHCL(token string) string {
	return fmt.Sprintf(`acl { enabled = true default_policy = "deny" tokens { initial_management = %q agent = %q } }`, token, token)
}
