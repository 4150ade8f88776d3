// Package faults checks that signet-server meets failures of what it depends
// on with a clean error, no partial state, and recovery without manual
// steps. Its tests run ./cmd/signet-server (built once by e2etest, or
// SIGNET_SERVER_BIN) as a subprocess on 127.0.0.1:
//
//   - database unavailable: PostgreSQL reached through a TCP proxy in the
//     test, which is cut and restored while the server runs; requests that
//     need the database answer 503 UNAVAILABLE with Retry-After, nothing
//     partial is stored, and the same process serves again once the proxy
//     is restored;
//   - database slow: the proxy delays every chunk; requests succeed, or the
//     client gives up and the repository is left whole;
//   - disk full: SQLite on a small tmpfs (mounted by the test, so it needs
//     root) that is filled up; publishes fail with a 5xx error, reads go on,
//     earlier data is intact, and publishes work again once space is freed;
//   - client disconnecting mid-upload: half a multipart body, then the
//     connection closes (HTTP/1.1) or the stream is reset (HTTP/2); nothing
//     is stored and the server is unaffected;
//   - custodian failure: the embedded custodian's key table becomes
//     unreadable (PostgreSQL; renamed away under the running server); a
//     publish that needs a key answers 503 and the server recovers when it
//     is back. A remote signet-signer does not exist yet, so "signer
//     unavailable" has no test of its own.
//
// PostgreSQL comes from SIGNET_TEST_POSTGRES_URL, with a database created
// and dropped per test; when it is missing or unreachable the tests skip,
// or fail when SIGNET_TEST_REQUIRE holds "all" or "postgres".
//
// The package has no non-test code. Invariants: every listener is on
// 127.0.0.1, every process and mount is removed by the test that made it,
// and every wait is bounded in time.
package faults
