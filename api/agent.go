package api

import (
	"context"
	"net/http"
)

// Agent is the handle on the /v1/agent endpoints of the agent the client
// talks to.
type Agent struct{ c *Client }

// Agent returns the handle on the local agent's endpoints.
func (c *Client) Agent() *Agent { return &Agent{c} }

// CheckRegister registers a check with the agent. Registering an existing
// check ID replaces it. The definition is validated first (see
// AgentServiceCheck.Validate). The check's ID, Name and Notes are the
// registration's own; those of the embedded AgentServiceCheck (CheckID,
// Name, Notes) are sent in their place when set, and must then equal them
// where both are set.
func (a *Agent) CheckRegister(ctx context.Context, reg *AgentCheckRegistration, w *WriteOptions) (*WriteMeta, error) {
	if reg == nil {
		return nil, &ValidationError{Field: "check", Reason: "nil"}
	}
	// The registration's own ID, Name and Notes hide the embedded
	// AgentServiceCheck's on the wire (and the agent refuses a "CheckID"
	// field: 400, unknown field), so the embedded ones are sent in their
	// place. The copy leaves the caller's registration as it was.
	cp := *reg
	for _, f := range []struct {
		field         string
		outer, nested *string
	}{
		{"AgentServiceCheck.CheckID", &cp.ID, &cp.CheckID},
		{"AgentServiceCheck.Name", &cp.Name, &cp.AgentServiceCheck.Name},
		{"AgentServiceCheck.Notes", &cp.Notes, &cp.AgentServiceCheck.Notes},
	} {
		if *f.nested == "" {
			continue
		}
		if *f.outer != "" && *f.outer != *f.nested {
			return nil, &ValidationError{Field: f.field, Reason: "differs from the registration's own field, which the agent takes"}
		}
		*f.outer, *f.nested = *f.nested, ""
	}
	reg = &cp
	if err := requireID("check Name", reg.Name); err != nil {
		return nil, err
	}
	if err := reg.AgentServiceCheck.Validate(); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodPut, "/v1/agent/check/register", w, reg, nil)
}

// CheckDeregister removes a check from the agent. An unknown check is a
// *StatusError matching ErrNotFound.
func (a *Agent) CheckDeregister(ctx context.Context, checkID string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("check ID", checkID); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodPut, "/v1/agent/check/deregister/"+escapeKey(checkID), w, nil, nil)
}

// Checks returns the checks registered with the agent, by ID.
func (a *Agent) Checks(ctx context.Context, q *QueryOptions) (map[string]*HealthCheck, *QueryMeta, error) {
	var out map[string]*HealthCheck
	meta, err := a.c.query(ctx, "/v1/agent/checks", q, &out)
	return out, meta, err
}

// UpdateTTL sets the status (HealthPassing, HealthWarning or
// HealthCritical) and output of a TTL check and resets its timer. A check
// the agent does not know, or one that is not a TTL check, is a
// *StatusError: a 404 for an unknown check on current Consul versions, a 500
// "does not have associated TTL" on older ones; IsUnknownCheck matches both.
func (a *Agent) UpdateTTL(ctx context.Context, checkID, output, status string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("check ID", checkID); err != nil {
		return nil, err
	}
	switch status {
	case HealthPassing, HealthWarning, HealthCritical:
	default:
		return nil, &ValidationError{Field: "status", Reason: "must be passing, warning or critical, not " + status}
	}
	body := struct {
		Status string
		Output string `json:",omitempty"`
	}{status, output}
	return a.c.write(ctx, http.MethodPut, "/v1/agent/check/update/"+escapeKey(checkID), w, body, nil)
}

// PassTTL marks a TTL check passing with a note (legacy endpoint).
func (a *Agent) PassTTL(ctx context.Context, checkID, note string, w *WriteOptions) (*WriteMeta, error) {
	return a.legacyTTL(ctx, "pass", checkID, note, w)
}

// WarnTTL marks a TTL check warning with a note (legacy endpoint).
func (a *Agent) WarnTTL(ctx context.Context, checkID, note string, w *WriteOptions) (*WriteMeta, error) {
	return a.legacyTTL(ctx, "warn", checkID, note, w)
}

// FailTTL marks a TTL check critical with a note (legacy endpoint).
func (a *Agent) FailTTL(ctx context.Context, checkID, note string, w *WriteOptions) (*WriteMeta, error) {
	return a.legacyTTL(ctx, "fail", checkID, note, w)
}

func (a *Agent) legacyTTL(ctx context.Context, verb, checkID, note string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("check ID", checkID); err != nil {
		return nil, err
	}
	r := a.c.newRequest(http.MethodPut, "/v1/agent/check/"+verb+"/"+escapeKey(checkID))
	a.c.applyWrite(r, w)
	if note != "" {
		r.params.Set("note", note)
	}
	return a.c.writeRequest(ctx, r, nil)
}

// IsUnknownCheck reports whether err says the agent does not know a check
// as a TTL check: a 404, or Consul's older 500 "does not have associated
// TTL" / "Unknown check ID".
func IsUnknownCheck(err error) bool {
	var se *StatusError
	if !asStatus(err, &se) {
		return false
	}
	return se.Code == http.StatusNotFound ||
		se.Code == http.StatusInternalServerError && (contains(se.Body, "does not have associated TTL") || contains(se.Body, "Unknown check ID"))
}

// ServiceRegister registers a service, and the checks it names, with the
// agent. Registering an existing ID replaces the service, but keeps the
// checks of the earlier registration that this one does not name: see
// ServiceRegisterOpts to drop them.
func (a *Agent) ServiceRegister(ctx context.Context, reg *AgentServiceRegistration, w *WriteOptions) (*WriteMeta, error) {
	return a.ServiceRegisterOpts(ctx, reg, ServiceRegisterOptions{}, w)
}

// ServiceRegisterOptions are the options of ServiceRegisterOpts.
type ServiceRegisterOptions struct {
	// ReplaceExistingChecks removes the checks of an earlier registration
	// of the service that reg does not name (replace-existing-checks).
	ReplaceExistingChecks bool
}

// ServiceRegisterOpts is ServiceRegister with options.
func (a *Agent) ServiceRegisterOpts(ctx context.Context, reg *AgentServiceRegistration, opts ServiceRegisterOptions, w *WriteOptions) (*WriteMeta, error) {
	if reg == nil {
		return nil, &ValidationError{Field: "service", Reason: "nil"}
	}
	if err := requireID("service Name", reg.Name); err != nil {
		return nil, err
	}
	if reg.Check != nil {
		if err := reg.Check.Validate(); err != nil {
			return nil, err
		}
	}
	for _, ch := range reg.Checks {
		if err := ch.Validate(); err != nil {
			return nil, err
		}
	}
	r := a.c.newRequest(http.MethodPut, "/v1/agent/service/register")
	a.c.applyWrite(r, w)
	if opts.ReplaceExistingChecks {
		r.params.Set("replace-existing-checks", "true")
	}
	if err := r.jsonBody(reg); err != nil {
		return nil, err
	}
	return a.c.writeRequest(ctx, r, nil)
}

// ServiceDeregister removes a service and its checks from the agent. An
// unknown service is a *StatusError matching ErrNotFound.
func (a *Agent) ServiceDeregister(ctx context.Context, serviceID string, w *WriteOptions) (*WriteMeta, error) {
	if err := requireID("service ID", serviceID); err != nil {
		return nil, err
	}
	return a.c.write(ctx, http.MethodPut, "/v1/agent/service/deregister/"+escapeKey(serviceID), w, nil, nil)
}
