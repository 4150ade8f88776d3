// Package signer runs signet-server with its online keys in a separate
// signet-signer — the signer a process of its own (built once by
// internal/e2e/e2etest), since the tests kill and stop it, and the server
// in the test process (internal/e2e/inproc), both on 127.0.0.1 with one
// throw-away CA — and drives them with the real `notary` 0.7 CLI:
// publishing, key rotation of timestamp and snapshot to the server
// (`notary key rotate GUN timestamp|snapshot -r`), the signer killed and
// restarted under a running server (publishes answer 503, change nothing,
// and work again without restarting the server), a stalled signer, and a
// rekey of the signer's passphrase while it serves.
//
// The package has no non-test code. A missing `notary` skips the tests,
// unless SIGNET_TEST_REQUIRE contains "all" or "notary", which fails them.
//
// Invariants: every server listens on 127.0.0.1 only and is stopped by
// the test that started it; every client has its own HOME and trust
// directory under t.TempDir(); every command has a timeout.
package signer
