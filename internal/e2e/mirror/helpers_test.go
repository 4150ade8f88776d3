package mirror

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// trustServer is a Notary server as clients reach it.
type trustServer struct {
	name   string
	url    string
	caFile string
	client *http.Client
}

// get fetches an API path.
func (s trustServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := s.client.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", s.url, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// state is what a server serves of a repository: root versions 1..8 and
// the current files of the given roles (status and bytes).
func (s trustServer) state(t *testing.T, gun string, roles ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	base := "/v2/" + gun + "/_trust/tuf/"
	for v := 1; v <= 8; v++ {
		out[fmt.Sprintf("%d.root", v)] = s.file(t, fmt.Sprintf("%s%d.root.json", base, v))
	}
	for _, role := range append([]string{"root", "timestamp", "snapshot", "targets"}, roles...) {
		out[role] = s.file(t, base+role+".json")
	}
	return out
}

// file is "200 <hex of the bytes>", or the status of a failure (whose body
// is each server's own error envelope).
func (s trustServer) file(t *testing.T, path string) string {
	t.Helper()
	code, b := s.get(t, path)
	if code != http.StatusOK {
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("%d %x", code, b)
}

// sameBytes checks that two servers serve the same bytes for every entry
// of the first's state that the first has.
func sameBytes(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			t.Errorf("%s: %s differs:\n  %.80s\n  %.80s", what, k, a[k], b[k])
		}
	}
}

// notaryCLI is the real notary client with its own trust directory.
type notaryCLI struct {
	t        *testing.T
	trustDir string
	cmd      e2etest.Command
}

// Passphrases of every key the notary clients make.
var notaryPassphrases = []string{
	"NOTARY_ROOT_PASSPHRASE=mirror-root-pass",
	"NOTARY_TARGETS_PASSPHRASE=mirror-targets-pass",
	"NOTARY_SNAPSHOT_PASSPHRASE=mirror-snapshot-pass",
	"NOTARY_DELEGATION_PASSPHRASE=mirror-delegation-pass",
}

func newNotary(t *testing.T, dir, name string) *notaryCLI {
	return notaryAt(t, dir, filepath.Join(dir, "notary-"+name), notaryPassphrases)
}

func notaryAt(t *testing.T, dir, trustDir string, passphrases []string, env ...string) *notaryCLI {
	e := append(append(e2etest.BaseEnv(dir), passphrases...), env...)
	return &notaryCLI{t: t, trustDir: trustDir, cmd: e2etest.Command{Env: e, Extra: append(passphrases, env...), Dir: dir}}
}

func (n *notaryCLI) args(s trustServer, args []string) []string {
	return append([]string{"notary", "-s", s.url, "--tlscacert", s.caFile, "-d", n.trustDir}, args...)
}

func (n *notaryCLI) ok(s trustServer, args ...string) *e2etest.Result {
	n.t.Helper()
	return n.cmd.OK(n.t, n.args(s, args)...)
}

func (n *notaryCLI) fail(s trustServer, args ...string) *e2etest.Result {
	n.t.Helper()
	return n.cmd.Fail(n.t, n.args(s, args)...)
}

func (n *notaryCLI) yes() *notaryCLI {
	c := *n
	c.cmd = n.cmd.WithStdin("yes\n")
	return &c
}

// list runs notary list and returns its rows as "NAME ROLE", sorted.
func (n *notaryCLI) list(s trustServer, gun string) []string {
	n.t.Helper()
	r := n.ok(s, "list", gun)
	var rows []string
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if i < 2 || len(f) < 4 {
			continue
		}
		rows = append(rows, f[0]+" "+f[len(f)-1])
	}
	sort.Strings(rows)
	return rows
}

// wantList checks notary list's rows.
func (n *notaryCLI) wantList(s trustServer, gun, who string, want ...string) {
	n.t.Helper()
	sort.Strings(want)
	got := n.list(s, gun)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		n.t.Fatalf("%s: notary list on %s: %q, want %q", who, s.name, got, want)
	}
}

// signetCLI runs the signet binary (built once by e2etest.Binary), as a
// user runs it, with its own HOME and DOCKER_CONFIG.
type signetCLI struct {
	t   *testing.T
	bin string
	cmd e2etest.Command
}

func newSignet(t *testing.T, dir string, env ...string) *signetCLI {
	extra := append([]string{"DOCKER_CONFIG=" + filepath.Join(dir, "signet-docker")}, env...)
	return &signetCLI{t: t, bin: e2etest.Binary(t, "signet"), cmd: e2etest.Command{Dir: dir, Env: e2etest.BaseEnv(dir)}.WithEnv(extra...)}
}

func (s *signetCLI) run(args ...string) (int, string, string) {
	s.t.Helper()
	r := s.cmd.Run(s.t, append([]string{s.bin}, args...)...)
	if r.Err != nil {
		s.t.Fatalf("signet did not run:\n%s", r)
	}
	return r.Code, r.Stdout, r.Stderr
}

// mirror runs signet mirror from src into dst and returns its output;
// want is the exit code expected.
func (s *signetCLI) mirror(src, dst trustServer, want int, guns ...string) string {
	s.t.Helper()
	args := append([]string{"mirror", "--from", src.url, "--from-ca", src.caFile, "-s", dst.url, "--tlscacert", dst.caFile}, guns...)
	code, out, errOut := s.run(args...)
	if code != want {
		s.t.Fatalf("signet %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errOut)
	}
	s.t.Logf("signet mirror (exit %d):\n%s%s", code, out, errOut)
	return out + errOut
}

func wantIn(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

// writeFile writes a payload to sign.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// delegationKey is a key and certificate for notary delegation add and
// notary key import.
type delegationKey struct{ certFile, keyFile string }

func newDelegationKey(t *testing.T, dir, name string) delegationKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	d := delegationKey{filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")}
	if err := os.WriteFile(d.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// copyDir copies a trust directory.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dockerCLI is the real Docker CLI (no daemon) with its own DOCKER_CONFIG,
// pointed at one trust server, whose CA is in tls/<host:port>/ca.crt.
type dockerCLI struct {
	t      *testing.T
	dir    string
	config string
	cmd    e2etest.Command
}

// Docker's passphrases for every key the Docker clients make.
const (
	dockerRootPass = "mirror-docker-root-pass"
	dockerRepoPass = "mirror-docker-repo-pass"
)

func newDocker(t *testing.T, dir, name string, s trustServer) *dockerCLI {
	t.Helper()
	cfg := filepath.Join(dir, "docker-"+name)
	d := &dockerCLI{t: t, dir: dir, config: cfg}
	d.point(s)
	return d
}

// point makes the client use trust server s (its URL and CA), keeping its
// configuration and trust directory.
func (d *dockerCLI) point(s trustServer) {
	d.t.Helper()
	host := strings.TrimPrefix(s.url, "https://")
	tlsDir := filepath.Join(d.config, "tls", host)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		d.t.Fatal(err)
	}
	ca, err := os.ReadFile(s.caFile)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		d.t.Fatal(err)
	}
	extra := []string{
		"DOCKER_CONFIG=" + d.config,
		"DOCKER_CONTENT_TRUST_SERVER=" + s.url,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=" + dockerRootPass,
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=" + dockerRepoPass,
		"DOCKER_CLI_HINTS=false",
	}
	env := append(e2etest.BaseEnv(d.dir), append(extra, "DOCKER_HOST=unix://"+filepath.Join(d.dir, "no-docker-daemon.sock"))...)
	d.cmd = e2etest.Command{Env: env, Extra: extra, Dir: d.dir}
}

func (d *dockerCLI) ok(args ...string) *e2etest.Result {
	d.t.Helper()
	return d.cmd.OK(d.t, append([]string{"docker"}, args...)...)
}

// notary is the notary CLI on this Docker trust directory, with Docker's
// passphrases (the repository passphrase protects targets, snapshot and
// signer keys).
func (d *dockerCLI) notary() *notaryCLI {
	return notaryAt(d.t, d.dir, filepath.Join(d.config, "trust"), []string{
		"NOTARY_ROOT_PASSPHRASE=" + dockerRootPass,
		"NOTARY_TARGETS_PASSPHRASE=" + dockerRepoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE=" + dockerRepoPass,
		"NOTARY_DELEGATION_PASSPHRASE=" + dockerRepoPass,
	})
}

// signedTags runs docker trust inspect and returns "tag signer,signer…"
// lines and the signer names.
func (d *dockerCLI) signedTags(ref string) (tags, signers []string) {
	d.t.Helper()
	r := d.ok("trust", "inspect", ref)
	var repos []struct {
		SignedTags []struct {
			SignedTag string
			Signers   []string
		}
		Signers []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &repos); err != nil || len(repos) != 1 {
		d.t.Fatalf("docker trust inspect %s: %v\n%s", ref, err, r)
	}
	for _, st := range repos[0].SignedTags {
		tags = append(tags, st.SignedTag+" "+strings.Join(st.Signers, ","))
	}
	for _, s := range repos[0].Signers {
		signers = append(signers, s.Name)
	}
	sort.Strings(tags)
	sort.Strings(signers)
	return tags, signers
}
