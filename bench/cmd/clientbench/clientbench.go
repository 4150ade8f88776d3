package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/signet-trust/signet/bench/internal/result"
)

// The client commands, in report order. Each pair is the signet command
// and the one it replaces.
const (
	SignetList    = "signet list"
	NotaryList    = "notary list"
	SignetInspect = "signet trust inspect"
	DockerInspect = "docker trust inspect"
)

// Names lists the client commands in report order.
var Names = []string{SignetList, NotaryList, SignetInspect, DockerInspect}

type server struct{ label, url string }

type servers []server

func (s *servers) String() string { return fmt.Sprint(*s) }
func (s *servers) Set(v string) error {
	label, u, ok := strings.Cut(v, "=")
	pu, err := url.Parse(u)
	if !ok || label == "" || err != nil || pu.Scheme != "https" || pu.Host == "" {
		return fmt.Errorf("want LABEL=https://HOST:PORT, got %q", v)
	}
	*s = append(*s, server{label, strings.TrimSuffix(u, "/")})
	return nil
}

type config struct {
	signet, notary, docker string
	ca, gun, work          string
	tags, reps, warmup     int
	timeout                time.Duration
	clients                []string
	servers                servers
}

// Main runs the benchmark and returns the process exit code: 1 if any run
// failed (its record says why), 2 on bad flags.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("clientbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.signet, "signet", "signet", "signet client binary")
	fs.StringVar(&c.notary, "notary", "notary", "notary client binary")
	fs.StringVar(&c.docker, "docker", "docker", "docker CLI binary (no daemon needed)")
	fs.StringVar(&c.ca, "ca", "", "PEM file of the CA that signed the servers' certificate")
	fs.StringVar(&c.gun, "gun", "", "repository to read (already published on every server)")
	fs.IntVar(&c.tags, "tags", 10000, "tags the repository holds; every run must print exactly these")
	fs.IntVar(&c.reps, "reps", 5, "timed runs of each client against each server")
	fs.IntVar(&c.warmup, "warmup", 1, "untimed runs of each client against each server first (warms the OS page cache, not the trust cache)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "bound on one run; a run cut off is a failure")
	total := fs.Duration("max-total", 20*time.Minute, "bound on the whole benchmark; runs not done by then are failures")
	fs.StringVar(&c.work, "work", "", "directory for the fresh per-run directories (default: a temporary one, removed)")
	only := fs.String("clients", strings.Join(Names, ","), "comma-separated client commands to time")
	fs.Var(&c.servers, "server", "LABEL=URL of a server to measure against (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for n := range strings.SplitSeq(*only, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if !known(n) {
			fmt.Fprintf(stderr, "clientbench: unknown client %q (want some of %s)\n", n, strings.Join(Names, ", "))
			return 2
		}
		c.clients = append(c.clients, n)
	}
	if c.ca == "" || c.gun == "" || len(c.servers) == 0 || len(c.clients) == 0 || c.tags < 1 || c.reps < 1 || c.warmup < 0 || c.timeout <= 0 {
		fmt.Fprintln(stderr, "clientbench: need -ca, -gun, -server, -tags ≥ 1, -reps ≥ 1, -warmup ≥ 0, -timeout > 0")
		return 2
	}
	// Runs start in their own directory: make every path absolute.
	for _, p := range []*string{&c.signet, &c.notary, &c.docker} {
		abs, err := exec.LookPath(*p)
		if err == nil {
			abs, err = filepath.Abs(abs)
		}
		if err != nil {
			fmt.Fprintln(stderr, "clientbench:", err)
			return 1
		}
		*p = abs
	}
	if abs, err := filepath.Abs(c.ca); err == nil {
		c.ca = abs
	}
	work := c.work
	if work != "" {
		if err := os.MkdirAll(work, 0o700); err != nil {
			fmt.Fprintln(stderr, "clientbench:", err)
			return 1
		}
	} else {
		d, err := os.MkdirTemp("", "clientbench-")
		if err != nil {
			fmt.Fprintln(stderr, "clientbench:", err)
			return 1
		}
		defer os.RemoveAll(d)
		work = d
	}
	c.work = work
	ctx, cancel := context.WithTimeout(ctx, *total)
	defer cancel()

	failed := false
	for rep := 1 - c.warmup; rep <= c.reps; rep++ {
		for _, s := range c.servers {
			for _, cl := range c.clients {
				if ctx.Err() != nil {
					fmt.Fprintln(stderr, "clientbench: stopped before the last run:", context.Cause(ctx))
					return 1
				}
				rec := c.run(ctx, s, cl, rep)
				if rep < 1 {
					if rec.FirstErr != "" {
						fmt.Fprintf(stderr, "clientbench: warm-up %s on %s failed: %s\n", cl, s.label, rec.FirstErr)
						failed = true
					}
					continue
				}
				if rec.Errors > 0 {
					failed = true
				}
				fmt.Fprintf(stderr, "clientbench: rep %d/%d %-20s on %-9s %8.0f ms wall %8.0f ms cpu %6d MB rss %5d tags %s\n",
					rep, c.reps, cl, s.label, rec.WallMs, rec.CPUMs, rec.MaxRSSKB/1024, rec.Tags, rec.FirstErr)
				if err := rec.Write(stdout); err != nil {
					fmt.Fprintln(stderr, "clientbench:", err)
					return 1
				}
			}
		}
	}
	if failed {
		return 1
	}
	return 0
}

func known(n string) bool {
	for _, k := range Names {
		if k == n {
			return true
		}
	}
	return false
}

// run times one command in fresh directories and checks its output.
func (c *config) run(ctx context.Context, s server, client string, rep int) result.Record {
	rec := result.Record{Kind: result.KindClient, Target: s.label, Workload: client, Rep: rep, Conns: 1}
	fail := func(err error) result.Record {
		rec.Errors, rec.FirstErr = 1, err.Error()
		return rec
	}
	dir, err := os.MkdirTemp(c.work, "run-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd, err := c.command(ctx, dir, s, client)
	if err != nil {
		return fail(err)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)

	rec.WallMs = float64(wall) / float64(time.Millisecond)
	rec.DurationS = wall.Seconds()
	if ps := cmd.ProcessState; ps != nil {
		rec.CPUMs = float64(ps.UserTime()+ps.SystemTime()) / float64(time.Millisecond)
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			rec.MaxRSSKB = ru.Maxrss // kilobytes on Linux
		}
	}
	if err != nil {
		msg := strings.TrimSpace(errOut.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (cut off: %v)", err, ctx.Err())
		}
		return fail(fmt.Errorf("%s: %w: %s", client, err, msg))
	}
	n, err := countTags(client, out.Bytes())
	rec.Tags = n
	if err != nil {
		return fail(fmt.Errorf("%s: %w", client, err))
	}
	if n != c.tags {
		return fail(fmt.Errorf("%s printed %d tags, want %d", client, n, c.tags))
	}
	rec.Completed = true
	return rec
}

// command builds the command line and environment of one run in dir: HOME
// is dir/home (no ~/.notary or ~/.docker of the user's), the notary trust
// directory dir/trust is empty, and DOCKER_CONFIG dir/docker holds only the
// server's CA under tls/<host:port>/ca.crt.
func (c *config) command(ctx context.Context, dir string, s server, client string) (*exec.Cmd, error) {
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	var bin string
	var args []string
	switch client {
	case SignetList, NotaryList:
		bin = c.signet
		if client == NotaryList {
			bin = c.notary
		}
		args = []string{"-d", filepath.Join(dir, "trust"), "-s", s.url, "--tlscacert", c.ca, "list", c.gun}
	case SignetInspect, DockerInspect:
		u, err := url.Parse(s.url)
		if err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "docker")
		tls := filepath.Join(cfg, "tls", u.Host)
		if err := os.MkdirAll(tls, 0o700); err != nil {
			return nil, err
		}
		ca, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tls, "ca.crt"), ca, 0o600); err != nil {
			return nil, err
		}
		bin = c.signet
		if client == DockerInspect {
			bin = c.docker
		}
		args = []string{"trust", "inspect", c.gun}
		env = append(env, "DOCKER_CONFIG="+cfg, "DOCKER_CONTENT_TRUST_SERVER="+s.url)
	default:
		return nil, fmt.Errorf("unknown client %q", client)
	}
	cmd := exec.CommandContext(ctx, bin, args...) // killed when ctx ends
	cmd.Env = env
	cmd.Dir = dir
	return cmd, nil
}

// countTags counts the tags a client printed: the rows under the dashed
// header line of the list table, or the SignedTags of the one repository
// in trust inspect's JSON.
func countTags(client string, out []byte) (int, error) {
	switch client {
	case SignetList, NotaryList:
		n, header := 0, false
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "":
			case !header && strings.HasPrefix(line, "---"):
				header = true
			case header:
				n++
			}
		}
		if err := sc.Err(); err != nil {
			return 0, err
		}
		if !header {
			return 0, fmt.Errorf("no table in the output: %.200q", out)
		}
		return n, nil
	default:
		var repos []struct {
			Name       string
			SignedTags []struct{ SignedTag, Digest string }
		}
		if err := json.Unmarshal(out, &repos); err != nil {
			return 0, fmt.Errorf("output is not trust inspect JSON: %w", err)
		}
		if len(repos) != 1 {
			return 0, fmt.Errorf("trust inspect printed %d repositories, want 1", len(repos))
		}
		for _, t := range repos[0].SignedTags {
			if t.SignedTag == "" || t.Digest == "" {
				return 0, errors.New("trust inspect printed a tag without name or digest")
			}
		}
		return len(repos[0].SignedTags), nil
	}
}
