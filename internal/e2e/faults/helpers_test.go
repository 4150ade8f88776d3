package faults

// Helpers adapted from internal/e2e/crash (test files cannot be imported):
// the signet-server subprocess, HTTP and multipart helpers, one GUN's
// publishes, and verification through internal/tuf/trust.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/tufhttp"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if runtime.GOOS != "linux" {
		fmt.Println("fault tests need Linux (tmpfs, /proc); skipped")
		return 0
	}
	return m.Run()
}

// server is one run of the signet-server subprocess.
type server struct {
	*e2etest.Server
	pool *x509.CertPool
}

// startServer runs signet-server on a free 127.0.0.1 port with dataDir and
// further flags, and waits (bounded) until it listens.
func startServer(t *testing.T, dataDir string, flags ...string) *server {
	t.Helper()
	s := &server{Server: e2etest.Start(t, e2etest.Options{
		DataDir: dataDir, Flags: flags,
		Env: []string{"SIGNET_KEY_PASSPHRASE=faults-test-passphrase"}, LogTailOnFailure: true,
	})}
	s.pool = e2etest.CAPool(t, dataDir)
	s.Client = s.newClient(10*time.Second, false)
	return s
}

// newClient makes an HTTPS client trusting the server's CA; http2 asks for
// HTTP/2 (the default Transport with a custom TLS config speaks HTTP/1.1).
func (s *server) newClient(timeout time.Duration, http2 bool) *http.Client {
	c := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: s.pool},
			MaxIdleConnsPerHost: 16,
			ForceAttemptHTTP2:   http2,
		},
	}
	s.T.Cleanup(c.CloseIdleConnections)
	return c
}

// stop kills the server and waits (bounded) for it to exit.
func (s *server) stop() {
	s.T.Helper()
	s.Cmd.Process.Kill()
	select {
	case <-s.Exited:
	case <-time.After(30 * time.Second):
		s.T.Fatal("signet-server still running 30s after SIGKILL")
	}
}

// alive fails the test if the server process has exited.
func (s *server) alive() {
	s.T.Helper()
	select {
	case <-s.Exited:
		s.T.Fatalf("signet-server exited: %v\nstderr:\n%s", s.Cmd.ProcessState, s.Stderr)
	default:
	}
	if strings.Contains(s.Stderr.String(), "panic") {
		s.T.Fatalf("signet-server panicked:\n%s", s.Stderr)
	}
}

// get fetches path (test goroutine only); a transport error fails the test.
func (s *server) get(path string) tufhttp.Response {
	s.T.Helper()
	r, err := tufhttp.Do(s.T.Context(), s.Client, http.MethodGet, s.Base+path, nil, "")
	if err != nil {
		s.T.Fatalf("GET %s: %v", path, err)
	}
	return r
}

// wantUnavailable checks that r is 503 UNAVAILABLE with a Retry-After.
func wantUnavailable(t *testing.T, what string, r tufhttp.Response) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable || r.Code() != "UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: got %v (Retry-After %q), want 503 UNAVAILABLE with Retry-After", what, r, r.Header.Get("Retry-After"))
	}
}

// failedWrite reports whether r is how a publish may fail while the
// database is down: 503 UNAVAILABLE with Retry-After when a read of the
// validation failed, or 500 UPDATING when the write of an accepted upload
// did (docs/notary-compat.md, "503 UNAVAILABLE when a dependency is down").
func failedWrite(r tufhttp.Response) bool {
	return r.Status == http.StatusServiceUnavailable && r.Code() == "UNAVAILABLE" && r.Header.Get("Retry-After") != "" ||
		r.Status == http.StatusInternalServerError && r.Code() == "UPDATING"
}

// version is one publish of a GUN.
type version struct {
	n        int
	root     []byte
	targets  []byte
	snapshot []byte
}

// gunState is the client side of one GUN: its keys and repository, the
// publishes the server confirmed, and the next one (pending) once prepared.
type gunState struct {
	gun     string
	key     []byte
	repo    *tuftest.Repo
	done    []version
	pending *version
	// pad, when > 0, adds a target with a name of this many bytes to each
	// version, to make publishes big.
	pad int
}

func newGUN(name string) *gunState { return &gunState{gun: "example.com/faults/" + name} }

func (g *gunState) path() string { return "/v2/" + g.gun + "/_trust/tuf/" }

func (g *gunState) lastN() int {
	if len(g.done) == 0 {
		return 0
	}
	return g.done[len(g.done)-1].n
}

// fetchKey asks for the server's timestamp key and starts the repository.
func (g *gunState) fetchKey(t *testing.T, c *http.Client, base string) (tufhttp.Response, error) {
	r, err := tufhttp.Do(t.Context(), c, http.MethodGet, base+g.path()+"timestamp.key", nil, "")
	if err != nil || r.Status != 200 {
		return r, err
	}
	var k keys.PublicKey
	if err := json.Unmarshal(r.Body, &k); err != nil {
		t.Fatalf("timestamp key %s: %v", r.Body, err)
	}
	g.key = r.Body
	g.repo = tuftest.NewRepo(t, g.gun, time.Now())
	g.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: &k})
	return r, nil
}

// prepare makes the next publish unless one is pending.
func (g *gunState) prepare() *version {
	if g.pending != nil {
		return g.pending
	}
	r := g.repo
	n := 1
	if len(g.done) > 0 {
		r.Bump(tuf.RoleTargets)
		r.Bump(tuf.RoleSnapshot)
		n = int(r.Targets[tuf.RoleTargets].Version)
	}
	r.AddTarget(tuf.RoleTargets, fmt.Sprintf("v%d", n), []byte(fmt.Sprintf("%s v%d", g.gun, n)))
	if g.pad > 0 {
		name := fmt.Sprintf("pad%d-", n)
		name += strings.Repeat("x", g.pad-len(name))
		r.AddTarget(tuf.RoleTargets, name, []byte(name))
	}
	if n == 1 {
		r.SignAll()
		g.pending = &version{n: 1, root: r.Signed[tuf.RoleRoot], targets: r.Signed[tuf.RoleTargets], snapshot: r.Signed[tuf.RoleSnapshot]}
		return g.pending
	}
	r.Sign(tuf.RoleTargets)
	r.SignSnapshot()
	g.pending = &version{n: n, targets: r.Signed[tuf.RoleTargets], snapshot: r.Signed[tuf.RoleSnapshot]}
	return g.pending
}

func (v *version) body() ([]byte, string) {
	ps := []tufhttp.Part{{Role: tuf.RoleTargets, Data: v.targets}, {Role: tuf.RoleSnapshot, Data: v.snapshot}}
	if v.root != nil {
		ps = append([]tufhttp.Part{{Role: tuf.RoleRoot, Data: v.root}}, ps...)
	}
	return tufhttp.Upload(ps...)
}

// publish sends the pending publish (preparing one if none is); a 200
// moves it to done.
func (g *gunState) publish(ctx context.Context, c *http.Client, base string) (tufhttp.Response, error) {
	body, ct := g.prepare().body()
	r, err := tufhttp.Do(ctx, c, http.MethodPost, base+g.path(), body, ct)
	if err == nil && r.Status == 200 {
		g.done = append(g.done, *g.pending)
		g.pending = nil
	}
	return r, err
}

// mustPublish publishes the next version and fails the test unless the
// server answers 200.
func (g *gunState) mustPublish(t *testing.T, s *server) {
	t.Helper()
	if g.key == nil {
		if r, err := g.fetchKey(t, s.Client, s.Base); err != nil || r.Status != 200 {
			t.Fatalf("%s: GET timestamp.key: %v %v", g.gun, r, err)
		}
	}
	n := g.prepare().n
	if r, err := g.publish(t.Context(), s.Client, s.Base); err != nil || r.Status != 200 {
		t.Fatalf("%s: publish version %d: %v %v", g.gun, n, r, err)
	}
}

// reconcile settles a pending publish whose answer was an error or none:
// the server must hold either all of it (then it counts as done) or none
// of it (then it stays pending); anything else fails the test.
func (g *gunState) reconcile(t *testing.T, s *server) (committed bool) {
	t.Helper()
	if g.pending == nil {
		return false
	}
	r := s.get(g.path() + "targets.json")
	current := 0
	switch r.Status {
	case 200:
		m, err := tuf.ParseTargets(tuf.RoleTargets, r.Body)
		if err != nil {
			t.Fatalf("%s: current targets: %v", g.gun, err)
		}
		current = int(m.Signed.Version)
	case 404:
	default:
		t.Fatalf("%s: GET targets.json: %v", g.gun, r)
	}
	switch current {
	case g.pending.n:
		if !bytes.Equal(r.Body, g.pending.targets) {
			t.Fatalf("%s: targets version %d differs from what was sent", g.gun, current)
		}
		g.done = append(g.done, *g.pending)
		g.pending = nil
		return true
	case g.lastN():
		// Not applied: the version and its snapshot must be absent too.
		if r := s.get(fmt.Sprintf("%s%d.targets.json", g.path(), g.pending.n)); r.Status != 404 {
			t.Fatalf("%s: unapplied targets version %d is retrievable: %v", g.gun, g.pending.n, r)
		}
		return false
	default:
		t.Fatalf("%s: current targets version %d; confirmed %d, in flight %d", g.gun, current, g.lastN(), g.pending.n)
		return false
	}
}

// verify checks the GUN against the running server: the current targets
// are the last confirmed publish, every confirmed version is served byte
// for byte, and the repository verifies through internal/tuf/trust.
func (g *gunState) verify(t *testing.T, s *server) {
	t.Helper()
	if len(g.done) == 0 {
		return
	}
	for _, v := range g.done {
		for role, want := range map[string][]byte{tuf.RoleRoot: v.root, tuf.RoleTargets: v.targets, tuf.RoleSnapshot: v.snapshot} {
			if want == nil {
				continue
			}
			r := s.get(fmt.Sprintf("%s%d.%s.json", g.path(), v.n, role))
			if r.Status != 200 || !bytes.Equal(r.Body, want) {
				t.Fatalf("%s: %s version %d not retrievable: %v", g.gun, role, v.n, r)
			}
		}
	}
	tr := verifyRepo(t, s, g.gun)
	tm := tr.Targets(tuf.RoleTargets).Signed
	if int(tm.Version) != g.lastN() {
		t.Fatalf("%s: verified targets version %d, want %d", g.gun, tm.Version, g.lastN())
	}
	for i := 1; i <= g.lastN(); i++ {
		if _, ok := tm.Targets[fmt.Sprintf("v%d", i)]; !ok {
			t.Fatalf("%s: verified targets lack v%d", g.gun, i)
		}
	}
}

// verifyRepo downloads gun from s as the notary client does and verifies
// it (tufhttp.VerifyRepo).
func verifyRepo(t *testing.T, s *server, gun string) *trust.Repo {
	t.Helper()
	return tufhttp.VerifyRepo(t, s.Client, s.Base, gun)
}

// eventually retries f (bounded) until it returns nil, and returns the
// number of failed tries and the last error.
func eventually(within time.Duration, f func() error) (failures int, err error) {
	deadline := time.Now().Add(within)
	for {
		if err = f(); err == nil {
			return failures, nil
		}
		failures++
		if time.Now().After(deadline) {
			return failures, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgDB is a PostgreSQL database created for one test.
type pgDB struct {
	url   *url.URL // of the test database
	admin *sql.DB  // connected to the test database directly
}

// postgresDB creates a database for the test (see e2etest.PostgresDB) and
// connects to it.
func postgresDB(t *testing.T) *pgDB {
	t.Helper()
	u, err := url.Parse(e2etest.PostgresDB(t, "signet_faults_"))
	if err != nil {
		t.Fatal(err)
	}
	tdb, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tdb.Close() })
	return &pgDB{url: u, admin: tdb}
}

// via returns the database URL with its host replaced by addr.
func (p *pgDB) via(addr string) string {
	u := *p.url
	u.Host = addr
	return u.String()
}
