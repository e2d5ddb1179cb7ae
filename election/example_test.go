package election_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/election"
	"github.com/consulkit/consulkit/lock"
	"github.com/consulkit/consulkit/session"
)

// New only validates: a bad key fails before anything is sent.
func ExampleNew() {
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	_, err = election.New(client, "/service/report-cron/leader")
	fmt.Println(errors.Is(err, api.ErrInvalid))
	// Output: true
}

// A singleton job: Run campaigns, runs the job while leading, and
// campaigns again when leadership is lost.
func ExampleRun() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	err = election.Run(ctx, client, "service/report-cron/leader", []byte("10.0.0.7:9000"),
		func(leading context.Context) error {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-leading.Done(): // deposed, or ctx ended
					return nil
				case <-t.C:
					tok, _ := lock.TokenFrom(leading)
					_ = tok // ... run the report, fenced with tok.ModifyIndex
				}
			}
		},
		election.WithSessionOptions(session.WithLockDelay(10*time.Second)),
		election.WithHooks(election.Hooks{
			OnNewLeader: func(l election.Leader) { log.Printf("leader is now %s", l.Value) },
		}))
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

func ExampleElection_Campaign() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	s, err := session.New(ctx, client, session.WithTTL(15*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	e, err := election.New(client, "service/report-cron/leader", election.WithSession(s))
	if err != nil {
		log.Fatal(err)
	}
	leading, err := e.Campaign(ctx, []byte("10.0.0.7:9000"))
	if err != nil {
		log.Fatal(err)
	}
	tok := e.Token() // pass it to what the leader writes to
	log.Printf("leading with token %d", tok.ModifyIndex)

	// Tell the others where the leader now listens.
	if err := e.Proclaim(ctx, []byte("10.0.0.7:9001")); err != nil {
		log.Fatal(err)
	}
	select {
	case <-leading.Done():
		log.Printf("deposed: %v", context.Cause(leading))
	case <-time.After(time.Hour):
		if err := e.Resign(ctx); err != nil {
			log.Print(err)
		}
	}
}

func ExampleElection_Observe() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	e, err := election.New(client, "service/report-cron/leader")
	if err != nil {
		log.Fatal(err)
	}
	for l := range e.Observe(ctx) {
		if l.IsZero() {
			log.Print("no leader")
			continue
		}
		log.Printf("leader %s at %s (term %d)", l.Session, l.Value, l.Token.LockIndex)
	}
}

func ExampleElection_Leader() {
	ctx := context.Background()
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	e, err := election.New(client, "service/report-cron/leader")
	if err != nil {
		log.Fatal(err)
	}
	l, err := e.Leader(ctx)
	switch {
	case errors.Is(err, election.ErrNoLeader):
		log.Print("no leader")
	case err != nil:
		log.Fatal(err)
	default:
		log.Printf("leader at %s", l.Value)
	}
}
