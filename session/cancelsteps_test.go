package session_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/internal/steptest"
	"github.com/consulkit/consulkit/session"
)

var stepSeq int

func stepName() string {
	stepSeq++
	return fmt.Sprintf("steps-%d-%d", time.Now().UnixNano(), stepSeq)
}

func TestStepsNewClose(t *testing.T) {
	a := integration.Shared(t)
	plain := a.Client(t)
	c, st := steptest.Client(t, a)
	for _, phase := range []string{"new", "close"} {
		t.Run(phase, func(t *testing.T) {
			steptest.Each(t, 10, func(t *testing.T, mode steptest.Mode, n int) bool {
				name := stepName()
				leaks := steptest.LeakCheck(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if phase == "new" {
					st.Arm(n, mode, cancel, nil)
				}
				s, err := session.New(ctx, c, session.WithName(name), session.WithLockDelay(0))
				hit, log := "", []string(nil)
				if phase == "new" {
					hit, log = st.Disarm()
					if err == nil {
						if ids := integration.SessionsNamed(t, plain, name); len(ids) != 1 || ids[0] != s.ID() {
							t.Errorf("New succeeded, sessions %v", ids)
						}
						if ctx.Err() != nil {
							t.Logf("NOTE: success although ctx was cancelled (fault %s at %s)", mode, hit)
						}
					} else if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("ctx cancelled, error does not wrap it: %v", err)
					}
					if err == nil {
						if cerr := s.Close(context.Background()); cerr != nil {
							t.Errorf("close: %v", cerr)
						}
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					cctx, ccancel := context.WithCancel(t.Context())
					defer ccancel()
					st.Arm(n, mode, ccancel, nil)
					cerr := s.Close(cctx)
					hit, log = st.Disarm()
					ids := integration.SessionsNamed(t, plain, name)
					if cerr == nil && len(ids) != 0 {
						t.Errorf("Close succeeded but sessions %v remain (fault %s at %s)", ids, mode, hit)
					}
					if cerr != nil {
						t.Logf("NOTE: Close failed (fault %s at %s): %v; sessions %v", mode, hit, cerr, ids)
						if cerr2 := s.Close(t.Context()); cerr2 != nil {
							t.Errorf("second Close: %v", cerr2)
						}
					}
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
