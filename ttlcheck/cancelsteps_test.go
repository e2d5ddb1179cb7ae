package ttlcheck_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/internal/steptest"
	"github.com/consulkit/consulkit/ttlcheck"
)

// TestStepsRun: each request of a Run (registration, beats, the
// deregistration that follows ctx's end) cancelled or failed in turn; Run
// must return ctx.Err() and leave no check or service on the agent.
func TestStepsRun(t *testing.T) {
	steptest.Slow(t)
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, svc := range []bool{false, true} {
		for _, phase := range []string{"run", "deregister"} {
			t.Run(fmt.Sprintf("service=%v/%s", svc, phase), func(t *testing.T) {
				seq := 0
				steptest.Each(t, 6, func(t *testing.T, mode steptest.Mode, n int) bool {
					seq++
					id := uniq(t, fmt.Sprint(seq))
					check := ttlcheck.Check{ID: id, Name: id, TTL: 3 * time.Second}
					var hb *ttlcheck.Heartbeat
					var err error
					if svc {
						hb, err = ttlcheck.NewService(c, &api.AgentServiceRegistration{ID: id + "-svc", Name: id + "-svc"}, check, ttlcheck.WithInterval(300*time.Millisecond))
					} else {
						hb, err = ttlcheck.New(c, check, ttlcheck.WithInterval(300*time.Millisecond))
					}
					if err != nil {
						t.Fatal(err)
					}
					leaks := steptest.LeakCheck(t)
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					if phase == "run" {
						st.Arm(n, mode, cancel, nil)
					}
					done := make(chan error, 1)
					go func() { done <- hb.Run(ctx) }()
					if phase == "run" {
						// A fault that does not cancel is followed by the
						// end of ctx a moment later.
						time.Sleep(1500 * time.Millisecond)
						cancel()
					} else {
						time.Sleep(700 * time.Millisecond)
						st.Arm(n, mode, func() {}, nil)
						cancel()
					}
					var rerr error
					select {
					case rerr = <-done:
					case <-time.After(30 * time.Second):
						t.Fatal("Run did not return")
					}
					hit, log := st.Disarm()
					if !errors.Is(rerr, context.Canceled) {
						t.Errorf("Run returned %v (fault %s at %s)", rerr, mode, hit)
					}
					time.Sleep(1200 * time.Millisecond) // a late registration
					checks, _, err := plain.Agent().Checks(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					services, _, err := plain.Agent().Services(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					if _, ok := checks[id]; ok {
						t.Errorf("check %s left on the agent (fault %s at %s; Run: %v)", id, mode, hit, rerr)
						_, _ = plain.Agent().CheckDeregister(context.Background(), id, nil)
					}
					if _, ok := services[id+"-svc"]; ok {
						t.Errorf("service left on the agent (fault %s at %s; Run: %v)", mode, hit, rerr)
						_, _ = plain.Agent().ServiceDeregister(context.Background(), id+"-svc", nil)
					}
					leaks()
					if t.Failed() {
						t.Logf("requests: %q; err %v", log, rerr)
					}
					return hit != ""
				})
			})
		}
	}
}
