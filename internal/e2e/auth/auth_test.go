package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	signetauth "github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
)

const (
	notaryService   = "signet-notary"
	registryService = "signet-registry"
	issuerName      = "signet-e2e"

	rootPass = "e2e-root-pass"
	repoPass = "e2e-repo-pass"
)

// setup is signet-server with its token service and a registry trusting
// it, sharing the users alice (user) and root (admin).
type setup struct {
	dir        string
	signet     *inproc.Server
	signetHost string // 127.0.0.1:port
	caFile     string // signet's TLS CA (its local CA)
	tokenCert  string // the token signing certificate
	regHost    string
	registry   *e2etest.Registry
}

func password(user string) string { return user + "-e2e-pw" }

func newSetup(t *testing.T) *setup {
	t.Helper()
	e2etest.Need(t, "docker-registry")
	s := &setup{dir: t.TempDir()}

	// Users, as `htpasswd -B` writes them.
	var users strings.Builder
	for _, u := range []string{"alice", "root"} {
		h, err := bcrypt.GenerateFromPassword([]byte(password(u)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString(u + ":$2y$" + string(h[4:]) + "\n")
	}
	htpasswd := filepath.Join(s.dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(users.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	s.signetHost = e2etest.FreeAddr(t) // the config names it
	dataDir := filepath.Join(s.dir, "signet-data")
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
log_level: debug
auth:
  type: token
  realm: https://%s/auth/token
  service: %s
  issuer: %s
  htpasswd: %s
  admins: [root]
  audiences: [%s, %s]
  anonymous_pull: [%s]
`, s.signetHost, dataDir, s.signetHost, notaryService, issuerName, htpasswd, notaryService, registryService, notaryService)
	cfgFile := filepath.Join(s.dir, "signet.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.signet = inproc.StartServer(t, inproc.ServerOptions{
		LocalCA: true, Listen: s.signetHost, DataDir: dataDir, Flags: []string{"--config", cfgFile},
		Env: map[string]string{"SIGNET_KEY_PASSPHRASE": "e2e-key-passphrase"},
	})
	s.caFile = s.signet.CAFile
	s.tokenCert = filepath.Join(dataDir, "auth", signetauth.SigningCertFile)

	// The registry trusts the token service's certificate.
	s.registry = e2etest.StartRegistry(t, fmt.Sprintf(`  token:
    realm: https://%s/auth/token
    service: %s
    issuer: %s
    rootcertbundle: %s
`, s.signetHost, registryService, issuerName, s.tokenCert))
	s.regHost = s.registry.Host
	return s
}

// token asks signet's token service for a token.
func (s *setup) token(t *testing.T, user, pass, service string, scopes ...string) (string, int) {
	t.Helper()
	q := url.Values{"service": {service}, "scope": scopes, "account": {user}}
	req, _ := http.NewRequest("GET", "https://"+s.signetHost+"/auth/token?"+q.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := e2etest.HTTPSClient(t, s.caFile).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	return tr.Token, resp.StatusCode
}

// TestSharedUsers: one htpasswd file, one token service, and a registry,
// signet-server and the real clients all agreeing on it.
func TestSharedUsers(t *testing.T) {
	s := newSetup(t)

	t.Run("registry accepts signet tokens", func(t *testing.T) { registryHTTP(t, s) })
	t.Run("skopeo", func(t *testing.T) { skopeoPush(t, s) })
	t.Run("docker", func(t *testing.T) { dockerTrust(t, s) })
	t.Run("notary", func(t *testing.T) { notaryPublish(t, s) })
}

// registryHTTP checks the token format against distribution's own
// verification: the x5c token, a kid-only token (libtrust key ID), and a
// refused forgery.
func registryHTTP(t *testing.T, s *setup) {
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(tok string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+s.regHost+"/v2/e2e/app/tags/list", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Www-Authenticate") + " " + string(b)
	}
	code, body := get("")
	if want := `Bearer realm="https://` + s.signetHost + `/auth/token",service="` + registryService + `"`; code != 401 || !strings.HasPrefix(body, want) {
		t.Fatalf("registry without a token: %d %s, want 401 %s", code, body, want)
	}
	tok, code := s.token(t, "alice", password("alice"), registryService, "repository:e2e/app:pull")
	if code != 200 {
		t.Fatalf("token: %d", code)
	}
	// Authorised: the repository is just unknown.
	if code, body := get(tok); code != 404 || !strings.Contains(body, "NAME_UNKNOWN") {
		t.Errorf("registry with a signet token: %d %s, want 404 NAME_UNKNOWN\n%s", code, body, s.registry.Proc.LogTail(40))
	}

	// The same claims with only kid in the header: the registry finds the
	// key in its rootcertbundle by libtrust key ID.
	signer, chain, err := signetauth.LoadSigningKey(filepath.Join(filepath.Dir(s.tokenCert), signetauth.SigningKeyFile), s.tokenCert)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := signetauth.LibtrustKeyID(chain[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(iss string) signetauth.Claims {
		now := time.Now()
		return signetauth.Claims{Issuer: iss, Subject: "alice", Audience: signetauth.Audience{registryService},
			Expiry: signetauth.NumericDate(now.Add(time.Minute).Unix()), NotBefore: signetauth.NumericDate(now.Unix()),
			Access: []signetauth.ResourceActions{{Type: "repository", Name: "e2e/app", Actions: []string{"pull"}}}}
	}
	kidTok, err := signetauth.SignToken(signer, signetauth.Header{Type: "JWT", KeyID: kid}, claims(issuerName))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(kidTok); code != 404 {
		t.Errorf("registry with a kid-only token (kid %s): %d %s, want 404\n%s", kid, code, body, s.registry.Proc.LogTail(40))
	}
	wrongIss, _ := signetauth.SignToken(signer, signetauth.Header{Type: "JWT", KeyID: kid}, claims("someone-else"))
	if code, _ := get(wrongIss); code != 401 {
		t.Errorf("registry with a token of another issuer: %d, want 401", code)
	}
	// Anonymous pull is for trust data only, not for the registry's images.
	if _, code := s.token(t, "", "", registryService, "repository:e2e/app:pull"); code != 401 {
		t.Errorf("anonymous token for the registry: %d, want 401", code)
	}
	// A token for signet's own service is not valid at the registry.
	notaryTok, _ := s.token(t, "alice", password("alice"), notaryService, "repository:e2e/app:pull")
	if code, _ := get(notaryTok); code != 401 {
		t.Errorf("registry with a token for %s: %d, want 401", notaryService, code)
	}
}

func skopeoPush(t *testing.T, s *setup) {
	e2etest.Need(t, "skopeo")
	layout := e2etest.WriteOCILayout(t, filepath.Join(t.TempDir(), "layout"), "v1", "hello from the signet auth e2e test\n")
	env := e2etest.BaseEnv(t.TempDir())
	// The realm is signet's HTTPS endpoint: give skopeo its CA.
	certDir := t.TempDir()
	ca, err := os.ReadFile(s.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := "docker://" + s.regHost + "/e2e/app:v1"
	args := func(creds string) []string {
		return []string{"skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "--dest-cert-dir", certDir,
			"--dest-creds", creds, "oci:" + layout + ":v1", dest}
	}
	r := mustFail(t, env, "", args("alice:wrong")...)
	if !strings.Contains(strings.ToLower(r.Output()), "unauthorized") && !strings.Contains(r.Output(), "401") {
		t.Errorf("skopeo with a wrong password failed, but not as unauthorized:\n%s", r)
	}
	mustOK(t, env, "", args("alice:"+password("alice"))...)
	r = mustOK(t, env, "", "skopeo", "inspect", "--tls-verify=false", "--cert-dir", certDir, "--creds", "alice:"+password("alice"), "--raw", dest)
	if !strings.Contains(r.Stdout, `"schemaVersion"`) {
		t.Errorf("skopeo inspect: %s", r)
	}
	if !strings.Contains(s.signet.Log(), `"user":"alice"`) {
		t.Errorf("signet's log does not show tokens issued to alice:\n%s", s.signet.Log())
	}
}

// dockerEnv is a Docker CLI environment with its own DOCKER_CONFIG and no
// daemon.
func dockerEnv(t *testing.T, s *setup) (env []string, config string) {
	home := t.TempDir()
	config = filepath.Join(home, "docker-config")
	if err := os.MkdirAll(config, 0o700); err != nil {
		t.Fatal(err)
	}
	return append(e2etest.BaseEnv(home),
		"DOCKER_CONFIG="+config,
		"DOCKER_HOST=unix://"+filepath.Join(home, "no-daemon.sock"),
		"DOCKER_CONTENT_TRUST_SERVER=https://"+s.signetHost,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE="+rootPass,
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE="+repoPass,
		"DOCKER_CLI_HINTS=false"), config
}

// writeDockerAuth stores credentials for the registry the way `docker
// login` does, without a credential helper.
func writeDockerAuth(t *testing.T, config, host, user, pass string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}})
	if err := os.WriteFile(filepath.Join(config, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func dockerTrust(t *testing.T, s *setup) {
	e2etest.Need(t, "docker")
	gun := s.regHost + "/e2e/docker"
	env, config := dockerEnv(t, s)

	// docker login talks to the registry, whose challenge sends the CLI to
	// signet's token service (the CLI logs in itself when no daemon
	// answers; if a version insists on a daemon, store the credentials as
	// it would).
	r := run(t, env, password("alice")+"\n", "docker", "login", s.regHost, "-u", "alice", "--password-stdin")
	switch {
	case r.Succeeded():
		t.Logf("docker login (no daemon) through signet's token service:\n%s", r.Output())
		if b, _ := os.ReadFile(filepath.Join(config, "config.json")); !strings.Contains(string(b), s.regHost) {
			t.Fatalf("docker login succeeded but stored no credentials for %s:\n%s", s.regHost, b)
		}
	case strings.Contains(r.Output(), "daemon"):
		t.Logf("docker login needs a daemon here; writing config.json instead:\n%s", r)
		writeDockerAuth(t, config, s.regHost, "alice", password("alice"))
	default:
		t.Fatalf("docker login through signet's token service failed:\n%s", r)
	}
	badEnv, badConfig := dockerEnv(t, s)
	r = run(t, badEnv, "wrong\n", "docker", "login", s.regHost, "-u", "alice", "--password-stdin")
	if r.Succeeded() {
		t.Errorf("docker login with a wrong password succeeded:\n%s", r)
	}
	writeDockerAuth(t, badConfig, s.regHost, "alice", "wrong")

	keyDir := t.TempDir()
	mustOK(t, env, "", "docker", "trust", "key", "generate", "alice", "--dir", keyDir)
	pub := filepath.Join(keyDir, "alice.pub")

	// Wrong credentials: the token service refuses, nothing is written.
	r = mustFail(t, badEnv, "", "docker", "trust", "signer", "add", "--key", pub, "alice", gun)
	if !strings.Contains(strings.ToLower(r.Output()), "unauthorized") && !strings.Contains(strings.ToLower(r.Output()), "authenticat") {
		t.Errorf("docker trust signer add with a wrong password failed, but not for authentication:\n%s", r)
	}
	t.Logf("docker trust signer add with a wrong password:\n%s", r.Output())

	r = mustOK(t, env, "", "docker", "trust", "signer", "add", "--key", pub, "alice", gun)
	if !strings.Contains(r.Stdout, "Successfully added signer: alice to "+gun) {
		t.Errorf("docker trust signer add:\n%s", r)
	}
	r = mustOK(t, env, "", "docker", "trust", "inspect", gun)
	var repos []struct {
		Name    string
		Signers []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &repos); err != nil || len(repos) != 1 || len(repos[0].Signers) != 1 || repos[0].Signers[0].Name != "alice" {
		t.Errorf("docker trust inspect: want signer alice (%v)\n%s", err, r)
	}
	r = run(t, badEnv, "", "docker", "trust", "inspect", gun)
	if r.Succeeded() && strings.Contains(r.Stdout, "alice") {
		t.Errorf("docker trust inspect with a wrong password read the repository:\n%s", r)
	}
	log := s.signet.Log()
	if !strings.Contains(log, `"msg":"token issued"`) || !strings.Contains(log, notaryService) {
		t.Errorf("signet's log shows no token issued for %s:\n%s", notaryService, log)
	}
}

func notaryPublish(t *testing.T, s *setup) {
	e2etest.Need(t, "notary")
	home := t.TempDir()
	trustDir := filepath.Join(home, "trust")
	gun := s.regHost + "/e2e/notary"
	notaryEnv := func(user, pass string) []string {
		return append(e2etest.BaseEnv(home),
			"NOTARY_AUTH="+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)),
			"NOTARY_ROOT_PASSPHRASE="+rootPass, "NOTARY_TARGETS_PASSPHRASE="+repoPass,
			"NOTARY_SNAPSHOT_PASSPHRASE="+repoPass, "NOTARY_DELEGATION_PASSPHRASE="+repoPass)
	}
	notary := func(args ...string) []string {
		return append([]string{"notary", "-s", "https://" + s.signetHost, "--tlscacert", s.caFile, "-d", trustDir}, args...)
	}
	alice, root, wrong := notaryEnv("alice", password("alice")), notaryEnv("root", password("root")), notaryEnv("alice", "wrong")

	payload := filepath.Join(home, "payload.txt")
	if err := os.WriteFile(payload, []byte("signed with shared users\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustOK(t, alice, "", notary("init", gun)...)
	mustOK(t, alice, "", notary("add", gun, "v1", payload)...)
	r := mustFail(t, wrong, "", notary("publish", gun)...)
	if !strings.Contains(r.Output(), "401") && !strings.Contains(strings.ToLower(r.Output()), "unauthorized") {
		t.Errorf("notary publish with a wrong password failed, but not as unauthorized:\n%s", r)
	}
	mustOK(t, alice, "", notary("publish", gun)...)
	r = run(t, alice, "", notary("list", gun)...)
	if !r.Succeeded() {
		t.Fatalf("notary list failed:\n%s\n--- signet log ---\n%s", r, s.signet.Log())
	}
	if !strings.Contains(r.Stdout, "v1") {
		t.Errorf("notary list after publish:\n%s", r)
	}

	// Deleting the repository on the server needs "*": alice (a user) is
	// refused, root (an admin) may.
	r = mustFail(t, alice, "", notary("delete", gun, "--remote")...)
	if !strings.Contains(r.Output(), "401") && !strings.Contains(strings.ToLower(r.Output()), "not authorized") {
		t.Errorf("notary delete --remote as a user failed, but not as unauthorized:\n%s", r)
	}
	c := e2etest.HTTPSClient(t, s.caFile)
	tok, _ := s.token(t, "alice", password("alice"), notaryService, "repository:"+gun+":pull")
	getRoot := func() int {
		req, _ := http.NewRequest("GET", "https://"+s.signetHost+"/v2/"+gun+"/_trust/tuf/root.json", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := getRoot(); code != 200 {
		t.Fatalf("root.json after a refused delete: %d, want 200", code)
	}
	mustOK(t, root, "", notary("delete", gun, "--remote")...)
	if code := getRoot(); code != 404 {
		t.Errorf("root.json after an admin's delete: %d, want 404", code)
	}
}
