// Package oidctest is a real OpenID Connect issuer for tests: it serves a
// discovery document and a JWKS over TLS on 127.0.0.1 (a free port) and
// mints ID tokens, good ones (ES256, RS256) and every kind of bad one a
// verifier must refuse. Tests in other packages use it as they would
// GitHub's or GitLab's issuer; an end-to-end test that runs signet-server
// as a subprocess passes it URL and CAFile (as SSL_CERT_FILE) and mints
// tokens with Mint.
//
// It exists only for tests and is imported only from _test.go files.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/jose"
)

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the issuer identifier (https://127.0.0.1:PORT[/path]), the
	// iss of its tokens.
	URL string
	// CAFile is a PEM file holding the certificate the server's TLS
	// certificate chains to, usable as SSL_CERT_FILE; CAPEM is its content.
	CAFile string
	CAPEM  []byte

	tb  testing.TB
	srv *httptest.Server
	now func() time.Time

	mu              sync.Mutex
	es, rs          *signingKey   // current keys
	published       []*signingKey // what the JWKS lists
	unpublished     *signingKey   // a key the JWKS never lists
	down            bool
	discoveryIssuer string
	fetches         map[string]int
}

type signingKey struct {
	kid string
	alg string
	key crypto.Signer
}

// Option configures Start.
type Option func(*options)

type options struct {
	now  func() time.Time
	path string
}

// WithClock makes the issuer use now for the default iat, nbf and exp of
// the tokens it mints (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithPath serves the issuer under a path ("/gitlab"), as issuers whose
// identifier has a path do.
func WithPath(p string) Option { return func(o *options) { o.path = p } }

// Start runs an issuer until the test ends.
func Start(tb testing.TB, opts ...Option) *Issuer {
	tb.Helper()
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	is := &Issuer{tb: tb, now: o.now, fetches: map[string]int{}}
	is.es, is.rs = is.newKey("ES256"), is.newKey("RS256")
	is.published = []*signingKey{is.es, is.rs}
	is.unpublished = is.newKey("ES256")

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+o.path+"/.well-known/openid-configuration", is.serveDiscovery)
	mux.HandleFunc("GET "+o.path+"/jwks", is.serveJWKS)
	is.srv = httptest.NewUnstartedServer(mux)
	is.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose by tests
	is.srv.StartTLS()                                   // listens on 127.0.0.1, port 0
	tb.Cleanup(is.srv.Close)
	is.URL = is.srv.URL + o.path

	is.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
	is.CAFile = filepath.Join(tb.TempDir(), "oidc-issuer-ca.pem")
	if err := os.WriteFile(is.CAFile, is.CAPEM, 0o644); err != nil {
		tb.Fatalf("oidctest: %v", err)
	}
	return is
}

// Client returns an HTTP client that trusts the issuer's certificate (and
// nothing else).
func (is *Issuer) Client() *http.Client { return is.srv.Client() }

// Close stops the server (later fetches fail to connect).
func (is *Issuer) Close() { is.srv.Close() }

func (is *Issuer) newKey(alg string) *signingKey {
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("unsupported algorithm %s", alg)
	}
	if err != nil {
		is.tb.Fatalf("oidctest: %v", err)
	}
	kid, err := jose.Thumbprint(k.Public())
	if err != nil {
		is.tb.Fatalf("oidctest: %v", err)
	}
	return &signingKey{kid: kid, alg: alg, key: k}
}

func (is *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	is.fetches["discovery"]++
	down, iss := is.down, is.discoveryIssuer
	is.mu.Unlock()
	if down {
		http.Error(w, "issuer down for the test", http.StatusServiceUnavailable)
		return
	}
	if iss == "" {
		iss = is.URL
	}
	writeJSON(w, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              is.URL + "/jwks",
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public", "pairwise"},
		"id_token_signing_alg_values_supported": []string{"ES256", "RS256"},
		"scopes_supported":                      []string{"openid"},
		"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "nbf", "jti", "repository", "ref"},
	})
}

func (is *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	is.fetches["jwks"]++
	down := is.down
	keys := make([]jose.JWK, 0, len(is.published))
	for _, k := range is.published {
		keys = append(keys, jose.JWK{KeyID: k.kid, Use: "sig", Algorithm: k.alg, Key: k.key.Public()})
	}
	is.mu.Unlock()
	if down {
		http.Error(w, "issuer down for the test", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]any{"keys": keys})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(v)
}

// Fetches reports how often the discovery document and the JWKS were
// requested.
func (is *Issuer) Fetches() (discovery, jwks int) {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.fetches["discovery"], is.fetches["jwks"]
}

// SetDown makes the issuer answer 503 to every request (true) or serve
// again (false).
func (is *Issuer) SetDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.down = down
}

// SetDiscoveryIssuer makes the discovery document name another issuer
// ("" restores the true one).
func (is *Issuer) SetDiscoveryIssuer(iss string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.discoveryIssuer = iss
}

// Rotate makes new ES256 and RS256 keys current and publishes them; the
// old keys stay published when keepOld is set, and are withdrawn otherwise.
func (is *Issuer) Rotate(keepOld bool) {
	es, rs := is.newKey("ES256"), is.newKey("RS256")
	is.mu.Lock()
	defer is.mu.Unlock()
	is.es, is.rs = es, rs
	if keepOld {
		is.published = append(is.published, es, rs)
	} else {
		is.published = []*signingKey{es, rs}
	}
}

// KeyIDs returns the kids of the current ES256 and RS256 keys.
func (is *Issuer) KeyIDs() (es256, rs256 string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.es.kid, is.rs.kid
}

// Omit, as a claim value given to Mint, removes that claim from the token
// (one of the defaults, say).
var Omit = omit{}

type omit struct{}

// MintOption changes how Mint signs.
type MintOption func(*mint)

type mint struct {
	alg          string
	unpublished  bool
	none         bool
	hs256        bool
	kid          *string
	extraHeaders map[string]any
}

// RS256 signs with the issuer's current RSA key (the default is ES256).
func RS256() MintOption { return func(m *mint) { m.alg = "RS256" } }

// UnpublishedKey signs with an ES256 key the issuer's JWKS never lists,
// under its own kid.
func UnpublishedKey() MintOption { return func(m *mint) { m.unpublished = true } }

// AlgNone makes an unsigned token with "alg":"none" and an empty
// signature, naming the current key's kid.
func AlgNone() MintOption { return func(m *mint) { m.none = true } }

// HS256WithPublicKey makes an HS256 token whose HMAC secret is the current
// RSA key's public key in PEM (the algorithm-confusion attack), naming that
// key's kid.
func HS256WithPublicKey() MintOption { return func(m *mint) { m.hs256 = true } }

// KeyID sets the header's kid to kid ("" leaves it out).
func KeyID(kid string) MintOption { return func(m *mint) { m.kid = &kid } }

// Header adds a header member.
func Header(name string, value any) MintOption {
	return func(m *mint) {
		if m.extraHeaders == nil {
			m.extraHeaders = map[string]any{}
		}
		m.extraHeaders[name] = value
	}
}

// Mint returns a compact JWS ID token. Its claims are the defaults — iss
// the issuer's URL, sub "repo:org/repo:ref:refs/heads/main", aud
// "https://signet.test", iat and nbf now, exp five minutes on, a random
// jti — overridden by claims (a value of Omit removes a claim).
func (is *Issuer) Mint(claims map[string]any, opts ...MintOption) string {
	is.tb.Helper()
	m := mint{alg: "ES256"}
	for _, f := range opts {
		f(&m)
	}
	now := is.now()
	jti := make([]byte, 12)
	_, _ = rand.Read(jti)
	all := map[string]any{
		"iss": is.URL, "sub": "repo:org/repo:ref:refs/heads/main", "aud": "https://signet.test",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": jose.B64Encode(jti),
	}
	maps.Copy(all, claims)
	for k, v := range all {
		if _, ok := v.(omit); ok {
			delete(all, k)
		}
	}
	is.mu.Lock()
	key := is.es
	if m.alg == "RS256" || m.hs256 {
		key = is.rs
	}
	if m.unpublished {
		key = is.unpublished
	}
	is.mu.Unlock()

	hdr := map[string]any{"typ": "JWT", "alg": key.alg, "kid": key.kid}
	switch {
	case m.none:
		hdr["alg"] = "none"
	case m.hs256:
		hdr["alg"] = "HS256"
	}
	if m.kid != nil {
		if *m.kid == "" {
			delete(hdr, "kid")
		} else {
			hdr["kid"] = *m.kid
		}
	}
	maps.Copy(hdr, m.extraHeaders)
	hb, err1 := json.Marshal(hdr)
	cb, err2 := json.Marshal(all)
	if err1 != nil || err2 != nil {
		is.tb.Fatalf("oidctest: encode token: %v %v", err1, err2)
	}
	signed := jose.B64Encode(hb) + "." + jose.B64Encode(cb)
	var sig []byte
	switch {
	case m.none:
	case m.hs256:
		der, err := x509.MarshalPKIXPublicKey(key.key.Public())
		if err != nil {
			is.tb.Fatalf("oidctest: %v", err)
		}
		mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		mac.Write([]byte(signed))
		sig = mac.Sum(nil)
	default:
		var err error
		if sig, err = jose.Sign(key.key, key.alg, []byte(signed)); err != nil {
			is.tb.Fatalf("oidctest: sign: %v", err)
		}
	}
	return signed + "." + jose.B64Encode(sig)
}

// GitHubClaims are the claims GitHub Actions puts in an ID token for a
// workflow run of repo (org/name) on ref (refs/heads/… or refs/tags/…),
// started by event from workflow file workflow (release.yml), for aud.
func GitHubClaims(aud, repo, ref, event, workflow string) map[string]any {
	refType := "branch"
	if len(ref) > len("refs/tags/") && ref[:len("refs/tags/")] == "refs/tags/" {
		refType = "tag"
	}
	owner := repo
	for i := range repo {
		if repo[i] == '/' {
			owner = repo[:i]
			break
		}
	}
	wf := repo + "/.github/workflows/" + workflow + "@" + ref
	return map[string]any{
		"aud": aud, "sub": "repo:" + repo + ":ref:" + ref,
		"repository": repo, "repository_owner": owner, "repository_id": "123456789", "repository_owner_id": "987654",
		"repository_visibility": "private", "ref": ref, "ref_type": refType, "ref_protected": "true",
		"sha": "0123456789abcdef0123456789abcdef01234567", "event_name": event,
		"workflow": "release", "workflow_ref": wf, "workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"job_workflow_ref": wf, "job_workflow_sha": "0123456789abcdef0123456789abcdef01234567",
		"actor": "octocat", "actor_id": "583231", "run_id": "4242424242", "run_number": "17", "run_attempt": "1",
		"runner_environment": "github-hosted",
	}
}

// GitLabClaims are the claims GitLab CI puts in an ID token for a pipeline
// of project (group/project) on ref (a bare branch or tag name) of refType
// (branch or tag), started from source (push, web, schedule, …), for aud.
func GitLabClaims(aud, project, ref, refType, source string, protected bool) map[string]any {
	ns := project
	for i := len(project) - 1; i >= 0; i-- {
		if project[i] == '/' {
			ns = project[:i]
			break
		}
	}
	return map[string]any{
		"aud": aud, "sub": "project_path:" + project + ":ref_type:" + refType + ":ref:" + ref,
		"namespace_id": "72", "namespace_path": ns, "project_id": "20", "project_path": project,
		"user_id": "1", "user_login": "maintainer", "user_email": "maintainer@example.com",
		"pipeline_id": "574", "pipeline_source": source, "job_id": "302",
		"ref": ref, "ref_type": refType, "ref_path": "refs/" + map[string]string{"branch": "heads", "tag": "tags"}[refType] + "/" + ref,
		"ref_protected": fmt.Sprint(protected), "runner_id": 1, "runner_environment": "gitlab-hosted",
		"sha": "714a629c0b401fdce83e847fc9589983fc6f46bc", "project_visibility": "private",
		"ci_config_ref_uri": "gitlab.example.com/" + project + "//.gitlab-ci.yml@refs/heads/main",
	}
}
