package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

func ExampleDiscoveryChain_Get() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Chain": {
			"ServiceName": "web", "Namespace": "default", "Partition": "default", "Datacenter": "dc1",
			"Default": true, "Protocol": "tcp", "StartNode": "resolver:web.default.default.dc1",
			"Nodes": {"resolver:web.default.default.dc1": {"Type": "resolver", "Name": "web.default.default.dc1",
				"Resolver": {"ConnectTimeout": "5s", "Default": true, "Target": "web.default.default.dc1"}}},
			"Targets": {"web.default.default.dc1": {"ID": "web.default.default.dc1", "Service": "web",
				"Datacenter": "dc1", "ConnectTimeout": "5s"}}}}`)
	}))
	defer srv.Close()
	client, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		panic(err)
	}

	resp, _, err := client.DiscoveryChain().Get(context.Background(), "web", nil, nil)
	if err != nil {
		panic(err)
	}
	ch := resp.Chain
	start := ch.Nodes[ch.StartNode]
	target := ch.Targets[start.Resolver.Target]
	fmt.Println(ch.Protocol, start.Type, target.Service, target.Datacenter, target.ConnectTimeout)
	// Output: tcp resolver web dc1 5s
}
