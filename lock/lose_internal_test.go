package lock

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/consulkit/consulkit/internal/holder"
)

// stalledReason is a loss reason whose message blocks until free is
// closed: lose formats the reason between deciding that it reports the
// loss and ending the held context, so it holds a report there, as a
// goroutine descheduled at that point would.
type stalledReason struct {
	entered, free chan struct{}
	once          sync.Once
}

func (e *stalledReason) Error() string {
	e.once.Do(func() { close(e.entered) })
	<-e.free
	return "session ended"
}

// TestLoseReturnsOnceTheHoldHasEnded: the session's end (hold's AfterFunc)
// and the watcher both report a loss, and the first counts. The watcher's
// report must not return while the first is still under way: the watcher
// then cleans up (releases a key whose session expired here, destroys an
// own session), which must come after the held context has ended.
func TestLoseReturnsOnceTheHoldHasEnded(t *testing.T) {
	l := &Lock{key: "k"}
	h := &holding{lease: &holder.Lease{}, exited: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	l.held = h

	reason := &stalledReason{entered: make(chan struct{}), free: make(chan struct{})}
	first := make(chan struct{})
	go func() {
		defer close(first)
		l.lose(h, reason) // the session's end, reported from hold's AfterFunc
	}()
	<-reason.entered
	free := time.AfterFunc(200*time.Millisecond, func() { close(reason.free) })
	defer free.Stop()

	l.lose(h, errKeyDeleted) // the watcher's report
	assert.Error(t, h.ctx.Err(), "the watcher's lose returned with the held context live: its cleanup would come before the loss is reported")
	<-first
	assert.ErrorIs(t, context.Cause(h.ctx), ErrLost)
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Nil(t, l.held)
	assert.Same(t, h, l.lost)
}
