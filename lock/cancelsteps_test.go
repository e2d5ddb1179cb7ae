package lock_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/internal/steptest"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

var stepSeq int

func stepName(t *testing.T) string {
	stepSeq++
	return fmt.Sprintf("steps-%d-%d", time.Now().UnixNano(), stepSeq)
}

// checkAcquired checks what Lock or TryLock returned under a fault.
func checkAcquired(t *testing.T, plain *api.Client, l *lock.Lock, ctx context.Context, mode steptest.Mode, hit string, held context.Context, err error) {
	t.Helper()
	if err == nil {
		tok := l.Token()
		if tok.IsZero() || held.Err() != nil {
			t.Errorf("success without a live holding (fault at %s): token %+v, held %v", hit, tok, held.Err())
			return
		}
		if got := steptest.Holder(t, plain, l.Key()); got != tok.Session {
			t.Errorf("success, but key held by %q, not %q (fault at %s)", got, tok.Session, hit)
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
}

func TestStepsLockOwnSession(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
		leaks := steptest.LeakCheck(t)
		k := key(t)
		name := stepName(t)
		l, err := lock.New(c, k, lock.WithSessionOptions(session.WithLockDelay(0), session.WithName(name)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		st.Arm(n, mode, cancel, nil)
		held, err := l.Lock(ctx)
		hit, log := st.Disarm()
		checkAcquired(t, plain, l, ctx, mode, hit, held, err)
		if err == nil {
			if uerr := l.Unlock(context.Background()); uerr != nil {
				t.Errorf("unlock: %v", uerr)
			}
		}
		steptest.KeyNotHeld(t, plain, k)
		if !steptest.LostCreate(mode, hit) { // documented: lapses at its TTL
			steptest.NoSessionNamed(t, plain, name)
		}
		leaks()
		if t.Failed() {
			t.Logf("requests: %q; err %v", log, err)
		}
		return hit != ""
	})
}

func TestStepsTryLockCallerSession(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
		k := key(t)
		s := integration.NewSession(t, c, session.WithLockDelay(0))
		leaks := steptest.LeakCheck(t)
		anyHit := false // stop once neither call sends n requests
		for _, try := range []bool{true, false} {
			l, err := lock.New(c, k, lock.WithSession(s))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			st.Arm(n, mode, cancel, nil)
			var held context.Context
			if try {
				held, err = l.TryLock(ctx)
			} else {
				held, err = l.Lock(ctx)
			}
			hit, log := st.Disarm()
			anyHit = anyHit || hit != ""
			checkAcquired(t, plain, l, ctx, mode, hit, held, err)
			if err == nil {
				if uerr := l.Unlock(context.Background()); uerr != nil {
					t.Errorf("unlock: %v", uerr)
				}
			}
			cancel()
			steptest.KeyNotHeld(t, plain, k)
			if t.Failed() {
				t.Logf("try %v requests: %q; err %v", try, log, err)
				return anyHit
			}
		}
		leaks()
		return anyHit
	})
}

func TestStepsUnlock(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, own := range []bool{true, false} {
		t.Run(fmt.Sprintf("own=%v", own), func(t *testing.T) {
			steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
				k := key(t)
				name := stepName(t)
				opts := []lock.Option{lock.WithSessionOptions(session.WithLockDelay(0), session.WithName(name))}
				var s *session.Session
				if !own {
					s = integration.NewSession(t, c, session.WithLockDelay(0), session.WithName(name))
					opts = []lock.Option{lock.WithSession(s)}
				}
				leaks := steptest.LeakCheck(t)
				l, err := lock.New(c, k, opts...)
				if err != nil {
					t.Fatal(err)
				}
				held, err := l.Lock(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				tok := l.Token()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				st.Arm(n, mode, cancel, nil)
				uerr := l.Unlock(ctx)
				hit, log := st.Disarm()
				if held.Err() == nil {
					t.Errorf("held context alive after Unlock (%v)", uerr)
				}
				holder := steptest.Holder(t, plain, k)
				switch {
				case uerr == nil && holder != "":
					t.Errorf("Unlock succeeded but key held by %s (fault %s at %s)", holder, mode, hit)
				case uerr != nil && ctx.Err() != nil && !errors.Is(uerr, context.Canceled):
					t.Logf("NOTE: ctx cancelled, Unlock error does not wrap it: %v", uerr)
				case uerr != nil && ctx.Err() == nil:
					t.Logf("NOTE: Unlock failed on fault %s at %s: %v (holder now %q, token %s)", mode, hit, uerr, holder, tok.Session)
				}
				if own {
					steptest.KeyNotHeld(t, plain, k)
					steptest.NoSessionNamed(t, plain, name)
				} else if holder != "" {
					// Documented: kept until the session ends or the
					// Lock locks again. Lock again must give a newer token.
					held2, err := l.Lock(t.Context())
					if err != nil {
						t.Errorf("relock after failed Unlock: %v", err)
					} else {
						if !l.Token().Newer(tok) {
							t.Errorf("relock token %+v not newer than %+v", l.Token(), tok)
						}
						_ = held2
						if err := l.Unlock(t.Context()); err != nil {
							t.Errorf("second unlock: %v", err)
						}
					}
					steptest.KeyNotHeld(t, plain, k)
				}
				// The Lock must be usable again.
				if _, err := l.TryLock(t.Context()); err != nil {
					t.Errorf("TryLock after Unlock: %v", err)
				} else if err := l.Unlock(t.Context()); err != nil {
					t.Errorf("unlock 3: %v", err)
				}
				if s != nil {
					_ = s.Close(t.Context())
				}
				steptest.NoSessionNamed(t, plain, name)
				leaks()
				if t.Failed() {
					t.Logf("requests: %q; err %v", log, uerr)
				}
				return hit != ""
			})
		})
	}
}

// TestUnlockDestroysOwnSessionDespiteATransientFailure: the destroy of the
// session a Lock made for itself fails once (a reset connection); Unlock
// reports success, so the session must still be gone: nobody else can
// close it.
func TestUnlockDestroysOwnSessionDespiteATransientFailure(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, ht := a.HookedClient(t)
	name := stepName(t)
	l, err := lock.New(c, key(t), lock.WithSessionOptions(session.WithLockDelay(0), session.WithName(name)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	ht.Set(steptest.FailFirst("/v1/session/destroy/"))
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	steptest.KeyNotHeld(t, plain, key(t))
	if ids := integration.SessionsNamed(t, plain, name); len(ids) != 0 {
		t.Errorf("Unlock succeeded, but the Lock's own session is still there: %v", ids)
		for _, id := range ids {
			_, _ = plain.Session().Destroy(context.Background(), id, nil)
		}
	}
}

// TestStepsLockContended: Lock waits for a key another session holds,
// which is then invalidated (a lock-delay of 1s follows) or released; a
// fault at each step.
func TestStepsLockContended(t *testing.T) {
	steptest.Slow(t)
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, destroy := range []bool{false, true} {
		t.Run(fmt.Sprintf("destroy=%v", destroy), func(t *testing.T) {
			steptest.Each(t, 20, func(t *testing.T, mode steptest.Mode, n int) bool {
				k := key(t)
				other, err := session.New(t.Context(), plain, session.WithLockDelay(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close(context.Background())
				ol, _ := lock.New(plain, k, lock.WithSession(other))
				if _, err := ol.Lock(t.Context()); err != nil {
					t.Fatal(err)
				}
				s := integration.NewSession(t, c, session.WithLockDelay(0))
				leaks := steptest.LeakCheck(t)
				l, _ := lock.New(c, k, lock.WithSession(s))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				st.Arm(n, mode, cancel, nil)
				go func() {
					time.Sleep(300 * time.Millisecond)
					if destroy {
						_ = other.Close(context.Background())
					} else {
						_ = ol.Unlock(context.Background())
					}
				}()
				held, err := l.Lock(ctx)
				hit, log := st.Disarm()
				checkAcquired(t, plain, l, ctx, mode, hit, held, err)
				if err == nil {
					if uerr := l.Unlock(context.Background()); uerr != nil {
						t.Errorf("unlock: %v", uerr)
					}
				}
				time.Sleep(400 * time.Millisecond)
				steptest.KeyNotHeld(t, plain, k)
				_ = s.Close(t.Context())
				_ = other.Close(t.Context())
				leaks()
				if t.Failed() {
					t.Logf("requests: %q; err %v", log, err)
				}
				return hit != ""
			})
		})
	}
}
