package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/signet-trust/signet/bench/internal/result"
	"github.com/signet-trust/signet/bench/internal/workload"
)

// The servers, in column order; labels as run.sh passes them to -label.
const (
	signet    = "signet"
	reference = "reference"
	bare      = "bare"
)

var servers = []string{signet, reference, bare}

type meta struct {
	in, out                                           string
	date, nproc, cpu, kernel, goVersion, commit       string
	refVersion, conns, duration, warmup, reps, tags   string
	pubWorkers, pubPerRepo, pubDuration, pubKeepAlive string
	notes                                             multi

	// The client benchmark (bench/cmd/clientbench) and -only.
	clientTags, clientReps, clientWarmup, clientGUN string
	clientDate, clientCommit, clientLoad            string
	dockerVersion, only                             string

	// The signer benchmark (bench/signer.sh) and -only signer.
	signerConns, signerDuration, signerWarmup, signerReps string
	signerDate, signerCommit, signerLoad, softhsmVersion  string
	findings, findingsText                                string
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, "; ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// Main reads -in and writes -out; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m meta
	for _, f := range []struct {
		p          *string
		name, help string
	}{
		{&m.in, "in", "JSON lines of the run"},
		{&m.out, "out", "markdown file to write (default stdout)"},
		{&m.date, "date", "date of the run"},
		{&m.nproc, "nproc", "CPU cores (nproc)"},
		{&m.cpu, "cpu", "CPU model"},
		{&m.kernel, "kernel", "kernel release"},
		{&m.goVersion, "go", "go version"},
		{&m.commit, "commit", "commit measured"},
		{&m.refVersion, "reference-version", "Debian version of the notary package"},
		{&m.conns, "conns", "GET connections"},
		{&m.duration, "duration", "GET measured duration"},
		{&m.warmup, "warmup", "GET warm-up"},
		{&m.reps, "reps", "repetitions"},
		{&m.tags, "tags", "tags in the GET repository"},
		{&m.pubWorkers, "publish-workers", "publishload -workers"},
		{&m.pubPerRepo, "publish-per-repo", "publishload -publishes"},
		{&m.pubDuration, "publish-duration", "publishload -d"},
		{&m.pubKeepAlive, "publish-keepalive", "publishload -keepalive"},
		{&m.clientTags, "client-tags", "tags in the client benchmark's repository"},
		{&m.clientReps, "client-reps", "clientbench -reps"},
		{&m.clientWarmup, "client-warmup", "clientbench -warmup"},
		{&m.clientGUN, "client-gun", "the client benchmark's repository"},
		{&m.clientDate, "client-date", "date of the client benchmark (default -date)"},
		{&m.clientCommit, "client-commit", "commit of the client benchmark (default -commit)"},
		{&m.clientLoad, "client-load", "load average around the client benchmark"},
		{&m.dockerVersion, "docker-version", "docker --version"},
		{&m.signerConns, "signer-conns", "signload -c"},
		{&m.signerDuration, "signer-duration", "signload -d"},
		{&m.signerWarmup, "signer-warmup", "signload -warmup"},
		{&m.signerReps, "signer-reps", "signer benchmark repetitions"},
		{&m.signerDate, "signer-date", "date of the signer benchmark (default -date)"},
		{&m.signerCommit, "signer-commit", "commit of the signer benchmark (default -commit)"},
		{&m.signerLoad, "signer-load", "load average around the signer benchmark"},
		{&m.softhsmVersion, "softhsm-version", "Debian version of softhsm2"},
		{&m.findings, "findings", "markdown file whose text is the report's \"Profile findings\" section, after the publish table"},
		{&m.only, "only", `"client", "signer" or "postgres": replace only that section of -out, keeping the rest of the file`},
	} {
		fs.StringVar(f.p, f.name, "", f.help)
	}
	fs.Var(&m.notes, "note", "a line for the notes section (repeatable)")
	pgFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if m.findings != "" {
		b, err := os.ReadFile(m.findings)
		if err != nil {
			fmt.Fprintln(stderr, "benchreport:", err)
			return 1
		}
		m.findingsText = strings.TrimSpace(string(b))
	}
	recs, err := read(m.in)
	if err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	var b bytes.Buffer
	switch m.only {
	case "":
		render(&b, m, recs)
		// The signer, PostgreSQL, signing service, audit log and dashboard
		// sections come from their own runs (bench/signer.sh,
		// bench/postgres.sh, the benchmarks in the main module): a report
		// written without them keeps the ones already there.
		if old, err := os.ReadFile(m.out); err == nil && m.out != "" {
			for _, h := range []string{signerHeading, postgresHeading, serviceHeading, auditHeading, dashboardHeading} {
				if sec := section(old, h); sec != nil {
					doc := spliceSection(b.Bytes(), h, sec)
					b.Reset()
					b.Write(doc)
				}
			}
		}
	case "signer":
		old, err := os.ReadFile(m.out)
		if err != nil && !os.IsNotExist(err) {
			fmt.Fprintln(stderr, "benchreport:", err)
			return 1
		}
		if len(old) == 0 {
			old = []byte("# Benchmarks\n\nWritten by `make bench` (`bench/run.sh`); regenerate rather than edit. Tools and method: `bench/`.\n")
		}
		var sec bytes.Buffer
		renderSigner(&sec, m, recs)
		b.Write(spliceSection(old, signerHeading, sec.Bytes()))
	case "postgres":
		old, err := os.ReadFile(m.out)
		if err != nil && !os.IsNotExist(err) {
			fmt.Fprintln(stderr, "benchreport:", err)
			return 1
		}
		if len(old) == 0 {
			old = []byte("# Benchmarks\n\nWritten by `make bench` (`bench/run.sh`); regenerate rather than edit. Tools and method: `bench/`.\n")
		}
		var sec bytes.Buffer
		renderPostgres(&sec, m, recs)
		b.Write(spliceSection(old, postgresHeading, sec.Bytes()))
	case "client":
		old, err := os.ReadFile(m.out)
		if err != nil {
			fmt.Fprintln(stderr, "benchreport: -only client needs the existing report:", err)
			return 1
		}
		var sec bytes.Buffer
		renderClient(&sec, m, recs)
		b.Write(spliceSection(old, clientHeading, sec.Bytes()))
	default:
		fmt.Fprintf(stderr, "benchreport: -only %q: want \"client\", \"signer\", \"postgres\" or nothing\n", m.only)
		return 2
	}
	if m.out == "" {
		stdout.Write(b.Bytes())
		return 0
	}
	if err := os.WriteFile(m.out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	return 0
}

func read(path string) ([]result.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []result.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r result.Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if r.Kind != "" {
			recs = append(recs, r)
		}
	}
	return recs, sc.Err()
}

// agg is the median over repetitions of one (kind, workload, server).
type agg struct {
	n                      int
	perSecond, p50, p99    float64
	errors, verified, miss int64
	repos                  int
	bodyBytes              int64
	runs                   []float64
	incomplete             bool
	firstErr               string
	// cpuPerOp is the median over repetitions of the server's CPU ms per
	// acknowledged publish (0 when not measured); cpuRuns per repetition.
	cpuPerOp float64
	cpuRuns  []float64
}

func aggregate(recs []result.Record, kind, w, server string) (agg, bool) {
	var a agg
	var ps, p50, p99 []float64
	for _, r := range recs {
		if r.Kind != kind || r.Workload != w || r.Target != server {
			continue
		}
		a.n++
		ps = append(ps, r.PerSecond)
		p50 = append(p50, r.P50Ms)
		p99 = append(p99, r.P99Ms)
		a.errors += r.Errors
		a.verified += r.Verified
		a.miss += r.Missing
		a.repos += r.Repos
		a.bodyBytes = r.BodyBytes
		a.incomplete = a.incomplete || !r.Completed
		if r.ServerCPUMs > 0 && r.Requests > 0 {
			a.cpuRuns = append(a.cpuRuns, r.ServerCPUMs/float64(r.Requests))
		}
		if a.firstErr == "" {
			a.firstErr = r.FirstErr
		}
	}
	if a.n == 0 {
		return a, false
	}
	a.runs = slices.Clone(ps)
	a.perSecond, a.p50, a.p99 = median(ps), median(p50), median(p99)
	if len(a.cpuRuns) > 0 {
		a.cpuPerOp = median(slices.Clone(a.cpuRuns))
	}
	return a, true
}

func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

const na = "—"

func ratio(a, b agg, okA, okB bool) string {
	if !okA || !okB || b.perSecond == 0 {
		return na
	}
	return fmt.Sprintf("%.2f×", a.perSecond/b.perSecond)
}

func rate(a agg, ok bool) string {
	if !ok {
		return na
	}
	return fmt.Sprintf("%.0f", a.perSecond)
}

func lat(a agg, ok bool) string {
	if !ok {
		return na
	}
	return fmt.Sprintf("%.2f / %.2f", a.p50, a.p99)
}

func runs(a agg, ok bool) string {
	if !ok {
		return na
	}
	s := make([]string, len(a.runs))
	for i, v := range a.runs {
		s[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(s, ", ")
}

func errs(a agg, ok bool) string {
	if !ok {
		return na
	}
	return fmt.Sprint(a.errors)
}

func render(w io.Writer, m meta, recs []result.Record) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (`bench/run.sh`); regenerate rather than edit. Tools and method: `bench/`.\n\n")
	p("## Method\n\n")
	p("- **Servers**, all on 127.0.0.1 with the same ECDSA P-256 certificate, TLS, HTTP/1.1:\n")
	p("  `signet-server` as built from this commit (`--data-dir` in a temporary directory);\n")
	p("  the **reference** Debian `notary-server` + `notary-signer` %s with memory storage\n", orNA(m.refVersion))
	p("  (run by this repository's recipe, `internal/e2e/reference`);\n")
	p("  and **bare**, `bench/cmd/bareserver`, a plain Go `net/http` TLS server answering the same\n")
	p("  paths with the bytes copied from the server under test — the ceiling this machine and load\n")
	p("  generator can show, not a target a metadata server could reach.\n")
	p("- **GET load** (`bench/cmd/notaryload get`): %s keep-alive connections, each with one request\n", orNA(m.conns))
	p("  in flight (closed loop), %s warm-up then %s measured; requests/s are completed 200s in the\n", orNA(m.warmup), orNA(m.duration))
	p("  window, latency is per request, errors are transport failures and non-200 answers. The\n")
	p("  repository (%s tags, published with the notary v0.7.0 client library by\n", orNA(m.tags))
	p("  `notaryload setup`) is read as clients read it: current `timestamp.json`, `snapshot.json`,\n")
	p("  `targets.json`, and `targets.<sha256>.json` by checksum (`notary list`, `docker pull`).\n")
	p("- **Publish load** (`bench/cmd/publishload`): the notary v0.7.0 client library itself,\n")
	p("  %s workers, each initialising a fresh repository (new root key, `GET timestamp.key`) and\n", orNA(m.pubWorkers))
	p("  publishing it %s times, one new tag per publish, for %s (snapshot key held by the client,\n", orNA(m.pubPerRepo), orNA(m.pubDuration))
	p("  keep-alive %s, as the notary CLI). Publishes/s counts acknowledged publishes; afterwards\n", orNA(m.pubKeepAlive))
	p("  every repository is listed through a cold cache and every acknowledged tag must be there.\n")
	p("- **Repetitions**: %s, interleaved (each repetition runs every workload against every server\n", orNA(m.reps))
	p("  in turn, so drift hits all alike); tables show the median, raw figures are at the end.\n")
	p("- **Caveat — %s cores**: the load generator (and for publishes, the client's key generation\n", orNA(m.nproc))
	p("  and signing) runs on the same cores as the server under test, so each figure is what the\n")
	p("  pair achieves together, and the ratios are the meaningful part. The reference keeps\n")
	p("  everything in memory and never touches disk; signet keeps its database under `--data-dir`.\n\n")

	p("## Run\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s |\n| machine | %s cores, %s, kernel %s |\n| Go | %s |\n| commit | %s |\n| reference | notary %s (Debian) |\n\n",
		orNA(m.date), orNA(m.nproc), orNA(m.cpu), orNA(m.kernel), orNA(m.goVersion), orNA(m.commit), orNA(m.refVersion))

	p("## GET throughput (requests/s, median)\n\n")
	p("| workload | body bytes | signet | reference | bare | signet/reference | signet/bare | reference/bare |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, wl := range workload.Names {
		s, okS := aggregate(recs, result.KindGet, wl, signet)
		r, okR := aggregate(recs, result.KindGet, wl, reference)
		b, okB := aggregate(recs, result.KindGet, wl, bare)
		size := na
		for _, a := range []struct {
			a  agg
			ok bool
		}{{s, okS}, {r, okR}, {b, okB}} {
			if a.ok {
				size = fmt.Sprint(a.a.bodyBytes)
				break
			}
		}
		p("| `%s` | %s | %s | %s | %s | %s | %s | %s |\n", wl, size, rate(s, okS), rate(r, okR), rate(b, okB),
			ratio(s, r, okS, okR), ratio(s, b, okS, okB), ratio(r, b, okR, okB))
	}
	p("\n## GET latency (ms, p50 / p99, median) and errors (sum)\n\n")
	p("| workload | signet | reference | bare | errors signet / reference / bare |\n")
	p("|---|---:|---:|---:|---:|\n")
	for _, wl := range workload.Names {
		s, okS := aggregate(recs, result.KindGet, wl, signet)
		r, okR := aggregate(recs, result.KindGet, wl, reference)
		b, okB := aggregate(recs, result.KindGet, wl, bare)
		p("| `%s` | %s | %s | %s | %s / %s / %s |\n", wl, lat(s, okS), lat(r, okR), lat(b, okB),
			errs(s, okS), errs(r, okR), errs(b, okB))
	}

	p("\n## Publish (notary v0.7.0 client library)\n\n")
	p("| server | publishes/s | p50 / p99 ms per publish | server CPU ms per publish | errors (sum) | repositories (sum) | durability: verified / missing (sum) |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	pub := map[string]agg{}
	pubOK := map[string]bool{}
	for _, srv := range []string{signet, reference} {
		a, ok := aggregate(recs, result.KindPublish, "init+publish", srv)
		pub[srv], pubOK[srv] = a, ok
		if !ok {
			p("| %s | %s | %s | %s | %s | %s | %s |\n", srv, na, na, na, na, na, na)
			continue
		}
		dur := fmt.Sprintf("%d / %d", a.verified, a.miss)
		if a.incomplete {
			dur += " (check incomplete)"
		}
		p("| %s | %.1f | %s | %s | %d | %d | %s |\n", srv, a.perSecond, lat(a, ok), cpuPerOp(a), a.errors, a.repos, dur)
	}
	p("\nsignet/reference publishes/s: %s\n", ratio(pub[signet], pub[reference], pubOK[signet], pubOK[reference]))
	if s, r := pub[signet], pub[reference]; s.cpuPerOp > 0 && r.cpuPerOp > 0 {
		p("\nsignet/reference server CPU per publish: %.2f× (aim: at most 0.50×). Server CPU is user + system time\n", s.cpuPerOp/r.cpuPerOp)
		p("from `/proc/<pid>/stat` while the publishes ran (signet-server; the reference's notary-server and\n")
		p("notary-signer together), over the acknowledged publishes, median of the repetitions\n")
		p("(signet: %s; reference: %s ms per publish).\n", floats(s.cpuRuns), floats(r.cpuRuns))
	}
	renderConnect(p, recs, pub)
	if m.findingsText != "" {
		p("\n## Profile findings\n\n%s\n", m.findingsText)
	}

	renderClient(w, m, recs)

	var first []string
	for _, srv := range servers {
		for _, kind := range []string{result.KindGet, result.KindPublish} {
			for _, wl := range append(slices.Clone(workload.Names), "init+publish") {
				if a, ok := aggregate(recs, kind, wl, srv); ok && a.firstErr != "" {
					first = append(first, fmt.Sprintf("%s %s: %s", srv, wl, a.firstErr))
				}
			}
		}
	}
	if len(m.notes) > 0 || len(first) > 0 {
		p("\n## Notes\n\n")
		for _, n := range m.notes {
			p("- %s\n", n)
		}
		for _, f := range first {
			p("- first error, %s\n", strings.ReplaceAll(f, "|", "\\|"))
		}
	}

	p("\n## Raw figures per repetition (requests/s or publishes/s)\n\n")
	p("| workload | signet | reference | bare |\n|---|---|---|---|\n")
	for _, wl := range append(slices.Clone(workload.Names), "init+publish") {
		kind := result.KindGet
		if wl == "init+publish" {
			kind = result.KindPublish
		}
		var cells []string
		for _, srv := range servers {
			a, ok := aggregate(recs, kind, wl, srv)
			cells = append(cells, runs(a, ok))
		}
		p("| `%s` | %s |\n", wl, strings.Join(cells, " | "))
	}
}

func cpuPerOp(a agg) string {
	if a.cpuPerOp == 0 {
		return na
	}
	return fmt.Sprintf("%.2f", a.cpuPerOp)
}

func floats(v []float64) string {
	var s []string
	for _, f := range v {
		s = append(s, fmt.Sprintf("%.2f", f))
	}
	return strings.Join(s, ", ")
}

func orNA(s string) string {
	if s == "" {
		return na
	}
	return s
}

// renderConnect writes the floor under a publish's server CPU: the CPU a
// server spends per GET on a new TLS connection, of which a publish by the
// notary client makes five.
func renderConnect(p func(string, ...any), recs []result.Record, pub map[string]agg) {
	conn := map[string]agg{}
	found := false
	for _, srv := range servers {
		a, ok := aggregate(recs, result.KindConnect, workload.Timestamp, srv)
		if ok && a.cpuPerOp > 0 {
			conn[srv] = a
			found = true
		}
	}
	if !found {
		return
	}
	p("\n### The floor: server CPU per new TLS connection\n\n")
	p("The notary client sends each request of a publish on a new TLS connection. Here one connection\n")
	p("at a time fetches `timestamp.json`, a new TLS connection (full handshake) per request\n")
	p("(`notaryload get -keepalive=false -c 1`); server CPU as above, per request, median of the repetitions.\n\n")
	p("| server | requests/s | server CPU µs per connection |\n|---|---:|---:|\n")
	for _, srv := range servers {
		a, ok := conn[srv]
		if !ok {
			p("| %s | %s | %s |\n", srv, na, na)
			continue
		}
		p("| %s | %.0f | %.0f |\n", srv, a.perSecond, a.cpuPerOp*1000)
	}
	b, okB := conn[bare]
	s, r := pub[signet], pub[reference]
	if !okB || r.cpuPerOp == 0 {
		return
	}
	floor := 5 * b.cpuPerOp
	p("\nA publish is five such connections (`GET` of root, timestamp, snapshot and targets, then the `POST`).\n")
	p("At the bare server's cost that is %.2f ms of server CPU per publish before any work on the requests:\n", floor)
	p("%.2f× the reference's CPU per publish, the least a Go TLS server answering the notary client spends here.\n", floor/r.cpuPerOp)
	beyond := func(srv string, perPublish float64) string {
		c, ok := conn[srv]
		if !ok || perPublish == 0 {
			return na
		}
		return fmt.Sprintf("%.2f ms", perPublish-5*c.cpuPerOp)
	}
	p("Beyond five of its own connections, signet spends %s per publish (parsing and verifying the upload,\n", beyond(signet, s.cpuPerOp))
	p("signing, the durable commit with its audit log entry) and the reference %s.\n", beyond(reference, r.cpuPerOp))
}
