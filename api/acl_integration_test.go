package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
	"github.com/consulkit/consulkit/integration"
)

var aclSeq atomic.Uint64

// aclName returns a name unique to the test and the run, in the
// characters Consul accepts for policy, role and auth method names.
func aclName(t *testing.T, suffix string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return strings.Trim(base, "-") + "-" + suffix + "-" + time.Now().Format("150405") + "-" + strconv.FormatUint(aclSeq.Add(1), 10)
}

// TestACLIntegration runs every ACL endpoint against one agent with ACLs on
// (default deny), whose management token the client carries.
func TestACLIntegration(t *testing.T) {
	a := integration.NewACLAgent(t)
	c := a.Client(t)
	acl := c.ACL()

	t.Run("bootstrap", func(t *testing.T) {
		// The harness configures an initial management token, which
		// bootstraps the ACL system: a second bootstrap is refused.
		tok, _, err := acl.Bootstrap(t.Context(), nil)
		assert.Nil(t, tok)
		require.ErrorIs(t, err, api.ErrACLAlreadyBootstrapped)
		assert.ErrorIs(t, err, api.ErrPermissionDenied)
		var be *api.ACLBootstrapError
		require.ErrorAs(t, err, &be)
		assert.NotZero(t, be.ResetIndex)
	})

	t.Run("replication status", func(t *testing.T) {
		st, meta, err := acl.ReplicationStatus(t.Context(), nil)
		require.NoError(t, err)
		assert.False(t, st.Enabled, "a primary datacenter does not replicate")
		assert.NotNil(t, meta)
	})

	t.Run("self", func(t *testing.T) {
		tok, _, err := acl.TokenReadSelf(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, a.Token, tok.SecretID)
		require.NotEmpty(t, tok.Policies)
		assert.Equal(t, "global-management", tok.Policies[0].Name)
	})

	t.Run("self with an unknown token", func(t *testing.T) {
		_, _, err := acl.TokenReadSelf(t.Context(), &api.QueryOptions{Token: "00000000-aaaa-bbbb-cccc-000000000000"})
		assert.ErrorIs(t, err, api.ErrACLNotFound)
	})

	t.Run("permission denied", func(t *testing.T) {
		cfg := a.Config()
		cfg.Token = "anonymous"
		anon, err := api.NewClient(cfg)
		require.NoError(t, err)
		_, _, err = anon.ACL().PolicyList(t.Context(), nil)
		assert.ErrorIs(t, err, api.ErrPermissionDenied)
		assert.NotErrorIs(t, err, api.ErrACLNotFound)
	})

	t.Run("policies roles tokens", func(t *testing.T) {
		testACLPoliciesRolesTokens(t, acl)
	})

	t.Run("auth method binding rule login logout", func(t *testing.T) {
		testACLLogin(t, acl)
	})
}

func testACLPoliciesRolesTokens(t *testing.T, acl *api.ACL) {
	ctx := t.Context()
	cleanup := context.WithoutCancel(ctx)

	// Policies.
	pname := aclName(t, "p")
	pol, _, err := acl.PolicyCreate(ctx, &api.ACLPolicy{Name: pname, Description: "kv read", Rules: `key_prefix "" { policy = "read" }`}, nil)
	require.NoError(t, err)
	require.NotEmpty(t, pol.ID)
	t.Cleanup(func() { _, _ = acl.PolicyDelete(cleanup, pol.ID, nil) })
	assert.Equal(t, pname, pol.Name)
	assert.NotZero(t, pol.CreateIndex)

	got, meta, err := acl.PolicyRead(ctx, pol.ID, nil)
	require.NoError(t, err)
	assert.Equal(t, pol.Rules, got.Rules)
	assert.NotZero(t, meta.LastIndex)
	got, _, err = acl.PolicyReadByName(ctx, pname, nil)
	require.NoError(t, err)
	assert.Equal(t, pol.ID, got.ID)

	got.Description = "kv read, updated"
	got.Datacenters = []string{"dc1"}
	upd, _, err := acl.PolicyUpdate(ctx, got, nil)
	require.NoError(t, err)
	assert.Equal(t, "kv read, updated", upd.Description)
	assert.Equal(t, []string{"dc1"}, upd.Datacenters)
	assert.Greater(t, upd.ModifyIndex, pol.ModifyIndex)

	pols, _, err := acl.PolicyList(ctx, nil)
	require.NoError(t, err)
	assert.True(t, aclContains(pols, func(p *api.ACLPolicyListEntry) bool { return p.ID == pol.ID }))
	assert.True(t, aclContains(pols, func(p *api.ACLPolicyListEntry) bool { return p.Name == "global-management" }))

	// Roles.
	rname := aclName(t, "r")
	role, _, err := acl.RoleCreate(ctx, &api.ACLRole{
		Name:              rname,
		Policies:          []*api.ACLRolePolicyLink{{Name: pname}},
		ServiceIdentities: []*api.ACLServiceIdentity{{ServiceName: "web", Datacenters: []string{"dc1"}}},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acl.RoleDelete(cleanup, role.ID, nil) })
	require.Len(t, role.Policies, 1)
	assert.Equal(t, pol.ID, role.Policies[0].ID, "Consul resolves links by name")

	gotRole, _, err := acl.RoleRead(ctx, role.ID, nil)
	require.NoError(t, err)
	require.NotNil(t, gotRole)
	assert.Equal(t, rname, gotRole.Name)
	gotRole, _, err = acl.RoleReadByName(ctx, rname, nil)
	require.NoError(t, err)
	require.NotNil(t, gotRole)
	assert.Equal(t, role.ID, gotRole.ID)

	gotRole.NodeIdentities = []*api.ACLNodeIdentity{{NodeName: "n1", Datacenter: "dc1"}}
	updRole, _, err := acl.RoleUpdate(ctx, gotRole, nil)
	require.NoError(t, err)
	require.Len(t, updRole.NodeIdentities, 1)
	assert.Equal(t, "n1", updRole.NodeIdentities[0].NodeName)

	roles, _, err := acl.RoleList(ctx, nil)
	require.NoError(t, err)
	assert.True(t, aclContains(roles, func(r *api.ACLRole) bool { return r.ID == role.ID }))
	roles, _, err = acl.RoleListByPolicy(ctx, pol.ID, nil)
	require.NoError(t, err)
	require.Len(t, roles, 1)
	assert.Equal(t, role.ID, roles[0].ID)

	// Tokens.
	tok, _, err := acl.TokenCreate(ctx, &api.ACLToken{
		Description:    aclName(t, "t"),
		Policies:       []*api.ACLTokenPolicyLink{{Name: pname}},
		Roles:          []*api.ACLTokenRoleLink{{ID: role.ID}},
		NodeIdentities: []*api.ACLNodeIdentity{{NodeName: "n2", Datacenter: "dc1"}},
		ExpirationTTL:  api.Duration(time.Hour),
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acl.TokenDelete(cleanup, tok.AccessorID, nil) })
	require.NotEmpty(t, tok.AccessorID)
	require.NotEmpty(t, tok.SecretID)
	require.NotNil(t, tok.ExpirationTime)
	assert.InDelta(t, time.Hour.Seconds(), tok.ExpirationTime.Sub(tok.CreateTime).Seconds(), 1)
	assert.Equal(t, pol.ID, tok.Policies[0].ID)
	assert.Equal(t, rname, tok.Roles[0].Name)

	gotTok, _, err := acl.TokenRead(ctx, tok.AccessorID, nil)
	require.NoError(t, err)
	assert.Equal(t, tok.SecretID, gotTok.SecretID)
	assert.Equal(t, tok.Hash, gotTok.Hash)

	self, _, err := acl.TokenReadSelf(ctx, &api.QueryOptions{Token: tok.SecretID})
	require.NoError(t, err, "reading its own token needs no permission")
	assert.Equal(t, tok.AccessorID, self.AccessorID)

	// Read, modify, write back: what Consul answers must be accepted again.
	gotTok.Description = "updated"
	gotTok.NodeIdentities = nil
	updTok, _, err := acl.TokenUpdate(ctx, gotTok, nil)
	require.NoError(t, err)
	assert.Equal(t, "updated", updTok.Description)
	assert.Empty(t, updTok.NodeIdentities)
	assert.Equal(t, tok.SecretID, updTok.SecretID)

	clone, _, err := acl.TokenClone(ctx, tok.AccessorID, "clone of "+tok.AccessorID, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acl.TokenDelete(cleanup, clone.AccessorID, nil) })
	assert.NotEqual(t, tok.AccessorID, clone.AccessorID)
	assert.NotEqual(t, tok.SecretID, clone.SecretID)
	assert.Equal(t, "clone of "+tok.AccessorID, clone.Description)
	assert.Equal(t, pol.ID, clone.Policies[0].ID)

	all, _, err := acl.TokenList(ctx, nil)
	require.NoError(t, err)
	assert.True(t, aclContains(all, func(e *api.ACLTokenListEntry) bool { return e.AccessorID == tok.AccessorID }))
	byPolicy, _, err := acl.TokenListFiltered(ctx, api.ACLTokenFilter{Policy: pol.ID}, nil)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{tok.AccessorID, clone.AccessorID}, aclAccessors(byPolicy))
	byRole, _, err := acl.TokenListFiltered(ctx, api.ACLTokenFilter{Role: role.ID}, nil)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{tok.AccessorID, clone.AccessorID}, aclAccessors(byRole))

	// Deletes, and what reads of deleted objects give.
	_, err = acl.TokenDelete(ctx, clone.AccessorID, nil)
	require.NoError(t, err)
	_, _, err = acl.TokenRead(ctx, clone.AccessorID, nil)
	assert.ErrorIs(t, err, api.ErrACLNotFound, "Consul answers 403 ACL not found for a missing token")
	_, err = acl.TokenDelete(ctx, clone.AccessorID, nil)
	assert.NoError(t, err, "deleting a missing token is not an error")

	_, err = acl.RoleDelete(ctx, role.ID, nil)
	require.NoError(t, err)
	gone, _, err := acl.RoleRead(ctx, role.ID, nil)
	require.NoError(t, err)
	assert.Nil(t, gone)
	gone, _, err = acl.RoleReadByName(ctx, rname, nil)
	require.NoError(t, err)
	assert.Nil(t, gone)
	_, err = acl.RoleDelete(ctx, role.ID, nil)
	assert.NoError(t, err, "deleting a missing role is not an error")

	_, err = acl.TokenDelete(ctx, tok.AccessorID, nil)
	require.NoError(t, err)
	_, err = acl.PolicyDelete(ctx, pol.ID, nil)
	require.NoError(t, err)
	_, _, err = acl.PolicyRead(ctx, pol.ID, nil)
	assert.ErrorIs(t, err, api.ErrACLNotFound)
	_, _, err = acl.PolicyReadByName(ctx, pname, nil)
	assert.ErrorIs(t, err, api.ErrACLNotFound)
	_, err = acl.PolicyDelete(ctx, pol.ID, nil)
	assert.NoError(t, err, "deleting a missing policy is not an error")
}

// jwtSigner signs JWTs with an ECDSA P-256 key (ES256) using only the
// standard library; Consul's "jwt" auth method validates them against the
// PEM public key, without any external service.
type jwtSigner struct {
	key *ecdsa.PrivateKey
}

func newJWTSigner(t *testing.T) *jwtSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &jwtSigner{key: k}
}

func (s *jwtSigner) publicPEM(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (s *jwtSigner) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	hdr, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	require.NoError(t, err)
	body, err := json.Marshal(claims)
	require.NoError(t, err)
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(body)
	digest := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	require.NoError(t, err)
	sig := make([]byte, 64) // JWS ES256: R and S, 32 bytes each, big-endian
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

func testACLLogin(t *testing.T, acl *api.ACL) {
	ctx := t.Context()
	cleanup := context.WithoutCancel(ctx)
	signer := newJWTSigner(t)
	const issuer, audience = "consulkit-test", "consulkit"

	mname := aclName(t, "jwt")
	m, _, err := acl.AuthMethodCreate(ctx, &api.ACLAuthMethod{
		Name:        mname,
		Type:        api.ACLAuthMethodTypeJWT,
		DisplayName: "test JWT",
		MaxTokenTTL: api.Duration(10 * time.Minute),
		// A token with an expiry must be local.
		TokenLocality: api.ACLTokenLocalityLocal,
		Config: map[string]any{
			"JWTValidationPubKeys": []string{signer.publicPEM(t)},
			"JWTSupportedAlgs":     []string{"ES256"},
			"BoundIssuer":          issuer,
			"BoundAudiences":       []string{audience},
			"ClaimMappings":        map[string]string{"sub": "sub"},
		},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acl.AuthMethodDelete(cleanup, mname, nil) })
	assert.Equal(t, mname, m.Name)
	assert.Equal(t, 10*time.Minute, m.MaxTokenTTL.D())

	gotM, _, err := acl.AuthMethodRead(ctx, mname, nil)
	require.NoError(t, err)
	require.NotNil(t, gotM)
	assert.Equal(t, issuer, gotM.Config["BoundIssuer"])
	gotM.Description = "updated"
	updM, _, err := acl.AuthMethodUpdate(ctx, gotM, nil)
	require.NoError(t, err)
	assert.Equal(t, "updated", updM.Description)
	methods, _, err := acl.AuthMethodList(ctx, nil)
	require.NoError(t, err)
	assert.True(t, aclContains(methods, func(e *api.ACLAuthMethodListEntry) bool {
		return e.Name == mname && e.Type == "jwt" && e.MaxTokenTTL.D() == 10*time.Minute
	}))

	rule, _, err := acl.BindingRuleCreate(ctx, &api.ACLBindingRule{
		AuthMethod: mname,
		Selector:   `value.sub == "billing"`,
		BindType:   api.ACLBindTypeService,
		BindName:   "svc-${value.sub}",
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acl.BindingRuleDelete(cleanup, rule.ID, nil) })
	gotRule, _, err := acl.BindingRuleRead(ctx, rule.ID, nil)
	require.NoError(t, err)
	require.NotNil(t, gotRule)
	assert.Equal(t, "svc-${value.sub}", gotRule.BindName)
	gotRule.Description = "billing services"
	updRule, _, err := acl.BindingRuleUpdate(ctx, gotRule, nil)
	require.NoError(t, err)
	assert.Equal(t, "billing services", updRule.Description)
	rules, _, err := acl.BindingRuleList(ctx, mname, nil)
	require.NoError(t, err)
	require.Len(t, rules, 1)
	assert.Equal(t, rule.ID, rules[0].ID)
	rules, _, err = acl.BindingRuleList(ctx, "", nil)
	require.NoError(t, err)
	assert.True(t, aclContains(rules, func(r *api.ACLBindingRule) bool { return r.ID == rule.ID }))

	now := time.Now()
	claims := func(sub string) map[string]any {
		return map[string]any{
			"iss": issuer, "aud": audience, "sub": sub,
			"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
	}

	// A valid JWT whose subject matches the binding rule logs in.
	tok, _, err := acl.Login(ctx, &api.ACLLoginParams{AuthMethod: mname, BearerToken: signer.sign(t, claims("billing")), Meta: map[string]string{"host": "h1"}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acl.TokenDelete(cleanup, tok.AccessorID, nil) })
	assert.Equal(t, mname, tok.AuthMethod)
	assert.True(t, tok.Local)
	require.Len(t, tok.ServiceIdentities, 1)
	assert.Equal(t, "svc-billing", tok.ServiceIdentities[0].ServiceName)
	assert.Contains(t, tok.Description, "h1")

	byMethod, _, err := acl.TokenListFiltered(ctx, api.ACLTokenFilter{AuthMethod: mname}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{tok.AccessorID}, aclAccessors(byMethod))

	// No binding rule matches another subject; a JWT signed by another key
	// is rejected.
	_, _, err = acl.Login(ctx, &api.ACLLoginParams{AuthMethod: mname, BearerToken: signer.sign(t, claims("payroll"))}, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	_, _, err = acl.Login(ctx, &api.ACLLoginParams{AuthMethod: mname, BearerToken: newJWTSigner(t).sign(t, claims("billing"))}, nil)
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	assert.GreaterOrEqual(t, se.Code, 400)

	// Logout destroys the login token; the management token was not made by
	// a login.
	_, err = acl.Logout(ctx, nil)
	assert.ErrorIs(t, err, api.ErrPermissionDenied)
	_, err = acl.Logout(ctx, &api.WriteOptions{Token: tok.SecretID})
	require.NoError(t, err)
	_, err = acl.Logout(ctx, &api.WriteOptions{Token: tok.SecretID})
	assert.ErrorIs(t, err, api.ErrACLNotFound)

	// Deletes.
	_, err = acl.BindingRuleDelete(ctx, rule.ID, nil)
	require.NoError(t, err)
	gone, _, err := acl.BindingRuleRead(ctx, rule.ID, nil)
	require.NoError(t, err)
	assert.Nil(t, gone)
	_, err = acl.AuthMethodDelete(ctx, mname, nil)
	require.NoError(t, err)
	goneM, _, err := acl.AuthMethodRead(ctx, mname, nil)
	require.NoError(t, err)
	assert.Nil(t, goneM)
	_, err = acl.AuthMethodDelete(ctx, mname, nil)
	assert.NoError(t, err, "deleting a missing auth method is not an error")
}

// TestACLDisabledIntegration checks the answer of an agent without ACLs.
func TestACLDisabledIntegration(t *testing.T) {
	c := integration.Shared(t).Client(t)
	_, _, err := c.ACL().PolicyList(t.Context(), nil)
	assert.True(t, api.IsACLDisabled(err), "got %v", err)
	_, _, err = c.ACL().Bootstrap(t.Context(), nil)
	assert.True(t, api.IsACLDisabled(err), "got %v", err)
	assert.NotErrorIs(t, err, api.ErrACLAlreadyBootstrapped)
}

func aclContains[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

func aclAccessors(l []*api.ACLTokenListEntry) []string {
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, e.AccessorID)
	}
	return out
}
