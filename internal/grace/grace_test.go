package grace

import (
	"context"
	"testing"
	"time"
)

type key struct{}

func TestContext(t *testing.T) {
	live, stop := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx, cancel := Context(live)
	defer cancel()
	stop()
	if ctx.Err() == nil {
		t.Fatal("a live ctx must still bound the cleanup")
	}

	ended, end := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	end()
	ctx, cancel = Context(ended)
	defer cancel()
	if ctx.Err() != nil {
		t.Fatal("an ended ctx must get a fresh one")
	}
	if ctx.Value(key{}) != "v" {
		t.Fatal("values are kept")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > Timeout {
		t.Fatalf("deadline %v, want within %v", d, Timeout)
	}
}

func TestWait(t *testing.T) {
	done := make(chan struct{})
	close(done)
	if err := Wait(context.Background(), done); err != nil {
		t.Fatalf("closed: %v", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := Wait(short, make(chan struct{})); err != context.DeadlineExceeded {
		t.Fatalf("ctx runs out: %v", err)
	}
}
