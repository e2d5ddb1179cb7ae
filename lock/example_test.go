package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// A worker that must never run the nightly report twice at once.
func Example() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	s, err := session.New(ctx, client, session.WithTTL(15*time.Second), session.WithName("report-worker"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())

	l, err := lock.New(client, "jobs/nightly-report", lock.WithSession(s), lock.WithValue([]byte("worker-7")))
	if err != nil {
		log.Fatal(err)
	}
	held, err := l.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// An error here says the key may stay held until the session
		// ends (or that the lock was lost before).
		if err := l.Unlock(context.Background()); err != nil {
			log.Print(err)
		}
	}()

	// Pass the token to the store the job writes to; stop when held ends.
	tok := l.Token()
	if err := runReport(held, tok.ModifyIndex); errors.Is(context.Cause(held), lock.ErrLost) {
		log.Printf("lost the lock while running: %v", context.Cause(held))
	} else if err != nil {
		log.Print(err)
	}
}

func runReport(ctx context.Context, fence uint64) error {
	fmt.Println("running with fence", fence)
	return ctx.Err()
}

// TryLock for a job that should be skipped, not queued, when another
// worker runs it.
func ExampleLock_TryLock() {
	ctx := context.Background()
	cfg, _ := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	client, _ := api.NewClient(cfg)
	l, _ := lock.New(client, "jobs/cleanup", lock.WithSessionOptions(session.WithLockDelay(0)))
	held, err := l.TryLock(ctx)
	switch {
	case errors.Is(err, lock.ErrLocked):
		return // someone else is on it
	case err != nil:
		log.Fatal(err)
	}
	defer l.Unlock(context.Background())
	_ = held
}

// Do wraps Lock, the job and Unlock; the fencing token comes from the
// held context.
func ExampleDo() {
	ctx := context.Background()
	cfg, _ := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	client, _ := api.NewClient(cfg)
	err := lock.Do(ctx, client, "jobs/rebuild-index", func(held context.Context) error {
		tok, _ := lock.TokenFrom(held)
		return rebuildIndex(held, tok.ModifyIndex)
	})
	if errors.Is(err, lock.ErrLost) {
		log.Print("the lock was lost while the job ran: ", err)
	} else if err != nil {
		log.Print(err)
	}
}

func rebuildIndex(context.Context, uint64) error { return nil }

// GuardedPut writes to Consul only while the lock is still held: Consul
// checks it in the same transaction.
func ExampleLock_GuardedPut() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	l, err := lock.New(client, "jobs/leader-config")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := l.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := l.Unlock(context.Background()); err != nil {
			log.Print(err)
		}
	}()
	switch err := l.GuardedPut(ctx, &api.KVPair{Key: "config/active", Value: []byte("v2")}); {
	case errors.Is(err, lock.ErrLost):
		log.Print("not written: the lock was lost")
	case err != nil:
		log.Print("not written: ", err)
	}
}
