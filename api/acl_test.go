package api

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestACLBootstrapLoginLogoutReplication(t *testing.T) {
	runWireCases(t, []wireCase{
		{
			name:  "bootstrap",
			reply: fakeReply{Body: `{"ID": "b83f6216-cbd6-8c23-586b-4bb358bedfa4", ` + aclTokenJSON[1:]},
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
			reply: fakeReply{Status: 403, Body: "Permission denied: ACL bootstrap no longer allowed (reset index: 5)"},
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
			reply: fakeReply{Status: 401, Body: "ACL support disabled"},
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
			reply: fakeReply{Body: `{"AccessorID":"a1","SecretID":"s1","Description":"token created via login: {\"sub\":\"svc\"}","ServiceIdentities":[{"ServiceName":"svc-svc"}],"Local":true,"AuthMethod":"jwt1","CreateTime":"2026-11-27T10:02:48Z","Hash":"aGFzaA==","CreateIndex":40,"ModifyIndex":40}`},
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
			reply: fakeReply{Status: 403, Body: "Permission denied"},
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
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().Logout(ctx, &WriteOptions{Token: "s1"})
				return nil, err
			},
			method: "POST", path: "/v1/acl/logout", token: "s1",
		},
		{
			name:  "logout of a token not from a login",
			reply: fakeReply{Status: 403, Body: "Permission denied: token wasn't created via login"},
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
			reply: fakeReply{Body: `{"Enabled":true,"Running":true,"SourceDatacenter":"dc1","ReplicationType":"tokens","ReplicatedIndex":10,"ReplicatedRoleIndex":11,"ReplicatedTokenIndex":12,"LastSuccess":"2026-11-27T10:00:00Z","LastError":"0001-01-01T00:00:00Z","LastErrorMessage":""}`, Header: map[string]string{"X-Consul-KnownLeader": "true"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				st, meta, err := c.ACL().ReplicationStatus(ctx, &QueryOptions{Datacenter: "dc2"})
				if meta != nil {
					assert.True(t, meta.KnownLeader)
				}
				return st, err
			},
			method: "GET", path: "/v1/acl/replication", query: "dc=dc2",
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
	runWireCases(t, []wireCase{
		{
			name:  "create",
			reply: fakeReply{Body: aclTokenJSON},
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
			reply: fakeReply{Body: aclTokenJSON, Header: map[string]string{"X-Consul-Index": "24"}},
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
			reply: fakeReply{Status: 403, Body: "ACL not found"},
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
			reply: fakeReply{Body: aclTokenJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, _, err := c.ACL().TokenReadSelf(ctx, &QueryOptions{Token: "b83f6216-cbd6-8c23-586b-4bb358bedfa4"})
				return tok, err
			},
			method: "GET", path: "/v1/acl/token/self", token: "b83f6216-cbd6-8c23-586b-4bb358bedfa4",
			check: checkToken,
		},
		{
			name:  "update",
			reply: fakeReply{Body: aclTokenJSON},
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
			reply: fakeReply{Body: aclTokenJSON},
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
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().TokenDelete(ctx, acc, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/token/" + acc,
		},
		{
			name:  "list",
			reply: fakeReply{Body: "[" + aclTokenJSON + `,{"AccessorID":"00000000-0000-0000-0000-000000000002","SecretID":"anonymous","Description":"Anonymous Token","Local":false,"CreateTime":"2026-11-27T09:57:30Z","Hash":"aGFzaA==","CreateIndex":5,"ModifyIndex":5}]`},
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
			reply: fakeReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().TokenListFiltered(ctx, ACLTokenFilter{Policy: "pid", Role: "rid", AuthMethod: "jwt1"}, &QueryOptions{Consistency: ConsistencyStale})
				return l, err
			},
			method: "GET", path: "/v1/acl/tokens",
			query: "authmethod=jwt1&policy=pid&role=rid&stale",
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
	runWireCases(t, []wireCase{
		{
			name:  "policy create",
			reply: fakeReply{Body: aclPolicyJSON},
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
			reply: fakeReply{Body: aclPolicyJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyRead(ctx, pid, nil)
				return p, err
			},
			method: "GET", path: "/v1/acl/policy/" + pid,
			check: checkPolicy,
		},
		{
			name:  "policy read by name",
			reply: fakeReply{Body: aclPolicyJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				p, _, err := c.ACL().PolicyReadByName(ctx, "p1", nil)
				return p, err
			},
			method: "GET", path: "/v1/acl/policy/name/p1",
			check: checkPolicy,
		},
		{
			name:  "policy read by name missing",
			reply: fakeReply{Status: 403, Body: "ACL not found"},
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
			reply: fakeReply{Body: aclPolicyJSON},
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
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().PolicyDelete(ctx, pid, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/policy/" + pid,
		},
		{
			name:  "policy list",
			reply: fakeReply{Body: `[{"ID":"00000000-0000-0000-0000-000000000001","Name":"global-management","Description":"Builtin Policy that grants unlimited access","Datacenters":null,"Hash":"swIQt6up+s0cV4kePfJ2aRdKCLaQyykF4Hl1Nfdeumk=","CreateIndex":4,"ModifyIndex":4}]`},
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
			reply: fakeReply{Body: aclRoleJSON},
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
			reply: fakeReply{Body: aclRoleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleRead(ctx, rid, nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/role/" + rid,
			check: checkRole,
		},
		{
			name:  "role read missing",
			reply: fakeReply{Status: 404, Header: map[string]string{"X-Consul-Default-Acl-Policy": "deny"}},
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
			reply: fakeReply{Body: aclRoleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().RoleReadByName(ctx, "r1", nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/role/name/r1",
			check: checkRole,
		},
		{
			name:  "role read by name missing",
			reply: fakeReply{Status: 404},
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
			reply: fakeReply{Body: aclRoleJSON},
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
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().RoleDelete(ctx, rid, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/role/" + rid,
		},
		{
			name:  "role list",
			reply: fakeReply{Body: "[" + aclRoleJSON + "]"},
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
			reply: fakeReply{Body: "[]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().RoleListByPolicy(ctx, pid, nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/roles", query: "policy=" + pid,
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
	runWireCases(t, []wireCase{
		{
			name:  "auth method create",
			reply: fakeReply{Body: aclAuthMethodJSON},
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
			reply: fakeReply{Body: aclAuthMethodJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				m, _, err := c.ACL().AuthMethodRead(ctx, "jwt1", nil)
				return m, err
			},
			method: "GET", path: "/v1/acl/auth-method/jwt1",
			check: checkMethod,
		},
		{
			name:  "auth method read missing",
			reply: fakeReply{Status: 404},
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
			reply: fakeReply{Body: aclAuthMethodJSON},
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
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().AuthMethodDelete(ctx, "jwt1", nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/auth-method/jwt1",
		},
		{
			name:  "auth method list",
			reply: fakeReply{Body: `[{"Name":"jwt1","Type":"jwt","DisplayName":"JWT","MaxTokenTTL":"10m0s","TokenLocality":"local","CreateIndex":30,"ModifyIndex":31}]`},
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
			reply: fakeReply{Body: aclBindingRuleJSON},
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
			reply: fakeReply{Body: aclBindingRuleJSON},
			call: func(ctx context.Context, c *Client) (any, error) {
				r, _, err := c.ACL().BindingRuleRead(ctx, brid, nil)
				return r, err
			},
			method: "GET", path: "/v1/acl/binding-rule/" + brid,
			check: checkRule,
		},
		{
			name:  "binding rule read missing",
			reply: fakeReply{Status: 404},
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
			reply: fakeReply{Body: aclBindingRuleJSON},
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
			reply: fakeReply{Body: "true"},
			call: func(ctx context.Context, c *Client) (any, error) {
				_, err := c.ACL().BindingRuleDelete(ctx, brid, nil)
				return nil, err
			},
			method: "DELETE", path: "/v1/acl/binding-rule/" + brid,
		},
		{
			name:  "binding rule list",
			reply: fakeReply{Body: "[" + aclBindingRuleJSON + "]"},
			call: func(ctx context.Context, c *Client) (any, error) {
				l, _, err := c.ACL().BindingRuleList(ctx, "jwt1", nil)
				return l, err
			},
			method: "GET", path: "/v1/acl/binding-rules", query: "authmethod=jwt1",
			check: func(t *testing.T, out any, err error) {
				require.NoError(t, err)
				l := out.([]*ACLBindingRule)
				require.Len(t, l, 1)
				checkRule(t, l[0], nil)
			},
		},
		{
			name:  "binding rule list of every method",
			reply: fakeReply{Body: "[]"},
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
	c, f := newTokenFake(t, fakeReply{Status: 404})
	_, _, err := c.ACL().RoleReadByName(context.Background(), "a b?c", nil)
	require.NoError(t, err)
	assert.Equal(t, "/v1/acl/role/name/a%20b%3Fc", f.last(t).RawPath)
}

// TestACLValidation checks that bad input fails before any request.
func TestACLValidation(t *testing.T) {
	runInvalidCases(t, []invalidCase{
		{"login nil", func(ctx context.Context, c *Client) error { _, _, err := c.ACL().Login(ctx, nil, nil); return err }, "login"},
		{"login no method", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().Login(ctx, &ACLLoginParams{BearerToken: "x"}, nil)
			return err
		}, "ACLLoginParams.AuthMethod"},
		{"login no bearer", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().Login(ctx, &ACLLoginParams{AuthMethod: "m"}, nil)
			return err
		}, "ACLLoginParams.BearerToken"},
		{"token create nil", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().TokenCreate(ctx, nil, nil)
			return err
		}, "token"},
		{"token update no accessor", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().TokenUpdate(ctx, &ACLToken{}, nil)
			return err
		}, "ACLToken.AccessorID"},
		{"token read empty", func(ctx context.Context, c *Client) error { _, _, err := c.ACL().TokenRead(ctx, "", nil); return err }, "accessor ID"},
		{"token read control char", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().TokenRead(ctx, "a\nb", nil)
			return err
		}, "accessor ID"},
		{"token clone empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().TokenClone(ctx, " ", "", nil)
			return err
		}, "accessor ID"},
		{"token delete empty", func(ctx context.Context, c *Client) error { _, err := c.ACL().TokenDelete(ctx, "", nil); return err }, "accessor ID"},
		{"policy create with ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().PolicyCreate(ctx, &ACLPolicy{ID: "x", Name: "p"}, nil)
			return err
		}, "ACLPolicy.ID"},
		{"policy create no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().PolicyCreate(ctx, &ACLPolicy{}, nil)
			return err
		}, "ACLPolicy.Name"},
		{"policy update no ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().PolicyUpdate(ctx, &ACLPolicy{Name: "p"}, nil)
			return err
		}, "ACLPolicy.ID"},
		{"policy read empty", func(ctx context.Context, c *Client) error { _, _, err := c.ACL().PolicyRead(ctx, "", nil); return err }, "policy ID"},
		{"policy read by name empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().PolicyReadByName(ctx, "", nil)
			return err
		}, "policy name"},
		{"policy delete empty", func(ctx context.Context, c *Client) error { _, err := c.ACL().PolicyDelete(ctx, "", nil); return err }, "policy ID"},
		{"role create with ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().RoleCreate(ctx, &ACLRole{ID: "x", Name: "r"}, nil)
			return err
		}, "ACLRole.ID"},
		{"role create no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().RoleCreate(ctx, &ACLRole{}, nil)
			return err
		}, "ACLRole.Name"},
		{"role update no ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().RoleUpdate(ctx, &ACLRole{Name: "r"}, nil)
			return err
		}, "ACLRole.ID"},
		{"role read empty", func(ctx context.Context, c *Client) error { _, _, err := c.ACL().RoleRead(ctx, "", nil); return err }, "role ID"},
		{"role read by name empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().RoleReadByName(ctx, "", nil)
			return err
		}, "role name"},
		{"role delete empty", func(ctx context.Context, c *Client) error { _, err := c.ACL().RoleDelete(ctx, "", nil); return err }, "role ID"},
		{"auth method create no type", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().AuthMethodCreate(ctx, &ACLAuthMethod{Name: "m"}, nil)
			return err
		}, "ACLAuthMethod.Type"},
		{"auth method update no name", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().AuthMethodUpdate(ctx, &ACLAuthMethod{Type: "jwt"}, nil)
			return err
		}, "ACLAuthMethod.Name"},
		{"auth method read empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().AuthMethodRead(ctx, "", nil)
			return err
		}, "auth method name"},
		{"auth method delete empty", func(ctx context.Context, c *Client) error {
			_, err := c.ACL().AuthMethodDelete(ctx, "", nil)
			return err
		}, "auth method name"},
		{"binding rule create no method", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().BindingRuleCreate(ctx, &ACLBindingRule{BindType: "service"}, nil)
			return err
		}, "ACLBindingRule.AuthMethod"},
		{"binding rule create with ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().BindingRuleCreate(ctx, &ACLBindingRule{ID: "x", AuthMethod: "m"}, nil)
			return err
		}, "ACLBindingRule.ID"},
		{"binding rule update no ID", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().BindingRuleUpdate(ctx, &ACLBindingRule{AuthMethod: "m"}, nil)
			return err
		}, "ACLBindingRule.ID"},
		{"binding rule read empty", func(ctx context.Context, c *Client) error {
			_, _, err := c.ACL().BindingRuleRead(ctx, "", nil)
			return err
		}, "binding rule ID"},
		{"binding rule delete empty", func(ctx context.Context, c *Client) error {
			_, err := c.ACL().BindingRuleDelete(ctx, "", nil)
			return err
		}, "binding rule ID"},
	})
}

func TestACLLogoutNeedsAToken(t *testing.T) {
	c, f := newFake(t)
	_, err := c.ACL().Logout(context.Background(), nil)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "token", ve.Field)
	assert.Zero(t, f.count(), "no request may be sent")
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
