// Package e2etest is the one end-to-end test harness: every test that runs
// a program of this module or a component of the machine goes through it.
//
//   - Binary builds this module's programs once per source tree (not once
//     per test binary) into a shared cache, or takes SIGNET_SERVER_BIN,
//     SIGNET_CLI_BIN, SIGNET_SIGNER_BIN and their -tags pkcs11 twins.
//   - FreeAddr, WaitListening and WaitHTTP: loopback ports and readiness.
//   - CA, ServerPKI: throw-away certificate authorities and certificates
//     for 127.0.0.1 (server, client and mutual TLS).
//   - Start runs signet-server as a subprocess (crash, fault, soak and
//     replica tests: anything that kills or measures the process);
//     StartSigner runs signet-signer as one; StartRegistry runs Debian's
//     docker-registry; Daemon any other long-running program.
//   - Command runs a client program with a clean environment (BaseEnv), a
//     closed or given stdin and a timeout, and reports failures in full.
//   - PostgresDB makes a database per test on SIGNET_TEST_POSTGRES_URL and
//     drops it afterwards.
//   - CosignBin finds the real cosign (SIGNET_COSIGN_BIN); CosignCommand
//     runs it offline with its own HOME.
//   - Required, Missing, Need and Have read SIGNET_TEST_REQUIRE: a missing
//     component skips a test, or fails it when the variable asks for it.
//
// The in-process stack (signet-server and signet-signer in goroutines) is
// internal/e2e/inproc, the client side of the Notary HTTP API for tests
// that speak it directly is internal/e2e/tufhttp, and the reference
// notary-server and notary-signer are started by internal/e2e/reference;
// they build on this package, which imports nothing of this module so that
// any package's tests (internal/keys, internal/store/sqlstore…) can use it.
// Every variable is described in docs/testing.md. Imported only from
// _test.go files (and the reference's command).
package e2etest
