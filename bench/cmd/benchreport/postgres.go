package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/signet-trust/signet/bench/internal/result"
)

// postgresHeading starts the PostgreSQL section (bench/postgres.sh); -only
// postgres replaces the section from this heading to the next one, and a
// full report keeps an existing one.
const postgresHeading = "## PostgreSQL:"

// pgMeta describes the run of bench/postgres.sh.
type pgMeta struct {
	version, where, load, conns, duration, warmup, reps string
	notes                                               multi
}

var pg pgMeta

// pgFlags registers the flags of the PostgreSQL section on fs.
func pgFlags(fs *flag.FlagSet) {
	pg = pgMeta{}
	fs.StringVar(&pg.version, "pg-version", "", "PostgreSQL server_version")
	fs.StringVar(&pg.where, "pg-where", "", "which PostgreSQL server and databases")
	fs.StringVar(&pg.load, "pg-load", "", "load average around the PostgreSQL benchmark")
	fs.StringVar(&pg.conns, "pg-conns", "", "GET connections of the PostgreSQL benchmark")
	fs.StringVar(&pg.duration, "pg-duration", "", "GET measured duration of the PostgreSQL benchmark")
	fs.StringVar(&pg.warmup, "pg-warmup", "", "GET warm-up of the PostgreSQL benchmark")
	fs.StringVar(&pg.reps, "pg-reps", "", "repetitions of the side-by-side and replica parts")
	fs.Var(&pg.notes, "pg-note", "a line for the notes of the PostgreSQL section (repeatable)")
}

// sizes returns the N of every target named prefix+N, ascending.
func sizes(recs []result.Record, prefix string) []int {
	var ns []int
	for _, r := range recs {
		if n, err := strconv.Atoi(strings.TrimPrefix(r.Target, prefix)); err == nil && strings.HasPrefix(r.Target, prefix) && !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns
}

// exponent is k in latency ∝ size^k between two points; NaN if unknown.
func exponent(l0, l1 float64, n0, n1 float64) float64 {
	if l0 <= 0 || l1 <= 0 || n0 <= 0 || n1 <= n0 {
		return math.NaN()
	}
	return math.Log(l1/l0) / math.Log(n1/n0)
}

// verdict reads an exponent: how latency grew with size.
func verdict(k float64) string {
	switch {
	case math.IsNaN(k):
		return na
	case k <= 0.25:
		return fmt.Sprintf("flat (k = %.2f)", k)
	case k <= 1.1:
		return fmt.Sprintf("linear or better (k = %.2f)", k)
	default:
		return fmt.Sprintf("**super-linear** (k = %.2f)", k)
	}
}

func ms(a agg, ok bool) string {
	if !ok {
		return na
	}
	return fmt.Sprintf("%.2f / %.2f", a.p50, a.p99)
}

func durability(a agg) string {
	s := fmt.Sprintf("%d / %d", a.verified, a.miss)
	if a.incomplete {
		s += " (check incomplete)"
	}
	return s
}

func renderPostgres(w io.Writer, m meta, recs []result.Record) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n%s side by side with the reference, replicas, growth\n\n", postgresHeading)
	p("Written by `BENCH_ONLY=postgres bench/run.sh` (`bench/postgres.sh`; also part of the default run).\n")
	p("Run: %s, commit %s, %s cores (%s); PostgreSQL %s, %s; load average (1/5/15 min) %s.\n\n",
		orNA(m.date), orNA(m.commit), orNA(m.nproc), orNA(m.cpu), orNA(pg.version), orNA(pg.where), orNA(pg.load))
	p("- **Servers**: `signet-server --db postgres://…` on a fresh database, and the reference Debian\n")
	p("  `notary-server` + `notary-signer` %s with the recipe's PostgreSQL configs\n", orNA(m.refVersion))
	p("  (`server-config.postgres.json`, `signer-config.postgres.json`), on the same PostgreSQL server; same\n")
	p("  certificate, TLS, HTTP/1.1, default log levels.\n")
	p("- **GET** (`notaryload get`): %s keep-alive connections, one request in flight each, %s warm-up then\n", orNA(pg.conns), orNA(pg.warmup))
	p("  %s measured; a repository of 20 tags published with the notary v0.7.0 client library.\n", orNA(pg.duration))
	p("  **Publish** (`publishload`): %s workers, each initialising fresh repositories and publishing each\n", orNA(m.pubWorkers))
	p("  %s times, for %s; every acknowledged tag is then listed back through a cold cache.\n", orNA(m.pubPerRepo), orNA(m.pubDuration))
	p("  %s repetitions, interleaved; tables show medians.\n", orNA(pg.reps))
	p("- **Replicas**: 1, 2, 3 `signet-server` processes on the one database (same `SIGNET_KEY_PASSPHRASE`);\n")
	p("  the load generators spread their connections (GET) and workers (publish) round-robin over the\n")
	p("  replicas' URLs, and every published repository is listed back through *another* replica than the\n")
	p("  one it was published to. Everything — replicas, PostgreSQL, load generator — shares the same cores.\n")
	p("- **Growth** (first replica alone): repositories are filled by `bench/storefill`, which copies the\n")
	p("  benchmark repository's current files to `example.com/fill/r<i>` through signet's own store\n")
	p("  (`internal/store/sqlstore.UpdateMany`, one transaction per repository, `synchronous_commit=off` on\n")
	p("  its connections only). At each size: GET timestamp and targets of a repository picked at random\n")
	p("  for every request (so beyond the server's in-memory cache of 10,000 repositories most reads go to\n")
	p("  PostgreSQL), GET timestamp of one repository (cached), and publishes of new repositories (2 workers).\n")
	p("  One repository with N tags: one publish of all N by the notary client library (`notaryload setup`),\n")
	p("  GET timestamp and targets (4 connections), and 3 publishes adding one tag each (`notaryload publish`,\n")
	p("  end to end through the client library, which re-signs and uploads the whole targets file).\n")
	p("- Growth is judged by k in latency ∝ size^k between the smallest and the largest size: k ≤ 1.1 is\n")
	p("  linear or better, k ≤ 0.25 flat; more would be super-linear.\n\n")

	if !slices.ContainsFunc(recs, func(r result.Record) bool { return r.Kind == result.KindGet || r.Kind == result.KindPublish }) {
		p("Not measured in this run.\n")
		return
	}

	p("### Side by side on one PostgreSQL server\n\n")
	p("| workload | body bytes | signet req/s | reference req/s | signet/reference | p50 / p99 ms signet | p50 / p99 ms reference | errors signet / reference |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, wl := range []string{"timestamp", "snapshot", "targets", "checksum"} {
		s, okS := aggregate(recs, result.KindGet, wl, signet)
		r, okR := aggregate(recs, result.KindGet, wl, reference)
		if !okS && !okR {
			continue
		}
		size := s.bodyBytes
		if !okS {
			size = r.bodyBytes
		}
		p("| `%s` | %d | %s | %s | %s | %s | %s | %s / %s |\n", wl, size, rate(s, okS), rate(r, okR), ratio(s, r, okS, okR),
			ms(s, okS), ms(r, okR), errs(s, okS), errs(r, okR))
	}
	p("\n| publish | publishes/s | p50 / p99 ms | errors (sum) | durability: verified / missing (sum) | publishes/s per run |\n")
	p("|---|---:|---:|---:|---:|---|\n")
	ps, okPS := aggregate(recs, result.KindPublish, "init+publish", signet)
	pr, okPR := aggregate(recs, result.KindPublish, "init+publish", reference)
	for _, x := range []struct {
		name string
		a    agg
		ok   bool
	}{{signet, ps, okPS}, {reference, pr, okPR}} {
		if !x.ok {
			p("| %s | %s | %s | %s | %s | %s |\n", x.name, na, na, na, na, na)
			continue
		}
		p("| %s | %.1f | %s | %d | %s | %s |\n", x.name, x.a.perSecond, ms(x.a, true), x.a.errors, durability(x.a), runs(x.a, true))
	}
	p("\nsignet/reference publishes/s: %s.\n", ratio(ps, pr, okPS, okPR))

	if ns := sizes(recs, "replicas-"); len(ns) > 0 {
		p("\n### Replicas on one database\n\n")
		p("| replicas | GET timestamp req/s | GET targets req/s | publishes/s | publish p50 / p99 ms | errors GET / publish | durability: verified / missing | × one replica (timestamp, targets, publish) |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---|\n")
		base := fmt.Sprintf("replicas-%d", ns[0])
		for _, n := range ns {
			t := fmt.Sprintf("replicas-%d", n)
			ts, okT := aggregate(recs, result.KindGet, "timestamp", t)
			tg, okG := aggregate(recs, result.KindGet, "targets", t)
			pu, okP := aggregate(recs, result.KindPublish, "init+publish", t)
			bt, okBT := aggregate(recs, result.KindGet, "timestamp", base)
			bg, okBG := aggregate(recs, result.KindGet, "targets", base)
			bp, okBP := aggregate(recs, result.KindPublish, "init+publish", base)
			pubRate, dur := na, na
			if okP {
				pubRate, dur = fmt.Sprintf("%.1f", pu.perSecond), durability(pu)
			}
			p("| %d | %s | %s | %s | %s | %d / %d | %s | %s, %s, %s |\n", n, rate(ts, okT), rate(tg, okG), pubRate, ms(pu, okP),
				ts.errors+tg.errors, pu.errors, dur, ratio(ts, bt, okT, okBT), ratio(tg, bg, okG, okBG), ratio(pu, bp, okP, okBP))
		}
		p("\nThe replicas, PostgreSQL and the load generator share %s cores: GETs served from each replica's\n", orNA(m.nproc))
		p("memory are CPU-bound, so more processes on the same cores cannot add throughput; what this part\n")
		p("shows is that reads and writes spread over several replicas stay correct (every tag published\n")
		p("through one replica is listed through another) and what the spreading costs.\n")
	}

	if ns := sizes(recs, "repos-"); len(ns) > 0 {
		p("\n### Growth: number of repositories\n\n")
		p("| repositories | GET timestamp, random repository: req/s, p50 / p99 ms | GET targets, random repository: req/s, p50 / p99 ms | GET timestamp, one repository: p50 / p99 ms | publish, new repositories: publishes/s, p50 / p99 ms | errors |\n")
		p("|---:|---:|---:|---:|---:|---:|\n")
		for _, n := range ns {
			t := fmt.Sprintf("repos-%d", n)
			ts, okT := aggregate(recs, result.KindGet, "timestamp", t)
			tg, okG := aggregate(recs, result.KindGet, "targets", t)
			one, okO := aggregate(recs, result.KindGet, "timestamp", fmt.Sprintf("one-%d", n))
			pu, okP := aggregate(recs, result.KindPublish, "init+publish", t)
			pubCell := na
			if okP {
				pubCell = fmt.Sprintf("%.1f, %s", pu.perSecond, ms(pu, true))
			}
			p("| %d | %s, %s | %s, %s | %s | %s | %d |\n", n, rate(ts, okT), ms(ts, okT), rate(tg, okG), ms(tg, okG), ms(one, okO), pubCell,
				ts.errors+tg.errors+one.errors+pu.errors)
		}
		first, last := ns[0], ns[len(ns)-1]
		p("\nGrowth from %d to %d repositories (p50 latency):\n\n", first, last)
		for _, e := range []struct{ name, kind, wl, prefix string }{
			{"GET timestamp, random repository", result.KindGet, "timestamp", "repos-"},
			{"GET targets, random repository", result.KindGet, "targets", "repos-"},
			{"GET timestamp, one repository", result.KindGet, "timestamp", "one-"},
			{"publish a new repository", result.KindPublish, "init+publish", "repos-"},
		} {
			a, okA := aggregate(recs, e.kind, e.wl, fmt.Sprintf("%s%d", e.prefix, first))
			b, okB := aggregate(recs, e.kind, e.wl, fmt.Sprintf("%s%d", e.prefix, last))
			k := math.NaN()
			if okA && okB {
				k = exponent(a.p50, b.p50, float64(first), float64(last))
			}
			p("- %s: %s\n", e.name, verdict(k))
		}
	}

	if ns := sizes(recs, "tags-"); len(ns) > 0 {
		p("\n### Growth: one repository with N tags\n\n")
		p("| tags | targets.json bytes | publish of all N (one publish) ms | GET targets: req/s, p50 / p99 ms | GET targets: MB/s, ns per byte (p50) | GET timestamp: p50 / p99 ms | publish one more tag: p50 / p99 ms | errors |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, n := range ns {
			t := fmt.Sprintf("tags-%d", n)
			setup, okS := aggregate(recs, result.KindPublish, "setup", t)
			tg, okG := aggregate(recs, result.KindGet, "targets", t)
			ts, okT := aggregate(recs, result.KindGet, "timestamp", t)
			add, okA := aggregate(recs, result.KindPublish, "add-tag", t)
			setupCell, perByte, bytesCell := na, na, na
			if okS {
				setupCell = fmt.Sprintf("%.0f", setup.p50)
			}
			if okG && tg.bodyBytes > 0 {
				bytesCell = fmt.Sprint(tg.bodyBytes)
				perByte = fmt.Sprintf("%.0f, %.2f", tg.perSecond*float64(tg.bodyBytes)/1e6, tg.p50*1e6/float64(tg.bodyBytes))
			}
			p("| %d | %s | %s | %s, %s | %s | %s | %s | %d |\n", n, bytesCell, setupCell, rate(tg, okG), ms(tg, okG), perByte,
				ms(ts, okT), ms(add, okA), tg.errors+ts.errors+add.errors)
		}
		first, last := ns[0], ns[len(ns)-1]
		p("\nGrowth from %d to %d tags (p50 latency against the number of tags; targets.json grows with it, so\n", first, last)
		p("for the endpoints that carry it k = 1 is the cost of the bytes themselves):\n\n")
		for _, e := range []struct{ name, wl, kind string }{
			{"GET targets", "targets", result.KindGet},
			{"GET timestamp", "timestamp", result.KindGet},
			{"publish of all N tags", "setup", result.KindPublish},
			{"publish one more tag", "add-tag", result.KindPublish},
		} {
			a, okA := aggregate(recs, e.kind, e.wl, fmt.Sprintf("tags-%d", first))
			b, okB := aggregate(recs, e.kind, e.wl, fmt.Sprintf("tags-%d", last))
			k := math.NaN()
			if okA && okB {
				k = exponent(a.p50, b.p50, float64(first), float64(last))
			}
			p("- %s: %s\n", e.name, verdict(k))
		}
	}

	var notes []string
	for _, r := range recs {
		if (r.Kind == result.KindGet || r.Kind == result.KindPublish) && r.FirstErr != "" {
			notes = append(notes, fmt.Sprintf("first error, %s %s (rep %d): %s", r.Target, r.Workload, r.Rep, strings.ReplaceAll(r.FirstErr, "|", "\\|")))
		}
	}
	if len(pg.notes)+len(notes) > 0 {
		p("\nNotes:\n\n")
		for _, n := range pg.notes {
			p("- %s\n", n)
		}
		for _, n := range notes {
			p("- %s\n", n)
		}
	}
	p("\nRaw figures per repetition (requests/s or publishes/s):\n\n| target | workload | runs |\n|---|---|---|\n")
	type key struct{ kind, target, wl string }
	var keys []key
	for _, r := range recs {
		if r.Kind != result.KindGet && r.Kind != result.KindPublish {
			continue
		}
		if k := (key{r.Kind, r.Target, r.Workload}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		a, ok := aggregate(recs, k.kind, k.wl, k.target)
		cells := make([]string, len(a.runs))
		for i, v := range a.runs {
			cells[i] = fmt.Sprintf("%.1f", v)
		}
		if ok {
			p("| %s | %s | %s |\n", k.target, k.wl, strings.Join(cells, ", "))
		}
	}
}
