package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aclCall is one request received by the fake Consul of aclFake. The fake
// is shared by the acl, query, operator and snapshot tests.
type aclCall struct {
	Method string
	Path   string // as sent, with its escapes
	Query  url.Values
	Header http.Header
	Body   []byte
}

// aclReply is what the fake Consul answers.
type aclReply struct {
	Status int // 0: 200
	Body   string
	Header map[string]string
}

// aclFakeToken is the token of the clients aclFake returns.
const aclFakeToken = "client-token"

// aclFake starts a fake Consul answering every request with reply and
// returns a client for it (token aclFakeToken) and a function returning
// the last request received.
func aclFake(t *testing.T, reply aclReply) (*Client, func() aclCall) {
	t.Helper()
	var (
		mu   sync.Mutex
		last aclCall
		got  bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = aclCall{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: b}
		got = true
		mu.Unlock()
		for k, v := range reply.Header {
			w.Header().Set(k, v)
		}
		if reply.Status != 0 {
			w.WriteHeader(reply.Status)
		}
		_, _ = io.WriteString(w, reply.Body)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Address: srv.URL, Token: aclFakeToken})
	require.NoError(t, err)
	return c, func() aclCall {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		require.True(t, got, "no request reached the fake")
		return last
	}
}

// aclWireCase is a table row of a wire-form test: call runs the method
// under test against the fake, which answers reply.
type aclWireCase struct {
	name   string
	reply  aclReply
	call   func(ctx context.Context, c *Client) (any, error)
	method string
	path   string
	query  url.Values // nil: no query parameters
	token  string     // expected X-Consul-Token ("" : aclFakeToken)
	body   string     // expected JSON body ("" : none)
	check  func(t *testing.T, out any, err error)
}

func runACLWireCases(t *testing.T, cases []aclWireCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, last := aclFake(t, tc.reply)
			out, err := tc.call(context.Background(), c)
			req := last()
			assert.Equal(t, tc.method, req.Method)
			assert.Equal(t, tc.path, req.Path)
			if tc.query == nil {
				assert.Empty(t, req.Query)
			} else {
				assert.Equal(t, tc.query, req.Query)
			}
			wantTok := tc.token
			if wantTok == "" {
				wantTok = aclFakeToken
			}
			assert.Equal(t, wantTok, req.Header.Get("X-Consul-Token"))
			if tc.body == "" {
				assert.Empty(t, req.Body)
			} else {
				assert.JSONEq(t, tc.body, string(req.Body))
				assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
			}
			if tc.check != nil {
				tc.check(t, out, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// Realistic answers, as Consul 1.14 gives them.
const (
	aclTokenJSON = `{
    "AccessorID": "e0f400d1-5131-7ef5-a59b-45449bb8e39a",
    "SecretID": "b83f6216-cbd6-8c23-586b-4bb358bedfa4",
    "Description": "t1",
    "Policies": [{"ID": "f40ca659-4ee1-7ccb-f73d-229e8f52d209", "Name": "p1"}],
    "ServiceIdentities": [{"ServiceName": "web", "Datacenters": ["dc1"]}],
    "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}],
    "Local": false,
    "ExpirationTime": "2026-11-27T11:02:48.839104618Z",
    "CreateTime": "2026-11-27T10:02:48.839104618Z",
    "Hash": "k3/f3etcxUTrRqNnp2Wqjn35KQEFXIbbBHmj8bXIK3A=",
    "CreateIndex": 24,
    "ModifyIndex": 24
}`
	aclPolicyJSON = `{
    "ID": "f40ca659-4ee1-7ccb-f73d-229e8f52d209",
    "Name": "p1",
    "Description": "d",
    "Rules": "key_prefix \"\" { policy = \"read\" }",
    "Hash": "2Q8nxYh5Xbu2eqShjbRfyOUn4GY6ypQeCCCQM1JvNnU=",
    "CreateIndex": 22,
    "ModifyIndex": 22
}`
	aclRoleJSON = `{
    "ID": "b92b5010-4280-3737-8f4b-98bbd76caa4f",
    "Name": "r1",
    "Description": "",
    "Policies": [{"ID": "f40ca659-4ee1-7ccb-f73d-229e8f52d209", "Name": "p1"}],
    "ServiceIdentities": [{"ServiceName": "web"}],
    "Hash": "refIGFhPHDstE3k75tK3DopyVks3JqK4xwO+ek9F2RE=",
    "CreateIndex": 23,
    "ModifyIndex": 23
}`
	aclAuthMethodJSON = `{
    "Name": "jwt1",
    "Type": "jwt",
    "DisplayName": "JWT",
    "MaxTokenTTL": "10m0s",
    "TokenLocality": "local",
    "Config": {"BoundAudiences": ["consulkit"], "JWTValidationPubKeys": ["-----BEGIN PUBLIC KEY-----\n..."]},
    "CreateIndex": 30,
    "ModifyIndex": 31
}`
	aclBindingRuleJSON = `{
    "ID": "2a4b3c1d-0000-1111-2222-333344445555",
    "Description": "all",
    "AuthMethod": "jwt1",
    "Selector": "value.sub==\"svc\"",
    "BindType": "service",
    "BindName": "svc-${value.sub}",
    "CreateIndex": 32,
    "ModifyIndex": 32
}`
)

func aclQuery(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestACLBootstrapLoginLogoutReplication(t *testing.T) {
	runACLWireCases(t, []aclWireCase{
		{
			name:  "bootstrap",
			reply: aclReply{Body: `{"ID": "b83f6216-cbd6-8c23-586b-4bb358bedfa4", ` + aclTokenJSON[1:]},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().Bootstrap(ctx, nil)
				return tok, err
			},
			method: "PUT", path: "/v1/acl/bootstrap",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				tok := out.(*ACLToken)
				assert.Equal(t, "b83f6216-cbd6-8c23-586b-4bb358bedfa4", tok.SecretID)
				assert.Equal(t, "e0f400d1-5131-7ef5-a59b-45449bb8e39a", tok.AccessorID)
			},
		},
		{
			name:  "bootstrap again",
			reply: aclReply{Status: 403, Body: "Permission denied: ACL bootstrap no longer allowed (reset index: 5)"},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().Bootstrap(ctx, nil)
				return tok, err
			},
			method: "PUT", path: "/v1/acl/bootstrap",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*ACLToken))
				require.ErrorIs(t, err, ErrACLAlreadyBootstrapped)
				assert.ErrorIs(t, err, ErrPermissionDenied)
				var be *ACLBootstrapError
				require.ErrorAs(t, err, &be)
				assert.Equal(t, uint64(5), be.ResetIndex)
				var se *StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, 403, se.Code)
			},
		},
		{
			name:  "bootstrap with ACLs disabled",
			reply: aclReply{Status: 401, Body: "ACL support disabled"},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().Bootstrap(ctx, nil)
				return tok, err
			},
			method: "PUT", path: "/v1/acl/bootstrap",
			check: func(t *testing.T, out any, err error) {
				assert.True(t, IsACLDisabled(err))
				assert.NotErrorIs(t, err, ErrACLAlreadyBootstrapped)
			},
		},
		{
			name:  "login",
			reply: aclReply{Body: `{"AccessorID":"a1","SecretID":"s1","Description":"token created via login: {\"sub\":\"svc\"}","ServiceIdentities":[{"ServiceName":"svc-svc"}],"Local":true,"AuthMethod":"jwt1","CreateTime":"2026-11-27T10:02:48Z","Hash":"aGFzaA==","CreateIndex":40,"ModifyIndex":40}`},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().Login(ctx, &ACLLoginParams{AuthMethod: "jwt1", BearerToken: "eyJ.x.y", Meta: map[string]string{"host": "h1"}}, nil)
				return tok, err
			},
			method: "POST", path: "/v1/acl/login",
			body: `{"AuthMethod":"jwt1","BearerToken":"eyJ.x.y","Meta":{"host":"h1"}}`,
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				tok := out.(*ACLToken)
				assert.Equal(t, "s1", tok.SecretID)
				assert.Equal(t, "jwt1", tok.AuthMethod)
				assert.True(t, tok.Local)
				require.Len(t, tok.ServiceIdentities, 1)
				assert.Equal(t, "svc-svc", tok.ServiceIdentities[0].ServiceName)
			},
		},
		{
			name:  "login rejected",
			reply: aclReply{Status: 403, Body: "Permission denied"},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().Login(ctx, &ACLLoginParams{AuthMethod: "jwt1", BearerToken: "bad"}, nil)
				return tok, err
			},
			method: "POST", path: "/v1/acl/login",
			body: `{"AuthMethod":"jwt1","BearerToken":"bad"}`,
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*ACLToken))
				assert.ErrorIs(t, err, ErrPermissionDenied)
			},
		},
		{
			name:  "logout with the token of the request",
			reply: aclReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().Logout(ctx, &WriteOptions{Token: "s1"})
				return nil, err
			},
			method: "POST", path: "/v1/acl/logout", token: "s1",
		},
		{
			name:  "logout of a token not from a login",
			reply: aclReply{Status: 403, Body: "Permission denied: token wasn't created via login"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().Logout(ctx, nil)
				return nil, err
			},
			method: "POST", path: "/v1/acl/logout",
			check: func(t *testing.T, _ any, err error) {
				assert.ErrorIs(t, err, ErrPermissionDenied)
				assert.NotErrorIs(t, err, ErrACLNotFound)
			},
		},
		{
			name:  "replication status",
			reply: aclReply{Body: `{"Enabled":true,"Running":true,"SourceDatacenter":"dc1","ReplicationType":"tokens","ReplicatedIndex":10,"ReplicatedRoleIndex":11,"ReplicatedTokenIndex":12,"LastSuccess":"2026-11-27T10:00:00Z","LastError":"0001-01-01T00:00:00Z","LastErrorMessage":""}`, Header: map[string]string{"X-Consul-KnownLeader": "true"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, meta, err := c.ACL().ReplicationStatus(ctx, &QueryOptions{Datacenter: "dc2"})
				if meta != nil {
					assert.True(t, meta.KnownLeader)
				}
				return st, err
			},
			method: "GET", path: "/v1/acl/replication", query: aclQuery("dc", "dc2"),
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				st := out.(*ACLReplicationStatus)
				assert.True(t, st.Enabled)
				assert.Equal(t, "tokens", st.ReplicationType)
				assert.Equal(t, uint64(12), st.ReplicatedTokenIndex)
				assert.Equal(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), st.LastSuccess)
			},
		},
	})
}

func TestACLTokens(t *testing.T) {
	const acc = "e0f400d1-5131-7ef5-a59b-45449bb8e39a"
	checkToken := func(t *testing.T, out any, err error) {
		t.Helper()
		require.NoError(t, err)
		tok := out.(*ACLToken)
		assert.Equal(t, acc, tok.AccessorID)
		assert.Equal(t, "t1", tok.Description)
		require.Len(t, tok.Policies, 1)
		assert.Equal(t, ACLTokenPolicyLink{ID: "f40ca659-4ee1-7ccb-f73d-229e8f52d209", Name: "p1"}, *tok.Policies[0])
		require.Len(t, tok.NodeIdentities, 1)
		assert.Equal(t, ACLNodeIdentity{NodeName: "n1", Datacenter: "dc1"}, *tok.NodeIdentities[0])
		assert.Equal(t, []string{"dc1"}, tok.ServiceIdentities[0].Datacenters)
		require.NotNil(t, tok.ExpirationTime)
		assert.Equal(t, time.Hour, tok.ExpirationTime.Sub(tok.CreateTime))
		assert.NotEmpty(t, tok.Hash)
		assert.Equal(t, uint64(24), tok.ModifyIndex)
	}
	runACLWireCases(t, []aclWireCase{
		{
			name:  "create",
			reply: aclReply{Body: aclTokenJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().TokenCreate(ctx, &ACLToken{
					Description:       "t1",
					Policies:          []*ACLTokenPolicyLink{{Name: "p1"}},
					ServiceIdentities: []*ACLServiceIdentity{{ServiceName: "web", Datacenters: []string{"dc1"}}},
					NodeIdentities:    []*ACLNodeIdentity{{NodeName: "n1", Datacenter: "dc1"}},
					ExpirationTTL:     Duration(time.Hour),
				}, &WriteOptions{Token: "mgmt"})
				return tok, err
			},
			method: "PUT", path: "/v1/acl/token", token: "mgmt",
			body:  `{"Description":"t1","Policies":[{"Name":"p1"}],"ServiceIdentities":[{"ServiceName":"web","Datacenters":["dc1"]}],"NodeIdentities":[{"NodeName":"n1","Datacenter":"dc1"}],"Local":false,"ExpirationTTL":"1h0m0s"}`,
			check: checkToken,
		},
		{
			name:  "read",
			reply: aclReply{Body: aclTokenJSON, Header: map[string]string{"X-Consul-Index": "24"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, meta, err := c.ACL().TokenRead(ctx, acc, nil)
				if err == nil {
					assert.Equal(t, uint64(24), meta.LastIndex)
				}
				return tok, err
			},
			method: "GET", path: "/v1/acl/token/" + acc,
			check: checkToken,
		},
		{
			name:  "read missing",
			reply: aclReply{Status: 403, Body: "ACL not found"},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().TokenRead(ctx, "00000000-aaaa-bbbb-cccc-000000000000", nil)
				return tok, err
			},
			method: "GET", path: "/v1/acl/token/00000000-aaaa-bbbb-cccc-000000000000",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*ACLToken))
				assert.ErrorIs(t, err, ErrACLNotFound)
				assert.ErrorIs(t, err, ErrPermissionDenied)
			},
		},
		{
			name:  "self",
			reply: aclReply{Body: aclTokenJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().TokenReadSelf(ctx, &QueryOptions{Token: "b83f6216-cbd6-8c23-586b-4bb358bedfa4"})
				return tok, err
			},
			method: "GET", path: "/v1/acl/token/self", token: "b83f6216-cbd6-8c23-586b-4bb358bedfa4",
			check: checkToken,
		},
		{
			name:  "update",
			reply: aclReply{Body: aclTokenJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().TokenUpdate(ctx, &ACLToken{AccessorID: acc, Description: "t1", Local: true}, nil)
				return tok, err
			},
			method: "PUT", path: "/v1/acl/token/" + acc,
			body:  `{"AccessorID":"` + acc + `","Description":"t1","Local":true}`,
			check: checkToken,
		},
		{
			name:  "clone",
			reply: aclReply{Body: aclTokenJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().TokenClone(ctx, acc, "copy", nil)
				return tok, err
			},
			method: "PUT", path: "/v1/acl/token/" + acc + "/clone",
			body:  `{"Description":"copy"}`,
			check: checkToken,
		},
		{
			name:  "delete",
			reply: aclReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().TokenDelete(ctx, acc, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/token/" + acc,
		},
		{
			name:  "list",
			reply: aclReply{Body: "[" + aclTokenJSON + `,{"AccessorID":"00000000-0000-0000-0000-000000000002","SecretID":"anonymous","Description":"Anonymous Token","Local":false,"CreateTime":"2026-11-27T09:57:30Z","Hash":"aGFzaA==","CreateIndex":5,"ModifyIndex":5}]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().TokenList(ctx, nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/tokens",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*ACLTokenListEntry)
				require.Len(t, l, 2)
				assert.Equal(t, acc, l[0].AccessorID)
				assert.Equal(t, "p1", l[0].Policies[0].Name)
				assert.Equal(t, "Anonymous Token", l[1].Description)
				assert.Nil(t, l[1].ExpirationTime)
			},
		},
		{
			name:  "list filtered",
			reply: aclReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().TokenListFiltered(ctx, ACLTokenFilter{Policy: "pid", Role: "rid", AuthMethod: "jwt1"}, &QueryOptions{Consistency: ConsistencyStale})
				return l, err
			},
			method: "GET", path: "/v1/acl/tokens",
			query: aclQuery("policy", "pid", "role", "rid", "authmethod", "jwt1", "stale", ""),
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Empty(t, out.([]*ACLTokenListEntry))
			},
		},
	})
}

func TestACLPoliciesAndRoles(t *testing.T) {
	const pid = "f40ca659-4ee1-7ccb-f73d-229e8f52d209"
	const rid = "b92b5010-4280-3737-8f4b-98bbd76caa4f"
	checkPolicy := func(t *testing.T, out any, err error) {
		t.Helper()
		require.NoError(t, err)
		p := out.(*ACLPolicy)
		assert.Equal(t, pid, p.ID)
		assert.Equal(t, "p1", p.Name)
		assert.Equal(t, `key_prefix "" { policy = "read" }`, p.Rules)
		assert.Equal(t, uint64(22), p.CreateIndex)
	}
	checkRole := func(t *testing.T, out any, err error) {
		t.Helper()
		require.NoError(t, err)
		r := out.(*ACLRole)
		require.NotNil(t, r)
		assert.Equal(t, rid, r.ID)
		assert.Equal(t, "r1", r.Name)
		assert.Equal(t, pid, r.Policies[0].ID)
		assert.Equal(t, "web", r.ServiceIdentities[0].ServiceName)
	}
	runACLWireCases(t, []aclWireCase{
		{
			name:  "policy create",
			reply: aclReply{Body: aclPolicyJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyCreate(ctx, &ACLPolicy{Name: "p1", Description: "d", Rules: `key_prefix "" { policy = "read" }`, Datacenters: []string{"dc1"}}, nil)
				return p, err
			},
			method: "PUT", path: "/v1/acl/policy",
			body:  `{"Name":"p1","Description":"d","Rules":"key_prefix \"\" { policy = \"read\" }","Datacenters":["dc1"]}`,
			check: checkPolicy,
		},
		{
			name:  "policy read",
			reply: aclReply{Body: aclPolicyJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyRead(ctx, pid, nil)
				return p, err
			},
			method: "GET", path: "/v1/acl/policy/" + pid,
			check: checkPolicy,
		},
		{
			name:  "policy read by name",
			reply: aclReply{Body: aclPolicyJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyReadByName(ctx, "p1", nil)
				return p, err
			},
			method: "GET", path: "/v1/acl/policy/name/p1",
			check: checkPolicy,
		},
		{
			name:  "policy read by name missing",
			reply: aclReply{Status: 403, Body: "ACL not found"},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyReadByName(ctx, "nope", nil)
				return p, err
			},
			method: "GET", path: "/v1/acl/policy/name/nope",
			check: func(t *testing.T, out any, err error) {
				assert.Nil(t, out.(*ACLPolicy))
				assert.ErrorIs(t, err, ErrACLNotFound)
			},
		},
		{
			name:  "policy update",
			reply: aclReply{Body: aclPolicyJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyUpdate(ctx, &ACLPolicy{ID: pid, Name: "p1", Rules: "x"}, nil)
				return p, err
			},
			method: "PUT", path: "/v1/acl/policy/" + pid,
			body:  `{"ID":"` + pid + `","Name":"p1","Rules":"x"}`,
			check: checkPolicy,
		},
		{
			name:  "policy delete",
			reply: aclReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().PolicyDelete(ctx, pid, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/policy/" + pid,
		},
		{
			name:  "policy list",
			reply: aclReply{Body: `[{"ID":"00000000-0000-0000-0000-000000000001","Name":"global-management","Description":"Builtin Policy that grants unlimited access","Datacenters":null,"Hash":"swIQt6up+s0cV4kePfJ2aRdKCLaQyykF4Hl1Nfdeumk=","CreateIndex":4,"ModifyIndex":4}]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().PolicyList(ctx, nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/policies",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*ACLPolicyListEntry)
				require.Len(t, l, 1)
				assert.Equal(t, "global-management", l[0].Name)
				assert.NotEmpty(t, l[0].Hash)
			},
		},
		{
			name:  "role create",
			reply: aclReply{Body: aclRoleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleCreate(ctx, &ACLRole{Name: "r1", Policies: []*ACLRolePolicyLink{{ID: pid}}, ServiceIdentities: []*ACLServiceIdentity{{ServiceName: "web"}}}, nil)
				return r, err
			},
			method: "PUT", path: "/v1/acl/role",
			body:  `{"Name":"r1","Policies":[{"ID":"` + pid + `"}],"ServiceIdentities":[{"ServiceName":"web"}]}`,
			check: checkRole,
		},
		{
			name:  "role read",
			reply: aclReply{Body: aclRoleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleRead(ctx, rid, nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/role/" + rid,
			check: checkRole,
		},
		{
			name:  "role read missing",
			reply: aclReply{Status: 404, Header: map[string]string{"X-Consul-Default-Acl-Policy": "deny"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, meta, err := c.ACL().RoleRead(ctx, rid, nil)
				if assert.NotNil(t, meta) {
					assert.Equal(t, "deny", meta.DefaultACLPolicy)
				}
				return r, err
			},
			method: "GET", path: "/v1/acl/role/" + rid,
			check: func(t *testing.T, out any, err error) {
				assert.NoError(t, err)
				assert.Nil(t, out.(*ACLRole))
			},
		},
		{
			name:  "role read by name",
			reply: aclReply{Body: aclRoleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleReadByName(ctx, "r1", nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/role/name/r1",
			check: checkRole,
		},
		{
			name:  "role read by name missing",
			reply: aclReply{Status: 404},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleReadByName(ctx, "nope", nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/role/name/nope",
			check: func(t *testing.T, out any, err error) {
				assert.NoError(t, err)
				assert.Nil(t, out.(*ACLRole))
			},
		},
		{
			name:  "role update",
			reply: aclReply{Body: aclRoleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleUpdate(ctx, &ACLRole{ID: rid, Name: "r1", NodeIdentities: []*ACLNodeIdentity{{NodeName: "n1", Datacenter: "dc1"}}}, nil)
				return r, err
			},
			method: "PUT", path: "/v1/acl/role/" + rid,
			body:  `{"ID":"` + rid + `","Name":"r1","NodeIdentities":[{"NodeName":"n1","Datacenter":"dc1"}]}`,
			check: checkRole,
		},
		{
			name:  "role delete",
			reply: aclReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().RoleDelete(ctx, rid, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/role/" + rid,
		},
		{
			name:  "role list",
			reply: aclReply{Body: "[" + aclRoleJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().RoleList(ctx, nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/roles",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*ACLRole)
				require.Len(t, l, 1)
				checkRole(t, l[0], nil)
			},
		},
		{
			name:  "role list by policy",
			reply: aclReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().RoleListByPolicy(ctx, pid, nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/roles", query: aclQuery("policy", pid),
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Empty(t, out.([]*ACLRole))
			},
		},
	})
}

func TestACLAuthMethodsAndBindingRules(t *testing.T) {
	const brid = "2a4b3c1d-0000-1111-2222-333344445555"
	checkMethod := func(t *testing.T, out any, err error) {
		t.Helper()
		require.NoError(t, err)
		m := out.(*ACLAuthMethod)
		require.NotNil(t, m)
		assert.Equal(t, "jwt1", m.Name)
		assert.Equal(t, ACLAuthMethodTypeJWT, m.Type)
		assert.Equal(t, 10*time.Minute, m.MaxTokenTTL.D())
		assert.Equal(t, []any{"consulkit"}, m.Config["BoundAudiences"])
	}
	checkRule := func(t *testing.T, out any, err error) {
		t.Helper()
		require.NoError(t, err)
		r := out.(*ACLBindingRule)
		require.NotNil(t, r)
		assert.Equal(t, brid, r.ID)
		assert.Equal(t, ACLBindTypeService, r.BindType)
		assert.Equal(t, "svc-${value.sub}", r.BindName)
		assert.Equal(t, `value.sub=="svc"`, r.Selector)
	}
	runACLWireCases(t, []aclWireCase{
		{
			name:  "auth method create",
			reply: aclReply{Body: aclAuthMethodJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.ACL().AuthMethodCreate(ctx, &ACLAuthMethod{
					Name: "jwt1", Type: ACLAuthMethodTypeJWT, DisplayName: "JWT",
					MaxTokenTTL: Duration(10 * time.Minute), TokenLocality: ACLTokenLocalityLocal,
					Config: map[string]any{"BoundAudiences": []string{"consulkit"}},
				}, nil)
				return m, err
			},
			method: "PUT", path: "/v1/acl/auth-method",
			body:  `{"Name":"jwt1","Type":"jwt","DisplayName":"JWT","MaxTokenTTL":"10m0s","TokenLocality":"local","Config":{"BoundAudiences":["consulkit"]}}`,
			check: checkMethod,
		},
		{
			name:  "auth method read",
			reply: aclReply{Body: aclAuthMethodJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.ACL().AuthMethodRead(ctx, "jwt1", nil)
				return m, err
			},
			method: "GET", path: "/v1/acl/auth-method/jwt1",
			check: checkMethod,
		},
		{
			name:  "auth method read missing",
			reply: aclReply{Status: 404},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.ACL().AuthMethodRead(ctx, "nope", nil)
				return m, err
			},
			method: "GET", path: "/v1/acl/auth-method/nope",
			check: func(t *testing.T, out any, err error) {
				assert.NoError(t, err)
				assert.Nil(t, out.(*ACLAuthMethod))
			},
		},
		{
			name:  "auth method update",
			reply: aclReply{Body: aclAuthMethodJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.ACL().AuthMethodUpdate(ctx, &ACLAuthMethod{Name: "jwt1", Type: "jwt", Description: "new"}, nil)
				return m, err
			},
			method: "PUT", path: "/v1/acl/auth-method/jwt1",
			body:  `{"Name":"jwt1","Type":"jwt","Description":"new"}`,
			check: checkMethod,
		},
		{
			name:  "auth method delete",
			reply: aclReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().AuthMethodDelete(ctx, "jwt1", nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/auth-method/jwt1",
		},
		{
			name:  "auth method list",
			reply: aclReply{Body: `[{"Name":"jwt1","Type":"jwt","DisplayName":"JWT","MaxTokenTTL":"10m0s","TokenLocality":"local","CreateIndex":30,"ModifyIndex":31}]`},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().AuthMethodList(ctx, nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/auth-methods",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*ACLAuthMethodListEntry)
				require.Len(t, l, 1)
				assert.Equal(t, ACLAuthMethodListEntry{Name: "jwt1", Type: "jwt", DisplayName: "JWT", MaxTokenTTL: Duration(10 * time.Minute), TokenLocality: "local", CreateIndex: 30, ModifyIndex: 31}, *l[0])
			},
		},
		{
			name:  "binding rule create",
			reply: aclReply{Body: aclBindingRuleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().BindingRuleCreate(ctx, &ACLBindingRule{AuthMethod: "jwt1", Description: "all", Selector: `value.sub=="svc"`, BindType: ACLBindTypeService, BindName: "svc-${value.sub}"}, nil)
				return r, err
			},
			method: "PUT", path: "/v1/acl/binding-rule",
			body:  `{"AuthMethod":"jwt1","Description":"all","Selector":"value.sub==\"svc\"","BindType":"service","BindName":"svc-${value.sub}"}`,
			check: checkRule,
		},
		{
			name:  "binding rule read",
			reply: aclReply{Body: aclBindingRuleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().BindingRuleRead(ctx, brid, nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/binding-rule/" + brid,
			check: checkRule,
		},
		{
			name:  "binding rule read missing",
			reply: aclReply{Status: 404},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().BindingRuleRead(ctx, brid, nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/binding-rule/" + brid,
			check: func(t *testing.T, out any, err error) {
				assert.NoError(t, err)
				assert.Nil(t, out.(*ACLBindingRule))
			},
		},
		{
			name:  "binding rule update",
			reply: aclReply{Body: aclBindingRuleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().BindingRuleUpdate(ctx, &ACLBindingRule{ID: brid, AuthMethod: "jwt1", BindType: "role", BindName: "r1"}, nil)
				return r, err
			},
			method: "PUT", path: "/v1/acl/binding-rule/" + brid,
			body:  `{"ID":"` + brid + `","AuthMethod":"jwt1","BindType":"role","BindName":"r1"}`,
			check: checkRule,
		},
		{
			name:  "binding rule delete",
			reply: aclReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().BindingRuleDelete(ctx, brid, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/binding-rule/" + brid,
		},
		{
			name:  "binding rule list",
			reply: aclReply{Body: "[" + aclBindingRuleJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().BindingRuleList(ctx, "jwt1", nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/binding-rules", query: aclQuery("authmethod", "jwt1"),
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*ACLBindingRule)
				require.Len(t, l, 1)
				checkRule(t, l[0], nil)
			},
		},
		{
			name:  "binding rule list of every method",
			reply: aclReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().BindingRuleList(ctx, "", nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/binding-rules",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				assert.Empty(t, out.([]*ACLBindingRule))
			},
		},
	})
}

func TestACLPathEscaping(t *testing.T) {
	c, last := aclFake(t, aclReply{Status: 404})
	_, _, err := c.ACL().RoleReadByName(context.Background(), "a b?c", nil)
	require.NoError(t, err)
	assert.Equal(t, "/v1/acl/role/name/a%20b%3Fc", last().Path)
}

// TestACLValidation checks that bad input fails before any request.
func TestACLValidation(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		call  func(a *ACL) error
		field string
	}{
		{"login nil", func(a *ACL) error { _, _, err := a.Login(ctx, nil, nil); return err }, "login"},
		{"login no method", func(a *ACL) error {
			_, _, err := a.Login(ctx, &ACLLoginParams{BearerToken: "x"}, nil)
			return err
		}, "ACLLoginParams.AuthMethod"},
		{"login no bearer", func(a *ACL) error {
			_, _, err := a.Login(ctx, &ACLLoginParams{AuthMethod: "m"}, nil)
			return err
		}, "ACLLoginParams.BearerToken"},
		{"token create nil", func(a *ACL) error { _, _, err := a.TokenCreate(ctx, nil, nil); return err }, "token"},
		{"token update no accessor", func(a *ACL) error { _, _, err := a.TokenUpdate(ctx, &ACLToken{}, nil); return err }, "ACLToken.AccessorID"},
		{"token read empty", func(a *ACL) error { _, _, err := a.TokenRead(ctx, "", nil); return err }, "accessor ID"},
		{"token read control char", func(a *ACL) error { _, _, err := a.TokenRead(ctx, "a\nb", nil); return err }, "accessor ID"},
		{"token clone empty", func(a *ACL) error { _, _, err := a.TokenClone(ctx, " ", "", nil); return err }, "accessor ID"},
		{"token delete empty", func(a *ACL) error { _, err := a.TokenDelete(ctx, "", nil); return err }, "accessor ID"},
		{"policy create with ID", func(a *ACL) error {
			_, _, err := a.PolicyCreate(ctx, &ACLPolicy{ID: "x", Name: "p"}, nil)
			return err
		}, "ACLPolicy.ID"},
		{"policy create no name", func(a *ACL) error { _, _, err := a.PolicyCreate(ctx, &ACLPolicy{}, nil); return err }, "ACLPolicy.Name"},
		{"policy update no ID", func(a *ACL) error { _, _, err := a.PolicyUpdate(ctx, &ACLPolicy{Name: "p"}, nil); return err }, "ACLPolicy.ID"},
		{"policy read empty", func(a *ACL) error { _, _, err := a.PolicyRead(ctx, "", nil); return err }, "policy ID"},
		{"policy read by name empty", func(a *ACL) error { _, _, err := a.PolicyReadByName(ctx, "", nil); return err }, "policy name"},
		{"policy delete empty", func(a *ACL) error { _, err := a.PolicyDelete(ctx, "", nil); return err }, "policy ID"},
		{"role create with ID", func(a *ACL) error { _, _, err := a.RoleCreate(ctx, &ACLRole{ID: "x", Name: "r"}, nil); return err }, "ACLRole.ID"},
		{"role create no name", func(a *ACL) error { _, _, err := a.RoleCreate(ctx, &ACLRole{}, nil); return err }, "ACLRole.Name"},
		{"role update no ID", func(a *ACL) error { _, _, err := a.RoleUpdate(ctx, &ACLRole{Name: "r"}, nil); return err }, "ACLRole.ID"},
		{"role read empty", func(a *ACL) error { _, _, err := a.RoleRead(ctx, "", nil); return err }, "role ID"},
		{"role read by name empty", func(a *ACL) error { _, _, err := a.RoleReadByName(ctx, "", nil); return err }, "role name"},
		{"role delete empty", func(a *ACL) error { _, err := a.RoleDelete(ctx, "", nil); return err }, "role ID"},
		{"auth method create no type", func(a *ACL) error {
			_, _, err := a.AuthMethodCreate(ctx, &ACLAuthMethod{Name: "m"}, nil)
			return err
		}, "ACLAuthMethod.Type"},
		{"auth method update no name", func(a *ACL) error {
			_, _, err := a.AuthMethodUpdate(ctx, &ACLAuthMethod{Type: "jwt"}, nil)
			return err
		}, "ACLAuthMethod.Name"},
		{"auth method read empty", func(a *ACL) error { _, _, err := a.AuthMethodRead(ctx, "", nil); return err }, "auth method name"},
		{"auth method delete empty", func(a *ACL) error { _, err := a.AuthMethodDelete(ctx, "", nil); return err }, "auth method name"},
		{"binding rule create no method", func(a *ACL) error {
			_, _, err := a.BindingRuleCreate(ctx, &ACLBindingRule{BindType: "service"}, nil)
			return err
		}, "ACLBindingRule.AuthMethod"},
		{"binding rule create with ID", func(a *ACL) error {
			_, _, err := a.BindingRuleCreate(ctx, &ACLBindingRule{ID: "x", AuthMethod: "m"}, nil)
			return err
		}, "ACLBindingRule.ID"},
		{"binding rule update no ID", func(a *ACL) error {
			_, _, err := a.BindingRuleUpdate(ctx, &ACLBindingRule{AuthMethod: "m"}, nil)
			return err
		}, "ACLBindingRule.ID"},
		{"binding rule read empty", func(a *ACL) error { _, _, err := a.BindingRuleRead(ctx, "", nil); return err }, "binding rule ID"},
		{"binding rule delete empty", func(a *ACL) error { _, err := a.BindingRuleDelete(ctx, "", nil); return err }, "binding rule ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("request sent: %s %s", r.Method, r.URL)
			}))
			t.Cleanup(srv.Close)
			c, err := NewClient(Config{Address: srv.URL, Token: aclFakeToken})
			require.NoError(t, err)
			err = tc.call(c.ACL())
			require.ErrorIs(t, err, ErrInvalid)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.field, ve.Field)
		})
	}
}

func TestACLLogoutNeedsAToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Address: srv.URL})
	require.NoError(t, err)
	_, err = c.ACL().Logout(context.Background(), nil)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "token", ve.Field)
}

func TestACLTokenJSONOmitsUnsetFields(t *testing.T) {
	// Consul decodes ACL bodies with unknown fields disallowed, and the
	// open-source server knows no Namespace or Partition: unset fields must
	// not be sent.
	b, err := json.Marshal(&ACLToken{Description: "x"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Description":"x","Local":false}`, string(b))
	for _, v := range []any{&ACLPolicy{Name: "p"}, &ACLRole{Name: "r"}, &ACLAuthMethod{Name: "m", Type: "jwt"}, &ACLBindingRule{AuthMethod: "m", BindType: "service", BindName: "s"}} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "Namespace")
		assert.NotContains(t, string(b), "Partition")
		assert.NotContains(t, string(b), "Index")
	}
}

func TestIsACLDisabled(t *testing.T) {
	assert.True(t, IsACLDisabled(&StatusError{Code: 401, Body: "ACL support disabled"}))
	assert.False(t, IsACLDisabled(&StatusError{Code: 403, Body: "ACL not found"}))
	assert.False(t, IsACLDisabled(errors.New("ACL support disabled")))
	assert.False(t, IsACLDisabled(nil))
}
