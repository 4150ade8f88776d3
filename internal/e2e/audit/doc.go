// Package audit holds the end-to-end tests of the audit log as signet-server
// runs it: the real notary client's publishes, re-signs and deletes appear as
// entries; `signet audit verify` accepts the running server's log; every
// timestamp.json names its entry (Signet-Audit-Index) and `signet verify
// --audit-key` catches a server serving a timestamp that is not in the log;
// the append API refuses bad input and stores nothing; after kill -9 during a
// publish storm the log verifies and every acknowledged publish has its
// entry. Imported by nothing.
package audit
