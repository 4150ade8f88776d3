package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/bench/internal/httpclient"
	"github.com/signet-trust/signet/bench/internal/notaryrepo"
	"github.com/signet-trust/signet/bench/internal/proccpu"
	"github.com/signet-trust/signet/bench/internal/result"
)

// Main runs the load and the durability check and returns the exit code:
// 0 also when publishes failed (they are counted), 1 when the run could not
// happen or an acknowledged publish is missing.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("publishload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.base, "url", "", "server base URL, e.g. https://127.0.0.1:24443; a comma-separated list spreads the workers round-robin over several servers (replicas), and each repository is then checked through another server than the one it was published to")
	fs.StringVar(&o.ca, "ca", "", "PEM file of the CA that signed the server certificate")
	fs.IntVar(&o.workers, "workers", 4, "concurrent publishers, each with its own repositories")
	fs.IntVar(&o.perRepo, "publishes", 10, "publishes per repository before a worker starts a fresh one")
	fs.DurationVar(&o.dur, "d", 20*time.Second, "duration in which publishes are started (at most 10m)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "bound on each HTTP request")
	fs.BoolVar(&o.keepAlive, "keepalive", false, "reuse connections (the notary CLI does not)")
	fs.BoolVar(&o.serverSnapshot, "server-snapshot", false, "let the server hold the snapshot key (docker's default)")
	fs.StringVar(&o.prefix, "gun-prefix", "", "GUN prefix (default example.com/publish/<unix nanos>)")
	fs.StringVar(&o.trustDir, "trust-dir", "", "where trust directories go (default: temporary, removed)")
	fs.StringVar(&o.label, "label", "", "name of the server under test, copied into the output")
	fs.IntVar(&o.rep, "rep", 0, "repetition number, copied into the output")
	fs.StringVar(&o.cpuPIDs, "cpu-pids", "", "comma-separated process IDs of the server under test (e.g. notary-server,notary-signer) whose CPU time (/proc/<pid>/stat) during the publishes is reported as server_cpu_ms")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rec, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "publishload:", err)
		return 1
	}
	if err := rec.Write(stdout); err != nil {
		fmt.Fprintln(stderr, "publishload:", err)
		return 1
	}
	if rec.Missing > 0 || !rec.Completed {
		fmt.Fprintf(stderr, "publishload: durability check failed: %d acknowledged publishes verified, %d missing (completed=%v)\n",
			rec.Verified, rec.Missing, rec.Completed)
		return 1
	}
	return 0
}

type options struct {
	base, ca, prefix, trustDir, label string
	cpuPIDs                           string
	workers, perRepo, rep             int
	dur, timeout                      time.Duration
	keepAlive, serverSnapshot         bool
}

// repoLog is what one worker knows about one repository it created.
type repoLog struct {
	gun   string
	acked []string // tags whose publish returned success
}

type workerLog struct {
	repos    []repoLog
	lat      []time.Duration
	errors   int64
	firstErr error
}

func run(ctx context.Context, o options) (result.Record, error) {
	rec := result.Record{Kind: result.KindPublish, Target: o.label, Workload: "init+publish",
		Rep: o.rep, Conns: o.workers, DurationS: o.dur.Seconds()}
	if o.base == "" || o.workers < 1 || o.perRepo < 1 || o.dur <= 0 || o.dur > 10*time.Minute {
		return rec, errors.New("need -url, -workers ≥ 1, -publishes ≥ 1, 0 < -d ≤ 10m")
	}
	if o.prefix == "" {
		o.prefix = fmt.Sprintf("example.com/publish/%d", time.Now().UnixNano())
	}
	root := o.trustDir
	if root == "" {
		d, err := os.MkdirTemp("", "publishload-")
		if err != nil {
			return rec, err
		}
		defer os.RemoveAll(d)
		root = d
	}
	rt, err := httpclient.New(httpclient.Options{CAFile: o.ca, KeepAlive: o.keepAlive,
		Conns: o.workers, Timeout: o.timeout})
	if err != nil {
		return rec, err
	}

	// The library cannot be cancelled; new publishes stop at the deadline and
	// the wait for running ones is bounded (each HTTP request is, by o.timeout).
	bases := strings.Split(o.base, ",")
	pids, err := proccpu.ParsePIDs(o.cpuPIDs)
	if err != nil {
		return rec, err
	}
	cpu0, err := proccpu.Time(pids)
	if err != nil {
		return rec, err
	}
	deadline := time.Now().Add(o.dur)
	logs := make([]workerLog, o.workers)
	var wg sync.WaitGroup
	for i := range logs {
		cfg := notaryrepo.Config{BaseURL: bases[i%len(bases)], Transport: rt, Passphrase: "bench-passphrase",
			TrustDir: filepath.Join(root, fmt.Sprintf("w%d", i))}
		wg.Go(func() { logs[i] = worker(ctx, cfg, o, i, deadline) })
	}
	if !waitUntil(&wg, deadline.Add(3*o.timeout)) {
		return rec, fmt.Errorf("publishers still running %v after the deadline", 3*o.timeout)
	}
	if err := ctx.Err(); err != nil {
		return rec, err
	}
	cpu1, err := proccpu.Time(pids)
	if err != nil {
		return rec, fmt.Errorf("after the publishes: %w", err)
	}
	rec.ServerCPUMs = float64(cpu1-cpu0) / float64(time.Millisecond)

	var repos []repoLog
	var checkBase []string // where each repository is checked: the next server after its own
	for i, l := range logs {
		for range l.repos {
			checkBase = append(checkBase, bases[(i+1)%len(bases)])
		}
		rec.Requests += int64(len(l.lat))
		rec.Errors += l.errors
		if rec.FirstErr == "" && l.firstErr != nil {
			rec.FirstErr = l.firstErr.Error()
		}
		repos = append(repos, l.repos...)
	}
	var lat []time.Duration
	for _, l := range logs {
		lat = append(lat, l.lat...)
	}
	rec.PerSecond = float64(rec.Requests) / o.dur.Seconds()
	rec.P50Ms, rec.P99Ms = result.Latencies(lat)
	rec.Repos = len(repos)

	// Durability: a cold cache per check, so the answer comes from the server.
	checkDeadline := time.Now().Add(2 * time.Minute)
	cfg := notaryrepo.Config{Transport: rt, Passphrase: "bench-passphrase"}
	for i, r := range repos {
		if len(r.acked) == 0 {
			continue
		}
		if time.Now().After(checkDeadline) {
			return rec, nil // Completed stays false
		}
		cfg.BaseURL = checkBase[i]
		cfg.TrustDir = filepath.Join(root, "verify", fmt.Sprint(i))
		have, err := notaryrepo.Tags(cfg, r.gun)
		if err != nil {
			rec.Missing += int64(len(r.acked))
			if rec.FirstErr == "" {
				rec.FirstErr = "durability: " + err.Error()
			}
			continue
		}
		for _, t := range r.acked {
			if _, ok := slices.BinarySearch(have, t); ok {
				rec.Verified++
			} else {
				rec.Missing++
			}
		}
	}
	rec.Completed = true
	return rec, nil
}

func worker(ctx context.Context, cfg notaryrepo.Config, o options, id int, deadline time.Time) workerLog {
	var l workerLog
	fail := func(err error) {
		l.errors++
		if l.firstErr == nil {
			l.firstErr = err
		}
	}
	for n := 0; ctx.Err() == nil && time.Now().Before(deadline); n++ {
		gun := fmt.Sprintf("%s/w%d-r%d", o.prefix, id, n)
		repo, err := notaryrepo.Open(cfg, gun)
		if err == nil {
			err = notaryrepo.Init(repo, o.serverSnapshot)
		}
		if err != nil {
			fail(err)
			time.Sleep(100 * time.Millisecond) // a broken server must not make us spin
			continue
		}
		rl := repoLog{gun: gun}
		for p := 0; p < o.perRepo && ctx.Err() == nil && time.Now().Before(deadline); p++ {
			tag := fmt.Sprintf("v%d", p)
			if err := notaryrepo.StageTag(repo, tag, []byte(gun+":"+tag)); err != nil {
				fail(err)
				break
			}
			t0 := time.Now()
			if err := repo.Publish(); err != nil {
				fail(fmt.Errorf("publish %s %s: %w", gun, tag, err))
				break // the next round starts a fresh repository
			}
			l.lat = append(l.lat, time.Since(t0))
			rl.acked = append(rl.acked, tag)
		}
		l.repos = append(l.repos, rl)
	}
	return l
}

func waitUntil(wg *sync.WaitGroup, t time.Time) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(time.Until(t)):
		return false
	}
}
