package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		fmt.Println("crash tests need Unix signals; skipped")
		return 0
	}
	return m.Run()
}

// server is one run of the signet-server subprocess.
type server struct{ *e2etest.Server }

// startServer runs signet-server on a free 127.0.0.1 port with dataDir
// (and any further flags, such as --db) and waits (bounded) until it
// listens. The passphrase is the one the server generates into dataDir on
// its first start.
func startServer(t *testing.T, dataDir string, flags ...string) *server {
	t.Helper()
	return &server{e2etest.Start(t, e2etest.Options{DataDir: dataDir, Flags: flags})}
}

// signal sends sig and waits (bounded) for the process to exit.
func (s *server) signal(sig os.Signal) {
	s.T.Helper()
	if err := s.Cmd.Process.Signal(sig); err != nil {
		s.T.Fatal(err)
	}
	select {
	case <-s.Exited:
	case <-time.After(40 * time.Second):
		s.T.Fatalf("signet-server still running 40s after %v", sig)
	}
}

// get fetches path from the server (test goroutine only).
func (s *server) get(path string) (int, []byte) {
	s.T.Helper()
	r := tufhttp.Get(s.T, s.Client, s.Base+path)
	return r.Status, r.Body
}

// version is one publish of a GUN: the targets and snapshot bytes of a
// targets version (and the root for version 1).
type version struct {
	n        int
	root     []byte
	targets  []byte
	snapshot []byte
	acked    bool // answered 200 (false: found committed after a crash)
}

// gunState is the client side of one GUN: its keys and repository, the
// publishes the server confirmed, and the one sent without an answer.
type gunState struct {
	gun     string
	key     []byte // the server's timestamp key, as GET timestamp.key answered
	repo    *tuftest.Repo
	done    []version // confirmed, oldest first
	pending *version  // sent, not answered
}

// lastN is the last confirmed targets version, 0 for none.
func (g *gunState) lastN() int {
	if v := g.last(); v != nil {
		return v.n
	}
	return 0
}

func (g *gunState) last() *version {
	if len(g.done) == 0 {
		return nil
	}
	return &g.done[len(g.done)-1]
}

// prepare makes the next publish: version 1 with root, targets and a
// client-held snapshot, then each time a new target in a new targets
// version and a new snapshot, as `notary publish` does.
func (g *gunState) prepare() {
	r := g.repo
	if g.last() == nil {
		r.AddTarget(tuf.RoleTargets, "v1", []byte(g.gun+" v1"))
		r.SignAll()
		g.pending = &version{n: 1, root: r.Signed[tuf.RoleRoot], targets: r.Signed[tuf.RoleTargets], snapshot: r.Signed[tuf.RoleSnapshot]}
		return
	}
	r.Bump(tuf.RoleTargets)
	r.Bump(tuf.RoleSnapshot)
	n := int(r.Targets[tuf.RoleTargets].Version)
	r.AddTarget(tuf.RoleTargets, fmt.Sprintf("v%d", n), []byte(fmt.Sprintf("%s v%d", g.gun, n)))
	r.Sign(tuf.RoleTargets)
	r.SignSnapshot()
	g.pending = &version{n: n, targets: r.Signed[tuf.RoleTargets], snapshot: r.Signed[tuf.RoleSnapshot]}
}

func (v *version) parts() []tufhttp.Part {
	ps := []tufhttp.Part{{Role: tuf.RoleTargets, Data: v.targets}, {Role: tuf.RoleSnapshot, Data: v.snapshot}}
	if v.root != nil {
		ps = append([]tufhttp.Part{{Role: tuf.RoleRoot, Data: v.root}}, ps...)
	}
	return ps
}

// errTransport marks a request that got no answer (the server went away).
var errTransport = errors.New("no answer")

// step does the GUN's next request: fetch the timestamp key if it has none,
// else send the pending publish (preparing one if none is pending). It
// returns errTransport when the request got no answer.
func (g *gunState) step(ctx context.Context, t *testing.T, c *http.Client, base string) error {
	path := base + "/v2/" + g.gun + "/_trust/tuf/"
	if g.key == nil {
		r, err := tufhttp.Do(ctx, c, http.MethodGet, path+"timestamp.key", nil, "")
		status, body := r.Status, r.Body
		if err != nil {
			return fmt.Errorf("%w: %v", errTransport, err)
		}
		if status != 200 {
			return fmt.Errorf("GET %s timestamp.key: %d %s", g.gun, status, body)
		}
		var k keys.PublicKey
		if err := json.Unmarshal(body, &k); err != nil {
			return fmt.Errorf("timestamp key %s: %v", body, err)
		}
		g.key = body
		g.repo = tuftest.NewRepo(t, g.gun, time.Now())
		g.repo.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: &k})
		return nil
	}
	if g.pending == nil {
		g.prepare()
	}
	body, ct := tufhttp.Upload(g.pending.parts()...)
	r, err := tufhttp.Do(ctx, c, http.MethodPost, path, body, ct)
	status, resp := r.Status, r.Body
	if err != nil {
		return fmt.Errorf("%w: %v", errTransport, err)
	}
	if status != 200 {
		return fmt.Errorf("publish %s version %d: %d %s", g.gun, g.pending.n, status, resp)
	}
	g.pending.acked = true
	g.done = append(g.done, *g.pending)
	g.pending = nil
	return nil
}

// stream runs one worker per GUN until each gets no answer (the server went
// away) or stop is closed. acks counts the answered publishes.
func stream(t *testing.T, s *server, guns []*gunState, acks *atomic.Int64, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for _, g := range guns {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := len(g.done)
				err := g.step(t.Context(), t, s.Client, s.Base)
				if errors.Is(err, errTransport) {
					return
				}
				if err != nil {
					t.Errorf("%v\nserver stderr:\n%s", err, s.Stderr)
					return
				}
				if len(g.done) > before {
					acks.Add(1)
				}
			}
		})
	}
	return wg.Wait
}

// reconcile runs after a restart, before the stream resumes. The server
// must still hold each GUN's acknowledged timestamp key. A publish sent
// without an answer must be either wholly present (then it counts as done)
// or absent (then it is sent again); anything else is a failure. It returns
// how many unanswered publishes were found committed.
func reconcile(t *testing.T, s *server, guns []*gunState) (committed int) {
	t.Helper()
	for _, g := range guns {
		base := "/v2/" + g.gun + "/_trust/tuf/"
		if g.key != nil {
			if status, body := s.get(base + "timestamp.key"); status != 200 || !bytes.Equal(body, g.key) {
				t.Fatalf("%s: the acknowledged timestamp key was lost: %d %s, had %s", g.gun, status, body, g.key)
			}
		}
		if g.pending == nil {
			continue
		}
		status, body := s.get(base + "targets.json")
		current := 0
		switch status {
		case 200:
			m, err := tuf.ParseTargets(tuf.RoleTargets, body)
			if err != nil {
				t.Fatalf("%s: current targets: %v", g.gun, err)
			}
			current = int(m.Signed.Version)
		case 404:
		default:
			t.Fatalf("%s: GET targets.json: %d %s", g.gun, status, body)
		}
		switch {
		case current == g.pending.n:
			if !bytes.Equal(body, g.pending.targets) {
				t.Fatalf("%s: targets version %d differs from what was sent", g.gun, current)
			}
			g.done = append(g.done, *g.pending)
			g.pending = nil
			committed++
		case current == g.lastN():
			// Not applied; the worker sends it again.
		case current < g.lastN():
			t.Fatalf("%s: acknowledged publish lost: current targets version %d, but version %d was acknowledged", g.gun, current, g.lastN())
		default:
			t.Fatalf("%s: current targets version %d; confirmed %d, in flight %d", g.gun, current, g.lastN(), g.pending.n)
		}
	}
	return committed
}

// verify checks every GUN against the running server: the current targets
// are the last confirmed publish, every confirmed version is served byte
// for byte by version, and the repository verifies through internal/tuf/trust.
func verify(t *testing.T, s *server, guns []*gunState) {
	t.Helper()
	for _, g := range guns {
		last := g.last()
		if last == nil {
			continue
		}
		base := "/v2/" + g.gun + "/_trust/tuf/"
		status, body := s.get(base + "targets.json")
		if status != 200 {
			t.Fatalf("%s: GET targets.json: %d %s", g.gun, status, body)
		}
		m, err := tuf.ParseTargets(tuf.RoleTargets, body)
		if err != nil {
			t.Fatal(err)
		}
		if int(m.Signed.Version) < last.n {
			t.Fatalf("%s: current targets version %d, but version %d was acknowledged", g.gun, m.Signed.Version, last.n)
		}
		for _, v := range g.done {
			for role, want := range map[string][]byte{tuf.RoleRoot: v.root, tuf.RoleTargets: v.targets, tuf.RoleSnapshot: v.snapshot} {
				if want == nil {
					continue
				}
				status, got := s.get(fmt.Sprintf("%s%d.%s.json", base, v.n, role))
				if status != 200 || !bytes.Equal(got, want) {
					t.Fatalf("%s: %s version %d (acknowledged %v) not retrievable: %d %.200s", g.gun, role, v.n, v.acked, status, got)
				}
			}
		}
		tr := verifyRepo(t, s, g.gun)
		tm := tr.Targets(tuf.RoleTargets).Signed
		if int(tm.Version) != last.n {
			t.Fatalf("%s: verified targets version %d, want %d", g.gun, tm.Version, last.n)
		}
		for i := 1; i <= last.n; i++ {
			if _, ok := tm.Targets[fmt.Sprintf("v%d", i)]; !ok {
				t.Fatalf("%s: verified targets lack v%d", g.gun, i)
			}
		}
	}
}

// verifyRepo downloads gun from s as the notary client does and verifies
// it (tufhttp.VerifyRepo).
func verifyRepo(t *testing.T, s *server, gun string) *trust.Repo {
	t.Helper()
	return tufhttp.VerifyRepo(t, s.Client, s.Base, gun)
}

func newGUN(i int) *gunState { return &gunState{gun: fmt.Sprintf("example.com/crash/app%d", i)} }

func summary(guns []*gunState) (acked, confirmedLater int) {
	for _, g := range guns {
		for _, v := range g.done {
			if v.acked {
				acked++
			} else {
				confirmedLater++
			}
		}
	}
	return acked, confirmedLater
}

// TestKillMidStream kills signet-server with SIGKILL at a random moment
// during a stream of publishes, several times, and checks after each
// restart that nothing acknowledged was lost.
func TestKillMidStream(t *testing.T) {
	t.Parallel()
	killMidStream(t, t.TempDir())
}

// killMidStream is TestKillMidStream with the server started on dataDir
// with flags.
func killMidStream(t *testing.T, dataDir string, flags ...string) {
	const cycles = 8
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	guns := []*gunState{newGUN(0), newGUN(1), newGUN(2)}
	started := time.Now()
	for cycle := range cycles {
		s := startServer(t, dataDir, flags...)
		reconcile(t, s, guns)
		verify(t, s, guns)
		if t.Failed() {
			return
		}
		// Every cycle a new GUN is created in the stream (its key fetch and
		// first publish may be the requests the kill interrupts).
		guns = append(guns, newGUN(len(guns)))
		var acks atomic.Int64
		stop := make(chan struct{})
		wait := stream(t, s, guns, &acks, stop)
		want := int64(2 + rng.IntN(12))
		deadline := time.Now().Add(10 * time.Second)
		for acks.Load() < want && time.Now().Before(deadline) && !t.Failed() {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(20000)) * time.Microsecond)
		s.signal(syscall.SIGKILL)
		close(stop)
		wait()
		if ws, ok := s.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: signet-server ended with %v, not by SIGKILL\nstderr:\n%s", cycle, s.Cmd.ProcessState, s.Stderr)
		}
		t.Logf("cycle %d: killed after %d acknowledged publishes this cycle", cycle, acks.Load())
	}
	s := startServer(t, dataDir, flags...)
	committed := reconcile(t, s, guns)
	verify(t, s, guns)
	acked, later := summary(guns)
	t.Logf("%d kills, %d GUNs, %d acknowledged publishes, %d unanswered publishes found committed after restart (last restart: %d), %v",
		cycles, len(guns), acked, later, committed, time.Since(started).Round(time.Millisecond))
	if acked == 0 {
		t.Fatal("no publish was acknowledged; the test tested nothing")
	}
}

// TestTermMidStream sends SIGTERM during a stream of publishes: the server
// must finish what it answers, exit 0, say "stopped", and keep everything
// it acknowledged.
func TestTermMidStream(t *testing.T) {
	t.Parallel()
	const cycles = 2
	dataDir := t.TempDir()
	guns := []*gunState{newGUN(0), newGUN(1), newGUN(2), newGUN(3)}
	for cycle := range cycles {
		s := startServer(t, dataDir)
		reconcile(t, s, guns)
		verify(t, s, guns)
		if t.Failed() {
			return
		}
		var acks atomic.Int64
		stop := make(chan struct{})
		wait := stream(t, s, guns, &acks, stop)
		deadline := time.Now().Add(10 * time.Second)
		for acks.Load() < 8 && time.Now().Before(deadline) && !t.Failed() {
			time.Sleep(time.Millisecond)
		}
		s.signal(syscall.SIGTERM)
		close(stop)
		wait()
		if code := s.Cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("cycle %d: exit %v after SIGTERM, want 0\nstderr:\n%s", cycle, s.Cmd.ProcessState, s.Stderr)
		}
		if !strings.Contains(s.Stdout.String(), "signet-server: stopped") {
			t.Errorf("cycle %d: no stopped line:\n%s", cycle, s.Stdout)
		}
		t.Logf("cycle %d: SIGTERM after %d acknowledged publishes this cycle", cycle, acks.Load())
	}
	s := startServer(t, dataDir)
	reconcile(t, s, guns)
	verify(t, s, guns)
	acked, later := summary(guns)
	t.Logf("%d acknowledged publishes, %d unanswered publishes found committed", acked, later)
}
