package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/semaphore"
	"github.com/consulkit/consulkit/session"
)

// New only validates: a bad limit fails before anything is sent.
func ExampleNew() {
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	_, err = semaphore.New(client, "gpu-slots", 0)
	fmt.Println(errors.Is(err, api.ErrInvalid))
	// Output: true
}

func ExampleSemaphore_Acquire() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	// Delete, not the default release: a process that dies holding a
	// slot then leaves no contender key behind.
	s, err := session.New(ctx, client, session.WithBehavior(session.Delete))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	sem, err := semaphore.New(client, "gpu-slots", 4, semaphore.WithSession(s),
		semaphore.WithValue([]byte("trainer-7")))
	if err != nil {
		log.Fatal(err)
	}
	held, err := sem.Acquire(ctx) // waits for one of the 4 slots
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-held.Done():
		log.Printf("slot lost: %v", context.Cause(held))
	case <-time.After(time.Minute): // the work, watching held
	}
	if err := sem.Release(ctx); err != nil {
		log.Print(err)
	}
}

func ExampleSemaphore_TryAcquire() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	sem, err := semaphore.New(client, "gpu-slots", 4)
	if err != nil {
		log.Fatal(err)
	}
	_, err = sem.TryAcquire(ctx)
	switch {
	case errors.Is(err, semaphore.ErrNoSlot):
		log.Print("all slots taken; try later")
		return
	case err != nil:
		log.Fatal(err)
	}
	defer sem.Release(ctx)
	// ... use the slot
}

func ExampleDo() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	err = semaphore.Do(ctx, client, "gpu-slots", 4, func(held context.Context) error {
		// ... at most 4 of these run at once across all processes
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
