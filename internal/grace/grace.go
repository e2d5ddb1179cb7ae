// Package grace gives cleanup calls (a release, a session destroy) the
// context they run under.
package grace

import (
	"context"
	"time"
)

// Timeout is how long a cleanup may take when it is called with a context
// that has already ended.
const Timeout = 5 * time.Second

// Context returns the context a cleanup runs under: ctx, or, when ctx has
// already ended, a context that keeps its values and ends after Timeout. A
// release deferred with the context of work that was cancelled (a
// shutdown) must still be sent: otherwise the key stays held until the
// session ends, and the next holder waits out the lock-delay. A ctx that
// ends during the cleanup still bounds it.
func Context(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), Timeout)
}

// Wait waits for done within ctx, or within Timeout when ctx has already
// ended (an Unlock deferred past a shutdown waiting for a cleanup). It
// returns nil once done is closed, else the error of the context that ran
// out.
func Wait(ctx context.Context, done <-chan struct{}) error {
	wctx, cancel := Context(ctx)
	defer cancel()
	select {
	case <-done:
		return nil
	case <-wctx.Done():
		return wctx.Err()
	}
}
