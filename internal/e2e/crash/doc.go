// Package crash checks that signet-server never loses an acknowledged
// publish: its tests run ./cmd/signet-server (built once by e2etest, or
// SIGNET_SERVER_BIN) as a subprocess on a 127.0.0.1 port with a
// throw-away data directory, publish a stream of new targets versions to
// several GUNs, and stop the process mid-stream, either with SIGKILL (a
// crash) or SIGTERM (a graceful stop, which must exit 0). After every
// restart on the same data directory each publish the server answered 200
// must be current or superseded, retrievable by version byte for byte, and
// the repository must verify root → timestamp → snapshot → targets with
// internal/tuf/trust, as the notary client does. A publish that got no
// answer may be present or absent, but never half-applied.
//
// TestKillMidStreamPostgres repeats the SIGKILL test with --db postgres://…
// in a database created and dropped per test on the server named by
// SIGNET_TEST_POSTGRES_URL; it skips when that is missing or unreachable,
// or fails when SIGNET_TEST_REQUIRE holds "all" or "postgres".
//
// The package has no non-test code. Invariants: the server listens on
// 127.0.0.1 only, is killed by the test that started it, and every wait is
// bounded in time. The tests need a Unix system (signals).
package crash
