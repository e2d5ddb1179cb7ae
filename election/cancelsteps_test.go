package election_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/internal/steptest"
	"github.com/consulkit/consulkit/session"
)

var stepSeq int

func stepName() string {
	stepSeq++
	return fmt.Sprintf("steps-%d-%d", time.Now().UnixNano(), stepSeq)
}

func stepElection(t *testing.T, c *api.Client, own bool, name string) (*election.Election, *session.Session) {
	t.Helper()
	var s *session.Session
	opts := []election.Option{election.WithSessionOptions(session.WithLockDelay(0), session.WithName(name))}
	if !own {
		s = integration.NewSession(t, c, session.WithLockDelay(0), session.WithName(name))
		opts = []election.Option{election.WithSession(s)}
	}
	e, err := election.New(c, electionKey(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e, s
}

func TestStepsCampaign(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("own=%v", own), func(t *testing.T) {
			steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
				name := stepName()
				e, s := stepElection(t, c, own, name)
				leaks := steptest.LeakCheck(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				st.Arm(n, mode, cancel, nil)
				leading, err := e.Campaign(ctx, []byte("v"))
				hit, log := st.Disarm()
				holder := steptest.Holder(t, plain, e.Key())
				if err == nil {
					if leading.Err() != nil || e.Token().IsZero() || holder != e.Token().Session {
						t.Errorf("Campaign succeeded without leading: %v, token %+v, holder %q", leading.Err(), e.Token(), holder)
					}
					if ctx.Err() != nil {
						t.Logf("NOTE: success although ctx was cancelled (fault %s at %s)", mode, hit)
					}
					if rerr := e.Resign(context.Background()); rerr != nil {
						t.Errorf("resign: %v", rerr)
					}
				} else {
					if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("ctx cancelled (fault %s at %s), error does not wrap it: %v", mode, hit, err)
					}
					if ctx.Err() == nil && hit != "" {
						t.Logf("NOTE: failed on a transient fault %s at %s: %v", mode, hit, err)
					}
					if rerr := e.Resign(context.Background()); !errors.Is(rerr, election.ErrNotLeader) {
						t.Errorf("Resign after a failed Campaign: %v", rerr)
					}
				}
				steptest.KeyNotHeld(t, plain, e.Key())
				if _, err := e.Campaign(t.Context(), []byte("w")); err != nil {
					t.Errorf("Campaign afterwards: %v", err)
				} else if err := e.Resign(t.Context()); err != nil {
					t.Errorf("Resign afterwards: %v", err)
				}
				if s != nil {
					_ = s.Close(t.Context())
				}
				if !steptest.LostCreate(mode, hit) {
					steptest.NoSessionNamed(t, plain, name)
				}
				leaks()
				if t.Failed() {
					t.Logf("requests: %q; err %v", log, err)
				}
				return hit != ""
			})
		})
	}
}

func TestStepsResignProclaim(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, own := range []bool{true, false} {
		for _, op := range []string{"resign", "proclaim"} {
			t.Run(fmt.Sprintf("own=%v/%s", own, op), func(t *testing.T) {
				steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
					name := stepName()
					e, s := stepElection(t, c, own, name)
					leaks := steptest.LeakCheck(t)
					leading, err := e.Campaign(t.Context(), []byte("v"))
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					st.Arm(n, mode, cancel, nil)
					if op == "resign" {
						err = e.Resign(ctx)
					} else {
						err = e.Proclaim(ctx, []byte("new"))
					}
					hit, log := st.Disarm()
					pair, _, gerr := plain.KV().Get(context.Background(), e.Key(), nil)
					if gerr != nil {
						t.Fatal(gerr)
					}
					switch op {
					case "resign":
						if leading.Err() == nil {
							t.Errorf("leading alive after Resign: %v", err)
						}
						if err == nil && pair != nil && pair.Session != "" {
							t.Errorf("Resign succeeded but key held by %s (fault %s at %s)", pair.Session, mode, hit)
						}
						if err != nil {
							t.Logf("NOTE: Resign failed (fault %s at %s, ctx %v): %v", mode, hit, ctx.Err(), err)
						}
					case "proclaim":
						if err == nil && (pair == nil || !bytes.Equal(pair.Value, []byte("new"))) {
							t.Errorf("Proclaim succeeded but key is %+v", pair)
						}
						if err == nil && leading.Err() != nil {
							t.Errorf("Proclaim succeeded but leading ended: %v", context.Cause(leading))
						}
						if err != nil && ctx.Err() != nil && !errors.Is(err, context.Canceled) {
							t.Errorf("ctx cancelled (fault %s at %s), error does not wrap it: %v", mode, hit, err)
						}
						if err != nil {
							t.Logf("NOTE: Proclaim failed (fault %s at %s, ctx %v): %v; leading %v", mode, hit, ctx.Err(), err, context.Cause(leading))
						}
						if pair == nil || pair.Session == "" {
							t.Errorf("Proclaim left the key not held: %+v", pair)
						}
						if rerr := e.Resign(context.Background()); rerr != nil {
							t.Errorf("resign: %v", rerr)
						}
					}
					if own {
						steptest.KeyNotHeld(t, plain, e.Key())
						steptest.NoSessionNamed(t, plain, name)
					}
					if _, err := e.Campaign(t.Context(), []byte("w")); err != nil {
						t.Errorf("Campaign afterwards: %v", err)
					} else if err := e.Resign(t.Context()); err != nil {
						t.Errorf("Resign afterwards: %v", err)
					}
					steptest.KeyNotHeld(t, plain, e.Key())
					if s != nil {
						_ = s.Close(t.Context())
					}
					steptest.NoSessionNamed(t, plain, name)
					leaks()
					if t.Failed() {
						t.Logf("requests: %q; err %v", log, err)
					}
					return hit != ""
				})
			})
		}
	}
}

// TestStepsRun: Run whose ctx is cancelled, or whose requests fail, at
// each step; fn returns at once, or waits for its context.
func TestStepsRun(t *testing.T) {
	steptest.Slow(t)
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("fnwaits=%v", wait), func(t *testing.T) {
			steptest.Each(t, 12, func(t *testing.T, mode steptest.Mode, n int) bool {
				name := stepName()
				e, _ := stepElection(t, c, true, name)
				leaks := steptest.LeakCheck(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				var calls int
				var sawLeader bool
				st.Arm(n, mode, cancel, nil)
				done := make(chan error, 1)
				go func() {
					done <- e.Run(ctx, []byte("v"), func(leading context.Context) error {
						calls++
						sawLeader = steptest.Holder(t, plain, e.Key()) != ""
						if wait {
							select {
							case <-leading.Done():
							case <-time.After(time.Second):
								cancel() // end it ourselves if no fault did
								<-leading.Done()
							}
						}
						return nil
					})
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(60 * time.Second):
					t.Fatal("Run did not return")
				}
				hit, log := st.Disarm()
				if calls > 0 && !sawLeader {
					t.Errorf("fn ran without the key held")
				}
				if ctx.Err() != nil && !errors.Is(err, context.Canceled) && !(err == nil && !wait) {
					t.Errorf("ctx cancelled (fault %s at %s), Run returned %v", mode, hit, err)
				}
				if ctx.Err() == nil && err != nil {
					t.Logf("NOTE: Run failed (fault %s at %s): %v", mode, hit, err)
				}
				steptest.KeyNotHeld(t, plain, e.Key())
				if !steptest.LostCreate(mode, hit) {
					steptest.NoSessionNamed(t, plain, name)
				}
				leaks()
				if t.Failed() {
					t.Logf("requests: %q; err %v calls %d", log, err, calls)
				}
				return hit != ""
			})
		})
	}
}

// TestResignDestroysOwnSessionDespiteATransientFailure: as the lock's test
// of the same name, for an Election's own session.
func TestResignDestroysOwnSessionDespiteATransientFailure(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, ht := a.HookedClient(t)
	name := stepName()
	e, _ := stepElection(t, c, true, name)
	if _, err := e.Campaign(t.Context(), []byte("v")); err != nil {
		t.Fatal(err)
	}
	ht.Set(steptest.FailFirst("/v1/session/destroy/"))
	if err := e.Resign(t.Context()); err != nil {
		t.Fatalf("resign: %v", err)
	}
	steptest.KeyNotHeld(t, plain, e.Key())
	if ids := integration.SessionsNamed(t, plain, name); len(ids) != 0 {
		t.Errorf("Resign succeeded, but the Election's own session is still there: %v", ids)
		for _, id := range ids {
			_, _ = plain.Session().Destroy(context.Background(), id, nil)
		}
	}
}
