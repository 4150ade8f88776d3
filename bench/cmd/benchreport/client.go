package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/signet-trust/signet/bench/internal/result"
)

// The client commands as bench/cmd/clientbench labels them (-workload).
const (
	signetList    = "signet list"
	notaryList    = "notary list"
	signetInspect = "signet trust inspect"
	dockerInspect = "docker trust inspect"
)

// clientHeading starts the client section; -only client replaces the
// section from this heading to the next one.
const clientHeading = "## Client:"

// clientAim is issue 12's aim (issue 3's was 0.5): signet takes at most
// this share of the time of the client it replaces.
const clientAim = 0.25

// timing is the median over the runs of one client command against one
// server.
type timing struct {
	n, errors         int
	wall, cpu, rss    float64 // ms, ms, MB
	walls             []float64
	firstErr          string
	incomplete, valid bool
}

func clientTiming(recs []result.Record, server, client string) timing {
	var t timing
	var cpu, rss []float64
	for _, r := range recs {
		if r.Kind != result.KindClient || r.Target != server || r.Workload != client {
			continue
		}
		t.n++
		t.errors += int(r.Errors)
		if r.Errors > 0 || !r.Completed {
			t.incomplete = true
			if t.firstErr == "" {
				t.firstErr = r.FirstErr
			}
			continue // a failed run has no meaningful time
		}
		t.walls = append(t.walls, r.WallMs)
		cpu = append(cpu, r.CPUMs)
		rss = append(rss, float64(r.MaxRSSKB)/1024)
	}
	if len(t.walls) > 0 {
		t.valid = true
		t.wall = median(slices.Clone(t.walls))
		t.cpu, t.rss = median(cpu), median(rss)
	}
	return t
}

func (t timing) ms() string {
	if !t.valid {
		return na
	}
	s := fmt.Sprintf("%.0f", t.wall)
	if t.errors > 0 {
		s += fmt.Sprintf(" (%d failed)", t.errors)
	}
	return s
}

// msRSS is ms with the peak RSS beside it.
func (t timing) msRSS() string {
	if !t.valid {
		return t.ms()
	}
	return fmt.Sprintf("%s, %.0f MB", t.ms(), t.rss)
}

// timeRatio is a's time over b's: below 1 means a is faster.
func timeRatio(a, b timing) (float64, bool) {
	if !a.valid || !b.valid || b.wall == 0 {
		return 0, false
	}
	return a.wall / b.wall, true
}

func fmtRatio(r float64, ok bool) string {
	if !ok {
		return na
	}
	return fmt.Sprintf("%.2f×", r)
}

// thousands writes n with comma separators: 10000 → 10,000.
func thousands(s string) string {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return s
	}
	d := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func renderClient(w io.Writer, m meta, recs []result.Record) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	tags := orNA(m.clientTags)
	tagsH := thousands(tags)
	p("\n%s %s tags\n\n", clientHeading, tagsH)
	var labels []string
	for _, srv := range []string{signet, reference} {
		for _, r := range recs {
			if r.Kind == result.KindClient && r.Target == srv {
				labels = append(labels, srv)
				break
			}
		}
	}
	if len(labels) == 0 {
		p("Not measured in this run (`BENCH_ONLY=server`, or the client benchmark failed to start).\n")
		return
	}
	p("Wall time of one client command (ms, median of %s runs; lower is better) reading one\n", orNA(m.clientReps))
	p("repository of %s tags (`%s`, published to each server in one publish by\n", tagsH, orNA(m.clientGUN))
	p("`notaryload setup -tags %s`, all in the `targets` role), timed by `bench/cmd/clientbench`:\n\n", tags)
	p("- `signet list` / `notary list`: `-d TRUSTDIR -s URL --tlscacert ca.crt list GUN`, with an empty\n")
	p("  trust directory every run (cold cache: the root is trusted on first use).\n")
	p("- `signet trust inspect` / `docker trust inspect GUN`: a fresh `DOCKER_CONFIG` every run, holding\n")
	p("  only `tls/<host:port>/ca.crt`, and `DOCKER_CONTENT_TRUST_SERVER=URL` (no Docker daemon involved).\n")
	p("- Every run has a fresh `HOME`; its standard output is a pipe, and must show exactly %s tags\n", tagsH)
	p("  or the run counts as failed. %s untimed warm-up run(s) per command and server first (OS page\n", orNA(m.clientWarmup))
	p("  cache, not trust data), then the runs interleaved: each repetition runs every command against\n")
	p("  every server. Wall time is from fork to exit, as `time` shows it.\n")
	p("- Clients: `signet` built from commit %s; `notary` %s (Debian); %s (CLI only).\n",
		orNA(firstNonEmpty(m.clientCommit, m.commit)), orNA(m.refVersion), orNA(m.dockerVersion))
	p("- Run: %s; load average (1/5/15 min) %s. Client and server share the machine's %s cores.\n\n",
		orNA(firstNonEmpty(m.clientDate, m.date)), orNA(m.clientLoad), orNA(m.nproc))

	p("Each cell: wall ms (median), peak RSS MB (median).\n\n")
	p("| server | signet list | notary list | signet/notary | signet trust inspect | docker trust inspect | signet/docker |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	type verdict struct {
		what string
		r    float64
		ok   bool
	}
	var verdicts []verdict
	var failures []string
	for _, srv := range labels {
		sl, nl := clientTiming(recs, srv, signetList), clientTiming(recs, srv, notaryList)
		si, di := clientTiming(recs, srv, signetInspect), clientTiming(recs, srv, dockerInspect)
		rl, okL := timeRatio(sl, nl)
		ri, okI := timeRatio(si, di)
		verdicts = append(verdicts, verdict{"`signet list` on " + srv, rl, okL}, verdict{"`signet trust inspect` on " + srv, ri, okI})
		p("| %s | %s | %s | %s | %s | %s | %s |\n", srv, sl.msRSS(), nl.msRSS(), fmtRatio(rl, okL), si.msRSS(), di.msRSS(), fmtRatio(ri, okI))
		for _, cl := range []string{signetList, notaryList, signetInspect, dockerInspect} {
			if t := clientTiming(recs, srv, cl); t.firstErr != "" {
				failures = append(failures, fmt.Sprintf("%s on %s: %s", cl, srv, t.firstErr))
			}
		}
	}
	p("\nAim (issue 12): signet at most %.2f× the time of the client it replaces.", clientAim)
	var met, missed []string
	for _, v := range verdicts {
		switch {
		case !v.ok:
			missed = append(missed, v.what+" (not measured)")
		case v.r <= clientAim:
			met = append(met, fmt.Sprintf("%s (%.2f×)", v.what, v.r))
		default:
			missed = append(missed, fmt.Sprintf("%s (%.2f×)", v.what, v.r))
		}
	}
	if len(met) > 0 {
		p(" Met by %s.", strings.Join(met, ", "))
	}
	if len(missed) > 0 {
		p(" Not met by %s.", strings.Join(missed, ", "))
	}
	p("\n\n| command | server | wall ms (median) | CPU ms, user+sys (median) | peak RSS MB (median) | wall ms per run | failed runs |\n")
	p("|---|---|---:|---:|---:|---|---:|\n")
	for _, cl := range []string{signetList, notaryList, signetInspect, dockerInspect} {
		for _, srv := range labels {
			t := clientTiming(recs, srv, cl)
			if t.n == 0 {
				p("| `%s` | %s | %s | %s | %s | %s | %s |\n", cl, srv, na, na, na, na, na)
				continue
			}
			runs := make([]string, len(t.walls))
			for i, v := range t.walls {
				runs[i] = fmt.Sprintf("%.0f", v)
			}
			cpu, rss := na, na
			if t.valid {
				cpu, rss = fmt.Sprintf("%.0f", t.cpu), fmt.Sprintf("%.0f", t.rss)
			}
			p("| `%s` | %s | %s | %s | %s | %s | %d |\n", cl, srv, t.ms(), cpu, rss, orNA(strings.Join(runs, ", ")), t.errors)
		}
	}
	for _, f := range failures {
		p("\n- first error, %s", strings.ReplaceAll(f, "|", "\\|"))
	}
	if len(failures) > 0 {
		p("\n")
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// spliceSection replaces, in doc, the section whose heading line starts
// with heading (up to the next "## " heading) by sec, which starts with a
// blank line and its heading. Without such a section, sec goes before the
// notes (or the raw figures), else at the end.
func spliceSection(doc []byte, heading string, sec []byte) []byte {
	find := func(h string) int {
		if bytes.HasPrefix(doc, []byte(h)) {
			return 0
		}
		if i := bytes.Index(doc, []byte("\n"+h)); i >= 0 {
			return i // the newline before the heading: sec brings its own
		}
		return -1
	}
	start := find(heading)
	end := -1
	if start >= 0 {
		if j := bytes.Index(doc[start+1:], []byte("\n## ")); j >= 0 {
			end = start + 1 + j
		} else {
			end = len(doc)
		}
	} else {
		for _, h := range []string{"## Notes", "## Raw figures"} {
			if i := find(h); i >= 0 {
				start, end = i, i
				break
			}
		}
		if start < 0 {
			start, end = len(doc), len(doc)
		}
	}
	var out bytes.Buffer
	out.Write(bytes.TrimRight(doc[:start], "\n"))
	out.WriteString("\n")
	out.Write(bytes.TrimRight(sec, "\n"))
	out.WriteString("\n")
	if end < len(doc) {
		out.WriteString("\n")
		out.Write(bytes.TrimLeft(doc[end:], "\n"))
	}
	return out.Bytes()
}
