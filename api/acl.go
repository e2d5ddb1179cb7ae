package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// ErrACLAlreadyBootstrapped is matched (errors.Is) by the error of
// ACL.Bootstrap when the cluster's ACL system was bootstrapped before.
var ErrACLAlreadyBootstrapped = errors.New("consul: ACL bootstrap no longer allowed")

// ACLBootstrapError is the error of ACL.Bootstrap when Consul refuses to
// bootstrap again (HTTP 403 "ACL bootstrap no longer allowed"). It matches
// ErrACLAlreadyBootstrapped and ErrPermissionDenied, and errors.As finds the
// *StatusError inside.
type ACLBootstrapError struct {
	// ResetIndex is the index to write into the acl-bootstrap-reset file of
	// the leader's data directory to allow one more bootstrap; 0 when
	// Consul's answer did not say.
	ResetIndex uint64
	// Status is Consul's answer.
	Status *StatusError
}

func (e *ACLBootstrapError) Error() string {
	return fmt.Sprintf("consul: ACL bootstrap no longer allowed (reset index: %d)", e.ResetIndex)
}

// Unwrap exposes ErrACLAlreadyBootstrapped and the *StatusError.
func (e *ACLBootstrapError) Unwrap() []error { return []error{ErrACLAlreadyBootstrapped, e.Status} }

// IsACLDisabled reports whether err is Consul's answer to an ACL endpoint on
// an agent whose ACL system is disabled (HTTP 401 "ACL support disabled").
func IsACLDisabled(err error) bool {
	var se *StatusError
	return asStatus(err, &se) && se.Code == http.StatusUnauthorized && contains(se.Body, "ACL support disabled")
}

// ACLLink names a policy or role linked to a token or role: by ID, or by Name
// when creating (Consul resolves names and fills in both).
type ACLLink struct {
	ID   string `json:",omitempty"`
	Name string `json:",omitempty"`
}

// ACLTokenPolicyLink is a policy linked to a token.
type ACLTokenPolicyLink = ACLLink

// ACLTokenRoleLink is a role linked to a token.
type ACLTokenRoleLink = ACLLink

// ACLRolePolicyLink is a policy linked to a role.
type ACLRolePolicyLink = ACLLink

// ACLServiceIdentity grants the permissions a service (and its sidecar
// proxy) needs, in Datacenters (all when empty).
type ACLServiceIdentity struct {
	ServiceName string
	Datacenters []string `json:",omitempty"`
}

// ACLNodeIdentity grants the permissions a node's agent needs in one
// datacenter.
type ACLNodeIdentity struct {
	NodeName   string
	Datacenter string
}

// ACLToken is an ACL token. AccessorID names the token in the ACL endpoints;
// SecretID is what clients send as X-Consul-Token.
type ACLToken struct {
	AccessorID        string                `json:",omitempty"`
	SecretID          string                `json:",omitempty"`
	Description       string                `json:",omitempty"`
	Policies          []*ACLTokenPolicyLink `json:",omitempty"`
	Roles             []*ACLTokenRoleLink   `json:",omitempty"`
	ServiceIdentities []*ACLServiceIdentity `json:",omitempty"`
	NodeIdentities    []*ACLNodeIdentity    `json:",omitempty"`
	// Local tokens are valid only in the datacenter that created them and
	// are not replicated.
	Local bool
	// AuthMethod is the auth method that created the token by a login.
	AuthMethod string `json:",omitempty"`
	// ExpirationTTL, set on create only, makes the token expire that long
	// after its creation; Consul turns it into ExpirationTime.
	ExpirationTTL Duration `json:",omitempty"`
	// ExpirationTime is when the token expires; nil means never.
	ExpirationTime *time.Time `json:",omitempty"`
	CreateTime     time.Time  `json:",omitzero"`
	Hash           []byte     `json:",omitempty"`
	CreateIndex    uint64     `json:",omitempty"`
	ModifyIndex    uint64     `json:",omitempty"`
	// Namespace, Partition and AuthMethodNamespace are Consul Enterprise
	// fields; the open-source server rejects them when set.
	Namespace           string `json:",omitempty"`
	Partition           string `json:",omitempty"`
	AuthMethodNamespace string `json:",omitempty"`
}

// ACLTokenListEntry is a token as the token list shows it. SecretID is
// redacted unless the request's token has acl:write.
type ACLTokenListEntry struct {
	AccessorID          string
	SecretID            string
	Description         string
	Policies            []*ACLTokenPolicyLink `json:",omitempty"`
	Roles               []*ACLTokenRoleLink   `json:",omitempty"`
	ServiceIdentities   []*ACLServiceIdentity `json:",omitempty"`
	NodeIdentities      []*ACLNodeIdentity    `json:",omitempty"`
	Local               bool
	AuthMethod          string     `json:",omitempty"`
	ExpirationTime      *time.Time `json:",omitempty"`
	CreateTime          time.Time
	Hash                []byte
	CreateIndex         uint64
	ModifyIndex         uint64
	Legacy              bool   `json:",omitempty"`
	Namespace           string `json:",omitempty"`
	Partition           string `json:",omitempty"`
	AuthMethodNamespace string `json:",omitempty"`
}

// ACLPolicy is an ACL policy: a named set of rules.
type ACLPolicy struct {
	ID          string `json:",omitempty"`
	Name        string
	Description string `json:",omitempty"`
	// Rules is the policy in Consul's rule language (HCL or JSON).
	Rules string `json:",omitempty"`
	// Datacenters limits where the policy applies (all when empty).
	Datacenters []string `json:",omitempty"`
	Hash        []byte   `json:",omitempty"`
	CreateIndex uint64   `json:",omitempty"`
	ModifyIndex uint64   `json:",omitempty"`
	Namespace   string   `json:",omitempty"`
	Partition   string   `json:",omitempty"`
}

// ACLPolicyListEntry is a policy as the policy list shows it (no Rules).
type ACLPolicyListEntry struct {
	ID          string
	Name        string
	Description string
	Datacenters []string
	Hash        []byte
	CreateIndex uint64
	ModifyIndex uint64
	Namespace   string `json:",omitempty"`
	Partition   string `json:",omitempty"`
}

// ACLRole is an ACL role: policies and identities that tokens link to by
// reference.
type ACLRole struct {
	ID                string                `json:",omitempty"`
	Name              string                `json:",omitempty"`
	Description       string                `json:",omitempty"`
	Policies          []*ACLRolePolicyLink  `json:",omitempty"`
	ServiceIdentities []*ACLServiceIdentity `json:",omitempty"`
	NodeIdentities    []*ACLNodeIdentity    `json:",omitempty"`
	Hash              []byte                `json:",omitempty"`
	CreateIndex       uint64                `json:",omitempty"`
	ModifyIndex       uint64                `json:",omitempty"`
	Namespace         string                `json:",omitempty"`
	Partition         string                `json:",omitempty"`
}

// Auth method types of open-source Consul.
const (
	ACLAuthMethodTypeKubernetes = "kubernetes"
	ACLAuthMethodTypeJWT        = "jwt"
	ACLAuthMethodTypeOIDC       = "oidc"
)

// Token localities of an auth method.
const (
	ACLTokenLocalityLocal  = "local"
	ACLTokenLocalityGlobal = "global"
)

// ACLAuthMethodNamespaceRule (Consul Enterprise) picks the namespace of a
// token created by a login.
type ACLAuthMethodNamespaceRule struct {
	Selector      string `json:",omitempty"`
	BindNamespace string `json:",omitempty"`
}

// ACLAuthMethod is a way to log in with a credential from a trusted
// identity provider (Kubernetes, a JWT, OIDC) and get a Consul token.
type ACLAuthMethod struct {
	// Name identifies the method; it cannot change after creation.
	Name string
	// Type is one of the ACLAuthMethodType constants; it cannot change.
	Type        string
	DisplayName string `json:",omitempty"`
	Description string `json:",omitempty"`
	// MaxTokenTTL bounds the life of the tokens the method creates.
	MaxTokenTTL Duration `json:",omitempty"`
	// TokenLocality is ACLTokenLocalityLocal (the default) or
	// ACLTokenLocalityGlobal.
	TokenLocality string `json:",omitempty"`
	// Config is the type-specific configuration (for "jwt":
	// JWTValidationPubKeys, BoundAudiences, ClaimMappings, ...).
	Config         map[string]any                `json:",omitempty"`
	NamespaceRules []*ACLAuthMethodNamespaceRule `json:",omitempty"`
	CreateIndex    uint64                        `json:",omitempty"`
	ModifyIndex    uint64                        `json:",omitempty"`
	Namespace      string                        `json:",omitempty"`
	Partition      string                        `json:",omitempty"`
}

// ACLAuthMethodListEntry is an auth method as the list shows it (no
// Config).
type ACLAuthMethodListEntry struct {
	Name          string
	Type          string
	DisplayName   string   `json:",omitempty"`
	Description   string   `json:",omitempty"`
	MaxTokenTTL   Duration `json:",omitempty"`
	TokenLocality string   `json:",omitempty"`
	CreateIndex   uint64
	ModifyIndex   uint64
	Namespace     string `json:",omitempty"`
	Partition     string `json:",omitempty"`
}

// Bind types of a binding rule.
const (
	ACLBindTypeService = "service"
	ACLBindTypeRole    = "role"
	ACLBindTypeNode    = "node"
)

// ACLBindingRule decides what a token created by a login of AuthMethod
// grants: when Selector matches the identity's attributes, a service or node
// identity named BindName, or the role named BindName.
type ACLBindingRule struct {
	ID          string `json:",omitempty"`
	Description string `json:",omitempty"`
	AuthMethod  string
	// Selector is a filter expression over the identity's attributes; empty
	// matches every login.
	Selector string `json:",omitempty"`
	// BindType is one of the ACLBindType constants.
	BindType string
	// BindName may use ${...} interpolation of the identity's attributes.
	BindName    string
	CreateIndex uint64 `json:",omitempty"`
	ModifyIndex uint64 `json:",omitempty"`
	Namespace   string `json:",omitempty"`
	Partition   string `json:",omitempty"`
}

// ACLLoginParams is a login: the credential (BearerToken) to present to an
// auth method, and metadata for the token Consul creates.
type ACLLoginParams struct {
	AuthMethod  string
	BearerToken string
	Meta        map[string]string `json:",omitempty"`
}

// ACLReplicationStatus is the state of ACL replication in a secondary
// datacenter (Enabled is false in the primary).
type ACLReplicationStatus struct {
	Enabled              bool
	Running              bool
	SourceDatacenter     string
	ReplicationType      string
	ReplicatedIndex      uint64
	ReplicatedRoleIndex  uint64
	ReplicatedTokenIndex uint64
	LastSuccess          time.Time
	LastError            time.Time
	LastErrorMessage     string
}

// ACLTokenFilter narrows the token list to tokens that link a policy, link
// a role, or were created by an auth method. Empty fields do not filter.
type ACLTokenFilter struct {
	Policy     string // policy ID
	Role       string // role ID
	AuthMethod string // auth method name
}

// ACL is the handle on the /v1/acl endpoints. Every method answers a
// *StatusError for which IsACLDisabled is true when the agent runs without
// ACLs.
//
// Reads of policies and tokens that do not exist are errors: Consul answers
// 403 "ACL not found" for them, the same answer it gives for an unknown
// request token, so they cannot be told apart and are not turned into
// (nil, meta, nil). Match them with errors.Is(err, ErrACLNotFound). Roles,
// auth methods and binding rules that do not exist get a 404 and read as
// (nil, meta, nil).
type ACL struct{ c *Client }

// ACL returns the handle on the ACL endpoints.
func (c *Client) ACL() *ACL { return &ACL{c} }

var resetIndexRE = regexp.MustCompile(`reset index: (\d+)`)

// Bootstrap creates the first management token of a cluster whose ACL
// system was never bootstrapped. Later calls fail with an
// *ACLBootstrapError (matching ErrACLAlreadyBootstrapped), which carries the
// reset index Consul reports.
func (a *ACL) Bootstrap(ctx context.Context, w *WriteOptions) (*ACLToken, *WriteMeta, error) {
	var out ACLToken
	meta, err := a.c.write(ctx, http.MethodPut, "/v1/acl/bootstrap", w, nil, &out)
	if err != nil {
		var se *StatusError
		if asStatus(err, &se) && se.Code == http.StatusForbidden && contains(se.Body, "bootstrap no longer allowed") {
			be := &ACLBootstrapError{Status: se}
			if m := resetIndexRE.FindStringSubmatch(se.Body); m != nil {
				be.ResetIndex, _ = strconv.ParseUint(m[1], 10, 64)
			}
			return nil, meta, be
		}
		return nil, meta, err
	}
	return &out, meta, nil
}

// Login exchanges a credential for a new Consul token through an auth
// method. A credential the method rejects, or one no binding rule matches,
// is a *StatusError matching ErrPermissionDenied.
func (a *ACL) Login(ctx context.Context, p *ACLLoginParams, w *WriteOptions) (*ACLToken, *WriteMeta, error) {
	if p == nil {
		return nil, nil, &ValidationError{Field: "login", Reason: "nil"}
	}
	if err := requireID("ACLLoginParams.AuthMethod", p.AuthMethod); err != nil {
		return nil, nil, err
	}
	if p.BearerToken == "" {
		return nil, nil, &ValidationError{Field: "ACLLoginParams.BearerToken", Reason: "empty"}
	}
	var out ACLToken
	meta, err := a.c.write(ctx, http.MethodPost, "/v1/acl/login", w, p, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// Logout destroys the token of the request (w.Token, else the client's
// token), which must have been created by Login. A token Consul does not
// know is a *StatusError matching ErrACLNotFound; one not created by a
// login is a *StatusError matching ErrPermissionDenied.
func (a *ACL) Logout(ctx context.Context, w *WriteOptions) (*WriteMeta, error) {
	tok := a.c.token
	if w != nil && w.Token != "" {
		tok = w.Token
	}
	if tok == "" {
		return nil, &ValidationError{Field: "token", Reason: "Logout needs the token to destroy in WriteOptions.Token or the client's Config.Token"}
	}
	return a.c.write(ctx, http.MethodPost, "/v1/acl/logout", w, nil, nil)
}

// ReplicationStatus returns the state of ACL replication of the datacenter
// of the agent (or of q.Datacenter).
func (a *ACL) ReplicationStatus(ctx context.Context, q *QueryOptions) (*ACLReplicationStatus, *QueryMeta, error) {
	var out ACLReplicationStatus
	meta, err := a.c.query(ctx, "/v1/acl/replication", q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// TokenCreate creates a token. AccessorID and SecretID may be given (as
// UUIDs) or left for Consul to generate. Policies and roles may be linked by
// ID or by name.
func (a *ACL) TokenCreate(ctx context.Context, t *ACLToken, w *WriteOptions) (*ACLToken, *WriteMeta, error) {
	if t == nil {
		return nil, nil, &ValidationError{Field: "token", Reason: "nil"}
	}
	return a.tokenWrite(ctx, "/v1/acl/token", t, w)
}

// TokenUpdate replaces the token t.AccessorID with t. SecretID, Local,
// AuthMethod and the expiration cannot change. An unknown AccessorID is a
// *StatusError (500, "Cannot find token").
func (a *ACL) TokenUpdate(ctx context.Context, t *ACLToken, w *WriteOptions) (*ACLToken, *WriteMeta, error) {
	if t == nil {
		return nil, nil, &ValidationError{Field: "token", Reason: "nil"}
	}
	if err := requireNotReserved("ACLToken.AccessorID", t.AccessorID, "self"); err != nil {
		return nil, nil, err
	}
	return a.tokenWrite(ctx, "/v1/acl/token/"+escapeKey(t.AccessorID), t, w)
}

func (a *ACL) tokenWrite(ctx context.Context, path string, t *ACLToken, w *WriteOptions) (*ACLToken, *WriteMeta, error) {
	var out ACLToken
	meta, err := a.c.write(ctx, http.MethodPut, path, w, t, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// TokenClone creates a token with the links and identities of the token
// accessorID and the given description ("" keeps the original's). An
// unknown accessorID is a *StatusError matching ErrACLNotFound.
func (a *ACL) TokenClone(ctx context.Context, accessorID, description string, w *WriteOptions) (*ACLToken, *WriteMeta, error) {
	if err := requireSegment("accessor ID", accessorID); err != nil {
		return nil, nil, err
	}
	body := struct {
		Description string `json:",omitempty"`
	}{description}
	var out ACLToken
	meta, err := a.c.write(ctx, http.MethodPut, "/v1/acl/token/"+escapeKey(accessorID)+"/clone", w, body, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// TokenDelete deletes the token accessorID. Deleting a token that does not
// exist is not an error.
func (a *ACL) TokenDelete(ctx context.Context, accessorID string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireNotReserved("accessor ID", accessorID, "self"); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodDelete, "/v1/acl/token/"+escapeKey(accessorID), w, nil, nil)
}

// TokenRead returns the token accessorID. A token that does not exist is a
// *StatusError matching ErrACLNotFound (see ACL).
func (a *ACL) TokenRead(ctx context.Context, accessorID string, q *QueryOptions) (*ACLToken, *QueryMeta, error) {
	if err := requireNotReserved("accessor ID", accessorID, "self"); err != nil {
		return nil, nil, err
	}
	return a.tokenRead(ctx, "/v1/acl/token/"+escapeKey(accessorID), q)
}

// TokenReadSelf returns the token of the request itself (q.Token, else the
// client's token); it needs no ACL permission. An unknown token is a
// *StatusError matching ErrACLNotFound.
func (a *ACL) TokenReadSelf(ctx context.Context, q *QueryOptions) (*ACLToken, *QueryMeta, error) {
	return a.tokenRead(ctx, "/v1/acl/token/self", q)
}

func (a *ACL) tokenRead(ctx context.Context, path string, q *QueryOptions) (*ACLToken, *QueryMeta, error) {
	var out ACLToken
	meta, err := a.c.query(ctx, path, q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// TokenList lists every token.
func (a *ACL) TokenList(ctx context.Context, q *QueryOptions) ([]*ACLTokenListEntry, *QueryMeta, error) {
	return a.TokenListFiltered(ctx, ACLTokenFilter{}, q)
}

// TokenListFiltered lists the tokens that match f.
func (a *ACL) TokenListFiltered(ctx context.Context, f ACLTokenFilter, q *QueryOptions) ([]*ACLTokenListEntry, *QueryMeta, error) {
	r := a.c.newRequest(http.MethodGet, "/v1/acl/tokens")
	a.c.applyQuery(r, q)
	if f.Policy != "" {
		r.params.Set("policy", f.Policy)
	}
	if f.Role != "" {
		r.params.Set("role", f.Role)
	}
	if f.AuthMethod != "" {
		r.params.Set("authmethod", f.AuthMethod)
	}
	var out []*ACLTokenListEntry
	meta, err := a.c.queryRequest(ctx, r, &out)
	return out, meta, err
}

// PolicyCreate creates a policy; p.ID must be empty (Consul assigns it).
func (a *ACL) PolicyCreate(ctx context.Context, p *ACLPolicy, w *WriteOptions) (*ACLPolicy, *WriteMeta, error) {
	if p == nil {
		return nil, nil, &ValidationError{Field: "policy", Reason: "nil"}
	}
	if p.ID != "" {
		return nil, nil, &ValidationError{Field: "ACLPolicy.ID", Reason: "must be empty on create"}
	}
	if err := requireID("ACLPolicy.Name", p.Name); err != nil {
		return nil, nil, err
	}
	return a.policyWrite(ctx, "/v1/acl/policy", p, w)
}

// PolicyUpdate replaces the policy p.ID with p. An unknown ID is a
// *StatusError (500, "cannot find policy").
func (a *ACL) PolicyUpdate(ctx context.Context, p *ACLPolicy, w *WriteOptions) (*ACLPolicy, *WriteMeta, error) {
	if p == nil {
		return nil, nil, &ValidationError{Field: "policy", Reason: "nil"}
	}
	if err := requireNotReserved("ACLPolicy.ID", p.ID, "name"); err != nil {
		return nil, nil, err
	}
	if err := requireID("ACLPolicy.Name", p.Name); err != nil {
		return nil, nil, err
	}
	return a.policyWrite(ctx, "/v1/acl/policy/"+escapeKey(p.ID), p, w)
}

func (a *ACL) policyWrite(ctx context.Context, path string, p *ACLPolicy, w *WriteOptions) (*ACLPolicy, *WriteMeta, error) {
	var out ACLPolicy
	meta, err := a.c.write(ctx, http.MethodPut, path, w, p, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// PolicyDelete deletes the policy id. Deleting a policy that does not
// exist is not an error.
func (a *ACL) PolicyDelete(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireNotReserved("policy ID", id, "name"); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodDelete, "/v1/acl/policy/"+escapeKey(id), w, nil, nil)
}

// PolicyRead returns the policy id. A policy that does not exist is a
// *StatusError matching ErrACLNotFound (see ACL).
func (a *ACL) PolicyRead(ctx context.Context, id string, q *QueryOptions) (*ACLPolicy, *QueryMeta, error) {
	if err := requireNotReserved("policy ID", id, "name"); err != nil {
		return nil, nil, err
	}
	return a.policyRead(ctx, "/v1/acl/policy/"+escapeKey(id), q)
}

// PolicyReadByName returns the policy called name. A policy that does not
// exist is a *StatusError matching ErrACLNotFound (see ACL).
func (a *ACL) PolicyReadByName(ctx context.Context, name string, q *QueryOptions) (*ACLPolicy, *QueryMeta, error) {
	if err := requireSegment("policy name", name); err != nil {
		return nil, nil, err
	}
	return a.policyRead(ctx, "/v1/acl/policy/name/"+escapeKey(name), q)
}

func (a *ACL) policyRead(ctx context.Context, path string, q *QueryOptions) (*ACLPolicy, *QueryMeta, error) {
	var out ACLPolicy
	meta, err := a.c.query(ctx, path, q, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// PolicyList lists every policy, without rules.
func (a *ACL) PolicyList(ctx context.Context, q *QueryOptions) ([]*ACLPolicyListEntry, *QueryMeta, error) {
	var out []*ACLPolicyListEntry
	meta, err := a.c.query(ctx, "/v1/acl/policies", q, &out)
	return out, meta, err
}

// RoleCreate creates a role; role.ID must be empty (Consul assigns it).
func (a *ACL) RoleCreate(ctx context.Context, role *ACLRole, w *WriteOptions) (*ACLRole, *WriteMeta, error) {
	if role == nil {
		return nil, nil, &ValidationError{Field: "role", Reason: "nil"}
	}
	if role.ID != "" {
		return nil, nil, &ValidationError{Field: "ACLRole.ID", Reason: "must be empty on create"}
	}
	if err := requireID("ACLRole.Name", role.Name); err != nil {
		return nil, nil, err
	}
	return a.roleWrite(ctx, "/v1/acl/role", role, w)
}

// RoleUpdate replaces the role role.ID with role. An unknown ID is a
// *StatusError (500, "cannot find role").
func (a *ACL) RoleUpdate(ctx context.Context, role *ACLRole, w *WriteOptions) (*ACLRole, *WriteMeta, error) {
	if role == nil {
		return nil, nil, &ValidationError{Field: "role", Reason: "nil"}
	}
	if err := requireNotReserved("ACLRole.ID", role.ID, "name"); err != nil {
		return nil, nil, err
	}
	if err := requireID("ACLRole.Name", role.Name); err != nil {
		return nil, nil, err
	}
	return a.roleWrite(ctx, "/v1/acl/role/"+escapeKey(role.ID), role, w)
}

func (a *ACL) roleWrite(ctx context.Context, path string, role *ACLRole, w *WriteOptions) (*ACLRole, *WriteMeta, error) {
	var out ACLRole
	meta, err := a.c.write(ctx, http.MethodPut, path, w, role, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// RoleDelete deletes the role id. Deleting a role that does not exist is
// not an error.
func (a *ACL) RoleDelete(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireNotReserved("role ID", id, "name"); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodDelete, "/v1/acl/role/"+escapeKey(id), w, nil, nil)
}

// RoleRead returns the role id, or nil when it does not exist (404).
func (a *ACL) RoleRead(ctx context.Context, id string, q *QueryOptions) (*ACLRole, *QueryMeta, error) {
	if err := requireNotReserved("role ID", id, "name"); err != nil {
		return nil, nil, err
	}
	return getOptional[ACLRole](ctx, a.c, "/v1/acl/role/"+escapeKey(id), q)
}

// RoleReadByName returns the role called name, or nil when it does not
// exist (404).
func (a *ACL) RoleReadByName(ctx context.Context, name string, q *QueryOptions) (*ACLRole, *QueryMeta, error) {
	if err := requireSegment("role name", name); err != nil {
		return nil, nil, err
	}
	return getOptional[ACLRole](ctx, a.c, "/v1/acl/role/name/"+escapeKey(name), q)
}

// RoleList lists every role.
func (a *ACL) RoleList(ctx context.Context, q *QueryOptions) ([]*ACLRole, *QueryMeta, error) {
	return a.RoleListByPolicy(ctx, "", q)
}

// RoleListByPolicy lists the roles that link the policy policyID (every
// role when policyID is empty).
func (a *ACL) RoleListByPolicy(ctx context.Context, policyID string, q *QueryOptions) ([]*ACLRole, *QueryMeta, error) {
	r := a.c.newRequest(http.MethodGet, "/v1/acl/roles")
	a.c.applyQuery(r, q)
	if policyID != "" {
		r.params.Set("policy", policyID)
	}
	var out []*ACLRole
	meta, err := a.c.queryRequest(ctx, r, &out)
	return out, meta, err
}

// AuthMethodCreate creates an auth method; m.Name and m.Type are required.
func (a *ACL) AuthMethodCreate(ctx context.Context, m *ACLAuthMethod, w *WriteOptions) (*ACLAuthMethod, *WriteMeta, error) {
	if m == nil {
		return nil, nil, &ValidationError{Field: "auth method", Reason: "nil"}
	}
	if err := requireSegment("ACLAuthMethod.Name", m.Name); err != nil {
		return nil, nil, err
	}
	if err := requireID("ACLAuthMethod.Type", m.Type); err != nil {
		return nil, nil, err
	}
	return a.authMethodWrite(ctx, "/v1/acl/auth-method", m, w)
}

// AuthMethodUpdate replaces the auth method m.Name with m (its Type cannot
// change).
func (a *ACL) AuthMethodUpdate(ctx context.Context, m *ACLAuthMethod, w *WriteOptions) (*ACLAuthMethod, *WriteMeta, error) {
	if m == nil {
		return nil, nil, &ValidationError{Field: "auth method", Reason: "nil"}
	}
	if err := requireSegment("ACLAuthMethod.Name", m.Name); err != nil {
		return nil, nil, err
	}
	return a.authMethodWrite(ctx, "/v1/acl/auth-method/"+escapeKey(m.Name), m, w)
}

func (a *ACL) authMethodWrite(ctx context.Context, path string, m *ACLAuthMethod, w *WriteOptions) (*ACLAuthMethod, *WriteMeta, error) {
	var out ACLAuthMethod
	meta, err := a.c.write(ctx, http.MethodPut, path, w, m, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// AuthMethodDelete deletes the auth method name, with its binding rules and
// the tokens it created. Deleting one that does not exist is not an error.
func (a *ACL) AuthMethodDelete(ctx context.Context, name string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireSegment("auth method name", name); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodDelete, "/v1/acl/auth-method/"+escapeKey(name), w, nil, nil)
}

// AuthMethodRead returns the auth method name, or nil when it does not
// exist (404).
func (a *ACL) AuthMethodRead(ctx context.Context, name string, q *QueryOptions) (*ACLAuthMethod, *QueryMeta, error) {
	if err := requireSegment("auth method name", name); err != nil {
		return nil, nil, err
	}
	return getOptional[ACLAuthMethod](ctx, a.c, "/v1/acl/auth-method/"+escapeKey(name), q)
}

// AuthMethodList lists every auth method, without configuration.
func (a *ACL) AuthMethodList(ctx context.Context, q *QueryOptions) ([]*ACLAuthMethodListEntry, *QueryMeta, error) {
	var out []*ACLAuthMethodListEntry
	meta, err := a.c.query(ctx, "/v1/acl/auth-methods", q, &out)
	return out, meta, err
}

// BindingRuleCreate creates a binding rule; rule.ID must be empty (Consul
// assigns it) and rule.AuthMethod is required.
func (a *ACL) BindingRuleCreate(ctx context.Context, rule *ACLBindingRule, w *WriteOptions) (*ACLBindingRule, *WriteMeta, error) {
	if rule == nil {
		return nil, nil, &ValidationError{Field: "binding rule", Reason: "nil"}
	}
	if rule.ID != "" {
		return nil, nil, &ValidationError{Field: "ACLBindingRule.ID", Reason: "must be empty on create"}
	}
	if err := requireID("ACLBindingRule.AuthMethod", rule.AuthMethod); err != nil {
		return nil, nil, err
	}
	return a.bindingRuleWrite(ctx, "/v1/acl/binding-rule", rule, w)
}

// BindingRuleUpdate replaces the binding rule rule.ID with rule (its
// AuthMethod cannot change). An unknown ID is a *StatusError (500, "cannot
// find binding rule").
func (a *ACL) BindingRuleUpdate(ctx context.Context, rule *ACLBindingRule, w *WriteOptions) (*ACLBindingRule, *WriteMeta, error) {
	if rule == nil {
		return nil, nil, &ValidationError{Field: "binding rule", Reason: "nil"}
	}
	if err := requireSegment("ACLBindingRule.ID", rule.ID); err != nil {
		return nil, nil, err
	}
	return a.bindingRuleWrite(ctx, "/v1/acl/binding-rule/"+escapeKey(rule.ID), rule, w)
}

func (a *ACL) bindingRuleWrite(ctx context.Context, path string, rule *ACLBindingRule, w *WriteOptions) (*ACLBindingRule, *WriteMeta, error) {
	var out ACLBindingRule
	meta, err := a.c.write(ctx, http.MethodPut, path, w, rule, &out)
	if err != nil {
		return nil, meta, err
	}
	return &out, meta, nil
}

// BindingRuleDelete deletes the binding rule id. Deleting one that does not
// exist is not an error.
func (a *ACL) BindingRuleDelete(ctx context.Context, id string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireSegment("binding rule ID", id); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodDelete, "/v1/acl/binding-rule/"+escapeKey(id), w, nil, nil)
}

// BindingRuleRead returns the binding rule id, or nil when it does not
// exist (404).
func (a *ACL) BindingRuleRead(ctx context.Context, id string, q *QueryOptions) (*ACLBindingRule, *QueryMeta, error) {
	if err := requireSegment("binding rule ID", id); err != nil {
		return nil, nil, err
	}
	return getOptional[ACLBindingRule](ctx, a.c, "/v1/acl/binding-rule/"+escapeKey(id), q)
}

// BindingRuleList lists the binding rules of the auth method authMethod
// (of every auth method when authMethod is empty).
func (a *ACL) BindingRuleList(ctx context.Context, authMethod string, q *QueryOptions) ([]*ACLBindingRule, *QueryMeta, error) {
	r := a.c.newRequest(http.MethodGet, "/v1/acl/binding-rules")
	a.c.applyQuery(r, q)
	if authMethod != "" {
		r.params.Set("authmethod", authMethod)
	}
	var out []*ACLBindingRule
	meta, err := a.c.queryRequest(ctx, r, &out)
	return out, meta, err
}

// getOptional reads path into a new T; a 404 gives (nil, meta, nil).
func getOptional[T any](ctx context.Context, c *Client, path string, q *QueryOptions) (*T, *QueryMeta, error) {
	r := c.newRequest(http.MethodGet, path)
	c.applyQuery(r, q)
	resp, d, err := c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	out := new(T)
	if err := decode(resp, out); err != nil {
		return nil, meta, err
	}
	return out, meta, nil
}
