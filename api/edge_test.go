package api

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A blocking query without WaitTime (and Config.WaitTime 0) is bounded by
// the client as if the wait were 5 minutes, so it sends that wait: it once
// sent none, and the server applied its own default_query_time, which an
// operator may set above 5 minutes; every such query was then cut short.
func TestBlockingQuerySendsItsWait(t *testing.T) {
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "9"}, Body: "[]"})
	_, _, err := c.KV().List(t.Context(), "a/", &QueryOptions{WaitIndex: 3})
	require.NoError(t, err)
	assert.Equal(t, "5m0s", (func() string {
		w := f.last(t).Query.Get("wait")
		if w == "" {
			return "(none)"
		}
		d, _ := time.ParseDuration(w)
		return d.String()
	})(), "the wait the client bounds the request by must be sent")
}

// A 409 from /v1/txn whose body is not Consul's JSON (a proxy, a cut body)
// is a *StatusError; it once was an untyped decoding error.
func TestTxnConflictNotJSON(t *testing.T) {
	c, _ := newFake(t, fakeReply{Status: http.StatusConflict, Body: "<html>conflict</html>"})
	_, _, err := c.Txn().Do(t.Context(), TxnOps{{KV: &KVTxnOp{Verb: KVSet, Key: "a"}}}, nil)
	require.Error(t, err)
	var se *StatusError
	var te *TxnError
	assert.True(t, errors.As(err, &se) || errors.As(err, &te), "want a typed error, got %T: %v", err, err)
}

// Bad arguments to Watch must be a typed error, not a panic (in WatchChan
// the panic is in a goroutine of ours and kills the process).
func TestWatchNilArguments(t *testing.T) {
	fetch := func(ctx context.Context, q *QueryOptions) (int, *QueryMeta, error) {
		return 1, &QueryMeta{LastIndex: 1}, nil
	}
	cases := map[string]func() error{
		"nil ctx": func() error {
			//lint:ignore SA1012 the point of the test
			return Watch[int](nil, nil, fetch, func(int, *QueryMeta) error { return errors.New("stop") }) //nolint:staticcheck
		},
		"nil fetch": func() error {
			return Watch[int](t.Context(), nil, nil, func(int, *QueryMeta) error { return errors.New("stop") })
		},
		"nil onChange": func() error { return Watch[int](t.Context(), nil, fetch, nil) },
	}
	for name, call := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			panicked := func() (p bool) {
				defer func() {
					if recover() != nil {
						p = true
					}
				}()
				err = call()
				return false
			}()
			assert.False(t, panicked, "Watch panicked")
			if !panicked {
				assert.ErrorIs(t, err, ErrInvalid)
			}
		})
	}
}

// A negative WaitTime is refused before sending; it was once dropped (the
// query waited Consul's default).
func TestNegativeWaitTimeRefused(t *testing.T) {
	c, f := newFake(t, fakeReply{Header: map[string]string{"X-Consul-Index": "9"}, Body: "[]"})
	_, _, err := c.KV().List(t.Context(), "a/", &QueryOptions{WaitIndex: 3, WaitTime: -time.Second})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Zero(t, f.count(), "nothing should be sent")
}

// Keys Consul's HTTP server refuses (any rune unicode.IsPrint rejects:
// NBSP, soft hyphen, ZWJ, BOM, U+2028...) or cannot give back (invalid
// UTF-8) are refused by ValidateKey: Consul answers 400 "Bad Request", or
// stores a key that List returns with U+FFFD in place of the bytes. IDs
// in other paths are refused the same way.
func TestValidateKeyRefusesWhatConsulRefuses(t *testing.T) {
	for _, k := range []string{"a\u00a0b", "a\u00adb", "a\u200db", "a\ufeffb", "a\u2028b", "a\u0085b", "a\xffb"} {
		assert.ErrorIs(t, ValidateKey(k), ErrInvalid, "%q", k)
		c, f := newFake(t, fakeReply{Body: "{}"})
		_, _, err := c.Agent().Service(t.Context(), k, nil)
		assert.ErrorIs(t, err, ErrInvalid, "service ID %q", k)
		assert.Zero(t, f.count(), "sent %q", k)
	}
}

// An X-Consul-Index that overflows uint64 is ignored; it was once read as
// MaxUint64 (ParseUint's value on ErrRange), which Watch then sent as the
// next index.
func TestIndexOverflowNotMisread(t *testing.T) {
	var m QueryMeta
	parseQueryMeta(http.Header{"X-Consul-Index": {"18446744073709551616"}}, &m)
	assert.Zero(t, m.LastIndex)
}

// A server that requires a client certificate the client does not have
// answers with a TLS alert: repeating cannot fix it, so IsRetryable says
// no (it once said yes, and Watch and the primitives retried a
// misconfiguration forever).
func TestClientCertRequiredNotRetryable(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := NewClient(Config{Address: srv.URL, TLS: TLSConfig{CAPem: pemBytes}})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	_, _, err = c.KV().Get(t.Context(), "a", nil)
	require.Error(t, err)
	t.Logf("%T %v", errors.Unwrap(err), err)
	assert.False(t, IsRetryable(err), "%v", err)
}
