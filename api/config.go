package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client. The zero value is not useful; start from
// DefaultConfig or ConfigFromEnv. NewClient copies what it needs and never
// modifies the Config it is given.
type Config struct {
	// Address is the agent's HTTP address: "host:port", "http://host:port",
	// "https://host:port" or "unix:///path/to/socket".
	Address string

	// Scheme is "http" or "https"; it is used when Address has no scheme,
	// and for a unix socket (HTTPS over a socket verifies the server name
	// TLS.Address, "unix" when empty).
	Scheme string

	// Datacenter, Namespace and Partition are defaults for every request that
	// does not set its own.
	Datacenter string
	Namespace  string
	Partition  string

	// Token is the ACL token sent with every request that does not carry its
	// own. TokenFile names a file holding the token; it is read by NewClient
	// and is used when Token is empty.
	Token     string
	TokenFile string

	// HTTPAuth is HTTP basic authentication sent with every request.
	HTTPAuth *HTTPBasicAuth

	// TLS configures HTTPS. It is used when the scheme is https.
	TLS TLSConfig

	// Consistency is the default consistency mode of reads whose
	// QueryOptions leave it at ConsistencyDefault.
	Consistency Consistency

	// HTTPClient, when set, is used as is: Transport, TLS and the idle
	// connection settings are the caller's business. Transport, when set and
	// HTTPClient is not, is wrapped in a client of our own.
	HTTPClient *http.Client
	Transport  http.RoundTripper

	// WaitTime is the default wait of blocking queries that set WaitIndex
	// but no WaitTime. Zero means 5 minutes (Consul's own default), sent
	// as the wait, so that the agent's default_query_time does not apply.
	WaitTime time.Duration
}

// HTTPBasicAuth holds HTTP basic authentication credentials.
type HTTPBasicAuth struct {
	Username string
	Password string
}

// TLSConfig configures TLS towards the agent.
type TLSConfig struct {
	// Address is the server name to verify; empty means the host of Address.
	Address string
	// CAFile and CAPath name a PEM bundle and a directory of PEM files
	// holding the CA certificates to trust.
	CAFile string
	CAPath string
	// CAPem holds PEM-encoded CA certificates.
	CAPem []byte
	// CertFile and KeyFile name a client certificate and its key.
	CertFile string
	KeyFile  string
	// CertPEM and KeyPEM hold a PEM-encoded client certificate and key.
	CertPEM []byte
	KeyPEM  []byte
	// InsecureSkipVerify disables verification of the server's certificate.
	InsecureSkipVerify bool
}

// DefaultConfig returns a Config for a local agent at 127.0.0.1:8500 over
// HTTP. It does not read the environment; see ConfigFromEnv.
func DefaultConfig() Config {
	return Config{Address: "127.0.0.1:8500", Scheme: "http"}
}

// Environment variables read by ConfigFromEnv, the same the consul CLI reads.
const (
	EnvHTTPAddr      = "CONSUL_HTTP_ADDR"
	EnvHTTPToken     = "CONSUL_HTTP_TOKEN"
	EnvHTTPTokenFile = "CONSUL_HTTP_TOKEN_FILE"
	EnvHTTPAuth      = "CONSUL_HTTP_AUTH"
	EnvHTTPSSL       = "CONSUL_HTTP_SSL"
	EnvHTTPSSLVerify = "CONSUL_HTTP_SSL_VERIFY"
	EnvCACert        = "CONSUL_CACERT"
	EnvCAPath        = "CONSUL_CAPATH"
	EnvClientCert    = "CONSUL_CLIENT_CERT"
	EnvClientKey     = "CONSUL_CLIENT_KEY"
	EnvTLSServerName = "CONSUL_TLS_SERVER_NAME"
	EnvNamespace     = "CONSUL_NAMESPACE"
	EnvPartition     = "CONSUL_PARTITION"
)

// ConfigFromEnv returns DefaultConfig overridden by the CONSUL_* environment
// variables that the consul CLI reads, with the CLI's precedence:
// CONSUL_HTTP_TOKEN_FILE wins over CONSUL_HTTP_TOKEN when the file holds a
// token (a blank one is passed over), and CONSUL_HTTP_SSL=true
// keeps HTTPS even when CONSUL_HTTP_ADDR starts with http://. A variable with
// a malformed value (CONSUL_HTTP_SSL=maybe) is an error naming it.
func ConfigFromEnv() (Config, error) {
	return configFromLookup(os.LookupEnv)
}

func configFromLookup(lookup func(string) (string, bool)) (Config, error) {
	cfg := DefaultConfig()
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if v := get(EnvHTTPAddr); v != "" {
		cfg.Address = v
	}
	// As in the consul CLI, a token file wins over a token when it holds
	// one: Config's own rule is the other way round, so the token is left
	// out when a file is named, unless the file is there but blank (a
	// secret not written yet). A file that cannot be read stays named, for
	// NewClient to report.
	cfg.TokenFile = get(EnvHTTPTokenFile)
	if cfg.TokenFile == "" {
		cfg.Token = get(EnvHTTPToken)
	} else if b, err := os.ReadFile(cfg.TokenFile); err == nil && strings.TrimSpace(string(b)) == "" {
		cfg.Token, cfg.TokenFile = get(EnvHTTPToken), ""
	}
	// Credentials are taken as they are: a password may hold spaces.
	if v, _ := lookup(EnvHTTPAuth); strings.TrimSpace(v) != "" {
		user, pass, _ := strings.Cut(v, ":")
		cfg.HTTPAuth = &HTTPBasicAuth{Username: user, Password: pass}
	}
	if v := get(EnvHTTPSSL); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, &ValidationError{Field: EnvHTTPSSL, Reason: "not a boolean: " + strconv.Quote(v)}
		}
		if b {
			// As in the consul CLI, TLS asked for explicitly is never
			// turned off by an http:// address.
			cfg.Scheme = "https"
			cfg.Address = strings.TrimPrefix(cfg.Address, "http://")
		}
	}
	if v := get(EnvHTTPSSLVerify); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, &ValidationError{Field: EnvHTTPSSLVerify, Reason: "not a boolean: " + strconv.Quote(v)}
		}
		cfg.TLS.InsecureSkipVerify = !b
	}
	cfg.TLS.CAFile = get(EnvCACert)
	cfg.TLS.CAPath = get(EnvCAPath)
	cfg.TLS.CertFile = get(EnvClientCert)
	cfg.TLS.KeyFile = get(EnvClientKey)
	cfg.TLS.Address = get(EnvTLSServerName)
	cfg.Namespace = get(EnvNamespace)
	cfg.Partition = get(EnvPartition)
	return cfg, nil
}

// endpoint is the parsed form of Config.Address.
type endpoint struct {
	scheme string // http or https
	host   string // host:port, or "unix" for a socket
	socket string // path of a unix socket, if any
}

func parseAddress(addr, scheme string) (endpoint, error) {
	if addr == "" {
		return endpoint{}, &ValidationError{Field: "Config.Address", Reason: "empty"}
	}
	if scheme == "" {
		scheme = "http"
	}
	switch {
	case strings.HasPrefix(addr, "unix://"):
		p := strings.TrimPrefix(addr, "unix://")
		if p == "" {
			return endpoint{}, &ValidationError{Field: "Config.Address", Reason: "unix:// without a socket path"}
		}
		// Consul serves HTTPS on a unix socket too (addresses.https =
		// "unix://..."): Scheme (CONSUL_HTTP_SSL=true) says which, as
		// for the consul CLI.
		if scheme != "http" && scheme != "https" {
			return endpoint{}, &ValidationError{Field: "Config.Scheme", Reason: "must be http or https, not " + strconv.Quote(scheme)}
		}
		return endpoint{scheme: scheme, host: "unix", socket: p}, nil
	case strings.HasPrefix(addr, "http://"):
		scheme, addr = "http", strings.TrimPrefix(addr, "http://")
	case strings.HasPrefix(addr, "https://"):
		scheme, addr = "https", strings.TrimPrefix(addr, "https://")
	case strings.Contains(addr, "://"):
		return endpoint{}, &ValidationError{Field: "Config.Address", Reason: "unsupported scheme in " + strconv.Quote(addr)}
	}
	addr = strings.TrimRight(addr, "/")
	if scheme != "http" && scheme != "https" {
		return endpoint{}, &ValidationError{Field: "Config.Scheme", Reason: "must be http or https, not " + strconv.Quote(scheme)}
	}
	if addr == "" || strings.ContainsAny(addr, "/?# ") || !validHostPort(addr) {
		return endpoint{}, &ValidationError{Field: "Config.Address", Reason: "not a host[:port]: " + strconv.Quote(addr)}
	}
	return endpoint{scheme: scheme, host: addr}, nil
}

// validHostPort reports whether addr is a host, a [v6 address], or either
// with a port from 1 to 65535 (an empty port is the scheme's): one that
// could never be dialled ("[::1", "host:99999") is refused before
// anything is sent.
func validHostPort(addr string) bool {
	if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") || !strings.Contains(addr, ":") {
		return !strings.ContainsAny(strings.Trim(addr, "[]"), "[]")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// tlsClientConfig builds a *tls.Config from c.
func (c TLSConfig) tlsClientConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // the caller's explicit choice
	tc.ServerName = c.Address
	if h, _, err := net.SplitHostPort(tc.ServerName); err == nil {
		// A name given as host:port (CONSUL_TLS_SERVER_NAME, say) is
		// verified without its port, as by the consul CLI.
		tc.ServerName = h
	}
	if tc.ServerName == "" {
		if h, _, err := net.SplitHostPort(host); err == nil {
			tc.ServerName = h
		} else {
			tc.ServerName = host
		}
	}
	if c.CAFile != "" || c.CAPath != "" || len(c.CAPem) > 0 {
		pool := x509.NewCertPool()
		add := func(pem []byte, from string) error {
			if !pool.AppendCertsFromPEM(pem) {
				return &ValidationError{Field: "TLSConfig", Reason: "no PEM certificate in " + from}
			}
			return nil
		}
		if len(c.CAPem) > 0 {
			if err := add(c.CAPem, "CAPem"); err != nil {
				return nil, err
			}
		}
		if c.CAFile != "" {
			b, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("consul: reading CA file: %w", err)
			}
			if err := add(b, c.CAFile); err != nil {
				return nil, err
			}
		}
		if c.CAPath != "" {
			entries, err := os.ReadDir(c.CAPath)
			if err != nil {
				return nil, fmt.Errorf("consul: reading CA path: %w", err)
			}
			n := 0
			for _, e := range entries {
				if e.IsDir() {
					continue
				}
				b, err := os.ReadFile(filepath.Join(c.CAPath, e.Name()))
				if err != nil {
					return nil, fmt.Errorf("consul: reading CA path: %w", err)
				}
				if pool.AppendCertsFromPEM(b) {
					n++
				}
			}
			if n == 0 {
				return nil, &ValidationError{Field: "TLSConfig.CAPath", Reason: "no PEM certificate in " + c.CAPath}
			}
		}
		tc.RootCAs = pool
	}
	switch {
	case c.CertFile != "" || c.KeyFile != "":
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, &ValidationError{Field: "TLSConfig.CertFile", Reason: "a client certificate needs both CertFile and KeyFile"}
		}
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("consul: loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case len(c.CertPEM) > 0 || len(c.KeyPEM) > 0:
		cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("consul: loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// newTransport returns a transport tuned for many concurrent blocking
// queries to one agent: idle connections are kept per host in numbers large
// enough that parked blocking queries do not force others to redial. Each
// open connection keeps a read and a write buffer for its lifetime, and a
// process holding many locks keeps one connection per held lock: the
// buffers are sized for Consul's requests and answers, which are mostly
// well under 1 KiB, rather than net/http's 4 KiB each (longer ones are
// read and written through in more pieces, or directly).
func newTransport(ep endpoint, tc *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        2 << 10,
		WriteBufferSize:       1 << 10,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     false,
	}
	if ep.socket != "" {
		sock := ep.socket
		t.Proxy = nil
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
	}
	return t
}
