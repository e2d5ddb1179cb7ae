package integration

// DataDir is the data directory of a's agent process in process mode, ""
// otherwise: for the tests of package integration_test.
func DataDir(a *Agent) string {
	if n, ok := a.node.(*procNode); ok {
		return n.dataDir
	}
	return ""
}
