package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleOperator_AutopilotServerHealth reads the health of the servers.
// Consul answers 429 when a server is unhealthy; the method returns that
// report, not an error.
func ExampleOperator_AutopilotServerHealth() {
	// A stand-in for Consul, with one failed server out of three.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"Healthy":false,"FailureTolerance":0,"Servers":[
			{"ID":"a","Name":"s1","SerfStatus":"alive","Leader":true,"LastContact":"0s","Healthy":true,"Voter":true},
			{"ID":"b","Name":"s2","SerfStatus":"alive","LastContact":"12ms","Healthy":true,"Voter":true},
			{"ID":"c","Name":"s3","SerfStatus":"failed","LastContact":"35s","Healthy":false,"Voter":true}]}`)
	}))
	defer srv.Close()

	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	h, _, err := client.Operator().AutopilotServerHealth(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("healthy:", h.Healthy, "failure tolerance:", h.FailureTolerance)
	for _, s := range h.Servers {
		fmt.Println(s.Name, s.SerfStatus, s.Healthy, s.LastContact)
	}
	// Output:
	// healthy: false failure tolerance: 0
	// s1 alive true 0s
	// s2 alive true 12ms
	// s3 failed false 35s
}
