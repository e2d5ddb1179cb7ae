package ttlcheck_test

import (
	"context"
	"database/sql"
	"errors"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/ttlcheck"
)

// A worker reports its health through a node-level TTL check; the probe
// pings its database.
func Example() {
	cfg, err := api.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	var db *sql.DB // the application's database
	hb, err := ttlcheck.New(client,
		ttlcheck.Check{ID: "worker-1-alive", Name: "worker alive", TTL: 15 * time.Second},
		ttlcheck.WithProbe(ttlcheck.ErrorProbe(db.PingContext)),
		ttlcheck.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Registers the check, beats every 5s, deregisters it on interrupt.
	if err := hb.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// A service registered together with its TTL check; the application
// pushes its own status.
func ExampleNewService() {
	cfg, err := api.ConfigFromEnv() // CONSUL_HTTP_ADDR etc., as consulkit dev prints them
	if err != nil {
		log.Fatal(err)
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	hb, err := ttlcheck.NewService(client,
		&api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 8080},
		ttlcheck.Check{ID: "web-1-alive", Name: "web alive", TTL: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	// Before Run, the status is only recorded: Run registers the check
	// with it.
	if err := hb.Warn(context.Background(), "warming up"); !errors.Is(err, ttlcheck.ErrNotRunning) {
		log.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hb.Run(ctx) }() // registers web-1 and its check

	// ... once the caches are warm (ErrNotRunning: Run had not started
	// yet, and registers the check with this status when it does):
	if err := hb.Pass(ctx, "ready"); err != nil && !errors.Is(err, ttlcheck.ErrNotRunning) {
		log.Print(err)
	}

	cancel() // shutting down:
	<-done   // Run deregistered web-1 and its check
}
