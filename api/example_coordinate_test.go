package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleCoordinate_DistanceTo estimates the round-trip time between two
// nodes from their network coordinates.
func ExampleCoordinate_DistanceTo() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/coordinate/node/node-a":
			_, _ = io.WriteString(w, `[{"Node":"node-a","Segment":"","Coord":{"Vec":[0.003,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.0005}}]`)
		case "/v1/coordinate/node/node-b":
			_, _ = io.WriteString(w, `[{"Node":"node-b","Segment":"","Coord":{"Vec":[0,0.004,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":0.0005}}]`)
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
	a, _, err := client.Coordinate().Node(ctx, "node-a", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _, err := client.Coordinate().Node(ctx, "node-b", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a[0].Coord.DistanceTo(b[0].Coord))

	// A node without coordinates is no error: just nothing.
	c, _, err := client.Coordinate().Node(ctx, "node-c", nil)
	fmt.Println(c == nil, err)
	// Output:
	// 6ms
	// true <nil>
}
