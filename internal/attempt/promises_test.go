package attempt

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
)

// The caller's own deadline passing is the caller's context ending, not
// the attempt running out: Err keeps its error (not retryable), although
// the attempt's context then also reports DeadlineExceeded.
func TestErrCallerDeadlineIsNotAnAttemptTimeout(t *testing.T) {
	ctx, cancelCtx := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelCtx()
	actx, cancel := Context(ctx)
	defer cancel()
	<-actx.Done()
	err := Err(ctx, actx, context.DeadlineExceeded)
	if TimedOut(err) || api.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v (timed out %v, retryable %v)", err, TimedOut(err), api.IsRetryable(err))
	}
}
