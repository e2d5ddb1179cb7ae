// Package attempt bounds the requests that consulkit's primitives send on
// their own (a renew aside, which has its own bound): acquisitions,
// releases, destroys, plain reads.
package attempt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consulkit/consulkit/api"
)

// Timeout bounds one such request: one stuck on a connection that died
// without a reset (the kernel would retransmit for many minutes) is given
// up, and the next attempt goes out on a new connection. Consul answers a
// write in milliseconds; ten seconds is overload.
const Timeout = 10 * time.Second

// Context returns the context of one attempt under ctx.
func Context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, Timeout)
}

// Read returns the context of a read under ctx with WaitIndex waitIndex:
// a plain read (waitIndex 0) is bounded as one attempt; a blocking one is
// returned ctx as it is, as the client bounds it itself (after its wait).
func Read(ctx context.Context, waitIndex uint64) (context.Context, context.CancelFunc) {
	if waitIndex != 0 {
		return ctx, func() {}
	}
	return Context(ctx)
}

// Err is the error of a request sent under actx (from Context(ctx)): when
// actx ran out while ctx did not, a retryable error (a net.Error that timed
// out) saying so, as the request may or may not have been applied; else
// err. Call it before cancelling actx.
func Err(ctx, actx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return timedOut{}
	}
	return err
}

// TimedOut reports whether err is an attempt that Err found timed out.
func TimedOut(err error) bool { return errors.As(err, new(timedOut)) }

type timedOut struct{}

func (timedOut) Error() string   { return fmt.Sprintf("no answer within %s", Timeout) }
func (timedOut) Timeout() bool   { return true }
func (timedOut) Temporary() bool { return true }

// Txn sends ops in one transaction as one attempt under ctx (see Context
// and Err).
func Txn(ctx context.Context, c *api.Client, ops api.TxnOps, w *api.WriteOptions) (*api.TxnResponse, error) {
	actx, cancel := Context(ctx)
	defer cancel()
	resp, _, err := c.Txn().Do(actx, ops, w)
	return resp, Err(ctx, actx, err)
}
