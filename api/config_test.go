package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	assert.Equal(t, Config{Address: "127.0.0.1:8500", Scheme: "http"}, cfg)

	c, err := NewClient(cfg)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8500", c.Address())
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config)
	}{
		{name: "nothing set", env: nil, want: func(*Config) {}},
		{
			name: "address host:port",
			env:  map[string]string{EnvHTTPAddr: "10.0.0.1:8501"},
			want: func(c *Config) { c.Address = "10.0.0.1:8501" },
		},
		{
			name: "address with scheme and blanks",
			env:  map[string]string{EnvHTTPAddr: "  https://consul.example:8501 "},
			want: func(c *Config) { c.Address = "https://consul.example:8501" },
		},
		{
			name: "unix socket",
			env:  map[string]string{EnvHTTPAddr: "unix:///var/run/consul.sock"},
			want: func(c *Config) { c.Address = "unix:///var/run/consul.sock" },
		},
		{
			name: "token and token file",
			env:  map[string]string{EnvHTTPToken: "tok", EnvHTTPTokenFile: "/etc/consul/token"},
			want: func(c *Config) { c.TokenFile = "/etc/consul/token" },
		},
		{
			name: "token alone",
			env:  map[string]string{EnvHTTPToken: "tok"},
			want: func(c *Config) { c.Token = "tok" },
		},
		{
			name: "ssl on keeps https over an http address",
			env:  map[string]string{EnvHTTPSSL: "true", EnvHTTPAddr: "http://consul.example:8501"},
			want: func(c *Config) { c.Scheme, c.Address = "https", "consul.example:8501" },
		},
		{
			name: "ssl off leaves an https address alone",
			env:  map[string]string{EnvHTTPSSL: "false", EnvHTTPAddr: "https://consul.example:8501"},
			want: func(c *Config) { c.Address = "https://consul.example:8501" },
		},
		{
			name: "basic auth",
			env:  map[string]string{EnvHTTPAuth: "user:pa:ss"},
			want: func(c *Config) { c.HTTPAuth = &HTTPBasicAuth{Username: "user", Password: "pa:ss"} },
		},
		{
			// The password is taken as it is, spaces included, as the
			// consul CLI takes it.
			name: "basic auth password with spaces",
			env:  map[string]string{EnvHTTPAuth: "user: pass "},
			want: func(c *Config) { c.HTTPAuth = &HTTPBasicAuth{Username: "user", Password: " pass "} },
		},
		{
			name: "basic auth without password",
			env:  map[string]string{EnvHTTPAuth: "user"},
			want: func(c *Config) { c.HTTPAuth = &HTTPBasicAuth{Username: "user"} },
		},
		{
			name: "ssl on",
			env:  map[string]string{EnvHTTPSSL: "true"},
			want: func(c *Config) { c.Scheme = "https" },
		},
		{
			name: "ssl 1",
			env:  map[string]string{EnvHTTPSSL: "1"},
			want: func(c *Config) { c.Scheme = "https" },
		},
		{
			name: "ssl off",
			env:  map[string]string{EnvHTTPSSL: "false"},
			want: func(*Config) {},
		},
		{
			name: "ssl verify off",
			env:  map[string]string{EnvHTTPSSLVerify: "false"},
			want: func(c *Config) { c.TLS.InsecureSkipVerify = true },
		},
		{
			name: "ssl verify on",
			env:  map[string]string{EnvHTTPSSLVerify: "true"},
			want: func(*Config) {},
		},
		{
			name: "tls files and server name",
			env: map[string]string{
				EnvCACert: "/ca.pem", EnvCAPath: "/cas", EnvClientCert: "/c.pem",
				EnvClientKey: "/c.key", EnvTLSServerName: "consul.example",
			},
			want: func(c *Config) {
				c.TLS = TLSConfig{CAFile: "/ca.pem", CAPath: "/cas", CertFile: "/c.pem", KeyFile: "/c.key", Address: "consul.example"}
			},
		},
		{
			name: "namespace and partition",
			env:  map[string]string{EnvNamespace: "team-a", EnvPartition: "part-1"},
			want: func(c *Config) { c.Namespace, c.Partition = "team-a", "part-1" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromLookup(func(k string) (string, bool) {
				v, ok := tt.env[k]
				return v, ok
			})
			require.NoError(t, err)
			want := DefaultConfig()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestConfigFromEnvMalformed(t *testing.T) {
	for _, name := range []string{EnvHTTPSSL, EnvHTTPSSLVerify} {
		t.Run(name, func(t *testing.T) {
			_, err := configFromLookup(func(k string) (string, bool) {
				if k == name {
					return "maybe", true
				}
				return "", false
			})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, name, ve.Field)
			assert.Contains(t, ve.Reason, "maybe")
		})
	}
}

// TestConfigFromEnvProcess reads the real environment once, to check that
// ConfigFromEnv is wired to it.
func TestConfigFromEnvProcess(t *testing.T) {
	t.Setenv(EnvHTTPAddr, "unix:///tmp/c.sock")
	t.Setenv(EnvHTTPToken, "env-token")
	t.Setenv(EnvNamespace, "ns1")
	t.Setenv(EnvHTTPSSL, "")
	cfg, err := ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, "unix:///tmp/c.sock", cfg.Address)
	assert.Equal(t, "env-token", cfg.Token)
	assert.Equal(t, "ns1", cfg.Namespace)
	assert.Equal(t, "http", cfg.Scheme)

	t.Setenv(EnvHTTPSSLVerify, "nope")
	_, err = ConfigFromEnv()
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		scheme  string
		want    endpoint
		wantErr string // the ValidationError's field, when an error is expected
	}{
		{name: "host port", addr: "127.0.0.1:8500", want: endpoint{scheme: "http", host: "127.0.0.1:8500"}},
		{name: "scheme from config", addr: "consul:8501", scheme: "https", want: endpoint{scheme: "https", host: "consul:8501"}},
		{name: "http url", addr: "http://consul:8500", scheme: "https", want: endpoint{scheme: "http", host: "consul:8500"}},
		{name: "https url", addr: "https://consul:8501/", want: endpoint{scheme: "https", host: "consul:8501"}},
		{name: "ipv6", addr: "[::1]:8500", want: endpoint{scheme: "http", host: "[::1]:8500"}},
		{name: "unix", addr: "unix:///run/consul/http.sock", want: endpoint{scheme: "http", host: "unix", socket: "/run/consul/http.sock"}},
		{name: "unix with https", addr: "unix:///run/consul/https.sock", scheme: "https", want: endpoint{scheme: "https", host: "unix", socket: "/run/consul/https.sock"}},
		{name: "empty", addr: "", wantErr: "Config.Address"},
		{name: "unix without path", addr: "unix://", wantErr: "Config.Address"},
		{name: "other scheme", addr: "ftp://consul:21", wantErr: "Config.Address"},
		{name: "bad config scheme", addr: "consul:8500", scheme: "gopher", wantErr: "Config.Scheme"},
		{name: "path", addr: "http://consul:8500/v1", wantErr: "Config.Address"},
		{name: "query", addr: "consul:8500?x=1", wantErr: "Config.Address"},
		{name: "scheme only", addr: "http://", wantErr: "Config.Address"},
		{name: "unclosed bracket", addr: "http://[::1", wantErr: "Config.Address"},
		{name: "port out of range", addr: "127.0.0.1:99999", wantErr: "Config.Address"},
		{name: "port not a number", addr: "consul:http", wantErr: "Config.Address"},
		{name: "bare ipv6", addr: ":::", wantErr: "Config.Address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAddress(tt.addr, tt.scheme)
			if tt.wantErr != "" {
				var ve *ValidationError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, tt.wantErr, ve.Field)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)

			// NewClient takes the same addresses.
			cfg := DefaultConfig()
			cfg.Address, cfg.Scheme = tt.addr, tt.scheme
			_, err = NewClient(cfg)
			assert.NoError(t, err)
		})
	}
}

func TestNewClientInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*Config)
		field string
	}{
		{name: "empty address", cfg: func(c *Config) { c.Address = "" }, field: "Config.Address"},
		{name: "consistency", cfg: func(c *Config) { c.Consistency = 7 }, field: "Config.Consistency"},
		{name: "negative wait", cfg: func(c *Config) { c.WaitTime = -time.Second }, field: "Config.WaitTime"},
		{name: "wait over 10m", cfg: func(c *Config) { c.WaitTime = 11 * time.Minute }, field: "Config.WaitTime"},
		{name: "cert without key", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CertFile = "/c.pem" }, field: "TLSConfig.CertFile"},
		{name: "key without cert", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.KeyFile = "/c.key" }, field: "TLSConfig.CertFile"},
		{name: "CA PEM without certificate", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CAPem = []byte("junk") }, field: "TLSConfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			c, err := NewClient(cfg)
			assert.Nil(t, c)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestNewClientFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	emptyDir := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(emptyDir, 0o700))

	tests := []struct {
		name     string
		cfg      func(*Config)
		invalid  bool // a ValidationError rather than an I/O error
		notExist bool // wraps os.ErrNotExist
	}{
		{name: "token file missing", cfg: func(c *Config) { c.TokenFile = missing }, notExist: true},
		{name: "CA file missing", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CAFile = missing }, notExist: true},
		{name: "CA file not PEM", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CAFile = notPEM }, invalid: true},
		{name: "CA path missing", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CAPath = missing }, notExist: true},
		{name: "CA path without PEM", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CAPath = emptyDir }, invalid: true},
		{name: "client cert missing", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CertFile, c.TLS.KeyFile = missing, missing }, notExist: true},
		{name: "client PEM junk", cfg: func(c *Config) { c.Scheme = "https"; c.TLS.CertPEM, c.TLS.KeyPEM = []byte("x"), []byte("y") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.cfg(&cfg)
			_, err := NewClient(cfg)
			require.Error(t, err)
			assert.Equal(t, tt.invalid, errors.Is(err, ErrInvalid), "%v", err)
			assert.Equal(t, tt.notExist, errors.Is(err, os.ErrNotExist), "%v", err)
		})
	}
}

// TestTLSFilesIgnoredOverHTTP: TLS settings only matter for https.
func TestTLSFilesIgnoredOverHTTP(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TLS.CAFile = "/does/not/exist"
	_, err := NewClient(cfg)
	assert.NoError(t, err)
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte("  file-token\n"), 0o600))

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{name: "file used when no token", want: "file-token"},
		{name: "token wins over file", token: "explicit", want: "explicit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := newFake(t)
			c := newFakeClient(t, f.Server.URL, func(c *Config) { c.Token, c.TokenFile = tt.token, file })
			_, err := c.query(t.Context(), "/v1/status/leader", nil, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.last(t).Header.Get("X-Consul-Token"))
		})
	}
}

// TestConfigFromEnvTokenFile checks the consul CLI's precedence end to
// end: with both variables set, the file's token is the one sent, unless
// the file is there but blank (a secret not written yet).
func TestConfigFromEnvTokenFile(t *testing.T) {
	for file, want := range map[string]string{"file-token\n": "file-token", " \n": "env-token"} {
		t.Run(want, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(path, []byte(file), 0o600))
			_, f := newFake(t)
			t.Setenv(EnvHTTPAddr, f.Server.URL)
			t.Setenv(EnvHTTPToken, "env-token")
			t.Setenv(EnvHTTPTokenFile, path)
			cfg, err := ConfigFromEnv()
			require.NoError(t, err)
			c, err := NewClient(cfg)
			require.NoError(t, err)
			_, err = c.query(t.Context(), "/v1/status/leader", nil, nil)
			require.NoError(t, err)
			assert.Equal(t, want, f.last(t).Header.Get("X-Consul-Token"))
		})
	}
}

func TestConfigDefaultsSent(t *testing.T) {
	_, f := newFake(t)
	c := newFakeClient(t, f.Server.URL, func(c *Config) {
		c.Datacenter, c.Namespace, c.Partition, c.Token = "dc1", "ns1", "p1", "client-token"
	})
	ctx := t.Context()

	_, err := c.query(ctx, "/v1/kv/a", nil, nil)
	require.NoError(t, err)
	got := f.last(t)
	assert.Equal(t, "dc=dc1&ns=ns1&partition=p1", got.RawQuery)
	assert.Equal(t, "client-token", got.Header.Get("X-Consul-Token"))

	_, err = c.query(ctx, "/v1/kv/a", &QueryOptions{Datacenter: "dc2", Namespace: "ns2", Partition: "p2", Token: "req-token"}, nil)
	require.NoError(t, err)
	got = f.last(t)
	assert.Equal(t, "dc=dc2&ns=ns2&partition=p2", got.RawQuery)
	assert.Equal(t, "req-token", got.Header.Get("X-Consul-Token"))

	_, err = c.write(ctx, http.MethodPut, "/v1/kv/a", &WriteOptions{Datacenter: "dc3", Token: "w-token"}, nil, nil)
	require.NoError(t, err)
	got = f.last(t)
	assert.Equal(t, "dc=dc3&ns=ns1&partition=p1", got.RawQuery)
	assert.Equal(t, "w-token", got.Header.Get("X-Consul-Token"))

	_, err = c.write(ctx, http.MethodPut, "/v1/kv/a", nil, nil, nil)
	require.NoError(t, err)
	got = f.last(t)
	assert.Equal(t, "dc=dc1&ns=ns1&partition=p1", got.RawQuery)
	assert.Equal(t, "client-token", got.Header.Get("X-Consul-Token"))
}

func TestNoTokenNoHeader(t *testing.T) {
	c, f := newFake(t)
	_, err := c.query(t.Context(), "/v1/status/leader", nil, nil)
	require.NoError(t, err)
	_, ok := f.last(t).Header["X-Consul-Token"]
	assert.False(t, ok)
	_, _, ok = (&http.Request{Header: f.last(t).Header}).BasicAuth()
	assert.False(t, ok)
}

func TestHTTPBasicAuth(t *testing.T) {
	_, f := newFake(t)
	auth := &HTTPBasicAuth{Username: "alice", Password: "s3cret:x"}
	c := newFakeClient(t, f.Server.URL, func(c *Config) { c.HTTPAuth = auth })
	// The client keeps its own copy.
	auth.Password = "changed"

	_, err := c.query(t.Context(), "/v1/status/leader", nil, nil)
	require.NoError(t, err)
	user, pass, ok := (&http.Request{Header: f.last(t).Header}).BasicAuth()
	require.True(t, ok)
	assert.Equal(t, "alice", user)
	assert.Equal(t, "s3cret:x", pass)

	_, err = c.write(t.Context(), http.MethodPut, "/v1/kv/x", nil, nil, nil)
	require.NoError(t, err)
	_, _, ok = (&http.Request{Header: f.last(t).Header}).BasicAuth()
	assert.True(t, ok)
}

// cloneConfig copies cfg deeply enough to compare it after NewClient.
func cloneConfig(cfg Config) Config {
	out := cfg
	if cfg.HTTPAuth != nil {
		a := *cfg.HTTPAuth
		out.HTTPAuth = &a
	}
	out.TLS.CAPem = append([]byte(nil), cfg.TLS.CAPem...)
	out.TLS.CertPEM = append([]byte(nil), cfg.TLS.CertPEM...)
	out.TLS.KeyPEM = append([]byte(nil), cfg.TLS.KeyPEM...)
	return out
}

func TestNewClientDoesNotModifyConfig(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("from-file\n"), 0o600))

	configs := map[string]Config{
		"plain": {Address: "127.0.0.1:8500", TokenFile: tokenFile, HTTPAuth: &HTTPBasicAuth{Username: "u", Password: "p"}},
		"tls": {
			Address: "https://127.0.0.1:8501", Datacenter: "dc1", Namespace: "ns", Partition: "p",
			Consistency: ConsistencyStale, WaitTime: time.Minute,
			TLS: TLSConfig{CAPem: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: pki.clientKeyPEM, Address: "consul.test"},
		},
		"transport": {Address: "unix:///tmp/x.sock", Transport: http.DefaultTransport},
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			before := cloneConfig(cfg)
			_, err := NewClient(cfg)
			require.NoError(t, err)
			assert.True(t, reflect.DeepEqual(before, cloneConfig(cfg)), "NewClient modified its Config")
			assert.Empty(t, cfg.Token, "the token file's content must not be written back")
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCustomHTTPClientAndTransport(t *testing.T) {
	_, f := newFake(t, fakeReply{Body: `"10.0.0.1:8300"`})

	var viaTransport, viaClient int
	tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		viaTransport++
		return http.DefaultTransport.RoundTrip(r)
	})
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		viaClient++
		return http.DefaultTransport.RoundTrip(r)
	})}

	c := newFakeClient(t, f.Server.URL, func(c *Config) { c.Transport = tr })
	leader, err := c.Status().Leader(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1:8300", leader)
	assert.Equal(t, 1, viaTransport)

	// HTTPClient wins over Transport and is used as is.
	c = newFakeClient(t, f.Server.URL, func(c *Config) { c.Transport, c.HTTPClient = tr, hc })
	_, err = c.Status().Leader(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, viaTransport)
	assert.Equal(t, 1, viaClient)
	assert.Same(t, hc, c.hc)
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// testPKI is a CA with a server certificate (for 127.0.0.1 and
// consul.test) and a client certificate.
type testPKI struct {
	caPEM         []byte
	caPool        *x509.CertPool
	server        tls.Certificate
	clientCertPEM []byte
	clientKeyPEM  []byte
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "consulkit test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	issue := func(serial int64, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}

	p := &testPKI{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	srvCert, srvKey := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "server.dc1.consul"},
		DNSNames:    []string{"consul.test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.server, err = tls.X509KeyPair(srvCert, srvKey)
	require.NoError(t, err)
	p.clientCertPEM, p.clientKeyPEM = issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "client.dc1.consul"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return p
}

// writeFiles writes the PEM files into dir and returns their paths.
func (p *testPKI) writeFiles(t testing.TB, dir string) (ca, cert, key string) {
	t.Helper()
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	require.NoError(t, os.WriteFile(ca, p.caPEM, 0o600))
	require.NoError(t, os.WriteFile(cert, p.clientCertPEM, 0o600))
	require.NoError(t, os.WriteFile(key, p.clientKeyPEM, 0o600))
	return ca, cert, key
}

// newMTLSServer starts an HTTPS server that requires a client certificate
// signed by the PKI's CA and answers every request with the leader.
func newMTLSServer(t testing.TB, p *testPKI) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, `"`+r.TLS.PeerCertificates[0].Subject.CommonName+`"`)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.caPool,
		MinVersion:   tls.VersionTLS12,
	}
	// Refused handshakes are expected; keep them out of the test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := newMTLSServer(t, pki)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	caFile, certFile, keyFile := pki.writeFiles(t, dir)
	caDir := filepath.Join(dir, "cas")
	require.NoError(t, os.Mkdir(caDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(caDir, "not-a-cert.txt"), []byte("readme"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(caDir, "ca.pem"), pki.caPEM, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(caDir, "subdir"), 0o700))

	ipAddr := srv.Listener.Addr().String() // 127.0.0.1:port
	nameAddr := net.JoinHostPort("localhost", strconv.Itoa(port))

	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		// verifyErr: our side refused the server's certificate, which
		// retrying cannot fix.
		verifyErr bool
	}{
		{
			name: "CA file and client cert files",
			cfg:  Config{Address: "https://" + ipAddr, TLS: TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}},
		},
		{
			name: "CA dir, scheme from Config.Scheme",
			cfg:  Config{Address: ipAddr, Scheme: "https", TLS: TLSConfig{CAPath: caDir, CertFile: certFile, KeyFile: keyFile}},
		},
		{
			name: "PEM in memory",
			cfg:  Config{Address: "https://" + ipAddr, TLS: TLSConfig{CAPem: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: pki.clientKeyPEM}},
		},
		{
			name: "server name override",
			cfg:  Config{Address: "https://" + nameAddr, TLS: TLSConfig{Address: "consul.test", CAFile: caFile, CertFile: certFile, KeyFile: keyFile}},
		},
		{
			name: "server name override with a port (dropped, as by the consul CLI)",
			cfg:  Config{Address: "https://" + nameAddr, TLS: TLSConfig{Address: "consul.test:8501", CAFile: caFile, CertFile: certFile, KeyFile: keyFile}},
		},
		{
			name:    "host name not in certificate",
			cfg:     Config{Address: "https://" + nameAddr, TLS: TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}},
			wantErr: true, verifyErr: true,
		},
		{
			name:    "wrong server name",
			cfg:     Config{Address: "https://" + ipAddr, TLS: TLSConfig{Address: "other.test", CAFile: caFile, CertFile: certFile, KeyFile: keyFile}},
			wantErr: true, verifyErr: true,
		},
		{
			name:    "unknown CA",
			cfg:     Config{Address: "https://" + ipAddr, TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile}},
			wantErr: true, verifyErr: true,
		},
		{
			name: "skip verify",
			cfg:  Config{Address: "https://" + nameAddr, TLS: TLSConfig{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}},
		},
		{
			name:    "no client certificate",
			cfg:     Config{Address: "https://" + ipAddr, TLS: TLSConfig{CAFile: caFile}},
			wantErr: true,
		},
		{
			name:    "plain http to a TLS server",
			cfg:     Config{Address: "http://" + ipAddr},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			require.NoError(t, err)
			t.Cleanup(func() { c.hc.CloseIdleConnections() })
			cn, err := c.Status().Leader(t.Context(), nil)
			if tt.wantErr {
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrInvalid)
				if tt.verifyErr {
					var cve *tls.CertificateVerificationError
					assert.ErrorAs(t, err, &cve)
					assert.False(t, IsRetryable(err))
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "client.dc1.consul", cn, "the server saw our client certificate")
		})
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "consul.sock")
	if len(sock) > 100 { // sun_path is about 108 bytes
		d, err := os.MkdirTemp("", "ck")
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		sock = filepath.Join(d, "c.sock")
	}
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)

	var seen fakeCall
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = fakeCall{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
		w.Header().Set("X-Consul-Index", "12")
		_, _ = io.WriteString(w, `["127.0.0.1:8300"]`)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := NewClient(Config{Address: "unix://" + sock, Token: "tok", Datacenter: "dc1"})
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	assert.Equal(t, "http://unix", c.Address())

	peers, err := c.Status().Peers(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:8300"}, peers)
	assert.Equal(t, http.MethodGet, seen.Method)
	assert.Equal(t, "/v1/status/peers", seen.Path)
	assert.Equal(t, "dc=dc1", seen.RawQuery)
	assert.Equal(t, "tok", seen.Header.Get("X-Consul-Token"))
}

// TestHTTPSOverUnixSocket: Consul serves HTTPS on a unix socket
// (addresses.https = "unix://..."), and the consul CLI speaks TLS to
// CONSUL_HTTP_ADDR=unix://... when CONSUL_HTTP_SSL=true; so does the client.
func TestHTTPSOverUnixSocket(t *testing.T) {
	pki := newTestPKI(t)
	srv := newMTLSServer(t, pki)
	dir, err := os.MkdirTemp("", "ck") // short: sun_path is about 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	tln := tls.NewListener(ln, srv.TLS)
	go func() { _ = srv.Config.Serve(tln) }()
	t.Cleanup(func() { _ = tln.Close() })
	caFile, certFile, keyFile := pki.writeFiles(t, t.TempDir())

	env := map[string]string{
		EnvHTTPAddr:      "unix://" + sock,
		EnvHTTPSSL:       "true",
		EnvCACert:        caFile,
		EnvClientCert:    certFile,
		EnvClientKey:     keyFile,
		EnvTLSServerName: "consul.test",
	}
	cfg, err := configFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	c, err := NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	cn, err := c.Status().Leader(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, "client.dc1.consul", cn, "the server saw our client certificate over TLS")
}
