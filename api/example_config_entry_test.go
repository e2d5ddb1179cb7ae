package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// A fake agent that stores one service-defaults entry.
func exampleConfigEntryServer() *httptest.Server {
	var stored []byte
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/v1/config":
			stored, _ = io.ReadAll(r.Body)
			fmt.Fprint(w, "true")
		case r.Method == http.MethodGet && r.URL.Path == "/v1/config/service-defaults/web" && stored != nil:
			w.Write(stored)
		default:
			http.NotFound(w, r)
		}
	}))
}

func ExampleConfigEntries() {
	srv := exampleConfigEntryServer()
	defer srv.Close()
	client, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	entries := client.ConfigEntries()

	// Kind is filled in from the type.
	ok, _, err := entries.Set(ctx, &api.ServiceConfigEntry{Name: "web", Protocol: "http"}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("written:", ok)

	e, _, err := entries.Get(ctx, api.ServiceDefaults, "web", nil)
	if err != nil {
		panic(err)
	}
	sd := e.(*api.ServiceConfigEntry)
	fmt.Println(sd.GetKind(), sd.Name, sd.Protocol)

	missing, _, err := entries.Get(ctx, api.ServiceDefaults, "db", nil)
	fmt.Println("db:", missing, err)
	// Output:
	// written: true
	// service-defaults web http
	// db: <nil> <nil>
}
