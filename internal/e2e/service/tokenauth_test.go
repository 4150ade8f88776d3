package service

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	signetauth "github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/registry"
)

// TestTokenAuthRegistry: the registry takes tokens of signet's own token
// service (the setup of one machine sharing users); the service resolves
// tags with the credentials configured for each registry host in its
// Docker configuration, and a host whose credentials the registry refuses
// gives a clear error and signs nothing.
func TestTokenAuthRegistry(t *testing.T) {
	e2etest.Need(t, "docker", "docker-registry")
	dir := t.TempDir()
	users := map[string]string{"owner": "owner-e2e-password", "svc": "svc-e2e-password"}
	var htpasswd strings.Builder
	for u, p := range users {
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
	ca := e2etest.TestCA(t, filepath.Join(dir, "pki")) // signet's TLS, and so its token service's
	svcDocker := filepath.Join(dir, "service-docker")
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
auth:
  type: token
  realm: https://%s/auth/token
  service: signet-notary
  issuer: signet-e2e
  htpasswd: %s
  audiences: [signet-notary, signet-registry]
service:
  docker_config: %s
  registry_ca: %s
`, host, dataDir, host, filepath.Join(dir, "htpasswd"), svcDocker, ca.CAFile)
	cfgFile := filepath.Join(dir, "signet.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := randomToken(t)
	srv := inproc.StartServer(t, inproc.ServerOptions{CA: ca, Listen: host, DataDir: dataDir, Flags: []string{"--config", cfgFile},
		Env: map[string]string{"SIGNET_ADMIN_TOKEN": admin}})
	reg := e2etest.StartRegistry(t, fmt.Sprintf(`  token:
    realm: https://%s/auth/token
    service: signet-registry
    issuer: signet-e2e
    rootcertbundle: %s
`, host, filepath.Join(dataDir, "auth", signetauth.SigningCertFile)))
	port := reg.Host[strings.LastIndex(reg.Host, ":")+1:]
	good, bad := reg.Host, "localhost:"+port // one registry, two names
	// The service's credentials: right for one name, wrong for the other
	// (written after the start: the service reads the file again).
	writeDockerAuth(t, svcDocker, map[string][2]string{good: {"svc", users["svc"]}, bad: {"svc", "wrong-password"}})

	tl := newTools(t, srv.URL, srv.Host, srv.CAFile)
	writeDockerAuth(t, tl.dockerCfg, map[string][2]string{good: {"owner", users["owner"]}, bad: {"owner", users["owner"]}})
	ownerKeys, err := registry.LoadDockerConfig(tl.dockerCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	bobTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "bob").Stdout)
	for name, regHost := range map[string]string{"good": good, "bad": bad} {
		gun := regHost + "/org/" + name
		pub := filepath.Join(tl.dir, name+".pub")
		tl.signetOK(admin, "admin", "project", "create", name, "--repository", gun, "--signer", "ci", "--public-key-out", pub)
		tl.docker.OK(t, "docker", "trust", "signer", "add", "--key", pub, "ci", gun)
		tl.signetOK(admin, "admin", "policy", "create", name, "auto", "--submitters", "bob")
		pushVia(t, &registry.Client{Keychain: ownerKeys, Transport: e2etest.HTTPSClient(t, ca.CAFile).Transport}, regHost, "org/"+name, "v1")
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
