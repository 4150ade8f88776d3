// Command benchreport turns the JSON lines of a benchmark run (notaryload get,
// publishload) into docs/benchmarks.md: method, machine, medians over the
// repetitions, and the ratios signet/reference and signet/bare.
//
//	benchreport -in results.jsonl -out docs/benchmarks.md -date … -nproc 2 …
package main

import (
	"os"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}
