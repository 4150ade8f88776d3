// Package bench is the home of Signet's load tools. It is a separate Go module
// so that the reference notary client library and its old dependencies never
// enter the main module's build graph.
//
// Commands:
//
//	cmd/notaryload   GET load against any Notary-compatible server; repository setup
//	cmd/publishload  concurrent init+publish with the notary v0.7.0 client library
//	cmd/bareserver   fixed-bytes TLS server at the same paths: the ceiling reference
//	cmd/benchreport  turns the JSON lines of a run into docs/benchmarks.md
//
// run.sh drives all of them (make bench).
package bench
