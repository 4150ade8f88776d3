package service

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/tuf"
)

// Passphrases of the owner's docker trust keys.
const (
	rootPass = "e2e-root-passphrase"
	repoPass = "e2e-repository-passphrase"
)

func randomToken(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// tools are the clients of one test: signet (the binary), docker and
// notary, each with its own home.
type tools struct {
	t         *testing.T
	dir       string
	serverURL string // https://host:port of signet-server
	serverCA  string // its CA file
	signetBin string
	docker    e2etest.Command // DOCKER_CONFIG with the server's CA, no daemon
	dockerCfg string
}

func newTools(t *testing.T, serverURL, serverHost, caFile string) *tools {
	t.Helper()
	tl := &tools{t: t, dir: t.TempDir(), serverURL: serverURL, serverCA: caFile, signetBin: e2etest.Binary(t, "signet")}
	tl.dockerCfg = filepath.Join(tl.dir, "docker")
	tlsDir := filepath.Join(tl.dockerCfg, "tls", serverHost)
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
	extra := []string{
		"DOCKER_CONFIG=" + tl.dockerCfg,
		"DOCKER_CONTENT_TRUST_SERVER=" + serverURL,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=" + rootPass,
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=" + repoPass,
		"DOCKER_CLI_HINTS=false",
	}
	env := append(e2etest.BaseEnv(tl.dir), append(extra, "DOCKER_HOST=unix://"+filepath.Join(tl.dir, "no-docker-daemon.sock"))...)
	tl.docker = e2etest.Command{Env: env, Extra: extra, Dir: tl.dir}
	return tl
}

// signet runs the signet binary with SIGNET_TOKEN=token against the server.
func (tl *tools) signet(token string) e2etest.Command {
	extra := []string{"SIGNET_TOKEN=" + token}
	return e2etest.Command{Env: append(e2etest.BaseEnv(tl.dir), extra...), Extra: []string{"SIGNET_TOKEN=…"}, Dir: tl.dir}
}

func (tl *tools) signetArgs(args ...string) []string {
	return append([]string{tl.signetBin, "-s", tl.serverURL, "--tlscacert", tl.serverCA}, args...)
}

func (tl *tools) signetOK(token string, args ...string) *e2etest.Result {
	tl.t.Helper()
	return tl.signet(token).OK(tl.t, tl.signetArgs(args...)...)
}

func (tl *tools) signetFail(token string, args ...string) *e2etest.Result {
	tl.t.Helper()
	return tl.signet(token).Fail(tl.t, tl.signetArgs(args...)...)
}

// verify runs signet verify as a deploy pipeline does: the trust server
// and its CA from the docker settings.
func (tl *tools) verify(args ...string) *e2etest.Result {
	tl.t.Helper()
	return tl.docker.Run(tl.t, append([]string{tl.signetBin, "verify"}, args...)...)
}

// notary runs the notary CLI with its own trust directory.
func (tl *tools) notary(args ...string) *e2etest.Result {
	tl.t.Helper()
	return e2etest.Command{Env: e2etest.BaseEnv(tl.dir), Dir: tl.dir}.OK(tl.t,
		append([]string{"notary", "-s", tl.serverURL, "--tlscacert", tl.serverCA, "-d", filepath.Join(tl.dir, "notary")}, args...)...)
}

// inspect is `docker trust inspect` of one repository.
type inspected struct {
	Name       string
	SignedTags []struct {
		SignedTag string
		Digest    string
		Signers   []string
	}
	Signers []struct {
		Name string
		Keys []struct{ ID string }
	}
}

func (tl *tools) inspect(gun string) inspected {
	tl.t.Helper()
	r := tl.docker.OK(tl.t, "docker", "trust", "inspect", gun)
	var out []inspected
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || len(out) != 1 {
		tl.t.Fatalf("docker trust inspect: %v\n%s", err, r)
	}
	return out[0]
}

// push pushes a small random image (as docker push writes it) with
// signet's registry client and returns its digest.
func push(t *testing.T, kc registry.Keychain, host, repo, tag string) string {
	t.Helper()
	return pushVia(t, &registry.Client{Keychain: kc}, host, repo, tag)
}

// pushVia pushes with client c.
func pushVia(t *testing.T, c *registry.Client, host, repo, tag string) string {
	t.Helper()
	ctx := context.Background()
	r := c.Repository(registry.Reference{Registry: host, Repository: repo}, "push,pull")
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

// writeDockerAuth stores credentials per registry host as docker login
// does (without a helper).
func writeDockerAuth(t *testing.T, dir string, creds map[string][2]string) {
	t.Helper()
	auths := map[string]any{}
	for host, c := range creds {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(c[0] + ":" + c[1]))}
	}
	b, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// memCache is a client cache in memory.
type memCache struct{ m map[string][]byte }

func (c *memCache) Get(role string) ([]byte, error) { return c.m[role], nil }
func (c *memCache) Put(role string, b []byte) error { c.m[role] = b; return nil }

type keyring map[string]crypto.Signer

func (k keyring) Signer(_ context.Context, id string) (crypto.Signer, bool, error) {
	s, ok := k[id]
	return s, ok, nil
}

// ownerDelegates initialises gun on s as docker trust does (server-managed
// snapshot) with the client library, and delegates targets/<signer> and
// targets/releases to the public key PEM.
func ownerDelegates(t *testing.T, base string, hc *http.Client, gun, signer, publicPEM string) {
	t.Helper()
	ctx := context.Background()
	remote, err := client.NewRemote(base, hc, tuf.GUN(gun))
	if err != nil {
		t.Fatal(err)
	}
	root, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keys.NewRootCertificate(root, gun, time.Now(), time.Now().Add(24*time.Hour*3650))
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := keys.FromCertificate(cert)
	tk, _ := keys.FromCrypto(targets.Public())
	kr := keyring{rk.CanonicalID(): root, tk.ID(): targets}
	cache := &memCache{m: map[string][]byte{}}
	if err := client.Initialize(ctx, remote, cache, client.InitOptions{Root: root, RootCert: cert, Targets: targets}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub := &client.Publisher{Reader: &client.Reader{Remote: remote, Cache: cache}, Keys: kr}
	k, err := keys.ParsePublicKeyPEM([]byte(publicPEM))
	if err != nil {
		t.Fatal(err)
	}
	var cs []changes.Change
	for _, role := range []string{"targets/" + signer, "targets/releases"} {
		cs = append(cs, changes.AddDelegation{Role: role, Keys: []*keys.PublicKey{k}, Paths: []string{""}})
	}
	if err := pub.Publish(ctx, cs); err != nil {
		t.Fatal(err)
	}
}

// signedDigest reads gun from s as a client does, verifying every
// signature, and returns the digest role lists for tag ("" if none).
func signedDigest(t *testing.T, base string, hc *http.Client, gun, role, tag string) string {
	t.Helper()
	remote, err := client.NewRemote(base, hc, tuf.GUN(gun))
	if err != nil {
		t.Fatal(err)
	}
	v, err := (&client.Reader{Remote: remote, Cache: &memCache{m: map[string][]byte{}}}).Update(context.Background())
	if err != nil {
		t.Fatalf("%s does not verify: %v", gun, err)
	}
	fm, ok := v.RoleTarget(role, tag)
	if !ok {
		return ""
	}
	return fmt.Sprintf("sha256:%x", fm.Hashes["sha256"])
}
