package soak

// Helpers adapted from internal/e2e/crash (test files cannot be imported).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
		fmt.Println("the soak test reads /proc; skipped")
		return 0
	}
	return m.Run()
}

// server is one run of the signet-server subprocess.
type server struct{ *e2etest.Server }

// startServer runs signet-server on a free 127.0.0.1 port with dataDir and
// waits (bounded) until it listens.
func startServer(t *testing.T, dataDir string) *server {
	t.Helper()
	return &server{e2etest.Start(t, e2etest.Options{
		DataDir:       dataDir,
		Env:           []string{"SIGNET_KEY_PASSPHRASE=soak-test-passphrase"},
		ClientTimeout: 30 * time.Second, MaxIdleConns: 64, LogTailOnFailure: true,
	})}
}

// rssKiB is the server's resident set size (VmRSS) in KiB.
func (s *server) rssKiB() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.Cmd.Process.Pid)
}

// metric reads one unlabelled value from the server's /metrics.
func (s *server) metric(name string) (float64, error) {
	r, err := tufhttp.Do(s.T.Context(), s.Client, http.MethodGet, s.Base+"/metrics", nil, "")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)`).FindSubmatch(r.Body)
	if m == nil {
		return 0, fmt.Errorf("no %s in /metrics", name)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// gunState is the client side of one GUN, owned by one publisher.
type gunState struct {
	gun     string
	repo    *tuftest.Repo
	version int          // last acknowledged targets version
	acked   atomicTarget // last acknowledged targets bytes, for readers
}

// atomicTarget holds the last acknowledged version for readers.
type atomicTarget struct {
	mu      sync.Mutex
	version int
	targets []byte
}

func (a *atomicTarget) set(v int, b []byte) {
	a.mu.Lock()
	a.version, a.targets = v, b
	a.mu.Unlock()
}

func (a *atomicTarget) get() (int, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version, a.targets
}

func (g *gunState) path() string { return "/v2/" + g.gun + "/_trust/tuf/" }

// keep is how many targets each GUN lists: older ones are removed, so
// metadata sizes stay constant over the run.
const keep = 16

// init fetches the server's timestamp key and starts the repository.
func (g *gunState) init(t *testing.T, s *server) {
	r, err := tufhttp.Do(t.Context(), s.Client, http.MethodGet, s.Base+g.path()+"timestamp.key", nil, "")
	if err != nil || r.Status != 200 {
		t.Fatalf("%s: GET timestamp.key: %v %v", g.gun, r, err)
	}
	var k keys.PublicKey
	if err := json.Unmarshal(r.Body, &k); err != nil {
		t.Fatalf("timestamp key %s: %v", r.Body, err)
	}
	g.repo = tuftest.NewRepo(t, g.gun, time.Now())
	g.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: &k})
}

// next signs the next publish and returns its multipart body.
func (g *gunState) next() (n int, targets []byte, body []byte, contentType string) {
	r := g.repo
	n = g.version + 1
	if n > 1 {
		r.Bump(tuf.RoleTargets)
		r.Bump(tuf.RoleSnapshot)
	}
	r.AddTarget(tuf.RoleTargets, fmt.Sprintf("v%d", n), []byte(fmt.Sprintf("%s v%d", g.gun, n)))
	delete(r.Targets[tuf.RoleTargets].Targets, fmt.Sprintf("v%d", n-keep))
	var parts []tufhttp.Part
	if n == 1 {
		r.SignAll()
		parts = append(parts, tufhttp.Part{Role: tuf.RoleRoot, Data: r.Signed[tuf.RoleRoot]})
	} else {
		r.Sign(tuf.RoleTargets)
		r.SignSnapshot()
	}
	parts = append(parts, tufhttp.Part{Role: tuf.RoleTargets, Data: r.Signed[tuf.RoleTargets]}, tufhttp.Part{Role: tuf.RoleSnapshot, Data: r.Signed[tuf.RoleSnapshot]})
	body, contentType = tufhttp.Upload(parts...)
	return n, r.Signed[tuf.RoleTargets], body, contentType
}

// verifyRepo downloads gun from s as the notary client does and verifies
// it (tufhttp.VerifyRepo).
func verifyRepo(t *testing.T, s *server, gun string) *trust.Repo {
	t.Helper()
	return tufhttp.VerifyRepo(t, s.Client, s.Base, gun)
}
