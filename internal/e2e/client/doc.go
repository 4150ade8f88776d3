// Package client tests the signet client end to end with real components:
// an image pushed with skopeo to a real Debian docker-registry on
// 127.0.0.1, signed by `signet trust sign` (no Docker daemon) against a
// signet-server subprocess, then read back by the real `docker trust
// inspect` and `notary list`. The package has no non-test code.
//
// signet-server is built from ./cmd/signet-server once per test binary
// (or taken from SIGNET_SERVER_BIN) and run with a throw-away CA.
//
// Invariants: every process listens on 127.0.0.1 only and is stopped by
// the test that started it; every client has its own HOME and
// DOCKER_CONFIG under t.TempDir(). A missing program (docker-registry,
// skopeo, docker, notary) skips the test unless SIGNET_TEST_REQUIRE
// contains "all" or the program's name.
package client
