package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

func ExampleConnect_IntentionCheck() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/v1/connect/intentions/exact":
			fmt.Fprint(w, "true")
		case r.URL.Path == "/v1/connect/intentions/check":
			// This fake denies web -> db and allows everything else.
			fmt.Fprintf(w, `{"Allowed": %t}`, !(q.Get("source") == "web" && q.Get("destination") == "db"))
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
	connect := client.Connect()

	_, err = connect.IntentionUpsert(ctx, &api.Intention{SourceName: "web", DestinationName: "db", Action: api.IntentionActionDeny}, nil)
	if err != nil {
		panic(err)
	}
	for _, pair := range [][2]string{{"web", "db"}, {"web", "api"}} {
		allowed, _, err := connect.IntentionCheck(ctx, pair[0], pair[1], nil)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s -> %s allowed: %t\n", pair[0], pair[1], allowed)
	}
	// Output:
	// web -> db allowed: false
	// web -> api allowed: true
}
