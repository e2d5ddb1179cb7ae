package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleEvent_Fire sends a user event to the agents running the web
// service and lists the events of that name the agent has seen.
func ExampleEvent_Fire() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/event/fire/deploy":
			body, _ := io.ReadAll(r.Body)
			// Payload travels base64-encoded in JSON.
			_, _ = fmt.Fprintf(w, `{"ID":"b54fe110-7af5-cafc-d1fb-afc8ba432b1c","Name":"deploy","Payload":%q,
				"ServiceFilter":%q,"Version":1,"LTime":0}`, base64.StdEncoding.EncodeToString(body), r.URL.Query().Get("service"))
		case "/v1/event/list":
			w.Header().Set("X-Consul-Index", "7256511592453824992")
			_, _ = io.WriteString(w, `[{"ID":"b54fe110-7af5-cafc-d1fb-afc8ba432b1c","Name":"deploy","Payload":"djEuNC4y","ServiceFilter":"web","Version":1,"LTime":7}]`)
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
	ev, _, err := client.Event().Fire(ctx, &api.UserEvent{Name: "deploy", Payload: []byte("v1.4.2"), ServiceFilter: "web"}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.ID, string(ev.Payload), ev.ServiceFilter)

	events, meta, err := client.Event().List(ctx, "deploy", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	last := events[len(events)-1]
	fmt.Println(last.LTime, string(last.Payload), meta.LastIndex == api.EventIDToIndex(last.ID))
	// Output:
	// b54fe110-7af5-cafc-d1fb-afc8ba432b1c v1.4.2 web
	// 7 v1.4.2 true
}
