package integration

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consulkit/consulkit/api"
)

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Context() context.Context
	Name() string
}

var (
	mainActive atomic.Bool

	sharedMu    sync.Mutex
	sharedAgent *Agent
	sharedErr   error
)

// LeakOptions are the goleak options Main uses: goroutines of idle HTTP
// connections in a transport's pool are not leaks. They are matched
// anywhere in the stack (an idle connection's reader is parked in a read
// below readLoop), and nothing else that waits on a socket is ignored, so
// that a leaked server, proxy or reader is still reported.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}
}

// Main runs a test package's tests, then stops the shared agent and
// everything else the harness started, then fails the run if goroutines
// leaked. Call it from TestMain.
func Main(m *testing.M) {
	mainActive.Store(true)
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := Shutdown(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "integration: cleanup: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	cancel()
	if code == 0 {
		if err := goleak.Find(LeakOptions()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Shutdown stops the shared agent and removes the networks the harness
// created. Main calls it; call it yourself only without Main.
func Shutdown(ctx context.Context) error {
	sharedMu.Lock()
	a := sharedAgent
	sharedAgent, sharedErr = nil, nil
	sharedMu.Unlock()
	var err error
	if a != nil {
		err = a.Close(ctx)
	}
	if berr := closeBackends(ctx); berr != nil && err == nil {
		err = berr
	}
	return err
}

// Shared returns the test binary's shared dev agent, starting it on first
// use: CONSUL_HTTP_ADDR in external mode, else a container or a process.
// The package must run its tests through Main, which stops it.
func Shared(tb TB) *Agent {
	tb.Helper()
	if !mainActive.Load() {
		tb.Fatalf("integration.Shared needs TestMain to call integration.Main(m)")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedAgent == nil && sharedErr == nil {
		sharedAgent, sharedErr = startShared()
	}
	if sharedErr != nil {
		tb.Fatalf("integration: shared agent: %v", sharedErr)
	}
	return sharedAgent
}

func startShared() (*Agent, error) {
	if DetectMode() == ModeExternal {
		cfg, err := api.ConfigFromEnv()
		if err != nil {
			return nil, err
		}
		addr := cfg.Address
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			addr = u.Host
		}
		addr = strings.TrimPrefix(addr, "http://")
		return &Agent{Addr: addr, Token: cfg.Token, Mode: ModeExternal, Name: "external", external: &cfg}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return StartAgent(ctx, WithName("shared-"+randomSuffix()))
}

// NewAgent starts a dev agent for one test and removes it when the test
// ends.
func NewAgent(tb TB, opts ...AgentOption) *Agent {
	tb.Helper()
	a, err := StartAgent(tb.Context(), opts...)
	if err != nil {
		tb.Fatalf("integration: %v", err)
	}
	tb.Cleanup(func() {
		if err := a.Close(context.Background()); err != nil {
			tb.Logf("integration: removing agent: %v", err)
		}
	})
	return a
}

// NewACLAgent starts a dev agent with ACLs enabled (default deny) for one
// test; its Token is the management token.
func NewACLAgent(tb TB) *Agent {
	tb.Helper()
	return NewAgent(tb, WithACL())
}

// NewCluster starts an n-server cluster for one test and removes it when
// the test ends.
func NewCluster(tb TB, n int) *Cluster {
	tb.Helper()
	cl, err := StartCluster(tb.Context(), n)
	if err != nil {
		tb.Fatalf("integration: %v", err)
	}
	tb.Cleanup(func() {
		if err := cl.Close(context.Background()); err != nil {
			tb.Logf("integration: removing cluster: %v", err)
		}
	})
	return cl
}

// WaitDone fails tb when ctx is not done within d: for tests that wait
// for a held or leading context to end.
func WaitDone(tb TB, ctx context.Context, d time.Duration) {
	tb.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		tb.Fatalf("context not done within %s", d)
	}
}

// Within runs call in a goroutine and returns its error. If call has not
// returned within d, Within runs unblock (when not nil: something that
// makes call return, so that the test ends cleanly), waits for call, and
// fails tb with what.
func Within(tb TB, d time.Duration, what string, call func() error, unblock func()) error {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	if unblock != nil {
		unblock()
		<-done
	}
	tb.Fatalf("%s (after %s)", what, d)
	return nil
}
