// Package firsthour tests what a new user meets in their first hour with
// Signet, with the real programs and the documents as written: the
// quickstart's command blocks run in order in one shell from a fresh
// clone (make build included, every block timed); docs/pki.md's openssl
// recipe makes the certificates signet-signer and signet-server then run
// with; a token-authentication setup (signet-server's built-in token
// service with its local CA, a docker-registry that trusts it) is used by
// notary with NOTARY_AUTH, by signet with NOTARY_AUTH, Docker credentials,
// a credential helper and a prompt, by skopeo and by docker trust inspect;
// and docs/configuration.md is checked against every configuration key
// the programs accept.
//
// The package has no non-test code. Programs come from internal/e2e/e2etest
// (built once per source tree); every process listens on 127.0.0.1 on a
// free port and is stopped by the test; every client has its own HOME and
// DOCKER_CONFIG. A missing program skips the test that needs it, unless
// SIGNET_TEST_REQUIRE asks for it.
package firsthour
