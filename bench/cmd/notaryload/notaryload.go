package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/signet-trust/signet/bench/internal/httpclient"
	"github.com/signet-trust/signet/bench/internal/notaryrepo"
	"github.com/signet-trust/signet/bench/internal/result"
	"github.com/signet-trust/signet/bench/internal/workload"
)

const usage = `usage: notaryload setup|get [flags]   (notaryload <cmd> -h for flags)`

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
	if err := repo.Publish(); err != nil {
		return fmt.Errorf("setup: publish %s: %w", *gun, err)
	}
	// Read it back through a cold cache: the server, not our cache, must have it.
	cfg.TrustDir = dir + "/verify"
	names, err := notaryrepo.Tags(cfg, *gun)
	if err != nil {
		return err
	}
	if len(names) != *tags {
		return fmt.Errorf("setup: %s lists %d tags after publishing %d", *gun, len(names), *tags)
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
	base := fs.String("url", "", "server base URL, e.g. https://127.0.0.1:24443")
	ca := fs.String("ca", "", "PEM file of the CA that signed the server certificate")
	gun := fs.String("gun", "example.com/bench/app", "repository (GUN) to read")
	w := fs.String("workload", workload.Timestamp, "timestamp | snapshot | targets | checksum (targets.<sha256>.json)")
	conns := fs.Int("c", 32, "concurrent connections, one request in flight on each")
	dur := fs.Duration("d", 10*time.Second, "measured duration (bounded: at most 10m)")
	warmup := fs.Duration("warmup", time.Second, "load applied before measuring, not counted")
	timeout := fs.Duration("timeout", 5*time.Second, "wait for response headers before counting an error")
	label := fs.String("label", "", "name of the server under test, copied into the output")
	rep := fs.Int("rep", 0, "repetition number, copied into the output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || *conns < 1 || *dur <= 0 || *dur > 10*time.Minute || *warmup < 0 {
		return errors.New("get: need -url, -c ≥ 1, 0 < -d ≤ 10m, -warmup ≥ 0")
	}

	probe, err := httpclient.New(httpclient.Options{CAFile: *ca, Timeout: *timeout})
	if err != nil {
		return err
	}
	path, body, err := workload.Resolve(ctx, &http.Client{Transport: probe}, *base, *gun, *w)
	if err != nil {
		return err
	}
	url := *base + path

	// Hard bound: whatever the server does, the run ends by this deadline.
	ctx, cancel := context.WithTimeout(ctx, *warmup+*dur+*timeout+2*time.Second)
	defer cancel()
	start := time.Now()
	from, until := start.Add(*warmup), start.Add(*warmup+*dur)

	stats := make([]workerStats, *conns)
	var wg sync.WaitGroup
	for i := range stats {
		rt, err := httpclient.New(httpclient.Options{CAFile: *ca, Conns: 1, KeepAlive: true, HeaderTimeout: *timeout})
		if err != nil {
			return err
		}
		wg.Go(func() { stats[i] = worker(ctx, rt, url, from, until) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && time.Now().Before(until) {
		return fmt.Errorf("get: interrupted: %w", err)
	}

	var lat []time.Duration
	rec := result.Record{
		Kind: result.KindGet, Target: *label, Workload: *w, Rep: *rep, Conns: *conns,
		DurationS: dur.Seconds(), Path: path, BodyBytes: int64(len(body)), Completed: true,
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
	return rec.Write(stdout)
}

type workerStats struct {
	lat      []time.Duration // successful requests that started and ended inside the window
	errors   int64           // failed requests that started inside the window
	firstErr error
}

// worker sends one request at a time on its own keep-alive connection until
// the window closes.
func worker(ctx context.Context, rt http.RoundTripper, url string, from, until time.Time) workerStats {
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
		err := fetch(ctx, rt, url)
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
