package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleCatalog_Register registers an external service (one no agent
// runs) in the catalog and lists the instances carrying a tag.
func ExampleCatalog_Register() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/catalog/register":
			_, _ = io.WriteString(w, "true")
		case "/v1/catalog/service/billing-db":
			// ?tag=primary selects the instances with that tag.
			_, _ = io.WriteString(w, `[{"Node":"ext-db-1","Address":"192.0.2.10","ServiceID":"billing-db-1",
				"ServiceName":"billing-db","ServiceTags":["`+r.URL.Query().Get("tag")+`"],"ServicePort":5432,
				"ServiceWeights":{"Passing":1,"Warning":1},"CreateIndex":42,"ModifyIndex":42}]`)
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

	_, err = client.Catalog().Register(ctx, &api.CatalogRegistration{
		Node: "ext-db-1", Address: "192.0.2.10",
		NodeMeta: map[string]string{"external-node": "true"},
		Service:  &api.AgentService{ID: "billing-db-1", Service: "billing-db", Tags: []string{"primary"}, Port: 5432},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	instances, meta, err := client.Catalog().Service(ctx, "billing-db", &api.CatalogServiceOptions{Tags: []string{"primary"}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range instances {
		fmt.Printf("%s %s:%d %v\n", s.ServiceID, s.Address, s.ServicePort, s.ServiceTags)
	}
	fmt.Println(meta.LastIndex)
	// Output:
	// billing-db-1 192.0.2.10:5432 [primary]
	// 0
}
