package faults

// Resource limits of a running signet-server (issue 10, findings 4 and 5):
// what a client may make the server hold in memory or write to its
// database. Each test sends the attack to the subprocess and checks the
// answers, that nothing was stored, and the bound itself (peak RSS from
// /proc, the database's size on disk).

import (
	"bytes"
	"fmt"
	"github.com/signet-trust/signet/internal/e2e/tufhttp"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// bigTargets returns a targets file of about size bytes for g's repository,
// listing many small targets (the costliest shape to parse) and signed by
// a key the root does not list, so that the server parses all of it and
// then refuses it.
func bigTargets(t *testing.T, g *gunState, size int) []byte {
	t.Helper()
	tg := *g.repo.Targets[tuf.RoleTargets]
	tg.Version++
	tg.Targets = map[string]tuf.FileMeta{}
	const entry = 150 // bytes per target in the JSON, roughly
	for i := range size / entry {
		name := fmt.Sprintf("attack/%08d/%s", i, strings.Repeat("p", 40))
		fm := tuf.NewFileMeta([]byte(name))
		delete(fm.Hashes, "sha512")
		tg.Targets[name] = fm
	}
	b, err := tuf.Sign(&tg, tuftest.NewKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload POSTs body, without a Content-Length when chunked.
func upload(t *testing.T, c *http.Client, url string, body []byte, contentType string, chunked bool) (tufhttp.Response, error) {
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, r)
	if err != nil {
		return tufhttp.Response{}, err
	}
	req.Header.Set("Content-Type", contentType)
	res, err := c.Do(req)
	if err != nil {
		return tufhttp.Response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return tufhttp.Response{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

// TestConcurrentLargeUploadsBounded: eight concurrent uploads of a 60 MB
// targets file (each refused in the end) must not take the server's peak
// memory past a stated bound; each is answered 400 (refused after
// validation) or 503 UNAVAILABLE with Retry-After (the server-wide upload
// budget is full), nothing is stored, and GETs are served meanwhile.
func TestConcurrentLargeUploadsBounded(t *testing.T) {
	const (
		uploads = 8
		size    = 60 << 20
		// bound is the peak RSS allowed: the default upload memory
		// (server.Config.UploadMemory, 1 GiB; each upload reserves
		// server.UploadMemoryPerByte times its body) and 256 MiB for the
		// rest of the server. Before the budget, these uploads took the
		// server past 7 GiB.
		bound = 1<<30 + 256<<20
	)
	s := startServer(t, t.TempDir())
	gs := make([]*gunState, uploads)
	for i := range gs {
		gs[i] = newGUN(fmt.Sprintf("big%d", i))
		gs[i].mustPublish(t, s)
	}
	body, ct := tufhttp.Upload(tufhttp.Part{Role: tuf.RoleTargets, Data: bigTargets(t, gs[0], size)})
	before := map[string][]byte{}
	for _, g := range gs {
		before[g.gun] = s.get(g.path() + "targets.json").Body
	}
	pid := s.Cmd.Process.Pid
	t.Logf("upload body %d MiB; server RSS before %d MiB", len(body)>>20, procStatus(t, pid, "VmRSS")>>20)

	client := s.newClient(5*time.Minute, false)
	var wg sync.WaitGroup
	// Half the uploads say their length, as every Notary client does: the
	// server reserves their memory before reading them, first come first
	// served. Once three of them are turned away the fourth holds the
	// budget and is being validated; then the other half is sent without
	// a length (chunked), whose memory the server reserves as it reads.
	answers := make([]tufhttp.Response, uploads)
	errs := make([]error, uploads)
	answered := make(chan int, uploads)
	send := func(i int, chunked bool) {
		wg.Go(func() {
			answers[i], errs[i] = upload(t, client, s.Base+gs[i].path(), body, ct, chunked)
			answered <- i
		})
	}
	for i := range uploads / 2 {
		send(i, false)
	}
	for range uploads/2 - 1 {
		select {
		case <-answered:
		case <-time.After(2 * time.Minute):
			t.Fatal("no upload answered within 2 minutes")
		}
	}
	for i := uploads / 2; i < uploads; i++ {
		send(i, true)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// GETs go on being served while the uploads are in flight.
	gets, slowest := 0, time.Duration(0)
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(200 * time.Millisecond):
			start := time.Now()
			r := s.get(gs[1].path() + "timestamp.json")
			if r.Status != 200 {
				t.Errorf("GET timestamp.json during the uploads: %v", r)
			}
			slowest = max(slowest, time.Since(start))
			gets++
		}
	}
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("peak RSS %d MiB (bound %d MiB); %d GETs during the uploads, slowest %v", peak>>20, bound>>20, gets, slowest)
	if peak > bound {
		t.Errorf("peak RSS %d MiB exceeds the bound of %d MiB", peak>>20, bound>>20)
	}
	refused, busy := 0, 0
	for i, r := range answers {
		switch {
		case errs[i] != nil:
			t.Errorf("upload %d: %v", i, errs[i])
		case r.Status == http.StatusBadRequest && r.Code() == "INVALID_UPDATE":
			refused++
		case r.Status == http.StatusServiceUnavailable && r.Code() == "UNAVAILABLE" && r.Header.Get("Retry-After") != "":
			busy++
		default:
			t.Errorf("upload %d: %v, want 400 INVALID_UPDATE or 503 UNAVAILABLE with Retry-After", i, r)
		}
	}
	t.Logf("%d uploads refused after validation, %d turned away (budget full)", refused, busy)
	if refused == 0 {
		t.Error("no upload was validated at all")
	}
	for _, g := range gs {
		if got := s.get(g.path() + "targets.json").Body; !bytes.Equal(got, before[g.gun]) {
			t.Errorf("%s: targets changed after refused uploads", g.gun)
		}
		g.verify(t, s)
	}
	s.alive()
}

// dbSize is the size of the server's SQLite database, with its WAL.
func dbSize(t *testing.T, dataDir string) int64 {
	t.Helper()
	var n int64
	for _, f := range []string{"signet.db", "signet.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dataDir, f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestKeyFloodBounded is the review's attack on the running server: 200
// unauthenticated GETs of timestamp.key with 800 KB GUNs (which grew the
// database by 306 MB in 5 s) are 400 INVALID_GUN and store nothing; 200
// with distinct valid GUNs make at most the default burst of 100 keys and
// are then 429 TOOMANYREQUESTS with Retry-After.
func TestKeyFloodBounded(t *testing.T) {
	dataDir := t.TempDir()
	s := startServer(t, dataDir)
	g := newGUN("before")
	g.mustPublish(t, s)
	size0 := dbSize(t, dataDir)
	start := time.Now()
	long := strings.Repeat("a", 800<<10)
	for i := range 200 {
		r := s.get(fmt.Sprintf("/v2/%d%s/_trust/tuf/timestamp.key", i, long))
		if r.Status != http.StatusBadRequest || r.Code() != "INVALID_GUN" {
			t.Fatalf("GUN %d of 800 KB: %v", i, r)
		}
	}
	t.Logf("200 GETs with 800 KB GUNs: %v, the database grew by %d bytes", time.Since(start), dbSize(t, dataDir)-size0)
	// Stored, these GUNs would be 160 MB; what the WAL gains meanwhile is
	// the audit log's lease renewals (a page a second), not the requests'.
	if grown := dbSize(t, dataDir) - size0; grown > 1<<20 {
		t.Errorf("the database grew by %d KiB for refused requests", grown>>10)
	}
	made, limited := 0, 0
	for i := range 200 {
		r := s.get(fmt.Sprintf("/v2/example.com/flood/%03d%s/_trust/tuf/timestamp.key", i, strings.Repeat("g", 200)))
		switch {
		case r.Status == 200:
			made++
		case r.Status == http.StatusTooManyRequests && r.Code() == "TOOMANYREQUESTS" && r.Header.Get("Retry-After") != "":
			limited++
		default:
			t.Fatalf("valid GUN %d: %v", i, r)
		}
	}
	grown := dbSize(t, dataDir) - size0
	t.Logf("200 GETs with valid new GUNs: %d keys made, %d limited; the database grew by %d KiB", made, limited, grown>>10)
	// The setup's repository took one key from the burst; a key made
	// during the run may come from the refill (1 a second).
	if made < 99 || made > 99+int(time.Since(start)/time.Second)+1 || made+limited != 200 {
		t.Errorf("%d keys made, %d limited", made, limited)
	}
	if grown > 8<<20 {
		t.Errorf("the database grew by %d KiB", grown>>10)
	}
	g.mustPublish(t, s)
	g.verify(t, s)
	s.alive()
}

// TestSlowBodyOverHTTP2: a body trickling in over HTTP/2 (which docker and
// notary speak to a TLS server) is refused once the grace period is over,
// as over HTTP/1.1, and the connection keeps serving other streams.
func TestSlowBodyOverHTTP2(t *testing.T) {
	dataDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "signet.yaml")
	if err := os.WriteFile(cfg, []byte("limits:\n  body_rate_grace: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dataDir, "--config", cfg)
	g := newGUN("slow")
	g.mustPublish(t, s)
	c := s.newClient(30*time.Second, true)
	body, ct := g.prepare().body()
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for _, b := range body {
			if _, err := pw.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.Base+g.path(), pr)
	req.Header.Set("Content-Type", ct)
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("slow upload over HTTP/2: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	took := time.Since(start)
	t.Logf("%s answered after %v: %d %s", res.Proto, took, res.StatusCode, b)
	pr.CloseWithError(io.ErrClosedPipe)
	if res.ProtoMajor != 2 {
		t.Errorf("spoke %s, want HTTP/2", res.Proto)
	}
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "too slowly") || took > 10*time.Second {
		t.Errorf("slow upload: %d %s after %v", res.StatusCode, b, took)
	}
	if r, err := tufhttp.Do(t.Context(), c, http.MethodGet, s.Base+g.path()+"timestamp.json", nil, ""); err != nil || r.Status != 200 {
		t.Errorf("GET on the same connection afterwards: %v %v", r, err)
	}
	g.reconcile(t, s)
	g.verify(t, s)
	s.alive()
}
