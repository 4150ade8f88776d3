package ui_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/signet-trust/signet/internal/audit"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/record"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
	"github.com/signet-trust/signet/internal/ui"
)

// The service's dependencies the dashboard's tests never reach: requests
// are stored directly, and no approval here is the final one.
type noKeys struct{}

func (noKeys) CreateKey(context.Context, custody.Spec) (custody.Key, error) {
	return custody.Key{}, errors.New("no keys in this test")
}
func (noKeys) ImportKey(context.Context, custody.Spec, crypto.Signer) (custody.Key, error) {
	return custody.Key{}, errors.New("no keys in this test")
}
func (noKeys) Signer(context.Context, string, string) (crypto.Signer, error) {
	return nil, errors.New("no keys in this test")
}
func (noKeys) RetireKey(context.Context, string) (custody.Key, error) {
	return custody.Key{}, errors.New("no keys in this test")
}

type noRepos struct{}

func (noRepos) Current(context.Context, string, string) ([]byte, error) {
	return nil, store.ErrNotFound
}
func (noRepos) SnapshotManaged(context.Context, string) (bool, error) { return false, nil }
func (noRepos) Publish(context.Context, string, map[string][]byte) ([]store.File, error) {
	return nil, errors.New("no publishing in this test")
}

type noImages struct{}

func (noImages) Parse(string) (service.ImageName, error) {
	return service.ImageName{}, errors.New("none")
}
func (noImages) Resolve(context.Context, string) (service.Manifest, error) {
	return service.Manifest{}, errors.New("none")
}

const (
	password = "correct horse battery"
	xss      = `<script>alert(1)</script>`
)

type fixture struct {
	t   *testing.T
	st  *sqlstore.Store
	ui  *ui.UI
	srv *httptest.Server
	now time.Time
}

func newFixture(t *testing.T, limit ratelimit.Limit) *fixture {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The audit log, integrating what the service commits.
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.New(audit.Config{Store: st.AuditLog(), Origin: "signet.test/audit", Signer: key, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); alog.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	svc, err := service.New(service.Config{Store: st, Keys: noKeys{}, Repos: noRepos{}, Images: noImages{}, AuditKick: alog.Kick})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	hash := service.HashPassword(password)
	for _, u := range []record.User{
		{Name: "alice", PasswordHash: hash}, {Name: "bob", PasswordHash: hash}, {Name: "carol", PasswordHash: hash},
		{Name: "root", PasswordHash: hash, Admin: true}, {Name: "tokenonly"},
	} {
		u.Created, u.Updated = now, now
		if err := st.CreateUser(ctx, u, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	proj := record.Project{Name: "app", Repository: "example.com/app", Signer: "ci", KeyID: "k1", Managers: []string{"alice"}, RateLimit: 10, Created: now, Updated: now}
	if err := st.CreateProject(ctx, proj, nil, nil); err != nil {
		t.Fatal(err)
	}
	pol := record.Policy{Project: "app", Name: "release", Required: 2, Approvers: []string{"alice", "bob"}, Submitters: []string{"carol"},
		Formats: []record.Format{record.FormatDCT}, Created: now, Updated: now}
	if err := st.CreatePolicy(ctx, pol, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"} {
		r := record.Request{ID: id, Project: "app", Policy: "release", Status: record.StatusAwaitingApproval, Submitter: "carol",
			Images:  []record.Image{{Ref: "example.com/app:" + xss, GUN: "example.com/app", Tag: xss, Digest: "sha256:" + strings.Repeat("ab", 32), Size: 1234}},
			Formats: []record.Format{record.FormatDCT}, Created: now, Updated: now, Expires: now.Add(time.Hour)}
		if _, _, err := st.CreateRequest(ctx, r, record.Effects{}); err != nil {
			t.Fatal(err)
		}
	}
	// Two repositories: one ordinary, one whose name and tag are script.
	for _, gun := range []string{"example.com/app", "example.com/" + xss} {
		repo := tuftest.NewRepo(t, gun, now)
		repo.Delegate("targets/releases", []string{""})
		repo.Delegate("targets/ci", []string{""})
		repo.AddTarget("targets/releases", "v1", []byte("manifest one"))
		repo.AddTarget("targets/ci", "v1", []byte("manifest one"))
		repo.AddTarget("targets/releases", "v2", []byte("manifest two"))
		repo.AddTarget("targets/ci", "v2", []byte("something else"))
		repo.AddTarget("targets/ci", xss, []byte("manifest xss"))
		repo.SignAll()
		var files []store.File
		for role, b := range repo.Signed {
			c, err := tuf.Peek(b)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, store.File{Role: role, Version: c.Version, Data: b, Expires: c.Expires})
		}
		if err := st.UpdateMany(ctx, gun, files); err != nil {
			t.Fatal(err)
		}
	}
	if limit == (ratelimit.Limit{}) {
		limit = ratelimit.Limit{Rate: -1}
	}
	u, err := ui.New(ui.Config{Service: svc, Meta: st, Repos: st, Audit: alog, AuditEntries: st.AuditLog(), Logger: slog.New(slog.NewTextHandler(tlog{t}, nil)), LoginsPerUser: limit, LoginsPerAddress: ratelimit.Limit{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, st: st, ui: u, srv: srv, now: now}
}

// browser carries cookies by hand: the dashboard's are Secure, which a
// cookie jar would not send over the test's plain HTTP.
type browser struct {
	f       *fixture
	cookies map[string]string
}

func (f *fixture) browser() *browser { return &browser{f: f, cookies: map[string]string{}} }

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.f.srv.URL+path, body)
	if err != nil {
		b.f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck.Value
		}
	}
	return resp, string(data)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

func (b *browser) login(user, pw string) (*http.Response, string) {
	_, page := b.do("GET", "/ui/login", nil)
	return b.do("POST", "/ui/login", url.Values{"csrf": {csrfOf(b.f.t, page)}, "username": {user}, "password": {pw}})
}

func (b *browser) loggedIn(user string) *browser {
	resp, body := b.login(user, password)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		b.f.t.Fatalf("login as %s: %d %s", user, resp.StatusCode, body)
	}
	return b
}

func TestNoSessionRedirectsToLogin(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	b := f.browser()
	for _, p := range []string{"/ui/", "/ui/requests", "/ui/requests/x", "/ui/repositories", "/ui/repositories/example.com/app", "/ui/audit", "/ui/projects", "/ui/users", "/ui/nothing"} {
		resp, _ := b.do("GET", p, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s without a session: %d to %q, want 303 to /ui/login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := b.do("POST", "/ui/requests/01900000-0000-7000-8000-000000000001/approve", url.Values{"csrf": {"x"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST approve without a session: %d, want 303", resp.StatusCode)
	}
	// A forged cookie is no session.
	b.cookies["__Host-signet_session"] = "forged"
	if resp, _ := b.do("GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /ui/ with a forged session: %d, want 303", resp.StatusCode)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	b := f.browser()
	resp, page := b.do("GET", "/ui/login", nil)
	checkHeaders(t, resp)
	if !strings.Contains(page, `name="username"`) || !strings.Contains(page, `name="password"`) {
		t.Fatalf("the login page has no username and password inputs:\n%s", page)
	}
	for _, tc := range []struct{ user, pw string }{{"alice", "wrong password!"}, {"nobody", password}, {"tokenonly", ""}, {"tokenonly", password}} {
		resp, page := b.login(tc.user, tc.pw)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong user name or password.") {
			t.Errorf("login %s/%q: %d, want 401 with the error on the login page", tc.user, tc.pw, resp.StatusCode)
		}
		if _, ok := b.cookies["__Host-signet_session"]; ok {
			t.Fatalf("login %s/%q set a session cookie", tc.user, tc.pw)
		}
	}
	// Without the login form's token the login is refused, even with
	// the right password.
	resp, _ = b.do("POST", "/ui/login", url.Values{"username": {"alice"}, "password": {password}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the form's token: %d, want 403", resp.StatusCode)
	}
	resp, _ = b.login("alice", password)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-signet_session" {
			sc = c
		}
	}
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.MaxAge <= 0 || sc.Path != "/" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, expiring, path /", sc)
	}
	resp, page = b.do("GET", "/ui/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("dashboard: %d", resp.StatusCode)
	}
	checkHeaders(t, resp)
	for _, link := range []string{">Requests</a>", ">Repositories</a>", ">Audit</a>"} {
		if !strings.Contains(page, link) {
			t.Errorf("the dashboard has no link %s", link)
		}
	}
	if strings.Contains(page, ">Users</a>") {
		t.Errorf("a user who is not an admin sees the Users link")
	}
	// Log out: the POST needs the CSRF token; afterwards the cookie is
	// no session.
	old := b.cookies["__Host-signet_session"]
	if resp, _ := b.do("POST", "/ui/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ = b.do("POST", "/ui/logout", url.Values{"csrf": {csrfOf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	b.cookies["__Host-signet_session"] = old
	if resp, _ := b.do("GET", "/ui/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the session still works after logout: %d", resp.StatusCode)
	}
}

func checkHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q is not strict", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options %q, want DENY", resp.Header.Get("X-Frame-Options"))
	}
}

func TestLoginRateLimited(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{Rate: 0.001, Burst: 3})
	b := f.browser()
	for i := range 3 {
		if resp, _ := b.login("alice", "wrong password!"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp, page := b.login("alice", password)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many login attempts") {
		t.Fatalf("fourth attempt: %d, want 429 with Retry-After", resp.StatusCode)
	}
	// Another user is not limited by alice's attempts.
	f.browser().loggedIn("bob")
}

func TestApproveAndDeny(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	const id1, id2 = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"
	alice := f.browser().loggedIn("alice")
	_, page := alice.do("GET", "/ui/", nil)
	if !strings.Contains(page, "/ui/requests/"+id1) || !strings.Contains(page, ">Approve…</a>") {
		t.Fatalf("the dashboard does not offer alice the request awaiting her approval:\n%s", page)
	}
	if strings.Contains(page, xss) {
		t.Fatalf("the dashboard shows the tag unescaped")
	}
	csrf := csrfOf(t, page)
	// A POST without the CSRF token changes nothing.
	resp, _ := alice.do("POST", "/ui/requests/"+id1+"/approve", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("approve without CSRF: %d, want 403", resp.StatusCode)
	}
	resp, _ = alice.do("POST", "/ui/requests/"+id1+"/approve", url.Values{"csrf": {"not the token"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("approve with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	r, _ := f.st.GetRequest(t.Context(), id1)
	if len(r.Approvals) != 0 {
		t.Fatalf("a refused POST approved the request: %+v", r.Approvals)
	}
	// Step-up: without the password again, or with a wrong one, nothing
	// is approved.
	resp, page = alice.do("POST", "/ui/requests/"+id1+"/approve", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "asks for your password again") {
		t.Fatalf("approve without the password: %d, want 401 asking for it", resp.StatusCode)
	}
	resp, page = alice.do("POST", "/ui/requests/"+id1+"/approve", url.Values{"csrf": {csrf}, "password": {"not alice's password"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "The password is wrong: nothing was approved.") {
		t.Fatalf("approve with a wrong password: %d, want 401", resp.StatusCode)
	}
	if r, _ := f.st.GetRequest(t.Context(), id1); len(r.Approvals) != 0 {
		t.Fatalf("an approval without the right password was recorded: %+v", r.Approvals)
	}
	resp, _ = alice.do("POST", "/ui/requests/"+id1+"/approve", url.Values{"csrf": {csrf}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	r, _ = f.st.GetRequest(t.Context(), id1)
	if len(r.Approvals) != 1 || r.Approvals[0].User != "alice" || r.Status != record.StatusAwaitingApproval {
		t.Fatalf("after alice's approval: %+v", r)
	}
	_, page = alice.do("GET", "/ui/requests/"+id1, nil)
	if !strings.Contains(page, "1 of 2") || strings.Contains(page, `id="approve"`) {
		t.Errorf("the request page after approving: want 1 of 2 and no second Approve")
	}
	// The submitter may not approve: the service's own check.
	carol := f.browser().loggedIn("carol")
	_, page = carol.do("GET", "/ui/requests/"+id2, nil)
	if strings.Contains(page, `id="approve"`) {
		t.Errorf("carol, the submitter and no approver, is offered Approve")
	}
	resp, page = carol.do("POST", "/ui/requests/"+id2+"/approve", url.Values{"csrf": {csrfOf(t, page)}, "password": {password}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not an approver") {
		t.Errorf("carol approving: %d, want 403 with the service's sentence", resp.StatusCode)
	}
	// A denial needs a comment; the comment is shown escaped.
	bob := f.browser().loggedIn("bob")
	_, page = bob.do("GET", "/ui/requests/"+id2, nil)
	csrf = csrfOf(t, page)
	resp, _ = bob.do("POST", "/ui/requests/"+id2+"/deny", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("deny without comment: %d, want 400", resp.StatusCode)
	}
	resp, _ = bob.do("POST", "/ui/requests/"+id2+"/deny", url.Values{"csrf": {csrf}, "comment": {xss}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	r, _ = f.st.GetRequest(t.Context(), id2)
	if r.Status != record.StatusDenied || r.Denials[0].Comment != xss {
		t.Fatalf("after bob's denial: %+v", r)
	}
	_, page = bob.do("GET", "/ui/requests/"+id2, nil)
	if strings.Contains(page, xss) || !strings.Contains(page, html.EscapeString(xss)) {
		t.Errorf("the deny comment is not shown escaped:\n%s", page)
	}
	// A second decision on a denied request is the service's conflict.
	resp, page = alice.do("POST", "/ui/requests/"+id2+"/approve", url.Values{"csrf": {csrfOf(t, page)}, "password": {password}})
	_ = page
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusConflict {
		t.Errorf("approving a denied request: %d", resp.StatusCode)
	}
}

func TestRepositories(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	b := f.browser().loggedIn("alice")
	_, page := b.do("GET", "/ui/repositories", nil)
	if !strings.Contains(page, ">example.com/app</a>") {
		t.Fatalf("the list has no link with the GUN as text:\n%s", page)
	}
	if strings.Contains(page, xss) || !strings.Contains(page, html.EscapeString("example.com/"+xss)) {
		t.Fatalf("the script GUN is not escaped in the list:\n%s", page)
	}
	_, page = b.do("GET", "/ui/repositories?q=app", nil)
	if !strings.Contains(page, ">example.com/app</a>") || strings.Contains(page, "alert") {
		t.Errorf("search app: wrong list:\n%s", page)
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/ui/repositories?q=app", nil)
	_ = req
	resp, page := b.do("GET", "/ui/repositories/example.com/app", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("repository page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{"targets/releases", "targets/ci", "<svg", "releases differs", "timestamp"} {
		if !strings.Contains(page, want) {
			t.Errorf("the repository page lacks %q", want)
		}
	}
	// v1 is signed the same by both; v2 differs (the DCT hole).
	if n := strings.Count(page, `class="tag hole"`); n != 1 {
		t.Errorf("%d tags marked, want 1 (v2)", n)
	}
	resp, page = b.do("GET", "/ui/repositories/example.com/"+url.PathEscape(xss), nil)
	if resp.StatusCode != 200 || strings.Contains(page, xss) || !strings.Contains(page, html.EscapeString(xss)) {
		t.Errorf("the script repository's page: %d, escaped: %v", resp.StatusCode, !strings.Contains(page, xss))
	}
	if resp, _ := b.do("GET", "/ui/repositories/example.com/none", nil); resp.StatusCode != 404 {
		t.Errorf("unknown repository: %d, want 404", resp.StatusCode)
	}
}

func TestAdminPages(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	alice := f.browser().loggedIn("alice")
	if resp, _ := alice.do("GET", "/ui/users", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("users page for a plain user: %d, want 403", resp.StatusCode)
	}
	if resp, _ := alice.do("GET", "/ui/audit", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("audit page for a plain user: %d, want 403", resp.StatusCode)
	}
	root := f.browser().loggedIn("root")
	resp, page := root.do("GET", "/ui/users", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "tokenonly") {
		t.Errorf("users page: %d", resp.StatusCode)
	}
	resp, page = root.do("GET", "/ui/projects", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "docker trust signer add --key ci.pub ci example.com/app") {
		t.Errorf("projects page: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = root.do("GET", "/ui/static/htmx.min.js", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("htmx: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// tlog writes the dashboard's log into the test's.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func TestAuditPage(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	const id1, id2 = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"
	alice := f.browser().loggedIn("alice")
	_, page := alice.do("GET", "/ui/requests/"+id1, nil)
	csrf := csrfOf(t, page)
	alice.do("POST", "/ui/requests/"+id1+"/approve", url.Values{"csrf": {csrf}, "password": {password}})
	alice.do("POST", "/ui/requests/"+id2+"/deny", url.Values{"csrf": {csrf}, "comment": {xss}})
	root := f.browser().loggedIn("root")
	// The entries appear once the log integrated them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, page := root.do("GET", "/ui/audit?type=request.deny&actor=alice", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("audit page: %d\n%s", resp.StatusCode, page)
		}
		if strings.Contains(page, `href="/ui/requests/`+id2+`"`) {
			if strings.Contains(page, xss) || !strings.Contains(page, html.EscapeString(xss)) {
				t.Errorf("the deny comment is not escaped in the audit log")
			}
			if strings.Contains(page, "/ui/requests/"+id1) {
				t.Errorf("the type filter let the approval through")
			}
			if p := html.UnescapeString(page); !strings.Contains(p, "signet audit verify --server ") || !strings.Contains(p, "signet.test/audit+") {
				t.Errorf("the audit page lacks the verify command with the key")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the denial never appeared in the audit page:\n%s", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, page = root.do("GET", "/ui/audit?type=request.approve", nil)
	if !strings.Contains(page, `href="/ui/requests/`+id1+`"`) {
		t.Errorf("the approval is not on the audit page")
	}
	_, page = root.do("GET", "/ui/audit?actor=nobody", nil)
	if !strings.Contains(page, "No entries match.") {
		t.Errorf("a filter that matches nothing shows entries")
	}
	if resp, _ := root.do("GET", "/ui/audit?before=x1", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("before=x1: %d, want 400", resp.StatusCode)
	}
}

func TestNoAuditLog(t *testing.T) {
	st, err := sqlstore.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := service.New(service.Config{Store: st, Keys: noKeys{}, Repos: noRepos{}, Images: noImages{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ui.New(ui.Config{Service: svc, Meta: st, Repos: st, Audit: nil, AuditEntries: st.AuditLog()}); err == nil {
		t.Errorf("ui.New took the log's entries without the log")
	}
	if _, err := ui.New(ui.Config{Service: svc, Repos: st}); err == nil {
		t.Errorf("ui.New took a configuration without the metadata store")
	}
}

func TestAdminForms(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	ctx := t.Context()
	root := f.browser().loggedIn("root")
	_, page := root.do("GET", "/ui/projects", nil)
	csrf := csrfOf(t, page)

	// Without the CSRF token nothing is created.
	if resp, _ := root.do("POST", "/ui/projects/app/policies", url.Values{"name": {"beta"}, "required": {"1"}, "approvers": {"alice"}, "submitters": {"carol"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("create policy without CSRF: %d, want 403", resp.StatusCode)
	}
	// The service's validation, shown on the form; nothing created.
	resp, page := root.do("POST", "/ui/projects/app/policies", url.Values{"csrf": {csrf}, "name": {"beta"}, "required": {"3"}, "approvers": {"alice"}, "submitters": {"carol"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(html.UnescapeString(page), "nobody could ever complete the approval") {
		t.Errorf("a policy needing 3 of 1 approver: %d", resp.StatusCode)
	}
	if resp, _ := root.do("POST", "/ui/projects/app/policies", url.Values{"csrf": {csrf}, "name": {"beta"}, "required": {"x"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("required x: %d, want 400", resp.StatusCode)
	}
	if _, err := f.st.GetPolicy(ctx, "app", "beta"); err == nil {
		t.Fatal("a refused form created the policy")
	}
	resp, _ = root.do("POST", "/ui/projects/app/policies", url.Values{"csrf": {csrf}, "name": {"beta"}, "required": {"1"},
		"approvers": {"alice, bob"}, "submitters": {"carol"}, "tags": {xss}, "formats": {"dct"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create policy: %d", resp.StatusCode)
	}
	pol, err := f.st.GetPolicy(ctx, "app", "beta")
	if err != nil || pol.Required != 1 || strings.Join(pol.Approvers, ",") != "alice,bob" || pol.Tags != xss {
		t.Fatalf("the policy created: %+v %v", pol, err)
	}
	_, page = root.do("GET", "/ui/projects", nil)
	if strings.Contains(page, xss) {
		t.Errorf("the policy's tags are shown unescaped")
	}

	// alice manages the project: she edits its policy; bob may not.
	alice := f.browser().loggedIn("alice")
	_, page = alice.do("GET", "/ui/projects/app/policies/beta", nil)
	resp, _ = alice.do("POST", "/ui/projects/app/policies/beta", url.Values{"csrf": {csrfOf(t, page)}, "required": {"2"}, "approvers": {"alice, bob"}, "submitters": {"carol"}, "tags": {"v.*"}, "formats": {"dct"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit policy: %d", resp.StatusCode)
	}
	if pol, _ := f.st.GetPolicy(ctx, "app", "beta"); pol.Required != 2 || pol.Tags != "v.*" {
		t.Errorf("after the edit: %+v", pol)
	}
	bob := f.browser().loggedIn("bob")
	_, page = bob.do("GET", "/ui/", nil)
	resp, _ = bob.do("POST", "/ui/projects/app/policies/beta", url.Values{"csrf": {csrfOf(t, page)}, "required": {"1"}, "approvers": {"bob"}, "submitters": {"carol"}})
	if resp.StatusCode < 400 {
		t.Errorf("bob, no manager, edited the policy: %d", resp.StatusCode)
	}
	if pol, _ := f.st.GetPolicy(ctx, "app", "beta"); pol.Required != 2 {
		t.Errorf("bob's refused edit changed the policy: %+v", pol)
	}

	// A project with a bad name is refused with the service's sentence.
	resp, page = root.do("POST", "/ui/projects", url.Values{"csrf": {csrf}, "name": {"Bad Name"}, "repository": {"example.com/x"}, "signer": {"ci"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `role="alert"`) {
		t.Errorf("a project named Bad Name: %d", resp.StatusCode)
	}
	if _, err := f.st.GetProject(ctx, "Bad Name"); err == nil {
		t.Errorf("a refused project was created")
	}

	// An admin revokes a user's API token.
	tok := record.Token{ID: "tok1", User: "alice", Description: "laptop", Hash: []byte("0123456789abcdef0123456789abcdef"), Created: f.now}
	if err := f.st.CreateToken(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	_, page = root.do("GET", "/ui/users", nil)
	if !strings.Contains(page, `/ui/users/alice/tokens/tok1/revoke`) {
		t.Fatalf("the users page offers no Revoke for alice's token")
	}
	if resp, _ := root.do("POST", "/ui/users/alice/tokens/tok1/revoke", url.Values{"csrf": {csrfOf(t, page)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	toks, _ := f.st.ListTokens(ctx, "alice")
	if len(toks) != 1 || toks[0].Revoked.IsZero() {
		t.Errorf("alice's token after the revocation: %+v", toks)
	}
}

func TestRepositorySearchFragment(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	b := f.browser().loggedIn("alice")
	req, _ := http.NewRequest("GET", f.srv.URL+"/ui/repositories?q=app", nil)
	req.Header.Set("HX-Request", "true")
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(strings.TrimSpace(page), `<div id="repo-list">`) || strings.Contains(page, "<html") {
		t.Errorf("the search fragment for htmx: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, ">example.com/app</a>") {
		t.Errorf("the fragment lacks the match")
	}
	checkHeaders(t, resp)
}

func TestRequestsAcrossProjects(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	ctx := t.Context()
	now := f.now
	if err := f.st.CreateProject(ctx, record.Project{Name: "lib", Repository: "example.com/lib", Signer: "ci", KeyID: "k2", RateLimit: 10, Created: now, Updated: now}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreatePolicy(ctx, record.Policy{Project: "lib", Name: "release", Required: 1, Approvers: []string{"alice"}, Submitters: []string{"carol"},
		Formats: []record.Format{record.FormatDCT}, Created: now, Updated: now}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// IDs interleave the two projects in time.
	for i, id := range []string{"01900000-0000-7000-8000-000000000003", "01900000-0000-7000-8000-000000000000"} {
		r := record.Request{ID: id, Project: "lib", Policy: "release", Status: record.StatusAwaitingApproval, Submitter: "carol",
			Images:  []record.Image{{Ref: fmt.Sprintf("example.com/lib:v%d", i), GUN: "example.com/lib", Tag: fmt.Sprintf("v%d", i), Digest: "sha256:" + strings.Repeat("cd", 32)}},
			Formats: []record.Format{record.FormatDCT}, Created: now, Updated: now, Expires: now.Add(time.Hour)}
		if _, _, err := f.st.CreateRequest(ctx, r, record.Effects{}); err != nil {
			t.Fatal(err)
		}
	}
	alice := f.browser().loggedIn("alice")
	_, page := alice.do("GET", "/ui/requests", nil)
	ids := regexp.MustCompile(`href="/ui/requests/([0-9a-f-]+)"`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, m := range ids {
		got = append(got, m[1][len(m[1])-1:])
	}
	if strings.Join(got, "") != "3210" {
		t.Errorf("alice's requests over two projects, newest first: %v, want 3 2 1 0", got)
	}
	// bob approves nothing of lib and sees only app's.
	bob := f.browser().loggedIn("bob")
	_, page = bob.do("GET", "/ui/requests", nil)
	if strings.Contains(page, "example.com/lib") {
		t.Errorf("bob sees the requests of a project he has no part in")
	}
}

func TestActivityChart(t *testing.T) {
	f := newFixture(t, ratelimit.Limit{})
	alice := f.browser().loggedIn("alice")
	_, page := alice.do("GET", "/ui/", nil)
	want := fmt.Sprintf("<title>%s: 2 requests</title>", f.now.UTC().Format("Jan 2"))
	if !strings.Contains(page, `<svg class="chart"`) || !strings.Contains(page, want) {
		t.Errorf("the activity chart lacks today's bar %q", want)
	}
	root := f.browser().loggedIn("root")
	if _, page := root.do("GET", "/ui/", nil); !strings.Contains(page, want) {
		t.Errorf("the admin's chart lacks today's bar")
	}
}
