package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

func ExamplePeerings() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/peering/token":
			fmt.Fprint(w, `{"PeeringToken": "eyJDQSI6W10sIlNlcnZlckFkZHJlc3NlcyI6W119"}`)
		case r.URL.Path == "/v1/peering/cluster-b":
			fmt.Fprint(w, `{"ID": "d290fc2b-ddab-a84e-ae13-83a681cf7d8e", "Name": "cluster-b", "State": "PENDING"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	peerings := client.Peerings()

	// The token goes to the other cluster, which calls Establish with it.
	token, _, err := peerings.GenerateToken(ctx, &api.PeeringGenerateTokenRequest{PeerName: "cluster-b"}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("token:", token != "")

	p, _, err := peerings.Read(ctx, "cluster-b", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Name, p.State)

	missing, _, err := peerings.Read(ctx, "cluster-c", nil)
	fmt.Println("cluster-c:", missing, err)
	// Output:
	// token: true
	// cluster-b PENDING
	// cluster-c: <nil> <nil>
}
