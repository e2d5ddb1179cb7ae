package session_test

import (
	"context"
	"log"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/session"
)

// A session that renews itself, and a goroutine that stops the work when it
// is lost.
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
	s, err := session.New(ctx, client,
		session.WithTTL(15*time.Second),
		session.WithLockDelay(5*time.Second),
		session.WithBehavior(session.Release),
		session.WithName("billing-worker"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())

	work, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		<-s.Done()
		log.Printf("session %s ended: %v", s.ID(), s.Err())
		stop()
	}()
	<-work.Done()
}
