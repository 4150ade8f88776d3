// Package soak runs signet-server (SQLite) under a bounded, steady load of
// concurrent publishers and readers on loopback and checks that it makes
// no errors and that its memory stays flat: the server's resident set
// (VmRSS of /proc/<pid>/status, sampled every second) in the last third of
// the run, after a warm-up, may not exceed 1.3 × that of the first third.
//
// The test runs ./cmd/signet-server (built once by e2etest, or
// SIGNET_SERVER_BIN). It runs for SIGNET_SOAK_DURATION (default 30 s, or
// 3 min with SIGNET_SOAK=1) and stops by itself; -short skips it unless
// SIGNET_SOAK=1. With SIGNET_SOAK_REPORT=<file> it writes its figures
// (throughput, latencies, the RSS series) there as Markdown; `make soak`
// writes docs/soak.md.
//
// The package has no non-test code. Invariants: the server listens on
// 127.0.0.1 only and is killed by the test; the load ends at the deadline.
// The test needs Linux (/proc).
package soak
