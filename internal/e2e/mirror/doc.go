// Package mirror tests `signet mirror` end to end: repositories built by
// the real notary and docker clients on the reference notary-server
// (internal/e2e/reference) — with a root key rotation, delegations, a
// server-managed snapshot — are copied into signet-server (in the test
// process, internal/e2e/inproc), and the real clients, knowing nothing
// but the new server's URL, go on verifying and publishing there: a fresh
// client, the owner's trust directory and a client that trusted an older
// root; the owner moves the timestamp (and snapshot) key with notary key
// rotate -r. It also mirrors from a source behind registry token auth
// (signet-server's built-in token service) into a destination that wants
// an admin's scope, from a source serving a broken root chain, and into a
// destination whose history conflicts.
//
// The package has no non-test code. Every server listens on 127.0.0.1;
// every client has its own HOME, trust directory and DOCKER_CONFIG. A
// missing program skips the test that needs it, unless SIGNET_TEST_REQUIRE
// asks for it (make test: "all"), when it fails.
package mirror
