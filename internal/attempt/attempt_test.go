package attempt

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consulkit/consulkit/api"
)

func TestErr(t *testing.T) {
	other := errors.New("refused")

	// The attempt ran out, ctx did not: retryable, and told apart.
	ctx := context.Background()
	actx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	<-actx.Done()
	err := Err(ctx, actx, context.DeadlineExceeded)
	cancel()
	if !TimedOut(err) || !api.IsRetryable(err) {
		t.Fatalf("attempt timeout: %v (timed out %v, retryable %v)", err, TimedOut(err), api.IsRetryable(err))
	}

	// ctx ended: its error is kept, not retried.
	ended, end := context.WithCancel(context.Background())
	actx, cancel = Context(ended)
	end()
	if err := Err(ended, actx, context.Canceled); !errors.Is(err, context.Canceled) || TimedOut(err) {
		t.Fatalf("ended ctx: %v", err)
	}
	cancel()

	// An answer, or no error, is passed through.
	actx, cancel = Context(ctx)
	if err := Err(ctx, actx, other); err != other {
		t.Fatalf("other error: %v", err)
	}
	if err := Err(ctx, actx, nil); err != nil {
		t.Fatalf("nil: %v", err)
	}
	cancel()
}

func TestRead(t *testing.T) {
	ctx := context.Background()
	plain, cancel := Read(ctx, 0)
	defer cancel()
	if _, ok := plain.Deadline(); !ok {
		t.Error("a plain read is not bounded")
	}
	blocking, cancel2 := Read(ctx, 7)
	defer cancel2()
	if _, ok := blocking.Deadline(); ok {
		t.Error("a blocking read got the attempt bound (the client bounds it after its wait)")
	}
}
