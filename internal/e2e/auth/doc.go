// Package auth tests token authentication end to end with the real
// components a user would run on one machine: signet-server (in the test
// process, through internal/e2e/inproc, with the YAML config a user would
// write) with its built-in token service reading an htpasswd file, a Debian
// docker-registry configured for token auth against that service, and the
// real Docker CLI, notary CLI and skopeo, so that the registry and the trust
// server share users.
//
// The package has no non-test code. Every server listens on 127.0.0.1 and
// is stopped by the test; every client has its own HOME and DOCKER_CONFIG.
// A missing program (docker-registry, docker, notary, skopeo) skips the
// test that needs it, unless SIGNET_TEST_REQUIRE contains "all" (or the
// program's name), in which case it fails.
package auth
