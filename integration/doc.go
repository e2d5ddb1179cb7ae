// Package integration starts real Consul agents for tests: consulkit's own
// and its users'.
//
// An agent comes from, in this order:
//
//   - CONSUL_HTTP_ADDR, when set: an agent someone else runs (external
//     mode; only the shared dev agent can come from it);
//   - a container through dockertest, when a Docker engine answers (docker
//     mode). The image is CONSUL_IMAGE (default hashicorp/consul:1.14.8)
//     when present or pullable; otherwise an image is built locally FROM
//     scratch with the Consul binary below;
//   - the Consul binary run as a child process on free loopback ports
//     (process mode).
//
// CONSULKIT_MODE=docker|process|external forces a mode. The binary is
// CONSUL_BINARY when set, else the one built by scripts/build-consul.sh into
// its cache (building it when this package's source tree is at hand), else
// "consul" on PATH.
//
// A test package that uses Shared must run its tests through Main, which
// stops the shared agent and checks for leaked goroutines:
//
//	func TestMain(m *testing.M) { integration.Main(m) }
//
// Everything the harness starts carries its owner's process ID. A run
// that dies without cleaning up (a test that panics, go test -timeout,
// Ctrl-C, SIGKILL) is cleaned up after by its reaper: the same executable,
// started again in a process group of its own when the first agent is,
// which removes the dead run's containers, networks, processes and data
// directories as soon as it is gone. What a reaper could not remove is
// removed when the next run starts. Clusters (NewCluster) support Stop,
// Start, Kill, Pause, Unpause and Disconnect/Reconnect of one server in
// docker mode; process mode does what signals allow and returns
// ErrUnsupported for network cuts.
package integration
