package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxWait is the longest wait Consul honours for a blocking query.
const maxWait = 10 * time.Minute

// Client talks to one Consul agent over HTTP. It is safe for concurrent use;
// endpoint groups (c.KV(), c.Session(), ...) are cheap handles on it.
type Client struct {
	base        url.URL
	hc          *http.Client
	token       string
	datacenter  string
	namespace   string
	partition   string
	auth        *HTTPBasicAuth
	consistency Consistency
	waitTime    time.Duration
	// blockingSlack is added to wait + wait/16 to bound a blocking
	// request; tests shorten it.
	blockingSlack time.Duration
}

// NewClient returns a Client for cfg. It validates cfg, reads TokenFile and
// the TLS files it names, and never modifies cfg.
func NewClient(cfg Config) (*Client, error) {
	ep, err := parseAddress(cfg.Address, cfg.Scheme)
	if err != nil {
		return nil, err
	}
	switch cfg.Consistency {
	case ConsistencyDefault, ConsistencyStale, ConsistencyConsistent:
	default:
		return nil, &ValidationError{Field: "Config.Consistency", Reason: fmt.Sprintf("unknown mode %d", cfg.Consistency)}
	}
	if cfg.WaitTime < 0 || cfg.WaitTime > maxWait {
		return nil, &ValidationError{Field: "Config.WaitTime", Reason: "must be between 0 and 10m"}
	}
	if err := checkHeaderValue("Config.Token", cfg.Token); err != nil {
		return nil, err
	}
	c := &Client{
		base:          url.URL{Scheme: ep.scheme, Host: ep.host},
		token:         cfg.Token,
		datacenter:    cfg.Datacenter,
		namespace:     cfg.Namespace,
		partition:     cfg.Partition,
		consistency:   cfg.Consistency,
		waitTime:      cfg.WaitTime,
		blockingSlack: 10 * time.Second,
	}
	if cfg.HTTPAuth != nil {
		a := *cfg.HTTPAuth
		c.auth = &a
	}
	if c.token == "" && cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("consul: reading token file: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	switch {
	case cfg.HTTPClient != nil:
		c.hc = cfg.HTTPClient
	case cfg.Transport != nil:
		c.hc = &http.Client{Transport: cfg.Transport, CheckRedirect: noRedirect}
	default:
		var tc *tls.Config
		if ep.scheme == "https" {
			if tc, err = cfg.TLS.tlsClientConfig(ep.host); err != nil {
				return nil, err
			}
		}
		c.hc = &http.Client{Transport: newTransport(ep, tc), CheckRedirect: noRedirect}
	}
	return c, nil
}

// noRedirect stops the client from following redirects: Consul's API does
// not redirect, and its HTTP server answers a path it would clean (a key
// with "//" or "..") with a redirect to another key. The 3xx answer becomes
// a *StatusError.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Address returns the base URL requests go to (for a unix socket,
// "http://unix", or "https://unix" over TLS).
func (c *Client) Address() string { return c.base.String() }

// CloseIdleConnections closes the idle connections of the client's
// transport (see http.Client.CloseIdleConnections). The client stays
// usable; it dials again when needed.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// request is one HTTP call being built.
type request struct {
	method   string
	path     string
	params   url.Values
	header   http.Header
	body     io.Reader
	blocking bool
	wait     time.Duration
	err      error // bad input found while building the request
}

func (c *Client) newRequest(method, path string) *request {
	return &request{method: method, path: path, params: url.Values{}, header: http.Header{}}
}

// jsonBody sets v, encoded as JSON, as the request body.
func (r *request) jsonBody(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("consul: encoding request body: %w", err)
	}
	r.body = bytes.NewReader(b)
	r.header.Set("Content-Type", "application/json")
	return nil
}

// do sends r and returns the response when its status is 2xx, or when it is
// one of the extra statuses in accept. Any other status is a *StatusError,
// and the body is drained and closed. The caller closes a returned body
// with closeBody. A cancelled ctx returns ctx.Err().
func (c *Client) do(ctx context.Context, r *request, accept ...int) (*http.Response, time.Duration, error) {
	if ctx == nil {
		return nil, 0, &ValidationError{Field: "ctx", Reason: "nil context"}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	if err := checkPath(r.path); err != nil {
		return nil, 0, err
	}
	for k, vs := range r.header {
		field := "header " + k
		if k == "X-Consul-Token" {
			field = "token"
		}
		for _, v := range vs {
			if err := checkHeaderValue(field, v); err != nil {
				return nil, 0, err
			}
		}
	}
	method, path := r.method, r.path
	var cancel context.CancelFunc
	if r.blocking {
		// The request may legitimately take the whole wait; bound it so
		// a dead connection cannot park the caller forever. A caller's
		// deadline that comes first bounds it already (and would win
		// over the bound anyway): then no context of our own is made,
		// which saves a context and a body wrapper per parked query.
		wait := r.wait
		if wait == 0 {
			wait = 5 * time.Minute
		}
		bound := wait + wait/16 + c.blockingSlack
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) >= bound {
			ctx, cancel = context.WithTimeoutCause(ctx, bound, errBlockingTimeout)
		}
	}
	// r is not used once req is built: a blocking query may park for
	// minutes, one per held lock, and should not keep its builder alive.
	req, err := c.newHTTPRequest(ctx, r)
	var resp *http.Response
	var d time.Duration
	if err == nil {
		resp, d, err = c.roundTrip(ctx, req, method, path, accept)
	}
	switch {
	case cancel == nil:
	case err != nil:
		cancel()
	default:
		// The body outlives this function: the caller's closeBody stops
		// the bound's timer.
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	}
	return resp, d, err
}

// newHTTPRequest builds the HTTP request for r, headers included.
func (c *Client) newHTTPRequest(ctx context.Context, r *request) (*http.Request, error) {
	u := c.base
	u.Path = r.path
	u.RawPath = ""
	if strings.Contains(r.path, "%") {
		// The path holds escaped segments: keep them as they are.
		if p, err := url.PathUnescape(r.path); err == nil {
			u.Path, u.RawPath = p, r.path
		}
	}
	u.RawQuery = encodeParams(r.params)
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, fmt.Errorf("consul: building request: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.auth != nil {
		req.SetBasicAuth(c.auth.Username, c.auth.Password)
	}
	return req, nil
}

var errBlockingTimeout = errors.New("consul: blocking query exceeded its wait")

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// roundTrip sends req, whose context is ctx. method and path name the
// request in a *StatusError.
func (c *Client) roundTrip(ctx context.Context, req *http.Request, method, path string, accept []int) (*http.Response, time.Duration, error) {
	start := time.Now()
	resp, err := c.hc.Do(req)
	d := time.Since(start)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(context.Cause(ctx), errBlockingTimeout) {
				return nil, d, &transportError{err: errBlockingTimeout}
			}
			return nil, d, ctxErr
		}
		return nil, d, &transportError{err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, d, nil
	}
	for _, code := range accept {
		if resp.StatusCode == code {
			return resp, d, nil
		}
	}
	se := newStatusError(resp, method, path)
	closeBody(resp)
	if err := cutShort(req); err != nil {
		// The body was cut off by ctx or the blocking bound: report
		// that, not a status with a body cut short.
		return nil, d, err
	}
	return nil, d, se
}

// closeBody drains a little of what is left of the body, so that the
// connection can be reused, and closes it.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// encodeParams encodes params like url.Values.Encode but renders flags with
// empty values ("stale", "recurse") without a trailing '='.
func encodeParams(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	s := v.Encode()
	if !strings.Contains(s, "=&") && !strings.HasSuffix(s, "=") {
		return s
	}
	parts := strings.Split(s, "&")
	for i, p := range parts {
		parts[i] = strings.TrimSuffix(p, "=")
	}
	return strings.Join(parts, "&")
}

// decode reads a JSON body into out (when out is not nil) and closes it.
// An empty body is a retryable error.
func decode(resp *http.Response, out any) error { return decodeBody(resp, out, false) }

// decodeApplied is decode for an answer whose status alone says what was
// done (a 200 to /v1/txn: applied): an empty body leaves out as it is,
// and the caller checks for what it needed from it.
func decodeApplied(resp *http.Response, out any) error { return decodeBody(resp, out, true) }

func decodeBody(resp *http.Response, out any, emptyOK bool) error {
	defer closeBody(resp)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if errors.Is(err, io.EOF) && emptyOK && resp.Request != nil && resp.Request.Method != http.MethodGet {
			return cutShort(resp.Request)
		}
		if errors.Is(err, io.EOF) {
			// Consul answers every call whose answer is decoded with
			// JSON ("null" at the least, "true" or "false" for a KV
			// write): an empty body is one a broken proxy or
			// connection left, and says nothing of what was read or
			// done (an empty list read as "no such key", a CAS or an
			// acquisition Consul applied read as refused, a session
			// created read as one without an ID would be lies).
			req := resp.Request
			if req == nil {
				return &transportError{err: fmt.Errorf("empty answer: %w", io.ErrUnexpectedEOF)}
			}
			if err := cutShort(req); err != nil {
				return err
			}
			return &transportError{err: fmt.Errorf("%s %s: empty answer: %w", req.Method, req.URL.Path, io.ErrUnexpectedEOF)}
		}
		path := ""
		if req := resp.Request; req != nil {
			path = req.URL.Path
			if err := cutShort(req); err != nil {
				return err
			}
		}
		return fmt.Errorf("consul: decoding %s response: %w", path, err)
	}
	return nil
}

// cutShort reports why the answer to req was cut off, if it was, by the
// caller's context or by the bound on a blocking request, as do() does.
func cutShort(req *http.Request) error {
	ctx := req.Context()
	if ctx.Err() == nil {
		return nil
	}
	if errors.Is(context.Cause(ctx), errBlockingTimeout) {
		return &transportError{err: errBlockingTimeout}
	}
	return ctx.Err()
}

// query performs a GET and decodes the JSON answer into out.
func (c *Client) query(ctx context.Context, path string, q *QueryOptions, out any) (*QueryMeta, error) {
	r := c.newRequest(http.MethodGet, path)
	c.applyQuery(r, q)
	return c.queryRequest(ctx, r, out)
}

// queryRequest sends a prepared read and decodes its answer.
func (c *Client) queryRequest(ctx context.Context, r *request, out any) (*QueryMeta, error) {
	resp, d, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	meta := &QueryMeta{RequestTime: d}
	parseQueryMeta(resp.Header, meta)
	return meta, decode(resp, out)
}

// write performs a write with an optional JSON body (in) and decodes the
// JSON answer into out when out is not nil.
func (c *Client) write(ctx context.Context, method, path string, w *WriteOptions, in, out any) (*WriteMeta, error) {
	r := c.newRequest(method, path)
	c.applyWrite(r, w)
	if in != nil {
		if err := r.jsonBody(in); err != nil {
			return nil, err
		}
	}
	return c.writeRequest(ctx, r, out)
}

// writeRequest sends a prepared write and decodes its answer.
func (c *Client) writeRequest(ctx context.Context, r *request, out any) (*WriteMeta, error) {
	resp, d, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return &WriteMeta{RequestTime: d}, decode(resp, out)
}

// requireID returns a validation error when an ID or name argument is empty
// or would change the request path.
func requireID(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return &ValidationError{Field: field, Reason: "empty"}
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return &ValidationError{Field: field, Reason: "contains a control character"}
		}
	}
	return nil
}

// requireSegment is requireID for a value that makes one segment of the
// request path, where Consul routes on what follows it: a '/' would send
// the request to another endpoint (an ACL token "<id>/clone" to the clone
// endpoint, a query "<id>/execute" to its execution), and escaping it does
// not help, as Consul decodes the path before routing.
func requireSegment(field, v string) error {
	if err := requireID(field, v); err != nil {
		return err
	}
	if strings.Contains(v, "/") {
		return &ValidationError{Field: field, Reason: "contains '/' (it would name another endpoint)"}
	}
	return nil
}

// requireNotReserved is requireSegment for a segment whose parent path
// also routes fixed names to other endpoints: Consul answers
// "/v1/acl/token/self" with the caller's own token, and "/v1/acl/policy/name"
// with a redirect, never as the object so named.
func requireNotReserved(field, v string, reserved ...string) error {
	if err := requireSegment(field, v); err != nil {
		return err
	}
	return refuseReserved(field, v, reserved)
}

// refuseReserved refuses v when it is one of reserved, or starts with one
// of them followed by '/'.
func refuseReserved(field, v string, reserved []string) error {
	for _, r := range reserved {
		if v == r || strings.HasPrefix(v, r+"/") {
			return &ValidationError{Field: field, Reason: strconv.Quote(r) + " names another endpoint"}
		}
	}
	return nil
}

// checkHeaderValue rejects a header value that net/http would refuse to
// send (a token read from a file with its newline, say), so that it is
// reported as bad input rather than as a transport failure that retrying
// could fix.
func checkHeaderValue(field, v string) error {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return &ValidationError{Field: field, Reason: "contains a control character"}
		}
	}
	return nil
}

// checkPath rejects a request path that Consul's HTTP server would
// redirect to a cleaned one, naming something else: one with an empty
// segment (but for a trailing slash), or a "." or ".." segment. An ID
// argument that puts such a segment into the path is caught here, before
// anything is sent.
func checkPath(p string) error {
	if rewritten(strings.TrimPrefix(p, "/")) {
		return &ValidationError{Field: "path", Reason: "empty, \".\" or \"..\" segment (Consul would redirect it elsewhere): " + strconv.Quote(p)}
	}
	if raw, err := url.PathUnescape(p); err == nil {
		if reason := unprintable(raw); reason != "" {
			return &ValidationError{Field: "path", Reason: reason + ": " + strconv.Quote(raw)}
		}
	}
	return nil
}

// unprintable says why Consul cannot take s as part of a path, or "": its
// HTTP server answers 400 to a path holding a rune that unicode.IsPrint
// refuses (a control character, NBSP, ZWJ, BOM, U+2028...), and gives
// invalid UTF-8 back altered. That is Consul's default filter; an agent
// run with http_config.disable_http_unprintable_char_filter would take
// such paths, but this client refuses them all the same (a key holding
// one stays reachable through Txn, see validateTxn).
func unprintable(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8 (Consul would give it back altered)"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "contains a non-printable character"
		}
	}
	return ""
}

// rewritten reports whether a path (without its leading slash) has a
// segment that Consul's HTTP server cleans away: an empty one before the
// last (a trailing slash is kept), or "." or "..".
func rewritten(p string) bool {
	for {
		seg, rest, more := strings.Cut(p, "/")
		if seg == "." || seg == ".." || seg == "" && more {
			return true
		}
		if !more {
			return false
		}
		p = rest
	}
}
