package integration

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consulkit/consulkit/api"
)

// TestExternalAgentKeepsTheEnvironment: against an existing Consul, the
// tests reach it as the environment says: scheme, TLS settings, token file
// and basic auth included, not only its host and token. Nothing is sent.
func TestExternalAgentKeepsTheEnvironment(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("secret\n"), 0o600))
	t.Setenv(EnvMode, string(ModeExternal))
	t.Setenv("CONSUL_HTTP_ADDR", "https://127.0.0.1:8501")
	t.Setenv("CONSUL_HTTP_TOKEN_FILE", tok)
	t.Setenv("CONSUL_HTTP_AUTH", "user:pass")
	t.Setenv("CONSUL_TLS_SERVER_NAME", "consul.example")
	env, err := api.ConfigFromEnv()
	require.NoError(t, err)

	a, err := startShared()
	require.NoError(t, err)
	assert.Equal(t, ModeExternal, a.Mode)
	cfg := a.Config()
	assert.Equal(t, env.Address, cfg.Address)
	assert.Equal(t, env.Scheme, cfg.Scheme)
	assert.Equal(t, env.TokenFile, cfg.TokenFile)
	assert.Equal(t, env.HTTPAuth, cfg.HTTPAuth)
	assert.Equal(t, env.TLS, cfg.TLS)
	c, err := a.NewClient()
	require.NoError(t, err, "the configuration makes a client")
	c.CloseIdleConnections()
}
