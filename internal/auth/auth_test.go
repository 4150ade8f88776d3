package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// The reference's challenge and body for POST /v2/example.com/a/_trust/tuf/
// without a token (notary-v1.md §2.12, verified against notary-server).
const (
	refRealm     = "https://127.0.0.1:25001/auth"
	refService   = "notary-test"
	refChallenge = `Bearer realm="https://127.0.0.1:25001/auth",service="notary-test",scope="repository:example.com/a:push,pull"`
	refBody      = `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"example.com/a","Action":"push"},{"Type":"repository","Class":"","Name":"example.com/a","Action":"pull"}]}]}`
)

// stack is a real signet API behind the token authorizer, and an issuer
// whose tokens it trusts.
type stack struct {
	t      *testing.T
	api    http.Handler
	issuer *auth.Issuer
	key    *ecdsa.PrivateKey
	cert   *x509.Certificate
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cust, err := custody.Open(ctx, st, []byte("test passphrase"), custody.AlgorithmECDSA, clock)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "token signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keys := auth.NewTrustedKeys()
	if err := keys.AddCertificate(cert); err != nil {
		t.Fatal(err)
	}
	authz, err := auth.NewAuthorizer(auth.AuthorizerConfig{Realm: refRealm, Service: refService, Issuer: "test-issuer", Keys: keys, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Custodian: cust, Now: clock, Authorizer: authz})
	if err != nil {
		t.Fatal(err)
	}
	is, err := auth.NewIssuer(auth.IssuerConfig{
		Issuer: "test-issuer", Audiences: []string{refService, "registry"}, Users: users(t), Admins: []string{"root"}, AnonymousPull: []string{refService},
		Signer: key, Chain: []*x509.Certificate{cert}, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, api: srv.Handler(), issuer: is, key: key, cert: cert}
}

// users writes an htpasswd file: alice (user) and root (admin), password
// "<name>-pw", hashed at the lowest bcrypt cost to keep the test fast.
func users(t *testing.T) *auth.Htpasswd {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test users\n\n")
	for i, u := range []string{"alice", "root"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hs := string(h)
		if i == 0 {
			hs = "$2y$" + hs[4:] // Apache htpasswd's prefix
		}
		b.WriteString(u + ":" + hs + "\n")
	}
	name := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := auth.OpenHtpasswd(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// token gets a token from the issuer over its HTTP interface.
func (s *stack) token(user, pass, service string, scopes ...string) (string, *httptest.ResponseRecorder) {
	s.t.Helper()
	q := url.Values{"service": {service}, "account": {user}, "scope": scopes}
	r := httptest.NewRequest(http.MethodGet, auth.TokenPath+"?"+q.Encode(), nil)
	r.SetBasicAuth(user, pass)
	w := httptest.NewRecorder()
	s.issuer.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return "", w
	}
	var resp struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		s.t.Fatal(err)
	}
	if resp.Token == "" || resp.Token != resp.AccessToken || resp.ExpiresIn != 300 || resp.IssuedAt != "2026-03-01T12:00:00Z" {
		s.t.Fatalf("token response %s", w.Body)
	}
	return resp.Token, w
}

func (s *stack) do(method, path, token string) *httptest.ResponseRecorder {
	s.t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	s.api.ServeHTTP(w, r)
	return w
}

func TestChallengeMatchesReference(t *testing.T) {
	s := newStack(t)
	w := s.do(http.MethodPost, "/v2/example.com/a/_trust/tuf/", "")
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", w.Code)
	}
	if got := w.Header()["Www-Authenticate"]; len(got) != 1 || got[0] != refChallenge {
		t.Errorf("challenge\n got %q\nwant %q", got, refChallenge)
	}
	if got := w.Body.String(); got != refBody {
		t.Errorf("body\n got %s\nwant %s", got, refBody)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}

	// A valid token without push: the same, with error="insufficient_scope".
	tok, _ := s.token("alice", "alice-pw", refService, "repository:example.com/a:pull")
	w = s.do(http.MethodPost, "/v2/example.com/a/_trust/tuf/", tok)
	if want := refChallenge + `,error="insufficient_scope"`; w.Header().Get("Www-Authenticate") != want || w.Code != 401 {
		t.Errorf("insufficient scope: %d %q, want %q", w.Code, w.Header().Get("Www-Authenticate"), want)
	}
	if w.Body.String() != refBody {
		t.Errorf("insufficient scope body %s", w.Body)
	}

	// A bad token: error="invalid_token"; the reason stays out of the body.
	w = s.do(http.MethodPost, "/v2/example.com/a/_trust/tuf/", tok[:len(tok)-4]+"AAAA")
	if want := refChallenge + `,error="invalid_token"`; w.Header().Get("Www-Authenticate") != want || w.Body.String() != refBody {
		t.Errorf("invalid token: %q %s", w.Header().Get("Www-Authenticate"), w.Body)
	}
	// Basic credentials are not a bearer token.
	r := httptest.NewRequest(http.MethodGet, "/v2/example.com/a/_trust/tuf/root.json", nil)
	r.SetBasicAuth("alice", "alice-pw")
	w = httptest.NewRecorder()
	s.api.ServeHTTP(w, r)
	if w.Code != 401 || strings.Contains(w.Header().Get("Www-Authenticate"), "error=") {
		t.Errorf("basic auth: %d %q", w.Code, w.Header().Get("Www-Authenticate"))
	}
}

func TestRouteScopes(t *testing.T) {
	s := newStack(t)
	const gun = "127.0.0.1:5000/team/app" // a GUN with a port: ':' inside the scope name
	user, _ := s.token("alice", "alice-pw", refService, "repository:"+gun+":pull,push,*", "registry:catalog:*")
	admin, _ := s.token("root", "root-pw", refService, "repository:"+gun+":*", "registry:catalog:*")
	pullOnly, _ := s.token("alice", "alice-pw", refService, "repository:"+gun+":pull")
	otherRepo, _ := s.token("alice", "alice-pw", refService, "repository:127.0.0.1:5000/other:pull,push")
	tuf := "/v2/" + gun + "/_trust/tuf/"

	tests := []struct {
		name, method, path, token string
		want                      int    // status
		scope                     string // challenge scope when 401
		insufficient              bool
	}{
		{"ping without token", "GET", "/v2/", "", 401, "registry:catalog:*", false},
		{"ping: users have no catalog access", "GET", "/v2/", user, 401, "registry:catalog:*", true},
		{"ping: admins do", "GET", "/v2/", admin, 200, "", false},
		{"global changefeed needs catalog *", "GET", "/v2/_trust/changefeed", user, 401, "registry:catalog:*", true},
		{"catch-all needs catalog *", "GET", "/nothing/here", user, 401, "registry:catalog:*", true},
		{"catch-all for admins", "GET", "/nothing/here", admin, 404, "", false},
		{"read with pull", "GET", tuf + "root.json", pullOnly, 404, "", false},
		{"read with another repository's token", "GET", tuf + "root.json", otherRepo, 401, "repository:" + gun + ":pull", true},
		{"GUN changefeed with pull", "GET", "/v2/" + gun + "/_trust/changefeed?records=10", pullOnly, 200, "", false},
		{"GET .key needs push", "GET", tuf + "timestamp.key", pullOnly, 401, "repository:" + gun + ":push,pull", true},
		{"GET .key with push,pull", "GET", tuf + "timestamp.key", user, 200, "", false},
		{"upload needs push", "POST", tuf, pullOnly, 401, "repository:" + gun + ":push,pull", true},
		{"DELETE needs *: pull,push is not enough", "DELETE", tuf, user, 401, "repository:" + gun + ":*", true},
		{"DELETE with * (admin)", "DELETE", tuf, admin, 200, "", false},
		{"key rotation needs *", "POST", tuf + "snapshot.key", user, 401, "repository:" + gun + ":*", true},
		{"health needs nothing", "GET", "/_notary_server/health", "", 200, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := s.do(tc.method, tc.path, tc.token)
			if w.Code != tc.want {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, w.Code, tc.want, w.Body)
			}
			ch := w.Header().Get("Www-Authenticate")
			if tc.want != 401 {
				if ch != "" {
					t.Errorf("challenge %q on an allowed request", ch)
				}
				return
			}
			want := `Bearer realm="` + refRealm + `",service="` + refService + `",scope="` + tc.scope + `"`
			if tc.insufficient {
				want += `,error="insufficient_scope"`
			}
			if ch != want {
				t.Errorf("challenge\n got %s\nwant %s", ch, want)
			}
		})
	}
}

func TestTokenExpiryAtTheServer(t *testing.T) {
	s := newStack(t)
	tok, _ := s.token("alice", "alice-pw", refService, "repository:example.com/a:pull")
	// The token is cached once verified; expiry still applies on each use.
	if w := s.do("GET", "/v2/example.com/a/_trust/tuf/root.json", tok); w.Code != 404 {
		t.Fatalf("fresh token: %d", w.Code)
	}
	defer func(n time.Time) { now = n }(now)
	now = now.Add(5*time.Minute + 61*time.Second)
	w := s.do("GET", "/v2/example.com/a/_trust/tuf/root.json", tok)
	if w.Code != 401 || !strings.HasSuffix(w.Header().Get("Www-Authenticate"), `,error="invalid_token"`) {
		t.Errorf("expired token: %d %q", w.Code, w.Header().Get("Www-Authenticate"))
	}
}

func TestIssuer(t *testing.T) {
	s := newStack(t)
	claimsOf := func(tok string) auth.Claims {
		t.Helper()
		parts := strings.Split(tok, ".")
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c auth.Claims
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	tok, _ := s.token("alice", "alice-pw", "registry", "repository:team/app:pull,push,delete,*", "registry:catalog:*", "repository:x:pull repository:y:push")
	c := claimsOf(tok)
	got, _ := json.Marshal(c.Access)
	if want := `[{"type":"repository","name":"team/app","actions":["pull","push"]},{"type":"repository","name":"x","actions":["pull"]},{"type":"repository","name":"y","actions":["push"]}]`; string(got) != want {
		t.Errorf("user grant\n got %s\nwant %s", got, want)
	}
	if c.Issuer != "test-issuer" || c.Subject != "alice" || len(c.Audience) != 1 || c.Audience[0] != "registry" ||
		!c.Expiry.Time().Equal(now.Add(5*time.Minute)) {
		t.Errorf("claims %+v", c)
	}
	// aud is a string on the wire (distribution 2.x reads only that form).
	if raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1]); !strings.Contains(string(raw), `"aud":"registry"`) {
		t.Errorf("claims %s: aud is not a string", raw)
	}
	tok, _ = s.token("root", "root-pw", "registry", "repository:team/app:pull,*", "registry:catalog:*")
	got, _ = json.Marshal(claimsOf(tok).Access)
	if want := `[{"type":"repository","name":"team/app","actions":["pull","*"]},{"type":"registry","name":"catalog","actions":["*"]}]`; string(got) != want {
		t.Errorf("admin grant\n got %s\nwant %s", got, want)
	}
	// No scope: a token with no access (docker login does this).
	tok, _ = s.token("alice", "alice-pw", refService)
	if a := claimsOf(tok).Access; a == nil || len(a) != 0 {
		t.Errorf("no scope: access %v, want []", a)
	}

	for name, tc := range map[string]struct {
		user, pass, service, scope string
		want                       int
	}{
		"wrong password":  {"alice", "nope", refService, "", 401},
		"unknown user":    {"mallory", "x", refService, "", 401},
		"unknown service": {"alice", "alice-pw", "elsewhere", "", 400},
		"bad scope":       {"alice", "alice-pw", refService, "repository:onlyname", 400},
	} {
		var scopes []string
		if tc.scope != "" {
			scopes = append(scopes, tc.scope)
		}
		if _, w := s.token(tc.user, tc.pass, tc.service, scopes...); w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %s", name, w.Code, tc.want, w.Body)
		}
	}

	// No credentials: pull only, for services with anonymous pull (the
	// notary CLI reads anonymously); a Basic challenge elsewhere.
	w := httptest.NewRecorder()
	s.issuer.ServeHTTP(w, httptest.NewRequest("GET", auth.TokenPath+"?service="+refService+"&scope=repository:a:push,pull&scope=registry:catalog:*", nil))
	var anon struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &anon); err != nil || w.Code != 200 {
		t.Fatalf("anonymous pull: %d %s", w.Code, w.Body)
	}
	if got, _ := json.Marshal(claimsOf(anon.Token).Access); string(got) != `[{"type":"repository","name":"a","actions":["pull"]}]` {
		t.Errorf("anonymous grant %s", got)
	}
	w = httptest.NewRecorder()
	s.issuer.ServeHTTP(w, httptest.NewRequest("GET", auth.TokenPath+"?service=registry&scope=repository:a:pull", nil))
	if w.Code != 401 || !strings.HasPrefix(w.Header().Get("Www-Authenticate"), "Basic ") {
		t.Errorf("anonymous for a service without anonymous pull: %d %q", w.Code, w.Header().Get("Www-Authenticate"))
	}
	// account must be the authenticated user.
	r := httptest.NewRequest("GET", auth.TokenPath+"?service="+refService+"&account=root", nil)
	r.SetBasicAuth("alice", "alice-pw")
	w = httptest.NewRecorder()
	s.issuer.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("account mismatch: %d", w.Code)
	}
	// OAuth2 password grant (containerd, buildkit).
	r = httptest.NewRequest("POST", auth.TokenPath, strings.NewReader("grant_type=password&username=alice&password=alice-pw&service="+refService+"&scope=repository:a:pull&client_id=test"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	s.issuer.ServeHTTP(w, r)
	var resp struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(w.Body, 1<<16)).Decode(&resp); err != nil || w.Code != 200 || claimsOf(resp.AccessToken).Subject != "alice" {
		t.Errorf("password grant: %d %v", w.Code, err)
	}
	r = httptest.NewRequest("POST", auth.TokenPath, strings.NewReader("grant_type=refresh_token&refresh_token=x&service="+refService))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	s.issuer.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Errorf("refresh grant: %d", w.Code)
	}
}

func TestParseScopes(t *testing.T) {
	got, err := auth.ParseScopes([]string{"repository:127.0.0.1:5000/a/b:push,pull", "registry:catalog:* repository:x:pull,pull"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if want := `[{"type":"repository","name":"127.0.0.1:5000/a/b","actions":["push","pull"]},{"type":"registry","name":"catalog","actions":["*"]},{"type":"repository","name":"x","actions":["pull"]}]`; string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	for _, bad := range []string{"repository", "repository:x", ":x:pull", "repository::pull", "repository:x:"} {
		if _, err := auth.ParseScopes([]string{bad}); err == nil {
			t.Errorf("ParseScopes(%q): no error", bad)
		}
	}
}

func TestHtpasswd(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "htpasswd")
	h1, _ := bcrypt.GenerateFromPassword([]byte("pw1"), bcrypt.MinCost)
	if err := os.WriteFile(name, []byte("u1:"+string(h1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := auth.OpenHtpasswd(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Authenticate(t.Context(), "u1", "pw1"); err != nil {
		t.Errorf("u1: %v", err)
	}
	// A user added later is picked up without a restart.
	h2, _ := bcrypt.GenerateFromPassword([]byte("pw2"), bcrypt.MinCost)
	if err := os.WriteFile(name, []byte("u1:"+string(h1)+"\nu2:"+string(h2)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Authenticate(t.Context(), "u2", "pw2"); err != nil {
		t.Errorf("u2 after reload: %v", err)
	}
	for _, bad := range []string{"u1:{SHA}abc\n", "u1:$apr1$x$y\n", "nocolon\n", "u1:" + string(h1) + "\nu1:" + string(h1) + "\n"} {
		if _, err := auth.ParseHtpasswd([]byte(bad)); err == nil {
			t.Errorf("ParseHtpasswd(%q): no error", bad)
		}
	}
}

func TestEnsureSigningKey(t *testing.T) {
	dir := t.TempDir()
	s1, c1, created, err := auth.EnsureSigningKey(dir, now)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	s2, c2, created, err := auth.EnsureSigningKey(dir, now)
	if err != nil || created {
		t.Fatalf("second: %v %v", created, err)
	}
	if !c1[0].Equal(c2[0]) || !s2.Public().(*ecdsa.PublicKey).Equal(s1.Public()) {
		t.Error("the key was not kept")
	}
	if fi, err := os.Stat(filepath.Join(dir, auth.SigningKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi, err)
	}
	os.Remove(filepath.Join(dir, auth.SigningCertFile))
	if _, _, _, err := auth.EnsureSigningKey(dir, now); err == nil {
		t.Error("a key without its certificate was accepted")
	}
}
