package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/consulkit/consulkit/api"
)

// ExampleAgent_HealthServiceByID registers a service with a TTL check,
// reports it passing, and reads the service's aggregated health. The agent
// answers a warning with HTTP 429 and critical with 503; they come back as
// statuses, not errors.
func ExampleAgent_HealthServiceByID() {
	// A stand-in for the agent.
	var passing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/agent/service/register":
		case "/v1/agent/check/update/web-1-alive":
			passing.Store(true)
		case "/v1/agent/health/service/id/web-1":
			status := "passing"
			if !passing.Load() {
				status = "critical"
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_, _ = io.WriteString(w, `{"AggregatedStatus":"`+status+`","Service":{"ID":"web-1","Service":"web","Port":8080},
				"Checks":[{"CheckID":"web-1-alive","Name":"alive","Status":"`+status+`","ServiceID":"web-1"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()

	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	agent := client.Agent()

	_, err = agent.ServiceRegister(ctx, &api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Port: 8080,
		Check: &api.AgentServiceCheck{CheckID: "web-1-alive", Name: "alive", TTL: api.Duration(15 * time.Second)},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _, err := agent.HealthServiceByID(ctx, "web-1", nil)
	fmt.Println(st, err)

	if _, err := agent.UpdateTTL(ctx, "web-1-alive", "serving", api.HealthPassing, nil); err != nil {
		fmt.Println(err)
		return
	}
	st, info, err := agent.HealthServiceByID(ctx, "web-1", nil)
	fmt.Println(st, info.Service.ID, len(info.Checks), err)
	// Output:
	// critical <nil>
	// passing web-1 1 <nil>
}

// ExampleAgent_Monitor streams the agent's log lines until the context
// ends; Close releases the connection.
func ExampleAgent_Monitor() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "2026-11-27T10:00:00Z [INFO]  agent: Synced node info\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the agent streams until the client goes away
	}))
	defer srv.Close()

	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs, err := client.Agent().Monitor(ctx, &api.MonitorOptions{LogLevel: "info"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer logs.Close()

	line, err := logs.Next()
	fmt.Println(line, err)
	cancel()
	_, err = logs.Next()
	fmt.Println(err)
	// Output:
	// 2026-11-27T10:00:00Z [INFO]  agent: Synced node info <nil>
	// context canceled
}
