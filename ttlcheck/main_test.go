package ttlcheck_test

import (
	"testing"

	"github.com/consulkit/consulkit/integration"
)

// TestMain runs the tests through the integration harness, which stops the
// agents it started and checks for leaked goroutines.
func TestMain(m *testing.M) { integration.Main(m) }
