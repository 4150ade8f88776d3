// Package compat runs the real Notary v1 clients — the Debian `notary` 0.7
// CLI and the Docker CLI's `docker trust` commands — against a trust server
// and checks that they behave as they do against the reference
// notary-server. The package has no non-test code; everything lives in its
// tests so that `go test ./internal/e2e/compat/` is the whole interface.
//
// Targets (which servers are tested) are chosen with SIGNET_COMPAT_TARGETS,
// a comma-separated list of "signet" and "reference" (default: both):
//
//   - reference starts the Debian notary-server and notary-signer with the
//     recipe of internal/e2e/reference (memory backends, free ports).
//   - signet runs signet-server in the test process (internal/e2e/inproc)
//     on a free 127.0.0.1 port with a throw-away CA made by the test.
//
// The signet client (./cmd/signet) is built once for all test binaries by
// internal/e2e/e2etest (or taken from SIGNET_CLI_BIN).
//
// Invariants: every server the tests start listens on 127.0.0.1 only and is
// stopped by the test that started it; every client runs with its own HOME,
// trust directory and DOCKER_CONFIG under t.TempDir(); every command has a
// timeout and a closed (or given) stdin.
//
// A missing external program (notary, notary-server, docker,
// docker-registry, skopeo, …) skips the test, unless SIGNET_TEST_REQUIRE
// contains "all" (or the program's name), in which case the test fails.
// SIGNET_CAPTURE_FIXTURES=1 writes the reference server's metadata and the
// clients' key files to internal/tuf/testdata/{notary-0.7,docker-trust}/.
package compat
