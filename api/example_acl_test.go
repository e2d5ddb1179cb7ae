package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/consulkit/consulkit/api"
)

// ExampleACL_TokenCreate creates a token linked to a policy by name, then
// shows what reading a token that does not exist gives.
func ExampleACL_TokenCreate() {
	// A stand-in for Consul.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/v1/acl/token":
			_, _ = io.WriteString(w, `{"AccessorID":"6a1253d2-1785-24fd-91c2-f8e78c745511","SecretID":"45a3bd52-07c7-47a4-52fd-0745e0cfe967",
				"Description":"billing worker","Policies":[{"ID":"165d4317-e379-f732-ce70-86278c4558f7","Name":"billing-kv"}],
				"Local":false,"CreateTime":"2026-11-27T10:00:00Z","Hash":"UuiRkOQPRCvoRZHRtUxxbrmwZ5crYrOdZ0Z1FTFbTbA=","CreateIndex":59,"ModifyIndex":59}`)
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "ACL not found")
		}
	}))
	defer srv.Close()

	cfg := api.DefaultConfig()
	cfg.Address = srv.URL
	cfg.Token = "management-token"
	client, err := api.NewClient(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	tok, _, err := client.ACL().TokenCreate(ctx, &api.ACLToken{
		Description: "billing worker",
		Policies:    []*api.ACLTokenPolicyLink{{Name: "billing-kv"}},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok.AccessorID, tok.Policies[0].Name, tok.Policies[0].ID)

	_, _, err = client.ACL().TokenRead(ctx, "00000000-0000-0000-0000-00000000000f", nil)
	fmt.Println(errors.Is(err, api.ErrACLNotFound))
	// Output:
	// 6a1253d2-1785-24fd-91c2-f8e78c745511 billing-kv 165d4317-e379-f732-ce70-86278c4558f7
	// true
}
