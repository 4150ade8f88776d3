// Package service tests the signing service end to end with the real
// components a user runs: signet-server (in the test process through
// internal/e2e/inproc, or as a subprocess where it is killed), Debian's
// docker-registry (also behind signet's token service), the real Docker
// CLI (`docker trust signer add` delegating to the project's key, `docker
// trust inspect`), the notary CLI (`notary list`), and the signet binary
// (`signet admin`, `signet request`, `signet verify --require-signer`).
//
// The package has no non-test code. Every server listens on 127.0.0.1 on
// a free port and is stopped by the test; every client has its own HOME
// and DOCKER_CONFIG. A missing program skips the test that needs it,
// unless SIGNET_TEST_REQUIRE asks for it, which fails the test instead.
package service
