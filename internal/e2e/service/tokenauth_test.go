package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	signetauth "github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// tokenAuth is one machine sharing users: signet-server with its token
// service, and docker-registry taking its tokens (anonymous pulls
// allowed, pushes only with a password), reached under two names.
type tokenAuth struct {
	admin     string
	users     map[string]string // user → password
	good, bad string            // the registry's two names
	svcDocker string            // the service's Docker configuration
	ca        *e2etest.CA
	tl        *tools
	owner     *registry.Client // the repository owner's registry access
}

func startTokenAuth(t *testing.T) *tokenAuth {
	t.Helper()
	e2etest.Need(t, "docker", "docker-registry")
	dir := t.TempDir()
	ta := &tokenAuth{admin: randomToken(t), users: map[string]string{"owner": "owner-e2e-password", "svc": "svc-e2e-password"}}
	var htpasswd strings.Builder
	for u, p := range ta.users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd.WriteString(u + ":" + string(h) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	host := e2etest.FreeAddr(t)
	dataDir := filepath.Join(dir, "data")
	ta.ca = e2etest.TestCA(t, filepath.Join(dir, "pki")) // signet's TLS, and so its token service's
	ta.svcDocker = filepath.Join(dir, "service-docker")
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
auth:
  type: token
  realm: https://%s/auth/token
  service: signet-notary
  issuer: signet-e2e
  htpasswd: %s
  audiences: [signet-notary, signet-registry]
  anonymous_pull: [signet-registry]
service:
  docker_config: %s
  registry_ca: %s
`, host, dataDir, host, filepath.Join(dir, "htpasswd"), ta.svcDocker, ta.ca.CAFile)
	cfgFile := filepath.Join(dir, "signet.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := inproc.StartServer(t, inproc.ServerOptions{CA: ta.ca, Listen: host, DataDir: dataDir, Flags: []string{"--config", cfgFile},
		Env: map[string]string{"SIGNET_ADMIN_TOKEN": ta.admin}})
	reg := e2etest.StartRegistry(t, fmt.Sprintf(`  token:
    realm: https://%s/auth/token
    service: signet-registry
    issuer: signet-e2e
    rootcertbundle: %s
`, host, filepath.Join(dataDir, "auth", signetauth.SigningCertFile)))
	port := reg.Host[strings.LastIndex(reg.Host, ":")+1:]
	ta.good, ta.bad = reg.Host, "localhost:"+port // one registry, two names

	ta.tl = newTools(t, srv.URL, srv.Host, srv.CAFile)
	writeDockerAuth(t, ta.tl.dockerCfg, map[string][2]string{ta.good: {"owner", ta.users["owner"]}, ta.bad: {"owner", ta.users["owner"]}})
	ownerKeys, err := registry.LoadDockerConfig(ta.tl.dockerCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ta.owner = &registry.Client{Keychain: ownerKeys, Transport: e2etest.HTTPSClient(t, ta.ca.CAFile).Transport}
	return ta
}

// serviceCredentials writes the service's registry credentials (the
// service reads the file again when it changes).
func (ta *tokenAuth) serviceCredentials(t *testing.T, creds map[string][2]string) {
	t.Helper()
	writeDockerAuth(t, ta.svcDocker, creds)
	// The service notices a change by size and modification time.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(ta.svcDocker, "config.json"), later, later); err != nil {
		t.Fatal(err)
	}
}

// project creates project name on gun, delegated by the owner with docker
// trust, and returns it.
func (ta *tokenAuth) project(t *testing.T, name, gun string) serviceapi.Project {
	t.Helper()
	tl := ta.tl
	pub := filepath.Join(tl.dir, name+".pub")
	tl.signetOK(ta.admin, "admin", "project", "create", name, "--repository", gun, "--signer", "ci", "--public-key-out", pub)
	tl.docker.OK(t, "docker", "trust", "signer", "add", "--key", pub, "ci", gun)
	var p serviceapi.Project
	if err := json.Unmarshal([]byte(tl.signetOK(ta.admin, "-o", "json", "admin", "project", "show", name).Stdout), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokenAuthRegistry: the registry takes tokens of signet's own token
// service (the setup of one machine sharing users); the service resolves
// tags with the credentials configured for each registry host in its
// Docker configuration, and a host whose credentials the registry refuses
// gives a clear error and signs nothing.
func TestTokenAuthRegistry(t *testing.T) {
	ta := startTokenAuth(t)
	tl, admin, good, bad := ta.tl, ta.admin, ta.good, ta.bad
	// The service's credentials: right for one name, wrong for the other
	// (written after the start: the service reads the file again).
	ta.serviceCredentials(t, map[string][2]string{good: {"svc", ta.users["svc"]}, bad: {"svc", "wrong-password"}})
	bobTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "bob").Stdout)
	for name, regHost := range map[string]string{"good": good, "bad": bad} {
		ta.project(t, name, regHost+"/org/"+name)
		tl.signetOK(admin, "admin", "policy", "create", name, "auto", "--submitters", "bob")
		pushVia(t, ta.owner, regHost, "org/"+name, "v1")
	}
	r := tl.signetOK(bobTok, "request", "submit", "--project", "good", "--policy", "auto", good+"/org/good:v1", "--wait", "--timeout", "60s")
	e2etest.WantOutput(t, r, "signed "+good+"/org/good:v1 as sha256:")
	if in := tl.inspect(good + "/org/good"); len(in.SignedTags) != 1 || in.SignedTags[0].SignedTag != "v1" {
		t.Errorf("docker trust inspect: %+v", in.SignedTags)
	}
	r = tl.signetFail(bobTok, "request", "submit", "--project", "bad", "--policy", "auto", bad+"/org/bad:v1")
	e2etest.WantOutput(t, r, "the registry refused the service's credentials for "+bad+"/org/bad:v1", "REGISTRY_ERROR")
	r = tl.signetOK(admin, "request", "list", "--project", "bad")
	if strings.Count(strings.TrimSpace(r.Stdout), "\n") != 0 {
		t.Errorf("a refused submission was stored:\n%s", r)
	}
}

// TestCosignPushRefused: a policy with both formats on a registry whose
// token service lets the service pull but not push (no credentials of its
// own: anonymous pulls only). A submission is refused at once; a request
// submitted while the service could push, approved after it lost the
// right, fails before anything is written — neither the DCT nor the cosign
// signature — with a reason naming the registry's refusal. With push
// access back, the same policy signs both, the cosign push going through
// the token service with scope push.
func TestCosignPushRefused(t *testing.T) {
	ta := startTokenAuth(t)
	tl, admin, good := ta.tl, ta.admin, ta.good
	withPush := map[string][2]string{good: {"svc", ta.users["svc"]}}
	ta.serviceCredentials(t, withPush)
	aliceTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "alice").Stdout)
	bobTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "bob").Stdout)
	gun := good + "/org/app"
	p := ta.project(t, "app", gun)
	tl.signetOK(admin, "admin", "policy", "create", "app", "release", "--required", "1", "--approvers", "alice", "--submitters", "bob", "--formats", "dct,cosign")
	cosignKey, err := keys.ParsePublicKeyPEM([]byte(p.CosignPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	cosignSigned := func(tag string) (int, error) {
		t.Helper()
		ctx := context.Background()
		tg, err := oci.Resolve(ctx, ta.owner.Repository(registry.Reference{Registry: good, Repository: "org/app"}, "pull"), tag)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := oci.Verify(ctx, tg, cosignKey.CryptoKey(), oci.Options{Now: time.Now()})
		if err != nil {
			return 0, err
		}
		return len(rep.Verified), nil
	}
	pushVia(t, ta.owner, good, "org/app", "v1")
	pushVia(t, ta.owner, good, "org/app", "v2")

	// Submitted while the service may push; approved after it may not.
	r := tl.signetOK(bobTok, "-o", "json", "request", "submit", "--project", "app", "--policy", "release", gun+":v1")
	var req serviceapi.Request
	if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil || req.Status != serviceapi.StatusAwaitingApproval {
		t.Fatalf("submit: %v\n%s", err, r)
	}
	ta.serviceCredentials(t, map[string][2]string{})
	r = tl.signetFail(bobTok, "request", "submit", "--project", "app", "--policy", "release", gun+":v2")
	e2etest.WantOutput(t, r, "the registry refuses the service's push to "+gun+", which the cosign signature needs", "REGISTRY_ERROR")
	tl.signetOK(aliceTok, "request", "approve", req.ID)
	if err := json.Unmarshal([]byte(tl.signetOK(admin, "-o", "json", "request", "status", req.ID).Stdout), &req); err != nil {
		t.Fatal(err)
	}
	if req.Status != serviceapi.StatusFailed || !strings.Contains(req.Reason, "the registry refuses the service's push to "+gun+", which the cosign signature needs") ||
		!strings.Contains(req.Reason, "HTTP 401") || !strings.HasSuffix(req.Reason, "nothing was signed") || len(req.Done) != 0 {
		t.Fatalf("the request approved without push access: %s %q (done %v)", req.Status, req.Reason, req.Done)
	}
	if in := tl.inspect(gun); len(in.SignedTags) != 0 {
		t.Errorf("DCT signed a request that failed: %+v", in.SignedTags)
	}
	if n, err := cosignSigned("v1"); !errors.Is(err, oci.ErrNoSignatures) {
		t.Errorf("cosign signatures of a request that failed: %d, %v", n, err)
	}
	r = tl.signetOK(admin, "request", "list", "--project", "app")
	if strings.Count(strings.TrimSpace(r.Stdout), "\n") != 1 {
		t.Errorf("the refused submission was stored:\n%s", r)
	}

	// Push access back: both formats.
	ta.serviceCredentials(t, withPush)
	r = tl.signetOK(bobTok, "-o", "json", "request", "submit", "--project", "app", "--policy", "release", gun+":v2")
	if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil {
		t.Fatal(err)
	}
	tl.signetOK(aliceTok, "request", "approve", req.ID)
	if err := json.Unmarshal([]byte(tl.signetOK(admin, "-o", "json", "request", "status", req.ID).Stdout), &req); err != nil {
		t.Fatal(err)
	}
	if req.Status != serviceapi.StatusSigned || len(req.Cosign) != 2 {
		t.Fatalf("with push access: %s %q %+v", req.Status, req.Reason, req.Cosign)
	}
	if in := tl.inspect(gun); len(in.SignedTags) != 1 || in.SignedTags[0].SignedTag != "v2" {
		t.Errorf("docker trust inspect: %+v", in.SignedTags)
	}
	if n, err := cosignSigned("v2"); err != nil || n != 2 {
		t.Errorf("cosign signatures of v2: %d, %v (want a bundle and a legacy one)", n, err)
	}
}
