package api_test

import (
	"testing"

	"github.com/consulkit/consulkit/integration"
)

// TestMain runs the package's integration tests through the harness, which
// stops the shared agent afterwards and checks for leaked goroutines.
func TestMain(m *testing.M) { integration.Main(m) }
