// Package audittest holds what tests of the audit log share: the
// conformance suite every audit.Store passes (RunStore), and an outside
// verifier of a served log (Verify) that shares no code with package
// audit: it reads the log over HTTP and checks it with
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note, an
// independent implementation of the same tree, tiles and signed notes.
package audittest
