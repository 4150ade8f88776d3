package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     testing.TB
	srv   *server.Server
	ts    *httptest.Server
	clock *clock
	store *sqlstore.Store
	cust  *custody.Core
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, "sqlite:"+filepath.Join(t.TempDir(), "signet.db"), nil)
}

// newEnvOn starts a server on the database at url; mod, if not nil,
// adjusts its configuration.
func newEnvOn(t testing.TB, url string, mod func(*server.Config)) *env {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC()}
	st, err := sqlstore.Open(ctx, url, sqlstore.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cust, err := custody.Open(ctx, st, []byte("test passphrase"), custody.AlgorithmECDSA, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{
		Store: st, Custodian: cust, Now: clk.Now, MaxUploadBytes: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, srv: srv, ts: hs, clock: clk, store: st, cust: cust}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path string, body io.Reader, contentType string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	r, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b}
}

func (e *env) get(path string) resp { return e.do(http.MethodGet, path, nil, "") }

// part is one file of an upload; filename is what goes into the
// Content-Disposition, normally the role.
type part struct {
	filename string
	data     []byte
}

func multipartBody(t testing.TB, parts ...part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		w, err := mw.CreateFormFile("files", p.filename)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func (e *env) publish(gun string, parts ...part) resp {
	e.t.Helper()
	body, ct := multipartBody(e.t, parts...)
	return e.do(http.MethodPost, "/v2/"+gun+"/_trust/tuf/", body, ct)
}

func roles(r *tuftest.Repo, names ...string) []part {
	var out []part
	for _, n := range names {
		out = append(out, part{n, r.Signed[n]})
	}
	return out
}

// serverKey fetches the server's key for role and returns it.
func (e *env) serverKey(gun, role string) *keys.PublicKey {
	e.t.Helper()
	r := e.get("/v2/" + gun + "/_trust/tuf/" + role + ".key")
	if r.status != 200 {
		e.t.Fatalf("GET %s.key: %d %s", role, r.status, r.body)
	}
	var k keys.PublicKey
	if err := json.Unmarshal(r.body, &k); err != nil {
		e.t.Fatalf("key response %s: %v", r.body, err)
	}
	return &k
}

// newClientRepo makes a repository whose root lists the server's timestamp
// key (and snapshot key when serverSnapshot), as notary and docker do.
func (e *env) newClientRepo(gun string, serverSnapshot bool) *tuftest.Repo {
	e.t.Helper()
	r := tuftest.NewRepo(e.t, gun, e.clock.Now())
	r.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: e.serverKey(gun, tuf.RoleTimestamp)})
	if serverSnapshot {
		r.SetRoleKeys(tuf.RoleSnapshot, tuftest.Key{Key: e.serverKey(gun, tuf.RoleSnapshot)})
	}
	return r
}

// verifyRepo downloads the repository the way the notary client does and
// runs it through the verification state machine.
func (e *env) verifyRepo(gun string) *trust.Repo {
	e.t.Helper()
	v := trust.New(gun, e.clock.Now(), trust.Options{})
	base := "/v2/" + gun + "/_trust/tuf/"
	must := func(err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
	}
	must(v.LoadRoot(e.get(base + "root.json").body))
	must(v.LoadTimestamp(e.get(base + "timestamp.json").body))
	snapMeta := v.Timestamp().Signed.Meta["snapshot"]
	must(v.LoadSnapshot(e.get(fmt.Sprintf("%ssnapshot.%x.json", base, snapMeta.Hashes["sha256"])).body))
	queue := []string{"targets"}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		fm, ok := v.Snapshot().Signed.Meta[role]
		if !ok {
			continue
		}
		must(v.LoadTargets(role, e.get(fmt.Sprintf("%s%s.%x.json", base, role, fm.Hashes["sha256"])).body))
		for _, d := range v.Targets(role).Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	return v
}

func wantError(t *testing.T, r resp, status int, code, detailPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("error Content-Type %q", ct)
	}
	errs, ok := notaryapi.ParseErrors(r.body)
	if !ok || len(errs) != 1 {
		t.Fatalf("not an error envelope: %s", r.body)
	}
	if errs[0].Code != code {
		t.Fatalf("code %s, want %s; body %s", errs[0].Code, code, r.body)
	}
	if errs[0].Message == "" {
		t.Errorf("empty message")
	}
	if !strings.Contains(string(errs[0].Detail), detailPart) {
		t.Fatalf("detail %s does not contain %q", errs[0].Detail, detailPart)
	}
}

const gun = "example.com/test/app"

func TestPublishClientSnapshot(t *testing.T) {
	e := newEnv(t)
	r := e.newClientRepo(gun, false)
	r.AddTarget("targets", "v1", []byte("hello"))
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets", "snapshot")...); got.status != 200 || len(got.body) != 0 {
		t.Fatalf("publish: %d %s", got.status, got.body)
	}
	v := e.verifyRepo(gun)
	if v.Timestamp().Signed.Version != 1 {
		t.Errorf("timestamp version %d", v.Timestamp().Signed.Version)
	}
	for _, role := range []string{"root", "targets", "snapshot"} {
		got := e.get("/v2/" + gun + "/_trust/tuf/" + role + ".json")
		if !bytes.Equal(got.body, r.Signed[role]) {
			t.Errorf("%s not served byte for byte", role)
		}
		if cc := got.header.Get("Cache-Control"); cc != "public, max-age=300, s-maxage=300, must-revalidate" {
			t.Errorf("%s Cache-Control %q", role, cc)
		}
		if _, err := time.Parse(time.RFC1123, got.header.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified: %v", err)
		}
		byVersion := e.get("/v2/" + gun + "/_trust/tuf/1." + role + ".json")
		if !bytes.Equal(byVersion.body, r.Signed[role]) || byVersion.header.Get("Cache-Control") != "public, max-age=2592000, s-maxage=2592000" {
			t.Errorf("%s by version: %d %q", role, byVersion.status, byVersion.header.Get("Cache-Control"))
		}
	}
	// Second publish: new target, client re-signs targets and snapshot.
	r.AddTarget("targets", "v2", []byte("two"))
	r.Bump("targets")
	r.Bump("snapshot")
	r.Sign("targets")
	r.SignSnapshot()
	if got := e.publish(gun, roles(r, "targets", "snapshot")...); got.status != 200 {
		t.Fatalf("second publish: %d %s", got.status, got.body)
	}
	v = e.verifyRepo(gun)
	if _, ok := v.Targets("targets").Signed.Targets["v2"]; !ok || v.Timestamp().Signed.Version != 2 {
		t.Errorf("second publish not visible: timestamp v%d", v.Timestamp().Signed.Version)
	}
	var feed struct {
		Count   int
		Records []struct{ ID, GUN, SHA256, Category string }
	}
	json.Unmarshal(e.get("/v2/"+gun+"/_trust/changefeed?records=10").body, &feed)
	if feed.Count != 2 || feed.Records[1].Category != "update" || feed.Records[1].GUN != gun {
		t.Errorf("changefeed %+v", feed)
	}
	// The timestamp signatures were timed as key-custody operations.
	if m := e.get("/metrics").body; !bytes.Contains(m, []byte(`signet_server_signer_duration_seconds_count{operation="sign"} 2`)) {
		t.Errorf("signer latency not recorded:\n%s", grepLines(string(m), "signer_duration"))
	}
}

func TestPublishServerSnapshotWithDelegations(t *testing.T) {
	e := newEnv(t)
	r := e.newClientRepo(gun, true)
	r.Delegate("targets/releases", []string{""})
	r.Delegate("targets/alice", []string{""})
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets")...); got.status != 200 {
		t.Fatalf("publish: %d %s", got.status, got.body)
	}
	// A delegate, holding only its own key, publishes its roles.
	r.AddTarget("targets/releases", "latest", []byte("img"))
	r.AddTarget("targets/alice", "latest", []byte("img"))
	r.Sign("targets/releases")
	r.Sign("targets/alice")
	if got := e.publish(gun, roles(r, "targets/releases", "targets/alice")...); got.status != 200 {
		t.Fatalf("delegate publish: %d %s", got.status, got.body)
	}
	v := e.verifyRepo(gun)
	if v.Snapshot().Signed.Version != 2 || v.Targets("targets/releases").Signed.Targets["latest"].Length != 3 {
		t.Errorf("snapshot v%d", v.Snapshot().Signed.Version)
	}
}

func TestRejectedUploadsStoreNothing(t *testing.T) {
	e := newEnv(t)
	base := e.newClientRepo(gun, false)
	base.Delegate("targets/team", []string{"team/"})
	base.SignAll()
	if got := e.publish(gun, roles(base, "root", "targets", "targets/team", "snapshot")...); got.status != 200 {
		t.Fatalf("setup publish: %d %s", got.status, got.body)
	}
	before := e.get("/v2/" + gun + "/_trust/tuf/timestamp.json").body

	raw := func(body, ct string) func(*tuftest.Repo) resp {
		return func(*tuftest.Repo) resp {
			return e.do(http.MethodPost, "/v2/"+gun+"/_trust/tuf/", strings.NewReader(body), ct)
		}
	}
	upload := func(names ...string) func(*tuftest.Repo) resp {
		return func(r *tuftest.Repo) resp { return e.publish(gun, roles(r, names...)...) }
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, r *tuftest.Repo)
		send   func(r *tuftest.Repo) resp
		status int
		code   string
		detail string
	}{
		{"not multipart", nil, raw(`{"signed":{}}`, "application/json"), 400, "MALFORMED_UPLOAD", "not a multipart"},
		{"broken multipart", nil, raw("--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n{\"sig", "multipart/form-data; boundary=xyz"), 400, "MALFORMED_UPLOAD", "could not be read"},
		{"empty upload, client-held snapshot", nil, raw("--xyz--\r\n", "multipart/form-data; boundary=xyz"), 400, "INVALID_UPDATE", `"Missing":"snapshot"`},
		{"no filename", nil, func(r *tuftest.Repo) resp {
			return raw("--xyz\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\n{}\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz")(r)
		}, 400, "NO_FILENAME", "{}"},
		{"unknown role", nil, func(r *tuftest.Repo) resp { return e.publish(gun, part{"targets/../root", r.Signed["targets"]}) }, 400, "INVALID_ROLE", `"targets/../root"`},
		{"uppercase role", nil, func(r *tuftest.Repo) resp { return e.publish(gun, part{"targets/Team", r.Signed["targets"]}) }, 400, "INVALID_ROLE", "targets/Team"},
		{"malformed JSON", nil, func(r *tuftest.Repo) resp {
			return e.publish(gun, part{"targets", []byte(`{"signed":{"_type":"Targets",`)})
		}, 400, "MALFORMED_JSON", "targets"},
		{"bad expires", nil, func(r *tuftest.Repo) resp {
			return e.publish(gun, part{"targets", []byte(`{"signed":{"_type":"Targets","expires":"soon","version":3},"signatures":[]}`)})
		}, 400, "MALFORMED_JSON", "targets"},
		{"duplicate role", nil, func(r *tuftest.Repo) resp { return e.publish(gun, roles(r, "targets", "targets")...) }, 400, "MALFORMED_UPLOAD", "twice"},
		{"oversized body", nil, func(r *tuftest.Repo) resp { return e.publish(gun, part{"targets", bytes.Repeat([]byte("x"), 2<<20)}) }, 400, "MALFORMED_UPLOAD", "limit"},
		{"targets signed by wrong key", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("targets")
			r.Sign("targets", tuftest.NewKey(t))
		}, upload("targets"), 400, "INVALID_UPDATE", `"Name":"ErrBadTargets","Error":{"Msg":"valid signatures did not meet threshold for targets"}`},
		{"targets tampered after signing", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("targets")
			r.Signed["targets"] = tuftest.Swizzle(t, r.Sign("targets"), func(s map[string]any) { s["version"] = 9 })
		}, upload("targets"), 400, "INVALID_UPDATE", "ErrBadTargets"},
		{"delegation below threshold", func(t *testing.T, r *tuftest.Repo) {
			k1, k2 := tuftest.NewKey(t), tuftest.NewKey(t)
			r.Delegate("targets/team", []string{"team/"}, k1, k2)
			r.Targets["targets"].Delegations.Roles[0].Threshold = 2
			r.Bump("targets")
			r.Sign("targets")
			r.AddTarget("targets/team", "team/a", []byte("a"))
			r.Sign("targets/team", k1)
		}, upload("targets", "targets/team"), 400, "INVALID_UPDATE", "valid signatures did not meet threshold for targets/team"},
		{"rolled-back version", func(t *testing.T, r *tuftest.Repo) {
			r.AddTarget("targets", "old", []byte("x"))
			r.Sign("targets") // still version 1
			r.Bump("snapshot")
			r.SignSnapshot()
		}, upload("targets", "snapshot"), 400, "VERSION", "{}"},
		{"expired targets", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("targets")
			r.Targets["targets"].Expires = e.clock.Now().Add(-time.Hour)
			r.Sign("targets")
		}, upload("targets"), 400, "INVALID_UPDATE", "targets expired at"},
		{"root certificate for another GUN", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("root")
			old := r.Keys["root"]
			other := tuftest.NewRootKey(t, "example.com/other", e.clock.Now())
			r.SetRoleKeys("root", other)
			r.Sign("root", append(old, other)...)
		}, upload("root"), 400, "INVALID_UPDATE", `is for \"example.com/other\"`},
		{"root rotation not signed by the old root", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("root")
			k := tuftest.NewRootKey(t, gun, e.clock.Now())
			r.SetRoleKeys("root", k)
			r.Sign("root")
		}, upload("root"), 400, "INVALID_UPDATE", "could not rotate trust"},
		{"root version skipped", func(t *testing.T, r *tuftest.Repo) {
			r.Root.Version = 3
			r.Sign("root")
		}, upload("root"), 400, "INVALID_UPDATE", "skips version 2"},
		{"delegate writes outside its paths", func(t *testing.T, r *tuftest.Repo) {
			r.AddTarget("targets/team", "prod/app", []byte("x"))
			r.Sign("targets/team")
		}, upload("targets/team"), 400, "INVALID_UPDATE", `may only sign targets under [\"team/\"], but lists prod/app`},
		{"undelegated role", func(t *testing.T, r *tuftest.Repo) {
			r.Delegate("targets/ghost", []string{""})
			r.Sign("targets/ghost")
		}, upload("targets/ghost"), 400, "INVALID_UPDATE", "not delegated"},
		{"snapshot does not match targets", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("targets")
			r.Bump("snapshot")
			r.SignSnapshot() // lists the old targets
			r.AddTarget("targets", "v9", []byte("x"))
			r.Sign("targets")
		}, upload("targets", "snapshot"), 400, "INVALID_UPDATE", `"Name":"ErrBadSnapshot"`},
		{"no snapshot and server holds no snapshot key", func(t *testing.T, r *tuftest.Repo) {
			r.Bump("targets")
			r.Sign("targets")
		}, upload("targets"), 400, "INVALID_UPDATE", `"Name":"ErrBadHierarchy","Error":{"Missing":"snapshot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			if tt.mutate != nil {
				// Work on a fresh copy of the repository's objects.
				r = cloneRepo(t, base)
				tt.mutate(t, r)
			}
			got := tt.send(r)
			wantError(t, got, tt.status, tt.code, tt.detail)
			after := e.get("/v2/" + gun + "/_trust/tuf/timestamp.json")
			if after.status != 200 || !bytes.Equal(after.body, before) {
				t.Fatalf("repository changed after a rejected upload (or server stopped serving): %d", after.status)
			}
			e.verifyRepo(gun)
		})
	}
}

// cloneRepo deep-copies a test repository by re-parsing its signed files.
func cloneRepo(t *testing.T, r *tuftest.Repo) *tuftest.Repo {
	c := *r
	c.Targets = map[string]*tuf.Targets{}
	c.Keys = map[string][]tuftest.Key{}
	c.Signed = map[string][]byte{}
	for k, v := range r.Keys {
		c.Keys[k] = v
	}
	for k, v := range r.Signed {
		c.Signed[k] = v
	}
	root, _ := tuf.ParseRoot(r.Signed["root"])
	c.Root = root.Signed
	for role := range r.Targets {
		m, err := tuf.ParseTargets(role, r.Signed[role])
		if err != nil {
			t.Fatal(err)
		}
		tg := m.Signed
		c.Targets[role] = &tg
	}
	s, _ := tuf.ParseSnapshot(r.Signed["snapshot"])
	c.Snapshot = s.Signed
	return &c
}

func TestFreshRepositoryNeedsRoot(t *testing.T) {
	e := newEnv(t)
	r := e.newClientRepo(gun, false)
	r.SignAll()
	wantError(t, e.publish(gun, roles(r, "targets", "snapshot")...), 400, "INVALID_UPDATE", "no pre-existing root and no root provided in update.")
	wantError(t, e.get("/v2/"+gun+"/_trust/tuf/root.json"), 404, "METADATA_NOT_FOUND", "{}")
}

func TestKeyEndpointsDoNotMint(t *testing.T) {
	e := newEnv(t)
	k1 := e.serverKey(gun, "timestamp")
	if k2 := e.serverKey(gun, "timestamp"); k2.ID() != k1.ID() {
		t.Fatal("a second GET timestamp.key minted another key")
	}
	raw := e.get("/v2/" + gun + "/_trust/tuf/timestamp.key").body
	if !strings.HasPrefix(string(raw), `{"keytype":"ecdsa","keyval":{"public":"`) || !strings.HasSuffix(string(raw), `","private":null}}`) {
		t.Errorf("key encoding %s", raw)
	}
	r := e.newClientRepo(gun, false)
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets", "snapshot")...); got.status != 200 {
		t.Fatal(string(got.body))
	}
	// Client-held snapshot: the server has no snapshot key and makes none.
	wantError(t, e.get("/v2/"+gun+"/_trust/tuf/snapshot.key"), 404, "METADATA_NOT_FOUND", "key rotate")
	// Rotation: a pending key, returned again until a root lists it.
	p1 := e.do(http.MethodPost, "/v2/"+gun+"/_trust/tuf/snapshot.key", nil, "")
	p2 := e.do(http.MethodPost, "/v2/"+gun+"/_trust/tuf/snapshot.key", nil, "")
	if p1.status != 200 || !bytes.Equal(p1.body, p2.body) {
		t.Fatalf("rotate: %d %s / %s", p1.status, p1.body, p2.body)
	}
	var pending keys.PublicKey
	json.Unmarshal(p1.body, &pending)
	r.SetRoleKeys("snapshot", tuftest.Key{Key: &pending})
	r.Bump("root")
	r.Sign("root")
	if got := e.publish(gun, roles(r, "root")...); got.status != 200 {
		t.Fatalf("publishing root with server snapshot key: %d %s", got.status, got.body)
	}
	v := e.verifyRepo(gun)
	if v.Snapshot().Signatures[0].KeyID != pending.ID() {
		t.Error("snapshot not signed by the rotated server key")
	}
	if e.serverKey(gun, "snapshot").ID() != pending.ID() {
		t.Error("GET snapshot.key does not return the key the root lists")
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	if r := e.get("/v2/"); r.status != 200 || string(r.body) != "{}" {
		t.Errorf("/v2/: %d %s", r.status, r.body)
	}
	wantError(t, e.do(http.MethodPost, "/v2/", nil, ""), 404, "GENERIC_NOT_FOUND", "")
	if r := e.do(http.MethodHead, "/v2/"+gun+"/_trust/tuf/root.json", nil, ""); r.status != 404 {
		t.Errorf("HEAD: %d", r.status)
	}
	for _, p := range []string{"/v2/" + gun + "/_trust/tuf", "/v2/" + gun + "/_trust/tuf/0.root.json", "/nothing",
		"/v2/" + gun + "/_trust/tuf/root." + strings.Repeat("a", 128) + ".json"} {
		wantError(t, e.get(p), 404, "METADATA_NOT_FOUND", "")
	}
	wantError(t, e.get("/v2/_trust/changefeed"), 400, "INVALID_PARAMETERS", "invalid records parameter")
	wantError(t, e.get("/v2/_trust/changefeed?records=10&change_id=x"), 400, "INVALID_PARAMETERS", "change_id")
	if r := e.get("/v2/_trust/changefeed?records=10"); string(r.body) != `{"count":0,"records":null}` {
		t.Errorf("empty changefeed %s", r.body)
	}
	if r := e.get("/_notary_server/health"); r.status != 200 || string(r.body) != "{}" {
		t.Errorf("health %d %s", r.status, r.body)
	}
	if r := e.get("/metrics"); r.status != 200 || !strings.Contains(string(r.body), "signet_server_http_request_duration_seconds") {
		t.Errorf("metrics %d", r.status)
	}
}

// TestChecksumAfterPublish: the files of a publish are served by checksum
// straight after it (the next publish's first reads), exactly as a read
// from the store serves them, and no longer once the repository is deleted.
func TestChecksumAfterPublish(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "signet.db")
	e := newEnvOn(t, url, nil)
	r := e.newClientRepo(gun, false)
	r.AddTarget("targets", "v1", []byte("hello"))
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets", "snapshot")...); got.status != 200 {
		t.Fatalf("publish: %d %s", got.status, got.body)
	}
	path := func(role string) string {
		sum := sha256.Sum256(r.Signed[role])
		return "/v2/" + gun + "/_trust/tuf/" + role + "." + hex.EncodeToString(sum[:]) + ".json"
	}
	hot := map[string]resp{}
	for _, role := range []string{"root", "targets", "snapshot"} {
		got := e.get(path(role))
		if got.status != 200 || !bytes.Equal(got.body, r.Signed[role]) {
			t.Fatalf("%s by checksum after the publish: %d %q", role, got.status, got.body)
		}
		hot[role] = got
	}
	// The same reads from a server that has cached nothing.
	cold := newEnvOn(t, url, nil)
	for role, h := range hot {
		c := cold.get(path(role))
		if c.status != 200 || !bytes.Equal(c.body, h.body) {
			t.Fatalf("%s by checksum from the store: %d", role, c.status)
		}
		for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control", "Last-Modified"} {
			if h.header.Get(k) != c.header.Get(k) {
				t.Errorf("%s by checksum: %s %q after the publish, %q from the store", role, k, h.header.Get(k), c.header.Get(k))
			}
		}
	}
	if got := e.do(http.MethodDelete, "/v2/"+gun+"/_trust/tuf/", nil, ""); got.status != 200 {
		t.Fatalf("delete %d %s", got.status, got.body)
	}
	wantError(t, e.get(path("targets")), 404, "METADATA_NOT_FOUND", "")
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	r := e.newClientRepo(gun, false)
	r.SignAll()
	e.publish(gun, roles(r, "root", "targets", "snapshot")...)
	if got := e.do(http.MethodDelete, "/v2/"+gun+"/_trust/tuf/", nil, ""); got.status != 200 || len(got.body) != 0 {
		t.Fatalf("delete %d %s", got.status, got.body)
	}
	wantError(t, e.get("/v2/"+gun+"/_trust/tuf/timestamp.json"), 404, "METADATA_NOT_FOUND", "")
	wantError(t, e.get("/v2/"+gun+"/_trust/tuf/1.root.json"), 404, "METADATA_NOT_FOUND", "")
	feed := e.get("/v2/_trust/changefeed?records=-1&change_id=-1").body
	if !strings.Contains(string(feed), `"Version":0,"SHA256":"","Category":"deletion"`) {
		t.Errorf("no deletion record: %s", feed)
	}
	// The GUN can be created again from version 1.
	r2 := e.newClientRepo(gun, false)
	r2.SignAll()
	if got := e.publish(gun, roles(r2, "root", "targets", "snapshot")...); got.status != 200 {
		t.Fatalf("re-create: %d %s", got.status, got.body)
	}
}

func TestTimestampRefresh(t *testing.T) {
	e := newEnv(t)
	r := e.newClientRepo(gun, false)
	r.SignAll()
	e.publish(gun, roles(r, "root", "targets", "snapshot")...)
	e.clock.Add(8 * 24 * time.Hour) // inside the refresh window (7 days before expiry)
	if n := server.RefreshDue(e.srv, context.Background()); n != 1 {
		t.Fatalf("refresher re-signed %d repositories, want 1", n)
	}
	v := e.verifyRepo(gun)
	if v.Timestamp().Signed.Version != 2 {
		t.Errorf("timestamp version %d after refresh", v.Timestamp().Signed.Version)
	}
	if n := server.RefreshDue(e.srv, context.Background()); n != 0 {
		t.Errorf("fresh timestamp re-signed again (%d)", n)
	}
	// If the refresher falls behind, a read of an expired timestamp re-signs.
	e.clock.Add(15 * 24 * time.Hour)
	v = e.verifyRepo(gun)
	if v.Timestamp().Signed.Version != 3 {
		t.Errorf("expired timestamp not re-signed on read: version %d", v.Timestamp().Signed.Version)
	}
}

// TestEmptyUploadResigns covers `notary publish` with nothing staged on a
// repository whose snapshot the server signs: the reference re-signs
// snapshot and timestamp and answers 200, and so must we.
func TestEmptyUploadResigns(t *testing.T) {
	e := newEnv(t)
	r := e.newClientRepo(gun, true)
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets")...); got.status != 200 {
		t.Fatalf("publish: %d %s", got.status, got.body)
	}
	if got := e.publish(gun); got.status != 200 {
		t.Fatalf("empty upload: %d %s", got.status, got.body)
	}
	v := e.verifyRepo(gun)
	if v.Snapshot().Signed.Version != 2 || v.Timestamp().Signed.Version != 2 {
		t.Errorf("after empty upload: snapshot v%d timestamp v%d", v.Snapshot().Signed.Version, v.Timestamp().Signed.Version)
	}
	// A repository that does not exist still needs a root.
	wantError(t, e.publish("example.com/none"), 400, "INVALID_UPDATE", "no pre-existing root")
}
