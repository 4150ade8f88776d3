// Package clientshape checks that the metadata the signet client writes has
// the shape the real notary 0.7 client writes for the same commands (issue
// 10, finding 8): both clients run one command sequence — init, add,
// publish, delegation add and remove, key import, remove, witness, and key
// rotate for every role — each on its own repository of one signet-server
// subprocess, and after every step the files each repository's server
// serves and each client caches are reduced to their shape (key sets and
// key types, roles, thresholds, versions, expiry periods, delegations and
// their paths, target and meta hash algorithms, signature counts and
// methods, the roles of the private keys held) and compared.
//
// The package has no non-test code. signet-server is built from
// ./cmd/signet-server once per test binary (or taken from
// SIGNET_SERVER_BIN); the signet client runs in process; notary is the
// Debian 0.7 binary on PATH — missing, the test skips, or fails when
// SIGNET_TEST_REQUIRE asks for "all" or "notary".
package clientshape
