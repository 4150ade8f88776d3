package audit

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"

	_ "modernc.org/sqlite" // registers "sqlite", to tamper with the server's database
)

const (
	rootPass = "root-passphrase-e2e"
	repoPass = "repo-passphrase-e2e"
)

// node is one signet-server with the clients of a test.
type node struct {
	t       *testing.T
	srv     *e2etest.Server
	dataDir string
	caFile  string
	vkey    string
	home    string
	signet  string
	cmd     e2etest.Command
}

var vkeyRE = regexp.MustCompile(`audit log verifier key (\S+)`)

// start runs signet-server on dataDir (a new one when empty) with flags.
func start(t *testing.T, dataDir string, env []string, flags ...string) *node {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s := e2etest.Start(t, e2etest.Options{DataDir: dataDir, Env: env, Flags: flags, LogTailOnFailure: true})
	n := &node{t: t, srv: s, dataDir: dataDir, caFile: filepath.Join(dataDir, "tls", "ca.crt"), home: t.TempDir(), signet: e2etest.Binary(t, "signet")}
	if m := vkeyRE.FindStringSubmatch(s.Stdout.String()); m != nil {
		n.vkey = m[1]
	}
	n.cmd = e2etest.Command{Env: append(e2etest.BaseEnv(n.home),
		"NOTARY_ROOT_PASSPHRASE="+rootPass, "NOTARY_TARGETS_PASSPHRASE="+repoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE="+repoPass, "NOTARY_DELEGATION_PASSPHRASE="+repoPass)}
	return n
}

func (n *node) conn() []string {
	return []string{"-s", n.srv.Base, "--tlscacert", n.caFile, "-d", filepath.Join(n.home, "trust")}
}

func (n *node) notary(args ...string) []string {
	return append(append([]string{"notary"}, n.conn()...), args...)
}

func (n *node) signetArgs(args ...string) []string {
	return append(append([]string{n.signet}, n.conn()...), args...)
}

// get fetches a path of the server.
func (n *node) get(path string) (*http.Response, []byte) {
	n.t.Helper()
	resp, err := n.srv.Client.Get(n.srv.Base + path)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		n.t.Fatal(err)
	}
	return resp, b.Bytes()
}

// row is an entry as `signet audit log -o json` prints it.
type row struct {
	Index uint64          `json:"index"`
	Event json.RawMessage `json:"event"`
	ev    audit.Event
}

// entries waits (bounded) until the verified log holds at least min
// entries and returns them, read and verified by `signet audit log`.
func (n *node) entries(min int) []row {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := n.cmd.OK(n.t, n.signetArgs("audit", "log", "--key", n.vkey, "-o", "json")...)
		var rows []row
		if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
			n.t.Fatalf("signet audit log -o json: %v\n%s", err, r)
		}
		for i := range rows {
			ev, err := audit.ParseEvent(rows[i].Event)
			if err != nil {
				n.t.Fatal(err)
			}
			rows[i].ev = ev
		}
		if len(rows) >= min || time.Now().After(deadline) {
			return rows
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// find returns the entries of typ for gun.
func find(rows []row, typ audit.EventType, gun string) []row {
	var out []row
	for _, r := range rows {
		if r.ev.Type == typ && r.ev.Subject.GUN == gun {
			out = append(out, r)
		}
	}
	return out
}

func roleSHA(ev audit.Event, role string) (string, int64) {
	for _, r := range ev.Roles {
		if r.Role == role {
			return r.SHA256, r.Version
		}
	}
	return "", 0
}

// TestNotaryPublishes: the real notary client's publishes, the server's
// keys and a delete appear in the log, each with the SHA-256 of the bytes
// the server then serves; timestamp.json names its entry; `signet audit
// verify` accepts the log, incrementally on a second run; the read API
// has the cache rules of tlog-tiles.
func TestNotaryPublishes(t *testing.T) {
	e2etest.Need(t, "notary")
	n := start(t, "", nil)
	if n.vkey == "" {
		t.Fatalf("signet-server printed no verifier key:\n%s", n.srv.Stdout)
	}
	if _, b := n.get("/audit/verifier-key"); strings.TrimSpace(string(b)) != n.vkey {
		t.Errorf("/audit/verifier-key = %q, printed %q", b, n.vkey)
	}
	payload := filepath.Join(n.home, "payload.txt")
	if err := os.WriteFile(payload, []byte("audited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const gun = "example.com/audit/app"
	n.cmd.OK(t, n.notary("init", gun)...)
	n.cmd.OK(t, n.notary("add", gun, "v1", payload)...)
	n.cmd.OK(t, n.notary("publish", gun)...)
	n.cmd.OK(t, n.notary("add", gun, "v2", payload)...)
	n.cmd.OK(t, n.notary("publish", gun)...)

	rows := n.entries(4)
	pubs := find(rows, audit.TUFPublish, gun)
	if len(pubs) != 2 {
		t.Fatalf("%d tuf.publish entries of %s, want 2:\n%+v", len(pubs), gun, rows)
	}
	if ks := find(rows, audit.KeyCreate, gun); len(ks) == 0 {
		t.Errorf("no key.create entry for the timestamp key the server made for %s", gun)
	}
	last := pubs[1].ev
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		if role == "root" {
			continue // the second publish does not change the root
		}
		want, v := roleSHA(last, role)
		if want == "" {
			t.Errorf("the second publish's entry has no %s: %+v", role, last.Roles)
			continue
		}
		resp, body := n.get("/v2/" + gun + "/_trust/tuf/" + role + ".json")
		if got := sha(body); got != want {
			t.Errorf("%s.json served has SHA-256 %s, the log says %s (version %d)", role, got, want, v)
		}
		if role == "timestamp" {
			h := resp.Header.Get("Signet-Audit-Index")
			if h != strconv.FormatUint(pubs[1].Index, 10) {
				t.Errorf("timestamp.json: Signet-Audit-Index %q, want %d", h, pubs[1].Index)
			}
		}
	}
	if last.Actor.String() == "" {
		t.Errorf("no actor: %+v", last.Actor)
	}

	// The read API's cache rules.
	resp, _ := n.get("/audit/checkpoint")
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("checkpoint Cache-Control %q", cc)
	}
	resp, _ = n.get("/audit/tile/0/000.p/1")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=10") {
		t.Errorf("partial tile: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	resp, _ = n.get("/audit/tile/entries/000.p/1")
	if resp.StatusCode != 200 {
		t.Errorf("partial entry bundle: %d", resp.StatusCode)
	}
	resp, _ = n.get("/audit/tile/0/001")
	if resp.StatusCode != 404 {
		t.Errorf("a tile the log does not hold: %d, want 404", resp.StatusCode)
	}

	// signet audit verify, twice: the second run checks only what is new.
	state := filepath.Join(n.home, "audit-state.json")
	r := n.cmd.OK(t, n.signetArgs("audit", "verify", "--key", n.vkey, "--state", state)...)
	e2etest.WantOutput(t, r, "verifies", "No checkpoint was remembered")

	// A delete is recorded too.
	n.cmd.OK(t, n.notary("delete", gun, "--remote")...)
	rows = n.entries(len(rows) + 1)
	if len(find(rows, audit.TUFDelete, gun)) != 1 {
		t.Errorf("no tuf.delete entry of %s after notary delete --remote", gun)
	}
	r = n.cmd.OK(t, n.signetArgs("audit", "verify", "--key", n.vkey, "--state", state)...)
	e2etest.WantOutput(t, r, "verifies", "consistent with the checkpoint")
	if !regexp.MustCompile(`, [1-9]\d* of them checked now`).MatchString(r.Stdout) {
		t.Errorf("second verify checked nothing new:\n%s", r)
	}

	// Readiness includes the log's self-check.
	if resp, b := n.get("/_signet/ready"); resp.StatusCode != 200 {
		t.Errorf("/_signet/ready: %d %s", resp.StatusCode, b)
	}
	if _, b := n.get("/metrics"); !strings.Contains(string(b), "\nsignet_audit_healthy 1\n") || !strings.Contains(string(b), "signet_audit_checkpoint_size ") {
		t.Errorf("/metrics lacks the audit log's:\n%s", b)
	}
}

// stop ends the server gracefully and waits (bounded).
func (n *node) stop() {
	n.t.Helper()
	if err := n.srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatal(err)
	}
	select {
	case <-n.srv.Exited:
	case <-time.After(40 * time.Second):
		n.t.Fatal("signet-server still running 40s after SIGTERM")
	}
}

// TestSplitView: a server serving a timestamp its log does not hold is
// caught by signet verify --audit-key and by signet list with audit_key in
// config.json, whether it names no entry or another entry. The timestamp
// is a real one, signed by the server's own key while its log was off (as
// a compromised server would); a proxy in front of it names the entry of
// the previous, logged timestamp.
func TestSplitView(t *testing.T) {
	e2etest.Need(t, "notary")
	dataDir := t.TempDir()
	n := start(t, dataDir, nil)
	payload := filepath.Join(n.home, "payload.txt")
	if err := os.WriteFile(payload, []byte("split view\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const gun = "example.com/audit/split"
	n.cmd.OK(t, n.notary("init", gun)...)
	n.cmd.OK(t, n.notary("add", gun, "v1", payload)...)
	n.cmd.OK(t, n.notary("publish", gun)...)
	vkey := n.vkey
	verify := func(n *node, base, ca string) *e2etest.Result {
		return n.cmd.Run(t, n.signet, "-s", base, "--tlscacert", ca, "-d", filepath.Join(n.home, "trust"),
			"verify", "--audit-key", vkey, gun+":v1")
	}
	if r := verify(n, n.srv.Base, n.caFile); !r.Succeeded() {
		t.Fatalf("signet verify --audit-key of a logged timestamp:\n%s", r)
	}
	// signet list with the key in config.json.
	cfg := filepath.Join(n.home, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"audit_key": "`+vkey+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	list := func(n *node, base, ca string) *e2etest.Result {
		return n.cmd.Run(t, n.signet, "-c", cfg, "-s", base, "--tlscacert", ca, "-d", filepath.Join(n.home, "trust"), "list", gun)
	}
	if r := list(n, n.srv.Base, n.caFile); !r.Succeeded() || !strings.Contains(r.Stdout, "v1") {
		t.Fatalf("signet list with audit_key:\n%s", r)
	}
	rows := n.entries(1)
	pubs := find(rows, audit.TUFPublish, gun)
	if len(pubs) != 1 {
		t.Fatalf("%d publish entries of %s", len(pubs), gun)
	}
	n.stop()

	// The same server, its log off, publishes a timestamp it never logs.
	off := filepath.Join(t.TempDir(), "off.yaml")
	if err := os.WriteFile(off, []byte("audit:\n  disabled: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := start(t, dataDir, nil, "--config", off)
	m.home, m.cmd = n.home, n.cmd
	m.cmd.OK(t, m.notary("add", gun, "v2", payload)...)
	m.cmd.OK(t, m.notary("publish", gun)...)
	m.stop()

	// Back with its log on: the timestamp it serves names no entry.
	k := start(t, dataDir, nil)
	k.home, k.cmd = n.home, n.cmd
	if k.vkey != vkey {
		t.Fatalf("the verifier key changed across restarts: %s, then %s", vkey, k.vkey)
	}
	resp, _ := k.get("/v2/" + gun + "/_trust/tuf/timestamp.json")
	if h := resp.Header.Get("Signet-Audit-Index"); h != "" {
		t.Fatalf("an unlogged timestamp served with Signet-Audit-Index %q", h)
	}
	r := verify(k, k.srv.Base, k.caFile)
	if r.Code != 3 {
		t.Fatalf("signet verify --audit-key of an unlogged timestamp: exit %d, want 3:\n%s", r.Code, r)
	}
	e2etest.WantOutput(t, r, "did not name the audit log entry")
	if r := list(k, k.srv.Base, k.caFile); r.Succeeded() {
		t.Fatalf("signet list with audit_key accepted an unlogged timestamp:\n%s", r)
	}

	// A proxy names the entry of the previous (logged) timestamp.
	target, _ := url.Parse(k.srv.Base)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = k.srv.Client.Transport
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.HasSuffix(resp.Request.URL.Path, "/timestamp.json") {
			resp.Header.Set("Signet-Audit-Index", strconv.FormatUint(pubs[0].Index, 10))
		}
		return nil
	}
	proxy := httptest.NewTLSServer(rp)
	defer proxy.Close()
	proxyCA := filepath.Join(t.TempDir(), "proxy-ca.crt")
	if err := os.WriteFile(proxyCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	r = verify(k, proxy.URL, proxyCA)
	if r.Code != 3 {
		t.Fatalf("signet verify --audit-key with a lying Signet-Audit-Index: exit %d, want 3:\n%s", r.Code, r)
	}
	e2etest.WantOutput(t, r, "is not the one its audit log recorded")
}

// post sends body to the append API with token ("" for none).
func (n *node) post(token, contentType string, body []byte) (int, []byte) {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.srv.Base+audit.AppendPath, bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := n.srv.Client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// TestAppendAPI: an authenticated admission event is appended with the
// caller as its actor, whatever the body says; no credentials, a wrong
// token, bad JSON, unknown fields, an oversized body, a wrong content type
// and a type the API does not take are refused, and store nothing: the
// next good event takes the very next index.
func TestAppendAPI(t *testing.T) {
	const admin = "e2e-audit-admin-token-0123456789"
	n := start(t, "", []string{"SIGNET_ADMIN_TOKEN=" + admin})
	good := []byte(`{"type":"admission.deny","actor":{"kind":"user","name":"mallory"},"subject":{"image":"example.com/app:v1","namespace":"prod"},"reason":"unsigned"}`)
	appendOK := func() uint64 {
		t.Helper()
		code, b := n.post(admin, "application/json", good)
		if code != http.StatusCreated {
			t.Fatalf("append: %d %s", code, b)
		}
		var res audit.AppendResponse
		if err := json.Unmarshal(b, &res); err != nil || res.Index == nil {
			t.Fatalf("append answer %s: %v", b, err)
		}
		return *res.Index
	}
	first := appendOK()

	big := append([]byte(`{"type":"admission.deny","subject":{"image":"`), bytes.Repeat([]byte("a"), audit.MaxEntrySize)...)
	big = append(big, `"}}`...)
	for _, c := range []struct {
		name, token, ct string
		body            []byte
		want            int
	}{
		{"no credentials", "", "application/json", good, 401},
		{"a wrong token", "not-a-token", "application/json", good, 401},
		{"not JSON", admin, "application/json", []byte(`{"type":`), 400},
		{"an unknown field", admin, "application/json", []byte(`{"type":"admission.deny","subject":{"image":"x"},"extra":1}`), 400},
		{"no image", admin, "application/json", []byte(`{"type":"admission.deny","subject":{}}`), 400},
		{"two events", admin, "application/json", append(append([]byte{}, good...), good...), 400},
		{"oversized", admin, "application/json", big, 413},
		{"not JSON by type", admin, "text/plain", good, 415},
		{"a TUF event", admin, "application/json", []byte(`{"type":"tuf.delete","subject":{"gun":"example.com/x"}}`), 403},
	} {
		code, b := n.post(c.token, c.ct, c.body)
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, b, c.want)
		}
	}
	if second := appendOK(); second != first+1 {
		t.Errorf("the good appends took indexes %d and %d: something refused was stored in between", first, second)
	}

	// The webhook's own user, as docs/admission.md sets it up.
	c := n.cmd
	c.Env = append(append([]string{}, n.cmd.Env...), "SIGNET_TOKEN="+admin)
	r := c.OK(t, n.signetArgs("admin", "user", "create", "signet-admission")...)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	userTok := strings.TrimSpace(lines[len(lines)-1])
	code, b := n.post(userTok, "application/json", good)
	var res audit.AppendResponse
	if code != http.StatusCreated || json.Unmarshal(b, &res) != nil || res.Index == nil {
		t.Fatalf("append with a user's token: %d %s", code, b)
	}
	rows := n.entries(int(*res.Index) + 1)
	for _, r := range rows {
		if r.Index == *res.Index && r.ev.Actor != (audit.Actor{Kind: audit.ActorUser, Name: "signet-admission"}) {
			t.Errorf("actor %+v, want the user signet-admission", r.ev.Actor)
		}
		if r.Index == first {
			if r.ev.Actor.Kind != audit.ActorSystem || r.ev.Actor.Name != "admin_token" {
				t.Errorf("actor %+v, want the admin token's (the body's is ignored)", r.ev.Actor)
			}
			if r.ev.Reason != "unsigned" || r.ev.Subject.Namespace != "prod" {
				t.Errorf("entry %s", r.Event)
			}
		}
	}
}

// TestKillDuringPublishes: signet-server is killed (SIGKILL) while notary
// clients publish; after a restart the log verifies (consistent with the
// checkpoint seen before the kill) and every publish that was acknowledged
// has its entry, with the targets version it published.
func TestKillDuringPublishes(t *testing.T) {
	e2etest.Need(t, "notary")
	killDuringPublishes(t)
}

// TestKillDuringPublishesPostgres is TestKillDuringPublishes with the
// server on PostgreSQL, in a database made for the test.
func TestKillDuringPublishesPostgres(t *testing.T) {
	e2etest.Need(t, "notary")
	killDuringPublishes(t, "--db", e2etest.PostgresDB(t, "signet_audit_crash_"))
}

func killDuringPublishes(t *testing.T, flags ...string) {
	dataDir := t.TempDir()
	n := start(t, dataDir, nil, flags...)
	state := filepath.Join(n.home, "audit-state.json")
	n.cmd.OK(t, n.signetArgs("audit", "verify", "--key", n.vkey, "--state", state)...)

	const workers = 3
	acked := make([]int, workers) // targets versions acknowledged, per worker
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range workers {
		wk := &node{t: t, srv: n.srv, caFile: n.caFile, home: t.TempDir(), signet: n.signet}
		wk.cmd = n.cmd
		wk.cmd.Env = append(e2etest.BaseEnv(wk.home), n.cmd.Env[len(e2etest.BaseEnv(n.home)):]...)
		payload := filepath.Join(wk.home, "payload.txt")
		if err := os.WriteFile(payload, []byte("storm\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		gun := "example.com/audit/storm" + strconv.Itoa(w)
		wg.Go(func() {
			if r := wk.cmd.Run(t, wk.notary("init", gun)...); !r.Succeeded() {
				t.Errorf("notary init: %s", r)
				return
			}
			for v := 1; ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				if r := wk.cmd.Run(t, wk.notary("add", gun, "t"+strconv.Itoa(v), payload)...); !r.Succeeded() {
					return
				}
				if r := wk.cmd.Run(t, wk.notary("publish", gun)...); !r.Succeeded() {
					return // the server is gone
				}
				ackMu.Lock()
				acked[w] = v
				ackMu.Unlock()
			}
		})
	}
	// Kill once every worker has had publishes acknowledged, bounded.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		done := true
		for _, dn := range snapshotAcked(acked) {
			done = done && dn >= 2
		}
		if done {
			break
		}
	}
	if err := n.srv.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.srv.Exited
	close(stop)
	wg.Wait()

	k := start(t, dataDir, nil, flags...)
	k.home, k.cmd = n.home, n.cmd
	r := k.cmd.OK(t, k.signetArgs("audit", "verify", "--key", n.vkey, "--state", state)...)
	e2etest.WantOutput(t, r, "verifies", "consistent with the checkpoint")
	acked = snapshotAcked(acked)
	total := 0
	for _, a := range acked {
		total += a
	}
	if total < workers {
		t.Fatalf("only %d publishes were acknowledged before the kill", total)
	}
	// Entries committed with their writes but not integrated before the
	// kill are integrated after the restart: the check is repeated until
	// it holds, bounded.
	var rows []row
	var problems []string
	for deadline := time.Now().Add(20 * time.Second); ; {
		rows, problems = k.entries(total), nil
		for w, a := range acked {
			gun := "example.com/audit/storm" + strconv.Itoa(w)
			// Each publish of notary's makes a new targets version: a
			// acknowledged publishes are a distinct versions logged, and
			// the targets the server now serves (the last one it stored,
			// whether or not its publish was answered) is logged too.
			have := map[string]bool{}
			for _, p := range find(rows, audit.TUFPublish, gun) {
				if sum, v := roleSHA(p.ev, "targets"); v > 0 {
					have[sum] = true
				}
			}
			if len(have) < a {
				problems = append(problems, fmt.Sprintf("%s: %d publishes acknowledged, %d targets versions in the log", gun, a, len(have)))
			}
			_, body := k.get("/v2/" + gun + "/_trust/tuf/targets.json")
			if !have[sha(body)] {
				problems = append(problems, fmt.Sprintf("%s: the targets.json served is in no tuf.publish entry", gun))
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%v publishes acknowledged before the kill; the log holds %d entries", acked, len(rows))
}

// snapshotAcked copies the acknowledged counts the workers write.
func snapshotAcked(acked []int) []int {
	ackMu.Lock()
	defer ackMu.Unlock()
	return append([]int(nil), acked...)
}

var ackMu sync.Mutex

// TestOriginFixed: the checkpoint key and origin made on first start are
// kept; a configured origin other than the log's is refused at start
// with a sentence naming both, and a bad one is a usage error.
func TestOriginFixed(t *testing.T) {
	dataDir := t.TempDir()
	n := start(t, dataDir, nil)
	origin, _, _ := strings.Cut(n.vkey, "+")
	n.stop()

	cfg := filepath.Join(t.TempDir(), "origin.yaml")
	if err := os.WriteFile(cfg, []byte("audit:\n  origin: elsewhere.example/audit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := e2etest.Spawn(t, e2etest.Options{DataDir: dataDir, Flags: []string{"--config", cfg}})
	select {
	case <-s.Exited:
	case <-time.After(30 * time.Second):
		t.Fatal("signet-server started with another audit.origin")
	}
	if code := s.Cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(s.Stderr.String(), `has origin "`+origin+`"`) {
		t.Errorf("another origin: exit %d\n%s", code, s.Stderr)
	}

	if err := os.WriteFile(cfg, []byte("audit:\n  origin: \"has space\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = e2etest.Spawn(t, e2etest.Options{DataDir: dataDir, Flags: []string{"--config", cfg}})
	<-s.Exited
	if code := s.Cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(s.Stderr.String(), "audit.origin") {
		t.Errorf("a bad origin: exit %d\n%s", code, s.Stderr)
	}

	// The same origin, given explicitly, and the same key.
	if err := os.WriteFile(cfg, []byte("audit:\n  origin: "+origin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := start(t, dataDir, nil, "--config", cfg)
	if k.vkey != n.vkey {
		t.Errorf("verifier key after restart %s, was %s", k.vkey, n.vkey)
	}
}

// TestTamperedDatabase: an admin with database access rewrites an entry
// (a publish's actor) while the server is down. At restart the self-check
// finds it: /_signet/ready fails naming the audit log, /metrics says the
// log is unhealthy, the server says so in its log; and a full `signet
// audit verify` exits 3.
func TestTamperedDatabase(t *testing.T) {
	e2etest.Need(t, "notary")
	dataDir := t.TempDir()
	n := start(t, dataDir, nil)
	payload := filepath.Join(n.home, "payload.txt")
	if err := os.WriteFile(payload, []byte("tamper\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const gun = "example.com/audit/tamper"
	n.cmd.OK(t, n.notary("init", gun)...)
	n.cmd.OK(t, n.notary("add", gun, "v1", payload)...)
	n.cmd.OK(t, n.notary("publish", gun)...)
	rows := n.entries(2)
	pubs := find(rows, audit.TUFPublish, gun)
	if len(pubs) != 1 {
		t.Fatalf("%d publish entries", len(pubs))
	}
	state := filepath.Join(n.home, "audit-state.json")
	n.cmd.OK(t, n.signetArgs("audit", "verify", "--key", n.vkey, "--state", state)...)
	n.stop()

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := db.QueryRow(`SELECT data FROM audit_entries WHERE idx = ?`, pubs[0].Index).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(stored, []byte(`"name":"anonymous"`), []byte(`"name":"someone-else"`), 1)
	if bytes.Equal(forged, stored) {
		t.Fatalf("nothing to change in %s", stored)
	}
	res, err := db.Exec(`UPDATE audit_entries SET data = ? WHERE idx = ?`, forged, pubs[0].Index)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("tampering: %v (%d rows)", err, n)
	}
	db.Close()

	k := start(t, dataDir, nil)
	k.home, k.cmd = n.home, n.cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, b := k.get("/_signet/ready")
		if resp.StatusCode == 503 && strings.Contains(string(b), "Audit log") && strings.Contains(string(b), "does not match") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/_signet/ready after tampering: %d %s", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, b := k.get("/metrics"); !strings.Contains(string(b), "\nsignet_audit_healthy 0\n") {
		t.Errorf("/metrics does not show the log unhealthy")
	}
	// A full verification (nothing remembered) reads every entry again.
	r := k.cmd.Run(t, k.signetArgs("audit", "verify", "--key", n.vkey, "--state", filepath.Join(k.home, "fresh-state.json"))...)
	if r.Code != 3 || !strings.Contains(r.Stderr, "entry") {
		t.Errorf("signet audit verify of a tampered log: exit %d, want 3\n%s", r.Code, r)
	}
	if !strings.Contains(k.srv.Stderr.String(), "does not match") {
		t.Errorf("no loud log line about the mismatch:\n%s", k.srv.Stderr)
	}
}
