package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// Sentinel errors. Match them with errors.Is; a *StatusError matches the
// sentinel that its status code and Consul's message stand for.
var (
	// ErrPermissionDenied: Consul answered 403 (the token lacks a permission).
	ErrPermissionDenied = errors.New("consul: permission denied")
	// ErrACLNotFound: the token is unknown to Consul (403 "ACL not found").
	ErrACLNotFound = errors.New("consul: ACL not found")
	// ErrRateLimited: Consul answered 429.
	ErrRateLimited = errors.New("consul: rate limited")
	// ErrNoLeader: the servers have no leader at the moment.
	ErrNoLeader = errors.New("consul: no cluster leader")
	// ErrNotFound: Consul answered 404, or the 500 "Query not found" of a
	// cached prepared query execution (PreparedQuery.Execute). Methods
	// document what a 404 means for them; most reads of a missing object
	// return nil and no error.
	ErrNotFound = errors.New("consul: not found")
	// ErrInvalid is matched by every *ValidationError.
	ErrInvalid = errors.New("consul: invalid input")
	// ErrInvalidSession: a write named a session Consul does not know
	// (destroyed, invalidated or never created); Consul answers 500.
	ErrInvalidSession = errors.New("consul: invalid session")
)

// maxErrorBody bounds how much of an error response is kept.
const maxErrorBody = 4 << 10

// StatusError is an HTTP response from Consul with a status code outside
// 2xx. Body holds at most 4 KiB of the response body.
type StatusError struct {
	Method string
	Path   string
	Code   int
	Body   string
}

func (e *StatusError) Error() string {
	msg := strings.TrimSpace(e.Body)
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("consul: %s %s: %d: %s", e.Method, e.Path, e.Code, msg)
}

// Is reports whether e stands for target, one of this package's sentinels.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrPermissionDenied:
		return e.Code == http.StatusForbidden
	case ErrACLNotFound:
		return e.Code == http.StatusForbidden && strings.Contains(e.Body, "ACL not found") ||
			e.Code == http.StatusNotFound && strings.Contains(e.Body, "ACL not found")
	case ErrRateLimited:
		return e.Code == http.StatusTooManyRequests
	case ErrNoLeader:
		return e.Code >= 500 && strings.Contains(e.Body, "No cluster leader")
	case ErrNotFound:
		return e.Code == http.StatusNotFound || e.queryNotFound()
	case ErrInvalidSession:
		return e.Code == http.StatusInternalServerError && strings.Contains(e.Body, "invalid session")
	}
	return false
}

// queryNotFound reports whether e is Consul's answer to the execution of a
// prepared query that does not exist when served from the agent's cache
// (?cached): a 500 "Query not found", which Consul's uncached path turns
// into a 404 and its cached path does not (agent/prepared_query_endpoint.go).
func (e *StatusError) queryNotFound() bool {
	return e.Code == http.StatusInternalServerError && strings.HasPrefix(e.Path, "/v1/query/") &&
		strings.Contains(e.Body, "Query not found")
}

func newStatusError(resp *http.Response, method, path string) *StatusError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(b)}
}

// ValidationError is bad input caught before any request was sent.
type ValidationError struct {
	Field  string // the field or argument at fault
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("consul: invalid %s: %s", e.Field, e.Reason)
}

// Is makes every ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// TxnError is a transaction that Consul rolled back (HTTP 409): none of its
// operations took effect. Errors lists the operations that failed.
type TxnError struct {
	Errors []TxnOpError
}

// TxnOpError is one failed operation of a rolled-back transaction.
type TxnOpError struct {
	OpIndex int
	What    string
}

// Is makes a TxnError match ErrPermissionDenied when one of its
// operations was refused for want of an ACL permission (Consul rolls such
// a transaction back with 409, not 403).
func (e *TxnError) Is(target error) bool {
	if target != ErrPermissionDenied {
		return false
	}
	for _, oe := range e.Errors {
		if oe.PermissionDenied() {
			return true
		}
	}
	return false
}

func (e *TxnError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, oe := range e.Errors {
		parts[i] = fmt.Sprintf("op %d: %s", oe.OpIndex, oe.What)
	}
	return "consul: transaction rolled back: " + strings.Join(parts, "; ")
}

// IsRetryable reports whether the failed call may succeed if repeated:
// network errors (timeouts included), 429, 5xx and "No cluster leader".
// The end of the caller's context, validation errors, 4xx answers,
// rolled-back transactions, the failure of a reader the caller passed
// (Snapshot.Restore's snap), TLS certificates that do not verify, a 500
// "invalid session" (ErrInvalidSession: the session is gone for good) and
// the 500 "Query not found" of a cached prepared query execution (it
// matches ErrNotFound) are not. Consul also answers 500 for some errors
// that repeating will not mend ("Keyring is empty", an unknown prepared
// query or Raft peer, as the methods concerned say); IsRetryable cannot
// tell those apart, so a loop that retries on it should also be bounded by
// ctx or a count. The client never repeats a write that may have reached
// Consul (Go's transport only resends a read, or a request none of which
// was sent, on a kept-alive connection that closed). A retryable
// error from a write does not mean the write was not applied: when the
// connection failed or the answer was lost after the request was sent, or
// on a 5xx, Consul may have applied it, so a caller repeating a write that
// is not idempotent (Session.Create, Event.Fire, PreparedQuery.Create, an
// ACL create, KV.CAS) checks first, or accepts a second copy.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var srcErr *sourceError
	if errors.As(err, &srcErr) {
		// The caller's own reader failed (Snapshot.Restore's snap): a
		// repeat would need a fresh reader, whatever the failure was.
		return false
	}
	if errors.Is(err, errTransport) && !isTLSConfigError(err) {
		// The transport failed while the caller's context was live (the
		// client returns the context's error otherwise): a timeout of a
		// dial or of the connection matches context.DeadlineExceeded, yet
		// repeating may well succeed.
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		if errors.Is(se, ErrInvalidSession) || se.queryNotFound() {
			return false
		}
		return se.Code == http.StatusTooManyRequests || se.Code >= 500
	}
	var ve *ValidationError
	var te *TxnError
	if errors.As(err, &ve) || errors.As(err, &te) {
		return false
	}
	if isTLSConfigError(err) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, errTransport)
}

// isTLSConfigError reports whether err is a TLS failure that repeating the
// call cannot fix: a server certificate that does not verify, or a server
// that does not speak TLS.
func isTLSConfigError(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) ||
		errors.As(err, &cie) || errors.As(err, &rhe) {
		return true
	}
	// net/http reports a plain HTTP answer to a TLS handshake with this
	// sentinel, not the RecordHeaderError behind it.
	if errors.Is(err, http.ErrSchemeMismatch) {
		return true
	}
	// The server refused our certificate (or its absence): a remote TLS
	// alert, which crypto/tls reports as a *net.OpError "remote error"
	// around an unexported alert type (tls.AlertError only with QUIC).
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		switch oe.Err.Error() {
		case "tls: bad certificate", "tls: unsupported certificate", "tls: revoked certificate",
			"tls: expired certificate", "tls: unknown certificate", "tls: unknown certificate authority",
			"tls: certificate required":
			return true
		}
	}
	return false
}

// errTransport marks errors returned by the HTTP transport.
var errTransport = errors.New("consul: transport error")

type transportError struct{ err error }

func (e *transportError) Error() string   { return e.err.Error() }
func (e *transportError) Unwrap() []error { return []error{e.err, errTransport} }

func asStatus(err error, se **StatusError) bool { return errors.As(err, se) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
