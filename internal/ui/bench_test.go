package ui_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/record"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
	"github.com/signet-trust/signet/internal/ui"
)

const uiBenchHeading = "## Web dashboard:"

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// TestRenderBenchmark measures the server render time of each page with
// 10,000 repositories and 100,000 requests, and writes the "Web
// dashboard" section of SIGNET_UI_BENCH_REPORT (make bench). It runs only
// with SIGNET_UI_BENCH=1.
func TestRenderBenchmark(t *testing.T) {
	if os.Getenv("SIGNET_UI_BENCH") == "" {
		t.Skip("set SIGNET_UI_BENCH=1 (make bench) to measure the dashboard's render times")
	}
	nRepos := envInt(t, "SIGNET_UI_BENCH_REPOS", 10000)
	nReqs := envInt(t, "SIGNET_UI_BENCH_REQUESTS", 100000)
	samples := envInt(t, "SIGNET_UI_BENCH_SAMPLES", 200)
	ctx := t.Context()
	// SIGNET_UI_BENCH_DB keeps the database between runs: a file that
	// exists is measured as it is (its figures as stored), one that does
	// not is filled first.
	dbFile := os.Getenv("SIGNET_UI_BENCH_DB")
	reuse := false
	if dbFile == "" {
		dbFile = filepath.Join(t.TempDir(), "signet.db")
	} else if _, err := os.Stat(dbFile); err == nil {
		reuse = true
	}
	st, err := sqlstore.Open(ctx, "sqlite:"+dbFile)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	setup := time.Now()
	now := time.Now()
	if !reuse {
		fill(t, st, now, nRepos, nReqs)
	}
	t.Logf("setup in %v", time.Since(setup).Round(time.Millisecond))
	benchPages(t, st, now, nRepos, nReqs, samples)
}

// fill stores nRepos repositories and nReqs requests.
func fill(t *testing.T, st *sqlstore.Store, now time.Time, nRepos, nReqs int) {
	ctx := t.Context()
	setup := time.Now()

	// Repositories: real trust data, each with a delegation and a tag.
	one := tuftest.NewRepo(t, "bench.example.com/org/app-00000", now)
	one.Delegate("targets/releases", []string{""})
	one.Delegate("targets/ci", []string{""})
	for i := range 20 {
		tag := fmt.Sprintf("v1.%d", i)
		one.AddTarget("targets/releases", tag, []byte(tag))
		one.AddTarget("targets/ci", tag, []byte(tag))
	}
	one.SignAll()
	var files []store.File
	for role, b := range one.Signed {
		c, _ := tuf.Peek(b)
		files = append(files, store.File{Role: role, Version: c.Version, Data: b, Expires: c.Expires})
	}
	for i := range nRepos {
		gun := fmt.Sprintf("bench.example.com/org/app-%05d", i)
		fs := slices.Clone(files)
		for j := range fs {
			fs[j].Expires = now.Add(time.Duration(i+1) * time.Hour) // distinct expiries
		}
		if err := st.UpdateMany(ctx, gun, fs); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d repositories stored in %v", nRepos, time.Since(setup).Round(time.Millisecond))

	hash := service.HashPassword(password)
	for _, u := range []record.User{{Name: "alice", PasswordHash: hash}, {Name: "carol", PasswordHash: hash}, {Name: "root", PasswordHash: hash, Admin: true}} {
		u.Created, u.Updated = now, now
		if err := st.CreateUser(ctx, u, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	const projects = 10
	for p := range projects {
		name := fmt.Sprintf("p%d", p)
		if err := st.CreateProject(ctx, record.Project{Name: name, Repository: fmt.Sprintf("bench.example.com/org/app-%05d", p), Signer: "ci",
			KeyID: "k", RateLimit: 10, Created: now, Updated: now}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := st.CreatePolicy(ctx, record.Policy{Project: name, Name: "release", Required: 1, Approvers: []string{"alice"},
			Submitters: []string{"carol"}, Formats: []record.Format{record.FormatDCT}, Created: now, Updated: now}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Requests over the last 30 days, oldest first; the newest 1% await
	// approval.
	reqStart := time.Now()
	span := 30 * 24 * time.Hour
	var final []string
	for i := range nReqs {
		created := now.Add(-span + span/time.Duration(nReqs)*time.Duration(i))
		id := fmt.Sprintf("%08x-%04x-7000-8000-%012x", created.UnixMilli()>>16, created.UnixMilli()&0xffff, i)
		gun := fmt.Sprintf("bench.example.com/org/app-%05d", i%projects)
		r := record.Request{ID: id, Project: fmt.Sprintf("p%d", i%projects), Policy: "release", Status: record.StatusAwaitingApproval, Submitter: "carol",
			Images:  []record.Image{{Ref: gun + ":v1", GUN: gun, Tag: "v1", Digest: "sha256:" + strings.Repeat("ab", 32), Size: 1234}},
			Formats: []record.Format{record.FormatDCT}, Created: created, Updated: created, Expires: now.Add(time.Hour)}
		if _, _, err := st.CreateRequest(ctx, r, record.Effects{}); err != nil {
			t.Fatal(err)
		}
		if i < nReqs-nReqs/100 {
			final = append(final, id)
		}
		if len(final) == 1000 || i == nReqs-1 && len(final) > 0 {
			if _, err := st.UpdateRequests(ctx, final, func(r *record.Request) (record.Effects, error) {
				r.Status, r.Approvals = record.StatusSigned, []record.Decision{{User: "alice", Time: r.Created}}
				return record.Effects{}, nil
			}); err != nil {
				t.Fatal(err)
			}
			final = final[:0]
		}
	}
	t.Logf("%d requests stored in %v", nReqs, time.Since(reqStart).Round(time.Millisecond))
}

// benchPages measures each page.
func benchPages(t *testing.T, st *sqlstore.Store, now time.Time, nRepos, nReqs, samples int) {
	ctx := t.Context()

	_, key, _ := ed25519.GenerateKey(rand.Reader)
	alog, err := audit.New(audit.Config{Store: st.AuditLog(), Origin: "bench.example.com/audit", Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Store: st, Keys: noKeys{}, Repos: noRepos{}, Images: noImages{}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := ui.New(ui.Config{Service: svc, Meta: st, Repos: st, Audit: alog, AuditEntries: st.AuditLog(),
		LoginsPerUser: ratelimit.Limit{Rate: -1}, LoginsPerAddress: ratelimit.Limit{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	f := &fixture{t: t, st: st, ui: u, srv: srv, now: now}
	alice := f.browser().loggedIn("alice")
	root := f.browser().loggedIn("root")
	rs, err := st.ListRequests(ctx, record.RequestFilter{Limit: 1})
	if err != nil || len(rs) == 0 {
		t.Fatal("no requests", err)
	}
	handler := u.Handler()
	// The same dashboard drawing its activity chart for every page.
	cold, err := ui.New(ui.Config{Service: svc, Meta: st, Repos: st, Audit: alog, AuditEntries: st.AuditLog(), ChartTTL: -1,
		LoginsPerUser: ratelimit.Limit{Rate: -1}, LoginsPerAddress: ratelimit.Limit{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	coldSrv := httptest.NewServer(cold.Handler())
	defer coldSrv.Close()
	aliceCold := (&fixture{t: t, st: st, ui: cold, srv: coldSrv, now: now}).browser().loggedIn("alice")
	coldHandler := cold.Handler()

	type page struct {
		name, path string
		who        *browser
		h          http.Handler
	}
	pages := []page{
		{"login form", "/ui/login", nil, nil},
		{"dashboard (approver; activity chart reused for a minute)", "/ui/", alice, nil},
		{"dashboard (approver; activity chart drawn)", "/ui/", aliceCold, coldHandler},
		{"requests, first page (admin)", "/ui/requests", root, nil},
		{"requests, first page (approver of 10 projects)", "/ui/requests", alice, nil},
		{"requests awaiting approval", "/ui/requests?status=awaiting_approval", alice, nil},
		{"request", "/ui/requests/" + rs[0].ID, alice, nil},
		{"repositories, first page", "/ui/repositories", root, nil},
		{"repositories, search", "/ui/repositories?q=" + url.QueryEscape("app-0999"), root, nil},
		{"repositories, page 100", "/ui/repositories?after=" + url.QueryEscape(fmt.Sprintf("bench.example.com/org/app-%05d", min(nRepos-1, 4999))), root, nil},
		{"repository (20 tags, 2 delegations)", "/ui/repositories/bench.example.com/org/app-00042", root, nil},
		{"audit", "/ui/audit", root, nil},
		{"projects (10)", "/ui/projects", root, nil},
	}
	type row struct {
		name          string
		p50, p95, max time.Duration
		bytes         int
	}
	var rows []row
	loadBefore := e2etest.LoadAverage()
	for _, p := range pages {
		var ds []time.Duration
		size := 0
		for i := range samples + 5 {
			req := httptest.NewRequest("GET", p.path, nil)
			if p.who != nil {
				for k, v := range p.who.cookies {
					req.AddCookie(&http.Cookie{Name: k, Value: v})
				}
			}
			w := httptest.NewRecorder()
			h := handler
			if p.h != nil {
				h = p.h
			}
			start := time.Now()
			h.ServeHTTP(w, req)
			d := time.Since(start)
			if w.Code != 200 {
				t.Fatalf("%s: %d\n%s", p.path, w.Code, w.Body)
			}
			size = w.Body.Len()
			if i >= 5 { // warm-up
				ds = append(ds, d)
			}
		}
		slices.Sort(ds)
		r := row{p.name, ds[len(ds)/2], ds[len(ds)*95/100], ds[len(ds)-1], size}
		rows = append(rows, r)
		t.Logf("%-40s p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms  %d bytes", r.name, msf(r.p50), msf(r.p95), msf(r.max), r.bytes)
	}
	loadAfter := e2etest.LoadAverage()

	var sec bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&sec, format, args...) }
	w("%s server render time per page\n\n", uiBenchHeading)
	w("Written by `make bench` (`SIGNET_UI_BENCH=1 go test -run TestRenderBenchmark ./internal/ui/`) on %s, %d cores, %s;\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version())
	w("load average %s before and %s after (other work on the machine shares its cores: the figures are what the\n", loadBefore, loadAfter)
	w("dashboard got, not what it needs).\n\n")
	w("%d repositories (each with root, targets, snapshot, timestamp, targets/releases and targets/ci, 20 tags) and\n", nRepos)
	w("%d signing requests (1%% awaiting approval, over 10 projects and the last 30 days) in SQLite in a file (WAL,\n", nReqs)
	w("synchronous=FULL); the dashboard's handler called in process with a logged-in session (the user's record read\n")
	w("on every request, as always), so the time is the server's: session, queries, template, no network. %d samples\n", samples)
	w("per page after 5 warm-up requests. Aim: p95 ≤ 50 ms.\n\n")
	w("| page | p50 ms | p95 ms | max ms | bytes |\n|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		w("| %s | %.1f | %.1f | %.1f | %d |\n", r.name, msf(r.p50), msf(r.p95), msf(r.max), r.bytes)
	}
	w("\n")
	if out := os.Getenv("SIGNET_UI_BENCH_REPORT"); out != "" {
		e2etest.WriteReportSection(t, out, uiBenchHeading, sec.Bytes())
	}
	t.Log("\n" + sec.String())
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
