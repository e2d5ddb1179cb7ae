package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxValueSize is the largest KV value Consul accepts by default (512 KiB).
const MaxValueSize = 512 << 10

// KVPair is one key of the KV store.
type KVPair struct {
	Key         string
	CreateIndex uint64
	ModifyIndex uint64
	// LockIndex counts the acquisitions of the key by a session.
	LockIndex uint64
	Flags     uint64
	Value     []byte
	// Session is the session holding the key's lock, if any.
	Session   string `json:",omitempty"`
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
}

// KVPairs is a list of KV pairs.
type KVPairs []*KVPair

// KV is the handle on the /v1/kv endpoints.
type KV struct{ c *Client }

// KV returns the handle on the KV store endpoints.
func (c *Client) KV() *KV { return &KV{c} }

// ValidateKey reports whether key may be written: not empty, no leading
// slash, no control characters, and no empty, "." or ".." segment before
// the last '/' (Consul's HTTP server redirects such paths to a cleaned one,
// which names another key).
func ValidateKey(key string) error {
	if key == "" {
		return &ValidationError{Field: "key", Reason: "empty"}
	}
	return validatePrefix(key)
}

func validatePrefix(key string) error { return validateKeyText(key, true) }

// validateKeyText is validatePrefix; printable false skips the refusal of
// runes unicode.IsPrint refuses, for a key that travels in a transaction's
// body, which Consul's URL filter never sees (an existing key holding one
// can be read, checked and deleted there, and only there).
func validateKeyText(key string, printable bool) error {
	if strings.HasPrefix(key, "/") {
		return &ValidationError{Field: "key", Reason: "must not begin with '/': " + strconv.Quote(key)}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return &ValidationError{Field: "key", Reason: "contains a control character: " + strconv.Quote(key)}
		}
	}
	// Invalid UTF-8 is refused whatever the verb: encoding/json would send
	// it with U+FFFD in place of the bad bytes, naming another key.
	if reason := unprintable(key); reason != "" && (printable || !utf8.ValidString(key)) {
		return &ValidationError{Field: "key", Reason: reason + ": " + strconv.Quote(key)}
	}
	if rewritten(key) {
		return &ValidationError{Field: "key", Reason: "empty, \".\" or \"..\" segment (the HTTP path would be rewritten): " + strconv.Quote(key)}
	}
	return nil
}

func validateValue(v []byte) error {
	if len(v) > MaxValueSize {
		return &ValidationError{Field: "value", Reason: "larger than 512 KiB (" + strconv.Itoa(len(v)) + " bytes)"}
	}
	return nil
}

// Get reads one key. A missing key is (nil, meta, nil); meta.LastIndex is
// still valid for a blocking query that waits for the key to appear.
func (k *KV) Get(ctx context.Context, key string, q *QueryOptions) (*KVPair, *QueryMeta, error) {
	if err := ValidateKey(key); err != nil {
		return nil, nil, err
	}
	pairs, meta, err := k.getInternal(ctx, key, nil, q)
	if err != nil || len(pairs) == 0 {
		return nil, meta, err
	}
	return pairs[0], meta, nil
}

// List reads every key under prefix ("" for all). An empty prefix or one
// without keys gives an empty list and no error.
func (k *KV) List(ctx context.Context, prefix string, q *QueryOptions) (KVPairs, *QueryMeta, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, nil, err
	}
	return k.getInternal(ctx, prefix, map[string]string{"recurse": ""}, q)
}

// Keys lists the keys under prefix. With a separator, keys are rolled up at
// the first separator after the prefix, like a directory listing.
func (k *KV) Keys(ctx context.Context, prefix, separator string, q *QueryOptions) ([]string, *QueryMeta, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, nil, err
	}
	r := k.c.newRequest(http.MethodGet, "/v1/kv/"+escapeKey(prefix))
	k.c.applyQuery(r, q)
	r.params.Set("keys", "")
	if separator != "" {
		r.params.Set("separator", separator)
	}
	resp, d, err := k.c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	var keys []string
	return keys, meta, decode(resp, &keys)
}

func (k *KV) getInternal(ctx context.Context, key string, params map[string]string, q *QueryOptions) (KVPairs, *QueryMeta, error) {
	r := k.c.newRequest(http.MethodGet, "/v1/kv/"+escapeKey(key))
	k.c.applyQuery(r, q)
	for p, v := range params {
		r.params.Set(p, v)
	}
	resp, d, err := k.c.do(ctx, r, http.StatusNotFound)
	if err != nil {
		return nil, nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	if resp.StatusCode == http.StatusNotFound {
		closeBody(resp)
		return nil, meta, nil
	}
	var pairs KVPairs
	return pairs, meta, decode(resp, &pairs)
}

// Put writes p.Value and p.Flags to p.Key unconditionally.
func (k *KV) Put(ctx context.Context, p *KVPair, w *WriteOptions) (*WriteMeta, error) {
	_, meta, err := k.put(ctx, p, nil, w)
	return meta, err
}

// CAS writes p only if the key's ModifyIndex still equals p.ModifyIndex
// (0: only if the key does not exist). It reports whether the write happened.
func (k *KV) CAS(ctx context.Context, p *KVPair, w *WriteOptions) (bool, *WriteMeta, error) {
	if p == nil {
		return false, nil, &ValidationError{Field: "pair", Reason: "nil"}
	}
	return k.put(ctx, p, map[string]string{"cas": strconv.FormatUint(p.ModifyIndex, 10)}, w)
}

// Acquire writes p and locks the key for session p.Session, if no other
// session holds it and no lock-delay is in force. It reports whether the
// lock was acquired.
func (k *KV) Acquire(ctx context.Context, p *KVPair, w *WriteOptions) (bool, *WriteMeta, error) {
	if p == nil {
		return false, nil, &ValidationError{Field: "pair", Reason: "nil"}
	}
	if err := requireID("session", p.Session); err != nil {
		return false, nil, err
	}
	return k.put(ctx, p, map[string]string{"acquire": p.Session}, w)
}

// Release writes p and unlocks the key if p.Session holds it. It reports
// whether the lock was released.
func (k *KV) Release(ctx context.Context, p *KVPair, w *WriteOptions) (bool, *WriteMeta, error) {
	if p == nil {
		return false, nil, &ValidationError{Field: "pair", Reason: "nil"}
	}
	if err := requireID("session", p.Session); err != nil {
		return false, nil, err
	}
	return k.put(ctx, p, map[string]string{"release": p.Session}, w)
}

func (k *KV) put(ctx context.Context, p *KVPair, params map[string]string, w *WriteOptions) (bool, *WriteMeta, error) {
	if p == nil {
		return false, nil, &ValidationError{Field: "pair", Reason: "nil"}
	}
	if err := ValidateKey(p.Key); err != nil {
		return false, nil, err
	}
	if err := validateValue(p.Value); err != nil {
		return false, nil, err
	}
	r := k.c.newRequest(http.MethodPut, "/v1/kv/"+escapeKey(p.Key))
	k.c.applyWrite(r, w)
	for n, v := range params {
		r.params.Set(n, v)
	}
	if p.Flags != 0 {
		r.params.Set("flags", strconv.FormatUint(p.Flags, 10))
	}
	r.body = strings.NewReader(string(p.Value))
	r.header.Set("Content-Type", "application/octet-stream")
	var ok bool
	meta, err := k.c.writeRequest(ctx, r, &ok)
	return ok, meta, err
}

// Delete removes one key; a missing key is not an error.
func (k *KV) Delete(ctx context.Context, key string, w *WriteOptions) (*WriteMeta, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	_, meta, err := k.delete(ctx, key, nil, w)
	return meta, err
}

// DeleteCAS removes p.Key only if its ModifyIndex equals p.ModifyIndex. It
// reports whether the key was removed.
func (k *KV) DeleteCAS(ctx context.Context, p *KVPair, w *WriteOptions) (bool, *WriteMeta, error) {
	if p == nil {
		return false, nil, &ValidationError{Field: "pair", Reason: "nil"}
	}
	if err := ValidateKey(p.Key); err != nil {
		return false, nil, err
	}
	return k.delete(ctx, p.Key, map[string]string{"cas": strconv.FormatUint(p.ModifyIndex, 10)}, w)
}

// DeleteTree removes every key under prefix. An empty prefix is refused:
// use a Txn delete-tree on "" if wiping the whole store is really meant.
func (k *KV) DeleteTree(ctx context.Context, prefix string, w *WriteOptions) (*WriteMeta, error) {
	if err := ValidateKey(prefix); err != nil {
		return nil, err
	}
	_, meta, err := k.delete(ctx, prefix, map[string]string{"recurse": ""}, w)
	return meta, err
}

func (k *KV) delete(ctx context.Context, key string, params map[string]string, w *WriteOptions) (bool, *WriteMeta, error) {
	r := k.c.newRequest(http.MethodDelete, "/v1/kv/"+escapeKey(key))
	k.c.applyWrite(r, w)
	for n, v := range params {
		r.params.Set(n, v)
	}
	var ok bool
	meta, err := k.c.writeRequest(ctx, r, &ok)
	return ok, meta, err
}
