package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// KV verbs of a transaction.
const (
	KVSet            = "set"
	KVDelete         = "delete"
	KVDeleteCAS      = "delete-cas"
	KVDeleteTree     = "delete-tree"
	KVCAS            = "cas"
	KVLock           = "lock"
	KVUnlock         = "unlock"
	KVGet            = "get"
	KVGetTree        = "get-tree"
	KVCheckSession   = "check-session"
	KVCheckIndex     = "check-index"
	KVCheckNotExists = "check-not-exists"
)

// Verbs of node, service, check and session operations.
const (
	TxnGet            = "get"
	TxnSet            = "set"
	TxnCAS            = "cas"
	TxnDelete         = "delete"
	TxnDeleteCAS      = "delete-cas"
	TxnCheckIndex     = "check-index"
	TxnCheckNotExists = "check-not-exists"
)

// KVTxnOp is a KV operation of a transaction.
type KVTxnOp struct {
	Verb      string
	Key       string
	Value     []byte `json:",omitempty"`
	Flags     uint64 `json:",omitempty"`
	Index     uint64 `json:",omitempty"`
	Session   string `json:",omitempty"`
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
}

// NodeTxnOp is a catalog node operation of a transaction.
type NodeTxnOp struct {
	Verb string
	Node Node
}

// ServiceTxnOp is a catalog service operation of a transaction.
type ServiceTxnOp struct {
	Verb    string
	Node    string
	Service AgentService
}

// CheckTxnOp is a catalog check operation of a transaction.
type CheckTxnOp struct {
	Verb  string
	Check HealthCheck
}

// MarshalJSON sends the check without its top-level Interval and Timeout:
// Consul fills them in the checks it returns, but its transaction endpoint
// refuses them (400 "unknown field"); they travel in Definition. A check
// read from Consul can so be sent back as it is.
func (o CheckTxnOp) MarshalJSON() ([]byte, error) {
	c := o.Check
	c.Interval, c.Timeout = "", ""
	return json.Marshal(struct {
		Verb  string
		Check HealthCheck
	}{o.Verb, c})
}

// SessionTxnOp is a session operation (Verb "delete"). Consul's
// transactions support it internally, but its HTTP API does not accept it
// (Consul 1.14 answers 400 "unknown field"), so Txn.Do refuses an
// operation with Session set before sending anything. Destroy sessions with
// Session().Destroy.
type SessionTxnOp struct {
	Verb    string
	Session SessionEntry
}

// TxnOp is one operation; exactly one of KV, Node, Service and Check is
// set. Session is refused: see SessionTxnOp.
type TxnOp struct {
	KV      *KVTxnOp      `json:",omitempty"`
	Node    *NodeTxnOp    `json:",omitempty"`
	Service *ServiceTxnOp `json:",omitempty"`
	Check   *CheckTxnOp   `json:",omitempty"`
	Session *SessionTxnOp `json:",omitempty"`
}

// TxnOps is a transaction.
type TxnOps []*TxnOp

// TxnResult is the result of one operation, in the order of the operations
// that produce results (writes and reads of KV, node, service and check).
type TxnResult struct {
	KV      *KVPair       `json:",omitempty"`
	Node    *Node         `json:",omitempty"`
	Service *AgentService `json:",omitempty"`
	Check   *HealthCheck  `json:",omitempty"`
}

// TxnResponse is the answer to a committed transaction.
type TxnResponse struct {
	Results []*TxnResult
}

// MaxTxnSize is Consul's default txn_max_req_len: the largest request
// body /v1/txn accepts (512 KiB), where KV values travel base64-encoded.
// Txn.Do refuses a larger one before sending, also to an agent whose
// limit was raised.
const MaxTxnSize = 512 << 10

// MaxTxnOps is the number of operations Consul accepts in one transaction.
const MaxTxnOps = 128

// Txn is the handle on the /v1/txn endpoint.
type Txn struct{ c *Client }

// Txn returns the handle on the transaction endpoint.
func (c *Client) Txn() *Txn { return &Txn{c} }

// Do applies ops atomically. A transaction Consul rolls back is a *TxnError
// listing the failed operations; nothing was applied. A 200 whose answer
// arrives empty (a broken proxy or connection) was applied all the same:
// its TxnResponse has no Results, which a caller that needs them checks.
func (t *Txn) Do(ctx context.Context, ops TxnOps, w *WriteOptions) (*TxnResponse, *WriteMeta, error) {
	if err := validateTxn(ops); err != nil {
		return nil, nil, err
	}
	r := t.c.newRequest(http.MethodPut, "/v1/txn")
	t.c.applyWrite(r, w)
	if err := r.jsonBody(ops); err != nil {
		return nil, nil, err
	}
	if err := txnSizeError(r.body.(*bytes.Reader).Len()); err != nil {
		return nil, nil, err
	}
	resp, d, err := t.c.do(ctx, r, http.StatusConflict)
	if err != nil {
		return nil, nil, err
	}
	meta := &WriteMeta{RequestTime: d}
	var out struct {
		Results []*TxnResult
		Errors  []TxnOpError
	}
	if resp.StatusCode == http.StatusConflict {
		// Read the answer whole (bounded), so that one that is not
		// Consul's JSON is still a typed error.
		defer closeBody(resp)
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if rerr != nil && ctx.Err() != nil {
			return nil, meta, ctx.Err()
		}
		if rerr != nil {
			// Rolled back, for a reason cut off with the connection: a
			// transport fault, retryable, not a refusal the caller would
			// take as final.
			return nil, meta, &transportError{err: fmt.Errorf("consul: reading the answer of %s %s (409): %w", r.method, r.path, rerr)}
		}
		if json.Unmarshal(b, &out) != nil {
			if len(b) > maxErrorBody {
				b = b[:maxErrorBody]
			}
			return nil, meta, &StatusError{Method: r.method, Path: r.path, Code: resp.StatusCode, Body: string(b)}
		}
		return nil, meta, &TxnError{Errors: out.Errors}
	}
	// A 200 means applied: an answer that arrives empty (a broken proxy
	// or connection) gives a TxnResponse without Results.
	if err := decodeApplied(resp, &out); err != nil {
		return nil, meta, err
	}
	if resp.StatusCode == http.StatusConflict || len(out.Errors) > 0 {
		return nil, meta, &TxnError{Errors: out.Errors}
	}
	return &TxnResponse{Results: out.Results}, meta, nil
}

// ValidateTxn returns the error Do would return for ops before sending
// anything (a *ValidationError matching ErrInvalid), or nil: for one, a
// transaction whose encoding exceeds MaxTxnSize, which a value well under
// MaxValueSize can make, as values travel base64-encoded.
func ValidateTxn(ops TxnOps) error {
	if err := validateTxn(ops); err != nil {
		return err
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("consul: encoding request body: %w", err)
	}
	return txnSizeError(len(b))
}

func txnSizeError(n int) error {
	if n > MaxTxnSize {
		return &ValidationError{Field: "ops", Reason: fmt.Sprintf("encoded transaction is %d bytes (values travel base64-encoded), more than %d", n, MaxTxnSize)}
	}
	return nil
}

func validateTxn(ops TxnOps) error {
	if len(ops) == 0 {
		return &ValidationError{Field: "ops", Reason: "empty transaction"}
	}
	if len(ops) > MaxTxnOps {
		return &ValidationError{Field: "ops", Reason: fmt.Sprintf("%d operations, more than %d", len(ops), MaxTxnOps)}
	}
	for i, op := range ops {
		// field names what is wrong; built only when something is, so
		// that valid input costs no formatting.
		field := func(sub string) string { return "ops[" + strconv.Itoa(i) + "]" + sub }
		if op == nil {
			return &ValidationError{Field: field(""), Reason: "nil"}
		}
		n := 0
		for _, set := range []bool{op.KV != nil, op.Node != nil, op.Service != nil, op.Check != nil, op.Session != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return &ValidationError{Field: field(""), Reason: "exactly one of KV, Node, Service, Check, Session must be set"}
		}
		if kv := op.KV; kv != nil {
			if kv.Verb == "" {
				return &ValidationError{Field: field(".KV.Verb"), Reason: "empty"}
			}
			var err error
			switch kv.Verb {
			case KVDeleteTree:
				// The one verb Consul takes without a key ("" wipes
				// the whole store).
				err = validatePrefix(kv.Key)
			case KVGetTree:
				// Consul refuses every KV operation but delete-tree
				// without a key ("Must provide key"): a get-tree of
				// the whole store is rolled back.
				if kv.Key == "" {
					err = &ValidationError{Field: "key", Reason: "empty (Consul takes an empty key only for delete-tree; use KV().List(\"\") to read the whole store)"}
				} else {
					err = validatePrefix(kv.Key)
				}
			case KVSet, KVCAS, KVLock:
				// May create the key: refuse one /v1/kv could not read.
				err = ValidateKey(kv.Key)
			default:
				// A key that may already exist, named in the body only.
				if kv.Key == "" {
					err = &ValidationError{Field: "key", Reason: "empty"}
				} else {
					err = validateKeyText(kv.Key, false)
				}
			}
			if err == nil {
				err = validateValue(kv.Value)
			}
			if err != nil {
				ve := err.(*ValidationError)
				return &ValidationError{Field: field(".KV." + ve.Field), Reason: ve.Reason}
			}
			if (kv.Verb == KVLock || kv.Verb == KVUnlock || kv.Verb == KVCheckSession) && kv.Session == "" {
				return &ValidationError{Field: field(".KV.Session"), Reason: "empty for verb " + kv.Verb}
			}
		}
		if op.Session != nil {
			return &ValidationError{Field: field(".Session"), Reason: "Consul's HTTP API does not accept session operations in a transaction; use Session().Destroy"}
		}
		// Catalog operations act on one node, which must be named.
		var verb, node, what string
		switch {
		case op.Node != nil:
			verb, node, what = op.Node.Verb, op.Node.Node.Node, "Node.Node.Node"
		case op.Service != nil:
			verb, node, what = op.Service.Verb, op.Service.Node, "Service.Node"
		case op.Check != nil:
			verb, node, what = op.Check.Verb, op.Check.Check.Node, "Check.Check.Node"
		default:
			continue
		}
		if verb == "" {
			return &ValidationError{Field: field("." + strings.SplitN(what, ".", 2)[0] + ".Verb"), Reason: "empty"}
		}
		if strings.TrimSpace(node) == "" {
			return &ValidationError{Field: field("." + what), Reason: "empty"}
		}
	}
	return nil
}

// MarshalJSON encodes the session operation in Consul's form, where the
// session carries only what identifies it.
func (o SessionTxnOp) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Verb    string
		Session struct {
			ID   string
			Node string `json:",omitempty"`
		}
	}{Verb: o.Verb, Session: struct {
		ID   string
		Node string `json:",omitempty"`
	}{ID: o.Session.ID, Node: o.Session.Node}})
}
