package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleHealth_Service lists the healthy instances of a service, the way
// a client picks where to connect.
func ExampleHealth_Service() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health/service/web" || r.URL.RawQuery != "passing" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Consul-Index", "120")
		_, _ = io.WriteString(w, `[{"Node":{"Node":"node-a","Address":"10.0.0.1"},
			"Service":{"ID":"web-1","Service":"web","Address":"10.0.0.11","Port":8080},
			"Checks":[{"CheckID":"serfHealth","Status":"passing"},{"CheckID":"web-1-alive","Status":"passing","ServiceID":"web-1"}]}]`)
	}))
	defer srv.Close()

	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	entries, meta, err := client.Health().Service(context.Background(), "web", &api.HealthServiceOptions{PassingOnly: true}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		fmt.Printf("%s %s:%d %s\n", e.Service.ID, addr, e.Service.Port, e.Checks.AggregatedStatus())
	}
	// Pass meta.LastIndex as WaitIndex to wait for the next change.
	fmt.Println(meta.LastIndex)
	// Output:
	// web-1 10.0.0.11:8080 passing
	// 120
}
