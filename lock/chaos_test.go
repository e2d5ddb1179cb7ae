package lock_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/integration"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// TestMutualExclusionUnderFaults runs workers that contend for one key,
// each through a fault proxy of its own (its own network), while faults
// come and go: first short ones on any worker, then one that cuts the
// holder off for longer than its session's TTL. No two workers may ever
// believe they hold the lock at once, tokens must grow with every
// acquisition, and the holder cut off must see its loss.
//
// The margin is by design: a holder cut off reports the loss at its local
// deadline (send time of its last good renew + TTL), while Consul frees
// the key no sooner than TTL after it received that renew (it waits
// twice the TTL), so a next holder comes after.
func TestMutualExclusionUnderFaults(t *testing.T) {
	t.Parallel()
	a := integration.Shared(t)
	k := key(t)
	const workers = 3
	const ttl = 10 * time.Second
	shortPhase := 12 * time.Second

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var (
		inside     atomic.Int32
		mu         sync.Mutex
		last       lock.Token
		acquired   int
		lostHolder []error // causes of losses seen while holding
		problems   []error
	)
	problem := func(err error) { mu.Lock(); problems = append(problems, err); mu.Unlock() }
	// longHold asks the next holder to hold until it loses the lock; it
	// then says who it is on cutOff.
	var longHold atomic.Bool
	cutOff := make(chan int, 1)

	proxies := make([]*integration.FaultProxy, workers)
	var wg sync.WaitGroup
	for w := range workers {
		c, p := a.ProxiedClient(t)
		proxies[w] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for ctx.Err() == nil {
				// A session per life: one that is lost is replaced.
				s, err := session.New(ctx, c, session.WithTTL(ttl), session.WithLockDelay(0), session.WithName(fmt.Sprintf("chaos-%d", w)))
				if err != nil {
					sleepCtx(ctx, 200*time.Millisecond) // faults make this fail
					continue
				}
				l, err := lock.New(c, k, lock.WithSession(s))
				if err != nil {
					problem(err)
					return
				}
				for ctx.Err() == nil && s.Err() == nil {
					held, err := l.Lock(ctx)
					if err != nil {
						// The session's end or ctx; Lock retries faults.
						sleepCtx(ctx, 100*time.Millisecond)
						continue
					}
					if n := inside.Add(1); n != 1 {
						problem(fmt.Errorf("worker %d: %d holders at once", w, n))
					}
					tok, _ := lock.TokenFrom(held)
					mu.Lock()
					if !tok.Newer(last) {
						problems = append(problems, fmt.Errorf("worker %d: token %+v not newer than %+v", w, tok, last))
					}
					last = tok
					acquired++
					mu.Unlock()

					hold := time.Duration(rng.IntN(200)) * time.Millisecond
					if longHold.CompareAndSwap(true, false) {
						hold = 4 * ttl
						cutOff <- w
					}
					select {
					case <-time.After(hold):
					case <-held.Done():
					}
					// Leaving: from here on this worker no longer acts as
					// the holder.
					inside.Add(-1)
					if cause := context.Cause(held); errors.Is(cause, lock.ErrLost) {
						mu.Lock()
						lostHolder = append(lostHolder, cause)
						mu.Unlock()
					}
					uctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
					_ = l.Unlock(uctx) // may fail under a fault: the session's end frees the key
					cancel()
				}
				cctx, cancel := context.WithTimeout(context.Background(), 2*ttl)
				_ = s.Close(cctx)
				cancel()
			}
		}()
	}

	// Short faults on any worker: shorter than the session's deadline.
	rng := rand.New(rand.NewPCG(7, 7))
	faults := []integration.Fault{integration.Hang, integration.ServerError, integration.NoLeader}
	for end := time.Now().Add(shortPhase); time.Now().Before(end); {
		p := proxies[rng.IntN(workers)]
		p.Set(faults[rng.IntN(len(faults))])
		sleepCtx(ctx, time.Duration(300+rng.IntN(2700))*time.Millisecond)
		p.Set(integration.Pass)
		sleepCtx(ctx, 2*time.Second)
	}

	// Cut the next holder off for longer than its TTL.
	longHold.Store(true)
	var w int
	select {
	case w = <-cutOff:
	case <-time.After(time.Minute):
		t.Fatal("nobody acquired the lock after the short faults")
	}
	proxies[w].Set(integration.Hang)
	mu.Lock()
	before := acquired
	mu.Unlock()
	// Consul frees the key within twice the TTL of the last renew; then
	// another worker takes it.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acquired > before
	}, 4*ttl, 50*time.Millisecond, "nobody took over from the holder cut off")
	proxies[w].Set(integration.Pass)
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d acquisitions, losses seen while holding: %v", acquired, lostHolder)
	for _, err := range problems {
		t.Error(err)
	}
	assert.NotEmpty(t, lostHolder, "the holder cut off did not see its loss")
	assert.GreaterOrEqual(t, acquired, 10)
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
