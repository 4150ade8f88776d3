package ui

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/tuf"
)

const (
	password = "a long browser password"
	rootPass = "e2e-root-passphrase"
	repoPass = "e2e-repository-passphrase"
	// Attacker-controlled text: a deny comment, a repository name and a
	// tag. Each would set window.__pwned if the page ran it.
	xssComment = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>`
	xssGUN     = `example.com/<script>window.__pwned=1</script>`
	xssTag     = `<img src=x onerror=window.__pwned=1>`
)

// TestDashboard drives the dashboard in Chromium against the real server.
func TestDashboard(t *testing.T) {
	e2etest.Need(t, "docker", "notary", "docker-registry")
	chromium := e2etest.ChromiumBin(t)
	admin := token(t)
	reg := e2etest.StartRegistry(t, "")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	s := e2etest.Start(t, e2etest.Options{DataDir: dataDir, LogTailOnFailure: true,
		Env: []string{"SIGNET_ADMIN_TOKEN=" + admin, "SIGNET_KEY_PASSPHRASE=e2e-key-passphrase"}})
	caFile := filepath.Join(dataDir, "tls", "ca.crt")
	ctx := t.Context()
	api := func(tok string) *serviceapi.Client {
		return &serviceapi.Client{Server: s.Base, HTTP: s.Client, Token: tok}
	}
	gun := reg.Host + "/org/app"

	// Users with passwords, a project delegated to with the docker CLI, a
	// policy: alice approves what bob submits.
	users := map[string]string{}
	for _, u := range []serviceapi.CreateUser{{Name: "alice", Password: password}, {Name: "bob", Password: password},
		{Name: "root", Password: password, Admin: true}} {
		c, err := api(admin).CreateUser(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		users[u.Name] = c.Token
	}
	proj, err := api(admin).CreateProject(ctx, serviceapi.CreateProject{Name: "app", Repository: gun, Signer: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "ci.pub")
	if err := os.WriteFile(pub, []byte(proj.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	docker := dockerCommand(t, dir, s.Base, s.Addr, caFile)
	docker.OK(t, "docker", "trust", "signer", "add", "--key", pub, "ci", gun)
	if _, err := api(admin).CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "release",
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"alice"}}, Submitters: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	submit := func(tag string) (id, digest string) {
		digest = push(t, reg.Host, "org/app", tag)
		r, err := api(users["bob"]).Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: gun + ":" + tag, Digest: digest})
		if err != nil {
			t.Fatalf("submit %s: %v", tag, err)
		}
		return r.ID, digest
	}
	approveID, approveDigest := submit("v1.0")
	denyID, _ := submit("v2.0")
	pendingID, _ := submit("v3.0")
	publishXSS(t, s.Base, s.Client)

	// The browser: headless, no sandbox (root), DevTools over a pipe (no
	// port at all), trusting the server's certificate by its public key
	// only.
	spki := serverSPKI(t, s.Addr, caFile)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless,
		chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 4*time.Minute)
	defer cancelT()
	b := &browser{t: t, ctx: bctx, base: s.Base}

	// Without a session every page leads to the login form.
	b.run(chromedp.Navigate(s.Base + "/ui/requests"))
	if loc := b.location(); loc != s.Base+"/ui/login" {
		t.Fatalf("/ui/requests without a session ended at %s, want the login form", loc)
	}
	// A wrong password: the error, on the same page.
	b.login("alice", "not the password")
	b.run(chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if got := b.text("#login-error"); got != "Wrong user name or password." {
		t.Errorf("login error %q", got)
	}
	if loc := b.location(); loc != s.Base+"/ui/login" {
		t.Errorf("after a wrong password the browser is at %s", loc)
	}
	b.screenshot("ui-login.png")

	b.login("alice", password)
	b.run(chromedp.WaitVisible(chromedp.CSS("#mine")))
	if loc := b.location(); loc != s.Base+"/ui/" {
		t.Fatalf("after login the browser is at %s, want the dashboard", loc)
	}
	for _, link := range []string{"Requests", "Repositories", "Audit"} {
		if n := b.eval(fmt.Sprintf(`[...document.querySelectorAll("nav a")].filter(a => a.textContent === %q).length`, link)); n != "1" {
			t.Errorf("the dashboard has %s links with text %s", n, link)
		}
	}
	if !strings.Contains(b.text("main"), "v3.0") {
		t.Errorf("the dashboard does not list the request awaiting alice's approval")
	}

	// Approve in the browser: the service signs; the real notary client
	// sees the tag in both roles.
	b.run(chromedp.Navigate(s.Base+"/ui/requests/"+approveID), chromedp.WaitVisible(chromedp.CSS("#approve")))
	// Approving asks for the password again (step-up).
	b.run(chromedp.SendKeys(chromedp.CSS("#approve-password"), password), chromedp.Click(chromedp.CSS("#approve")))
	b.waitText("#status", "signed")
	b.screenshot("ui-request-signed.png")
	hex := strings.TrimPrefix(approveDigest, "sha256:")
	for _, role := range []string{"targets/ci", "targets/releases"} {
		r := e2etest.Command{Env: e2etest.BaseEnv(dir), Dir: dir}.OK(t, "notary", "-s", s.Base, "--tlscacert", caFile,
			"-d", filepath.Join(dir, "notary"), "list", gun, "--roles", role)
		if !regexp.MustCompile(`(?m)^v1\.0\s+` + hex + `\s+\d+\s+` + regexp.QuoteMeta(role) + `\s*$`).MatchString(r.Stdout) {
			t.Errorf("notary list --roles %s after the browser's approval:\n%s", role, r)
		}
	}

	// Deny with a comment that is script: shown as text, never run.
	b.run(chromedp.Navigate(s.Base+"/ui/requests/"+denyID), chromedp.WaitVisible(chromedp.CSS("#deny-comment")),
		chromedp.SetValue(chromedp.CSS("#deny-comment"), xssComment), chromedp.Click(chromedp.CSS("#deny-button")))
	b.waitText("#status", "denied")
	if got := b.text(".denial .comment"); got != xssComment {
		t.Errorf("the deny comment reads %q, want the text %q", got, xssComment)
	}
	if n := b.eval(`document.querySelectorAll(".denial .comment *").length`); n != "0" {
		t.Errorf("the deny comment made %s elements", n)
	}
	b.notPwned()
	b.screenshot("ui-request-denied.png")
	if r, err := api(admin).GetRequest(ctx, denyID); err != nil || r.Status != "denied" || r.Denials[0].User != "alice" || r.Denials[0].Comment != xssComment {
		t.Errorf("the denied request as the API shows it: %+v %v", r, err)
	}

	// A POST without the form's CSRF token, with alice's session cookie,
	// is refused and changes nothing; a request without a session is
	// sent to the login form.
	var session string
	cs, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.Base + "/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Cookies {
		if c.Name == "__Host-signet_session" {
			session = c.Value
			if !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict", c)
			}
		}
	}
	if session == "" {
		t.Fatal("the browser holds no session cookie")
	}
	noFollow := *s.Client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", s.Base+"/ui/requests/"+pendingID+"/approve", strings.NewReader(url.Values{"comment": {"forged"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "__Host-signet_session", Value: session})
	if resp, err := noFollow.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve without the CSRF token: %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	if r, err := api(admin).GetRequest(ctx, pendingID); err != nil || r.Status != "awaiting_approval" || len(r.Approvals) != 0 {
		t.Errorf("after the CSRF-less POST the request is %+v %v", r, err)
	}
	if resp, err := noFollow.Get(s.Base + "/ui/requests"); err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("GET /ui/requests without a session: %v %v, want 303 to /ui/login", resp, err)
	} else {
		resp.Body.Close()
	}

	// The repository: a link whose text is its GUN, then its tags'
	// digests and signers.
	b.run(chromedp.Navigate(s.Base+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS("#repo-list")))
	b.run(chromedp.Click(chromedp.Search(`//a[text()="`+gun+`"]`)), chromedp.WaitVisible(chromedp.CSS("table.tags")))
	rows := b.eval(`[...document.querySelectorAll("table.tags tbody tr")].map(tr => tr.querySelector(".tagname").textContent.trim() + " " + tr.querySelector(".digest").textContent + " " + [...tr.querySelectorAll(".signer")].map(li => li.textContent.trim()).join(",")).join("\n")`)
	if want := "v1.0 " + hex + " targets/ci,targets/releases"; !strings.Contains(rows, want) {
		t.Errorf("the repository page's tags:\n%s\nwant the line %q", rows, want)
	}
	b.screenshot("ui-repository.png")

	// The search box (htmx, under the strict CSP) finds the repository
	// named with script; its page shows the name and tag as text.
	b.run(chromedp.Navigate(s.Base+"/ui/repositories"), chromedp.WaitVisible(chromedp.CSS("#q")), chromedp.SendKeys(chromedp.CSS("#q"), "script"))
	b.waitEval(`[...document.querySelectorAll("#repo-list a")].map(a => a.textContent).join("|")`, xssGUN)
	b.screenshot("ui-repositories.png")
	b.run(chromedp.Click(chromedp.CSS(`#repo-list a`)), chromedp.WaitVisible(chromedp.CSS("h1.gun")))
	if got := b.text("h1.gun"); got != xssGUN {
		t.Errorf("the repository's heading reads %q, want %q", got, xssGUN)
	}
	if got := b.eval(`document.querySelector("table.tags .tagname").textContent.trim()`); got != xssTag {
		t.Errorf("the tag reads %q, want %q", got, xssTag)
	}
	b.notPwned()

	// Log out; an admin sees the audit log, projects and users.
	b.run(chromedp.Click(chromedp.CSS(`form.logout button`)), chromedp.WaitVisible(chromedp.CSS("#username")))
	b.login("root", password)
	b.run(chromedp.WaitVisible(chromedp.CSS("#mine")))
	b.screenshot("ui-dashboard.png")
	b.run(chromedp.Navigate(s.Base+"/ui/audit"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if strings.Contains(b.text("main"), "keeps no audit log") {
		t.Fatal("the audit page says signet-server keeps no audit log; it keeps one by default")
	}
	// The browser's approval is in the log, as alice's, linked to its request.
	// The page shows what the log has sequenced: load it again until the
	// entry is there (bounded).
	found := `[...document.querySelectorAll("table.audit tr.entry a")].some(a => a.getAttribute("href") === "/ui/requests/` + approveID + `" && a.closest("tr").textContent.includes("alice")) ? "found" : ""`
	for deadline := time.Now().Add(60 * time.Second); ; {
		b.run(chromedp.Navigate(s.Base + "/ui/audit?type=request.approve"))
		if v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](found)); err == nil && fmt.Sprint(v) == "found" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit page does not list alice's approval of %s after 60s", approveID)
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.screenshot("ui-audit.png")
	b.run(chromedp.Navigate(s.Base+"/ui/projects"), chromedp.WaitVisible(chromedp.CSS("pre.command")))
	if got := b.text("pre.command"); got != "docker trust signer add --key ci.pub ci "+gun {
		t.Errorf("the projects page's command: %q", got)
	}
	b.screenshot("ui-projects.png")
	b.run(chromedp.Navigate(s.Base+"/ui/users"), chromedp.WaitVisible(chromedp.CSS("table.users")))
	b.screenshot("ui-users.png")
}

// browser is one Chromium tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *browser) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("chromium: %v", err)
	}
	return loc
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("chromium: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatalf("chromium: %s: %v", js, err)
	}
	return fmt.Sprint(v)
}

// waitEval waits (bounded) until js evaluates to want.
func (b *browser) waitEval(js, want string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		if v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js)); err == nil {
			if got = fmt.Sprint(v); got == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("waited 60s for %s to be %q; it is %q", js, want, got)
}

// waitText waits until the element sel (after any navigation) reads want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.waitEval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel), want)
}

func (b *browser) login(user, pw string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), user), chromedp.SetValue(chromedp.CSS("#password"), pw), chromedp.Click(chromedp.CSS("#login")))
	b.waitEval(`document.readyState === "complete" && (location.pathname !== "/ui/login" || !!document.querySelector("#login-error")) ? "done" : ""`, "done")
}

// notPwned checks that no script of the attacker's ran.
func (b *browser) notPwned() {
	b.t.Helper()
	if got := b.eval(`typeof window.__pwned`); got != "undefined" {
		b.t.Errorf("attacker-controlled text ran as script (window.__pwned is %s)", got)
	}
}

// screenshot writes the page into docs/images/.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("chromium: screenshot: %v", err)
	}
	root, err := e2etest.ModuleRoot()
	if err != nil {
		b.t.Fatal(err)
	}
	dir := filepath.Join(root, "docs", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// serverSPKI is the base64 SHA-256 of the server certificate's public key,
// as Chromium's --ignore-certificate-errors-spki-list takes it.
func serverSPKI(t *testing.T, addr, caFile string) string {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func token(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// dockerCommand is the docker CLI (no daemon) with the server's CA and
// the owner's passphrases.
func dockerCommand(t *testing.T, dir, base, host, caFile string) e2etest.Command {
	t.Helper()
	cfg := filepath.Join(dir, "docker")
	tlsDir := filepath.Join(cfg, "tls", host)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	extra := []string{"DOCKER_CONFIG=" + cfg, "DOCKER_CONTENT_TRUST_SERVER=" + base,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=" + rootPass, "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=" + repoPass, "DOCKER_CLI_HINTS=false"}
	env := append(e2etest.BaseEnv(dir), append(extra, "DOCKER_HOST=unix://"+filepath.Join(dir, "no-docker-daemon.sock"))...)
	return e2etest.Command{Env: env, Extra: extra, Dir: dir}
}

// push pushes a small random image and returns its digest.
func push(t *testing.T, host, repo, tag string) string {
	t.Helper()
	ctx := context.Background()
	r := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: host, Repository: repo}, "push,pull")
	layer := make([]byte, 300)
	rand.Read(layer)
	ld, err := r.PutBlob(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld))
	cd, err := r.PutBlob(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":%q}]}`, len(cfg), cd, len(layer), ld)
	d, _, err := r.PutManifest(ctx, tag, "application/vnd.docker.distribution.manifest.v2+json", []byte(man))
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

type memCache struct{ m map[string][]byte }

func (c *memCache) Get(role string) ([]byte, error) { return c.m[role], nil }
func (c *memCache) Put(role string, b []byte) error { c.m[role] = b; return nil }

type keyring map[string]crypto.Signer

func (k keyring) Signer(_ context.Context, id string) (crypto.Signer, bool, error) {
	s, ok := k[id]
	return s, ok, nil
}

// publishXSS publishes, with the client library as an owner would, a
// repository whose name and tag are script.
func publishXSS(t *testing.T, base string, hc *http.Client) {
	t.Helper()
	ctx := context.Background()
	remote, err := client.NewRemote(base, hc, tuf.GUN(xssGUN))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	targets, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := keys.NewRootCertificate(root, xssGUN, time.Now(), time.Now().Add(24*time.Hour*3650))
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := keys.FromCertificate(cert)
	tk, _ := keys.FromCrypto(targets.Public())
	cache := &memCache{m: map[string][]byte{}}
	if err := client.Initialize(ctx, remote, cache, client.InitOptions{Root: root, RootCert: cert, Targets: targets}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub := &client.Publisher{Reader: &client.Reader{Remote: remote, Cache: cache}, Keys: keyring{rk.CanonicalID(): root, tk.ID(): targets}}
	if err := pub.Publish(ctx, []changes.Change{changes.AddTarget{Role: tuf.RoleTargets, Name: xssTag, Meta: tuf.NewFileMeta([]byte("xss manifest"))}}); err != nil {
		t.Fatal(err)
	}
}
