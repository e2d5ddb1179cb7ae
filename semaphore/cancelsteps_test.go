package semaphore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/internal/steptest"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

var stepSeq int

func stepName() string {
	stepSeq++
	return fmt.Sprintf("steps-%d-%d", time.Now().UnixNano(), stepSeq)
}

// slots returns the contender keys under prefix (session IDs, with their
// holder) and the holders listed in the coordination key.
func slots(t *testing.T, c *api.Client, prefix string) (contenders map[string]string, listed map[string]bool) {
	t.Helper()
	pairs, _, err := c.KV().List(context.Background(), prefix+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	contenders = map[string]string{}
	for _, p := range pairs {
		name := strings.TrimPrefix(p.Key, prefix+"/")
		if name == semaphore.LockKey {
			var st struct{ Holders map[string]bool }
			if err := json.Unmarshal(p.Value, &st); err != nil {
				t.Fatalf("coordination key: %v: %q", err, p.Value)
			}
			listed = st.Holders
			continue
		}
		contenders[name] = p.Session
	}
	return contenders, listed
}

// checkFree fails t unless the semaphore has no holder and no contender.
func checkFree(t *testing.T, c *api.Client, prefix, what string) {
	t.Helper()
	contenders, listed := slots(t, c, prefix)
	if len(contenders) != 0 {
		t.Errorf("%s: contender keys left: %v", what, contenders)
	}
	for sid := range listed {
		t.Logf("NOTE %s: coordination key still lists %s (dead: no contender key)", what, sid)
	}
}

func checkSlotHeld(t *testing.T, plain *api.Client, prefix string, ctx, held context.Context, mode steptest.Mode, hit string, err error) {
	t.Helper()
	contenders, listed := slots(t, plain, prefix)
	if err == nil {
		if held.Err() != nil {
			t.Errorf("success with a held context already ended: %v", context.Cause(held))
		}
		if len(contenders) != 1 {
			t.Errorf("success, but contenders %v (fault %s at %s)", contenders, mode, hit)
		}
		for sid, h := range contenders {
			if h != sid || !listed[sid] {
				t.Errorf("success, but contender %s held by %q, listed %v (fault %s at %s)", sid, h, listed[sid], mode, hit)
			}
		}
		if ctx.Err() != nil {
			t.Logf("NOTE: success although ctx was cancelled (fault %s at %s)", mode, hit)
		}
		return
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("ctx cancelled (fault at %s), but error does not wrap it: %v", hit, err)
	}
	if ctx.Err() == nil && hit != "" {
		t.Logf("NOTE: failed on a transient fault %s at %s: %v", mode, hit, err)
	}
	checkFree(t, plain, prefix, "after a failed acquire")
}

func TestStepsAcquire(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, own := range []bool{true, false} {
		for _, try := range []bool{false, true} {
			t.Run(fmt.Sprintf("own=%v/try=%v", own, try), func(t *testing.T) {
				steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
					prefix := semPrefix(t)
					name := stepName()
					opts := []semaphore.Option{semaphore.WithSessionOptions(session.WithLockDelay(0), session.WithName(name))}
					if !own {
						s := integration.NewSession(t, c, session.WithLockDelay(0), session.WithName(name))
						opts = []semaphore.Option{semaphore.WithSession(s)}
					}
					leaks := steptest.LeakCheck(t)
					sem, err := semaphore.New(c, prefix, 2, opts...)
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					st.Arm(n, mode, cancel, nil)
					var held context.Context
					if try {
						held, err = sem.TryAcquire(ctx)
					} else {
						held, err = sem.Acquire(ctx)
					}
					hit, log := st.Disarm()
					checkSlotHeld(t, plain, prefix, ctx, held, mode, hit, err)
					if err == nil {
						if rerr := sem.Release(context.Background()); rerr != nil {
							t.Errorf("release: %v", rerr)
						}
						checkFree(t, plain, prefix, "after release")
					}
					if own && !steptest.LostCreate(mode, hit) {
						steptest.NoSessionNamed(t, plain, name)
					}
					// Usable again.
					if _, err := sem.TryAcquire(t.Context()); err != nil {
						t.Errorf("TryAcquire afterwards: %v", err)
					} else if err := sem.Release(t.Context()); err != nil {
						t.Errorf("release afterwards: %v", err)
					}
					if own && !steptest.LostCreate(mode, hit) {
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
}

func TestStepsRelease(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("own=%v", own), func(t *testing.T) {
			steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
				prefix := semPrefix(t)
				name := stepName()
				opts := []semaphore.Option{semaphore.WithSessionOptions(session.WithLockDelay(0), session.WithName(name))}
				var s *session.Session
				if !own {
					s = integration.NewSession(t, c, session.WithLockDelay(0), session.WithName(name))
					opts = []semaphore.Option{semaphore.WithSession(s)}
				}
				leaks := steptest.LeakCheck(t)
				sem, err := semaphore.New(c, prefix, 2, opts...)
				if err != nil {
					t.Fatal(err)
				}
				held, err := sem.Acquire(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				st.Arm(n, mode, cancel, nil)
				rerr := sem.Release(ctx)
				hit, log := st.Disarm()
				if held.Err() == nil {
					t.Errorf("held alive after Release")
				}
				contenders, _ := slots(t, plain, prefix)
				switch {
				case rerr == nil && len(contenders) != 0:
					t.Errorf("Release succeeded but contenders %v (fault %s at %s)", contenders, mode, hit)
				case rerr != nil && ctx.Err() == nil:
					t.Logf("NOTE: Release failed on fault %s at %s: %v (contenders %v)", mode, hit, rerr, contenders)
				case rerr != nil:
					t.Logf("NOTE: Release with ctx cancelled: %v (contenders %v)", rerr, contenders)
				}
				if own {
					checkFree(t, plain, prefix, "own session after Release")
					steptest.NoSessionNamed(t, plain, name)
				}
				if _, err := sem.TryAcquire(t.Context()); err != nil {
					t.Errorf("TryAcquire afterwards: %v", err)
				} else if err := sem.Release(t.Context()); err != nil {
					t.Errorf("release afterwards: %v", err)
				}
				checkFree(t, plain, prefix, "after the second release")
				if s != nil {
					_ = s.Close(t.Context())
				}
				steptest.NoSessionNamed(t, plain, name)
				leaks()
				if t.Failed() {
					t.Logf("requests: %q; err %v", log, rerr)
				}
				return hit != ""
			})
		})
	}
}

// TestReleaseDestroysOwnSessionDespiteATransientFailure: as the lock's
// test of the same name, for a Semaphore's own session.
func TestReleaseDestroysOwnSessionDespiteATransientFailure(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, ht := a.HookedClient(t)
	name := stepName()
	prefix := semPrefix(t)
	sem, err := semaphore.New(c, prefix, 1, semaphore.WithSessionOptions(session.WithLockDelay(0), session.WithName(name)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sem.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	ht.Set(steptest.FailFirst("/v1/session/destroy/"))
	if err := sem.Release(t.Context()); err != nil {
		t.Fatalf("release: %v", err)
	}
	checkFree(t, plain, prefix, "after Release")
	if ids := integration.SessionsNamed(t, plain, name); len(ids) != 0 {
		t.Errorf("Release succeeded, but the Semaphore's own session is still there: %v", ids)
		for _, id := range ids {
			_, _ = plain.Session().Destroy(context.Background(), id, nil)
		}
	}
}

// TestStepsAcquireContended: Acquire waits for the only slot, which its
// holder releases (or loses, its session destroyed) a moment later; a
// fault at each step.
func TestStepsAcquireContended(t *testing.T) {
	steptest.Slow(t)
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, destroy := range []bool{false, true} {
		t.Run(fmt.Sprintf("destroy=%v", destroy), func(t *testing.T) {
			steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
				prefix := semPrefix(t)
				other, err := session.New(t.Context(), plain, session.WithLockDelay(0), session.WithBehavior(session.Delete))
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close(context.Background())
				os, _ := semaphore.New(plain, prefix, 1, semaphore.WithSession(other))
				if _, err := os.Acquire(t.Context()); err != nil {
					t.Fatal(err)
				}
				s := integration.NewSession(t, c, session.WithLockDelay(0))
				leaks := steptest.LeakCheck(t)
				sem, _ := semaphore.New(c, prefix, 1, semaphore.WithSession(s))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				st.Arm(n, mode, cancel, nil)
				go func() {
					time.Sleep(300 * time.Millisecond)
					if destroy {
						_ = other.Close(context.Background())
					} else {
						_ = os.Release(context.Background())
					}
				}()
				held, err := sem.Acquire(ctx)
				hit, log := st.Disarm()
				time.Sleep(400 * time.Millisecond)
				_ = other.Close(context.Background())
				checkSlotHeld(t, plain, prefix, ctx, held, mode, hit, err)
				if err == nil {
					if rerr := sem.Release(context.Background()); rerr != nil {
						t.Errorf("release: %v", rerr)
					}
				}
				checkFree(t, plain, prefix, "at the end")
				_ = s.Close(t.Context())
				leaks()
				if t.Failed() {
					t.Logf("requests: %q; err %v", log, err)
				}
				return hit != ""
			})
		})
	}
}
