package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/bench/internal/httpclient"
	"github.com/signet-trust/signet/bench/internal/notaryrepo"
	"github.com/signet-trust/signet/bench/internal/proccpu"
	"github.com/signet-trust/signet/bench/internal/result"
	"github.com/signet-trust/signet/bench/internal/workload"
)

const usage = `usage: notaryload setup|get|publish [flags]   (notaryload <cmd> -h for flags)`

// Main runs one subcommand and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "setup":
		err = setup(ctx, args[1:], stdout, stderr)
	case "get":
		err = get(ctx, args[1:], stdout, stderr)
	case "publish":
		err = publish(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "notaryload:", err)
		return 1
	}
	return 0
}

func setup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "server base URL, e.g. https://127.0.0.1:24443")
	ca := fs.String("ca", "", "PEM file of the CA that signed the server certificate")
	gun := fs.String("gun", "example.com/bench/app", "repository (GUN) to create")
	tags := fs.Int("tags", 20, "number of tags (targets) to publish")
	trustDir := fs.String("trust-dir", "", "notary trust directory (default: a temporary one, removed)")
	serverSnapshot := fs.Bool("server-snapshot", false, "let the server hold the snapshot key (docker's default)")
	label := fs.String("label", "", "if set, print a result record (kind publish, workload setup) timing the one publish, with this target")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *tags < 1 {
		return errors.New("setup: -url and -tags ≥ 1 are required")
	}
	dir, cleanup, err := ensureDir(*trustDir)
	if err != nil {
		return err
	}
	defer cleanup()
	rt, err := httpclient.New(httpclient.Options{CAFile: *ca, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	cfg := notaryrepo.Config{BaseURL: *base, Transport: rt, TrustDir: dir, Passphrase: "bench-passphrase"}
	repo, err := notaryrepo.Open(cfg, *gun)
	if err != nil {
		return err
	}
	if err := notaryrepo.Init(repo, *serverSnapshot); err != nil {
		return err
	}
	for i := range *tags {
		tag := fmt.Sprintf("v1.%d.0", i)
		if err := notaryrepo.StageTag(repo, tag, []byte("manifest of "+*gun+":"+tag)); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := repo.Publish(); err != nil {
		return fmt.Errorf("setup: publish %s: %w", *gun, err)
	}
	took := time.Since(t0)
	// Read it back through a cold cache: the server, not our cache, must have it.
	cfg.TrustDir = dir + "/verify"
	names, err := notaryrepo.Tags(cfg, *gun)
	if err != nil {
		return err
	}
	if len(names) != *tags {
		return fmt.Errorf("setup: %s lists %d tags after publishing %d", *gun, len(names), *tags)
	}
	if *label != "" {
		ms := float64(took) / float64(time.Millisecond)
		rec := result.Record{Kind: result.KindPublish, Target: *label, Workload: "setup", Conns: 1,
			Requests: 1, PerSecond: 1 / took.Seconds(), P50Ms: ms, P99Ms: ms, WallMs: ms, Tags: *tags, Completed: true}
		if err := rec.Write(stdout); err != nil {
			return err
		}
		return ctx.Err()
	}
	if _, err := fmt.Fprintf(stdout, "{\"setup\":%q,\"url\":%q,\"tags\":%d}\n", *gun, *base, *tags); err != nil {
		return err
	}
	return ctx.Err()
}

func ensureDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o700)
	}
	dir, err := os.MkdirTemp("", "notaryload-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

func get(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "server base URL, e.g. https://127.0.0.1:24443; a comma-separated list spreads the connections round-robin over several servers (replicas)")
	ca := fs.String("ca", "", "PEM file of the CA that signed the server certificate")
	gun := fs.String("gun", "example.com/bench/app", "repository (GUN) to read")
	w := fs.String("workload", workload.Timestamp, "timestamp | snapshot | targets | checksum (targets.<sha256>.json)")
	spread := fs.Int("spread", 0, "if > 0, every request reads a repository picked at random among fmt.Sprintf(-spread-fmt, i), 0 ≤ i < N (timestamp, snapshot, targets only; -gun is not read)")
	spreadFmt := fs.String("spread-fmt", "example.com/fill/r%d", "GUN pattern of -spread")
	conns := fs.Int("c", 32, "concurrent connections, one request in flight on each")
	dur := fs.Duration("d", 10*time.Second, "measured duration (bounded: at most 10m)")
	warmup := fs.Duration("warmup", time.Second, "load applied before measuring, not counted")
	timeout := fs.Duration("timeout", 5*time.Second, "wait for response headers before counting an error")
	label := fs.String("label", "", "name of the server under test, copied into the output")
	rep := fs.Int("rep", 0, "repetition number, copied into the output")
	keepAlive := fs.Bool("keepalive", true, "reuse each connection (false: a new TLS connection per request, as the notary client makes; the record's kind is then \"connect\")")
	cpuPIDs := fs.String("cpu-pids", "", "comma-separated process IDs of the server under test whose CPU time (/proc/<pid>/stat) in the measured window is reported as server_cpu_ms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *conns < 1 || *dur <= 0 || *dur > 10*time.Minute || *warmup < 0 || *spread < 0 {
		return errors.New("get: need -url, -c ≥ 1, 0 < -d ≤ 10m, -warmup ≥ 0, -spread ≥ 0")
	}
	pids, err := proccpu.ParsePIDs(*cpuPIDs)
	if err != nil {
		return err
	}
	bases := strings.Split(*base, ",")
	if *spread > 0 {
		if *w == workload.Checksum {
			return errors.New("get: -spread reads current metadata by name: timestamp, snapshot or targets")
		}
		*gun = fmt.Sprintf(*spreadFmt, 0)
	}

	probe, err := httpclient.New(httpclient.Options{CAFile: *ca, Timeout: *timeout})
	if err != nil {
		return err
	}
	// Every server of the list must answer, and with the same bytes.
	var path string
	var body []byte
	for i, b := range bases {
		p, got, err := workload.Resolve(ctx, &http.Client{Transport: probe}, b, *gun, *w)
		if err != nil {
			return err
		}
		if i > 0 && !bytes.Equal(got, body) {
			return fmt.Errorf("get: %s answers %s with other bytes than %s", b, p, bases[0])
		}
		path, body = p, got
	}
	if *spread > 0 {
		last := fmt.Sprintf(*spreadFmt, *spread-1)
		if _, _, err := workload.Resolve(ctx, &http.Client{Transport: probe}, bases[0], last, *w); err != nil {
			return fmt.Errorf("get: -spread %d: the last repository: %w", *spread, err)
		}
		path = workload.MetaPath(*spreadFmt, *w)
	}
	// target returns the URL of the next request of connection i.
	target := func(i int, rng *rand.Rand) string {
		b := bases[i%len(bases)]
		if *spread > 0 {
			return b + workload.MetaPath(fmt.Sprintf(*spreadFmt, rng.IntN(*spread)), *w)
		}
		return b + path
	}

	// Hard bound: whatever the server does, the run ends by this deadline.
	ctx, cancel := context.WithTimeout(ctx, *warmup+*dur+*timeout+2*time.Second)
	defer cancel()
	start := time.Now()
	from, until := start.Add(*warmup), start.Add(*warmup+*dur)

	stats := make([]workerStats, *conns)
	var wg sync.WaitGroup
	// The server's CPU time over the measured window.
	var cpu0, cpu1 time.Duration
	var cpuErr error
	if len(pids) > 0 {
		wg.Go(func() {
			time.Sleep(time.Until(from))
			if cpu0, cpuErr = proccpu.Time(pids); cpuErr != nil {
				return
			}
			time.Sleep(time.Until(until))
			cpu1, cpuErr = proccpu.Time(pids)
		})
	}
	for i := range stats {
		rt, err := httpclient.New(httpclient.Options{CAFile: *ca, Conns: 1, KeepAlive: *keepAlive, HeaderTimeout: *timeout})
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		wg.Go(func() { stats[i] = worker(ctx, rt, func() string { return target(i, rng) }, from, until) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && time.Now().Before(until) {
		return fmt.Errorf("get: interrupted: %w", err)
	}

	if cpuErr != nil {
		return fmt.Errorf("get: %w", cpuErr)
	}
	var lat []time.Duration
	kind := result.KindGet
	if !*keepAlive {
		kind = result.KindConnect
	}
	rec := result.Record{
		Kind: kind, Target: *label, Workload: *w, Rep: *rep, Conns: *conns,
		DurationS: dur.Seconds(), Path: path, BodyBytes: int64(len(body)), Completed: true,
	}
	if *spread > 0 {
		rec.Repos = *spread
	}
	for _, s := range stats {
		lat = append(lat, s.lat...)
		rec.Errors += s.errors
		if rec.FirstErr == "" && s.firstErr != nil {
			rec.FirstErr = s.firstErr.Error()
		}
	}
	rec.Requests = int64(len(lat))
	rec.PerSecond = float64(rec.Requests) / dur.Seconds()
	rec.P50Ms, rec.P99Ms = result.Latencies(lat)
	if len(pids) > 0 {
		rec.ServerCPUMs = float64(cpu1-cpu0) / float64(time.Millisecond)
	}
	return rec.Write(stdout)
}

type workerStats struct {
	lat      []time.Duration // successful requests that started and ended inside the window
	errors   int64           // failed requests that started inside the window
	firstErr error
}

// worker sends one request at a time on its own keep-alive connection until
// the window closes.
func worker(ctx context.Context, rt http.RoundTripper, next func() string, from, until time.Time) workerStats {
	defer func() {
		if t, ok := rt.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}()
	s := workerStats{lat: make([]time.Duration, 0, 4096)}
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(until) {
			break
		}
		err := fetch(ctx, rt, next())
		t1 := time.Now()
		if t0.Before(from) {
			continue
		}
		switch {
		case err != nil:
			if ctx.Err() != nil && !t1.Before(until) {
				break // cut off by the hard deadline after the window: not an error
			}
			s.errors++
			if s.firstErr == nil {
				s.firstErr = err
			}
			time.Sleep(10 * time.Millisecond) // do not spin on a dead server
		case t1.After(until):
			// ended after the window: neither counted nor an error
		default:
			s.lat = append(s.lat, t1.Sub(t0))
		}
	}
	return s
}

func fetch(ctx context.Context, rt http.RoundTripper, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	case n == 0:
		return fmt.Errorf("GET %s: empty body", url)
	}
	return nil
}

// publish adds -n tags, one publish each, to a repository that setup created
// with the same -trust-dir (which holds its keys), and prints one record
// (kind publish, workload add-tag) with the latency of those publishes: the
// cost of publishing one more tag to a repository of that size.
func publish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "server base URL")
	ca := fs.String("ca", "", "PEM file of the CA that signed the server certificate")
	gun := fs.String("gun", "example.com/bench/app", "repository (GUN), created by setup")
	trustDir := fs.String("trust-dir", "", "the trust directory setup used (required: it holds the keys)")
	n := fs.Int("n", 3, "publishes, one new tag each")
	timeout := fs.Duration("timeout", 2*time.Minute, "bound on each HTTP request")
	label := fs.String("label", "", "name of the server under test, copied into the output")
	rep := fs.Int("rep", 0, "repetition number, copied into the output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *trustDir == "" || *n < 1 || *n > 1000 {
		return errors.New("publish: need -url, -trust-dir and 1 ≤ -n ≤ 1000")
	}
	rt, err := httpclient.New(httpclient.Options{CAFile: *ca, Timeout: *timeout})
	if err != nil {
		return err
	}
	cfg := notaryrepo.Config{BaseURL: *base, Transport: rt, TrustDir: *trustDir, Passphrase: "bench-passphrase"}
	repo, err := notaryrepo.Open(cfg, *gun)
	if err != nil {
		return err
	}
	rec := result.Record{Kind: result.KindPublish, Target: *label, Workload: "add-tag", Rep: *rep, Conns: 1, Completed: true}
	var lat []time.Duration
	stamp := time.Now().UnixNano()
	for i := range *n {
		if err := ctx.Err(); err != nil {
			return err
		}
		tag := fmt.Sprintf("add-%d-%d", stamp, i)
		if err := notaryrepo.StageTag(repo, tag, []byte(*gun+":"+tag)); err != nil {
			return err
		}
		t0 := time.Now()
		if err := repo.Publish(); err != nil {
			rec.Errors++
			if rec.FirstErr == "" {
				rec.FirstErr = err.Error()
			}
			continue
		}
		lat = append(lat, time.Since(t0))
		rec.Verified++
	}
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	rec.Requests = int64(len(lat))
	if total > 0 {
		rec.PerSecond = float64(len(lat)) / total.Seconds()
	}
	rec.DurationS = total.Seconds()
	rec.P50Ms, rec.P99Ms = result.Latencies(slices.Clone(lat))
	// The server, read through a cold cache, must list every tag.
	cfg.TrustDir = *trustDir + "/verify-add"
	os.RemoveAll(cfg.TrustDir)
	names, err := notaryrepo.Tags(cfg, *gun)
	if err != nil {
		return err
	}
	rec.Tags = len(names)
	return rec.Write(stdout)
}
