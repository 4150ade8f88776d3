// Package client tests the signet client end to end with real components:
// an image pushed with skopeo to a real Debian docker-registry on
// 127.0.0.1, signed by `signet trust sign` (no Docker daemon, through
// internal/cli's Main) against signet-server, then read back by the real
// `docker trust inspect` and `notary list`. The package has no non-test
// code.
//
// signet-server runs in the test process (internal/e2e/inproc) with a
// throw-away CA; the registry is started by internal/e2e/e2etest.
//
// Invariants: every server listens on 127.0.0.1 only and is stopped by
// the test that started it; every client has its own HOME and
// DOCKER_CONFIG under t.TempDir(). A missing program (docker-registry,
// skopeo, docker, notary) skips the test unless SIGNET_TEST_REQUIRE
// contains "all" or the program's name.
package client
