package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExamplePreparedQuery_Execute creates a prepared query and executes it by
// name.
func ExamplePreparedQuery_Execute() {
	// A stand-in for Consul.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/query":
			_, _ = io.WriteString(w, `{"ID":"8f246b77-f3e1-ff88-5b48-8ec93abf3e05"}`)
		case r.URL.Path == "/v1/query/billing/execute":
			_, _ = io.WriteString(w, `{"Service":"billing","Datacenter":"dc1","Failovers":0,"DNS":{"TTL":"10s"},"Nodes":[
				{"Node":{"Node":"node-1","Address":"10.0.0.7"},"Service":{"ID":"billing-1","Service":"billing","Port":8080},
				 "Checks":[{"CheckID":"serfHealth","Status":"passing"}]}]}`)
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

	id, _, err := client.Query().Create(ctx, &api.PreparedQueryDefinition{
		Name: "billing",
		Service: api.ServiceQuery{
			Service:     "billing",
			OnlyPassing: true,
			Failover:    api.QueryFailoverOptions{NearestN: 2},
		},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created", id)

	res, _, err := client.Query().Execute(ctx, "billing", &api.QueryExecuteOptions{Limit: 3}, &api.QueryOptions{Near: "_agent"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range res.Nodes {
		fmt.Printf("%s %s:%d %s\n", res.Datacenter, n.Node.Address, n.Service.Port, n.Checks.AggregatedStatus())
	}
	// Output:
	// created 8f246b77-f3e1-ff88-5b48-8ec93abf3e05
	// dc1 10.0.0.7:8080 passing
}
