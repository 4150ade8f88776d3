//go:build pkcs11

package hsm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
	"github.com/signet-trust/signet/internal/tuf"
)

const commandTimeout = 2 * time.Minute

// required reports whether SIGNET_TEST_REQUIRE makes a missing program an
// error.
func required(name string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == name {
			return true
		}
	}
	return false
}

func need(t *testing.T, program string) bool {
	t.Helper()
	if _, err := exec.LookPath(program); err == nil {
		return true
	}
	if required(program) {
		t.Fatalf("%s not found on PATH (SIGNET_TEST_REQUIRE=%q makes this an error)", program, os.Getenv("SIGNET_TEST_REQUIRE"))
	}
	t.Logf("%s not found on PATH: its checks are skipped (set SIGNET_TEST_REQUIRE=all to fail instead)", program)
	return false
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// build compiles the signet client with -tags pkcs11 and the server.
func build(t *testing.T) (signet, server string) {
	t.Helper()
	dir := t.TempDir()
	root := moduleRoot(t)
	signet = filepath.Join(dir, "signet")
	server = os.Getenv("SIGNET_SERVER_BIN")
	builds := [][]string{{"build", "-tags", "pkcs11", "-o", signet, "./cmd/signet"}}
	if server == "" {
		server = filepath.Join(dir, "signet-server")
		builds = append(builds, []string{"build", "-o", server, "./cmd/signet-server"})
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return signet, server
}

// server is a signet-server subprocess on 127.0.0.1 with a throw-away CA.
type server struct {
	url, host, caFile string
}

func startServer(t *testing.T, bin string) *server {
	t.Helper()
	dir := t.TempDir()
	caFile, certFile, keyFile := writePKI(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logFile := filepath.Join(dir, "server.log")
	logf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SIGNET_KEY_PASSPHRASE=hsm-test-key-passphrase"}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("signet-server log:\n%s", tail(string(b), 40))
		}
	})
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("signet-server exited:\n%s", b)
		default:
		}
		resp, err := hc.Get("https://" + addr + "/_notary_server/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("signet-server not healthy on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &server{url: "https://" + addr, host: addr, caFile: caFile}
}

func writePKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signet hsm test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "signet-server"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", leafDER}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.name, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// runner runs one program with a fixed environment.
type runner struct {
	t    *testing.T
	prog string
	args []string // leading arguments (global flags)
	env  []string
	dir  string
}

type result struct {
	cmd            string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit %d\n--- stdout ---\n%s--- stderr ---\n%s", r.cmd, r.code, r.stdout, r.stderr)
}

func (rn runner) run(stdin string, args ...string) result {
	rn.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	all := append(append([]string{}, rn.args...), args...)
	cmd := exec.CommandContext(ctx, rn.prog, all...)
	cmd.Env = rn.env
	cmd.Dir = rn.dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := result{cmd: rn.prog + " " + strings.Join(all, " "), stdout: out.String(), stderr: errOut.String()}
	if err != nil {
		res.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			res.code = ee.ExitCode()
		} else {
			res.stderr += "\n" + err.Error()
		}
	}
	return res
}

func (rn runner) ok(args ...string) result {
	rn.t.Helper()
	r := rn.run("", args...)
	if r.code != 0 {
		rn.t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func (rn runner) okStdin(stdin string, args ...string) result {
	rn.t.Helper()
	r := rn.run(stdin, args...)
	if r.code != 0 {
		rn.t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func (rn runner) fail(args ...string) result {
	rn.t.Helper()
	r := rn.run("", args...)
	if r.code == 0 {
		rn.t.Fatalf("command succeeded, want a failure:\n%s", r)
	}
	return r
}

func wantContains(t *testing.T, r result, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Fatalf("output lacks %q:\n%s", s, r)
		}
	}
}

func baseEnv(home string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"}
	if v := os.Getenv("TMPDIR"); v != "" {
		env = append(env, "TMPDIR="+v)
	}
	return env
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// notaryList parses `notary list` rows into "name digest" strings.
func notaryList(r result) []string {
	var out []string
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && len(f[1]) == 64 {
			out = append(out, f[0]+" "+f[1])
		}
	}
	slices.Sort(out)
	return out
}

type inspectRepo struct {
	Name       string
	SignedTags []struct {
		SignedTag string
		Digest    string
		Signers   []string
	}
	AdministrativeKeys []struct {
		Name string
		Keys []struct{ ID string }
	}
}

func (ir inspectRepo) tags() []string {
	var out []string
	for _, s := range ir.SignedTags {
		out = append(out, s.SignedTag+" "+s.Digest)
	}
	slices.Sort(out)
	return out
}

func (ir inspectRepo) adminKeys(name string) []string {
	var out []string
	for _, a := range ir.AdministrativeKeys {
		if a.Name == name {
			for _, k := range a.Keys {
				out = append(out, k.ID)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fixture is the test's world: a token, a server, the signet publisher and
// the observers that trusted the repository before each change.
type fixture struct {
	t        *testing.T
	srv      *server
	hsm      *pkcs11test.SoftHSM
	token    pkcs11test.Token
	signet   runner
	trustDir string
	notary   *runner // nil when the notary CLI is missing
	docker   *runner // nil when the docker CLI is missing
	gun      string
	dir      string
	targets  []string // "name sha256hex" published so far
}

func (f *fixture) publish(name, content string, extraEnv ...string) {
	f.t.Helper()
	file := filepath.Join(f.dir, name+".bin")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	s := f.signet
	s.env = append(append([]string{}, s.env...), extraEnv...)
	s.ok("add", f.gun, name, file, "-p")
	meta := tuf.NewFileMeta([]byte(content))
	f.targets = append(f.targets, fmt.Sprintf("%s %x", name, meta.Hashes["sha256"]))
	slices.Sort(f.targets)
}

// rootKeyIDs reads the root role's key IDs from the server's root.json, as
// TUF key IDs and as canonical IDs.
func (f *fixture) root() (ids, canonical []string, version int) {
	f.t.Helper()
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(f.srv.caFile)
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(f.srv.url + "/v2/" + f.gun + "/_trust/tuf/root.json")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	m, err := tuf.ParseRoot(buf.Bytes())
	if err != nil {
		f.t.Fatalf("server root.json: %v", err)
	}
	for _, id := range m.Signed.Roles[tuf.RoleRoot].KeyIDs {
		ids = append(ids, id)
		canonical = append(canonical, m.Signed.Keys[id].CanonicalID())
	}
	slices.Sort(ids)
	return ids, canonical, m.Signed.Version
}

// observe checks that every observer still verifies the repository and
// sees exactly the targets published.
func (f *fixture) observe(step string) {
	f.t.Helper()
	if f.notary != nil {
		r := f.notary.ok("list", f.gun)
		if got := notaryList(r); !slices.Equal(got, f.targets) {
			f.t.Fatalf("%s: notary list = %v, want %v\n%s", step, got, f.targets, r)
		}
	}
	if f.docker != nil {
		r := f.docker.ok("trust", "inspect", f.gun)
		var repos []inspectRepo
		if err := json.Unmarshal([]byte(r.stdout), &repos); err != nil || len(repos) != 1 {
			f.t.Fatalf("%s: docker trust inspect: %v\n%s", step, err, r)
		}
		if got := repos[0].tags(); !slices.Equal(got, f.targets) {
			f.t.Fatalf("%s: docker trust inspect tags = %v, want %v\n%s", step, got, f.targets, r)
		}
		ids, _, _ := f.root()
		if got := repos[0].adminKeys("Root"); !slices.Equal(got, ids) {
			f.t.Fatalf("%s: docker trust inspect Root keys = %v, want root.json's %v\n%s", step, got, ids, r)
		}
	}
	// signet itself, from a fresh trust directory.
	fresh := f.signet
	fresh.args = append([]string{"-d", filepath.Join(f.dir, "fresh-"+strings.ReplaceAll(step, " ", "-"))}, f.signet.args[2:]...)
	r := fresh.ok("list", f.gun)
	if got := notaryList(r); !slices.Equal(got, f.targets) {
		f.t.Fatalf("%s: signet list from a fresh trust dir = %v, want %v\n%s", step, got, f.targets, r)
	}
}

// tokenRefs reads the trust directory's token references.
func (f *fixture) tokenRefs() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(filepath.Join(f.trustDir, "private"))
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".pkcs11")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.trustDir, "private", e.Name()))
		if err != nil {
			f.t.Fatal(err)
		}
		var ref struct{ Role, URI string }
		if err := json.Unmarshal(b, &ref); err != nil || ref.Role != tuf.RoleRoot {
			f.t.Fatalf("token reference %s: %v %+v", e.Name(), err, ref)
		}
		if strings.Contains(string(b), f.token.PIN) {
			f.t.Fatalf("token reference %s holds the PIN", e.Name())
		}
		out[id] = ref.URI
	}
	return out
}

// rootKeyFiles lists private/*.key files whose role header is root.
func (f *fixture) rootKeyFiles() []string {
	f.t.Helper()
	var out []string
	paths, _ := filepath.Glob(filepath.Join(f.trustDir, "private", "*.key"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.t.Fatal(err)
		}
		info, err := keys.InspectPrivateKeyPEM(b)
		if err == nil && info.Role == tuf.RoleRoot {
			out = append(out, p)
		}
	}
	return out
}

func TestTokenRootWorkflow(t *testing.T) {
	hsm := pkcs11test.New(t)
	tok := hsm.InitToken(t, "signet")
	signetBin, serverBin := build(t)
	srv := startServer(t, serverBin)
	dir := t.TempDir()
	f := &fixture{t: t, srv: srv, hsm: hsm, token: tok, dir: dir, gun: "example.com/hsm/app", trustDir: filepath.Join(dir, "signet-trust")}

	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(dir), hsm.Env()...)
	env = append(env,
		"NOTARY_TARGETS_PASSPHRASE=targets-passphrase",
		"NOTARY_SNAPSHOT_PASSPHRASE=snapshot-passphrase",
		"SIGNET_PKCS11_PIN_FILE="+pinFile,
	)
	f.signet = runner{t: t, prog: signetBin, args: []string{"-d", f.trustDir, "-s", srv.url, "--tlscacert", srv.caFile}, env: env, dir: dir}
	tokenURI := "pkcs11:token=signet?module-path=" + hsm.Module

	// Startup errors are clear: an absent token, an absent module, a wrong PIN.
	r := f.signet.fail("init", "example.com/hsm/none", "--root-pkcs11", "pkcs11:token=nope?module-path="+hsm.Module)
	wantContains(t, r, `token "nope" is not present`, `present: "signet"`)
	r = f.signet.fail("init", "example.com/hsm/none", "--root-pkcs11", "pkcs11:token=signet?module-path=/nonexistent/libp11.so")
	wantContains(t, r, "/nonexistent/libp11.so", "install")
	wrong := f.signet
	wrong.env = append(append([]string{}, env...), "SIGNET_PKCS11_PIN=not-the-pin")
	r = wrong.fail("init", "example.com/hsm/none", "--root-pkcs11", tokenURI)
	wantContains(t, r, "PIN incorrect")
	r = f.signet.fail("init", "example.com/hsm/none", "--root-pkcs11", "pkcs11:token=signet?module-path="+hsm.Module+"&pin-value="+tok.PIN)
	if strings.Contains(r.stdout+r.stderr, tok.PIN) {
		t.Fatalf("an error shows the PIN:\n%s", r)
	}

	// init with the root key created inside the token.
	r = f.signet.ok("init", f.gun, "--root-pkcs11", tokenURI, "-p")
	wantContains(t, r, "Generated a new ECDSA P-256 root key inside", `"root-`+f.gun+`"`)
	if files := f.rootKeyFiles(); len(files) != 0 {
		t.Fatalf("root key files in the trust directory: %v", files)
	}
	refs := f.tokenRefs()
	_, canonical, _ := f.root()
	if len(refs) != 1 || refs[canonical[0]] == "" {
		t.Fatalf("token references %v, want one for the root key %v", refs, canonical)
	}
	firstRoot := canonical[0]

	// The real clients trust the repository before any change.
	if need(t, "notary") {
		n := runner{t: t, prog: "notary", args: []string{"-d", filepath.Join(dir, "notary-observer"), "-s", srv.url, "--tlscacert", srv.caFile}, env: baseEnv(dir), dir: dir}
		f.notary = &n
		// notary reads the signet trust directory and ignores the token reference.
		r := runner{t: t, prog: "notary", args: []string{"-d", f.trustDir}, env: baseEnv(dir), dir: dir}.ok("key", "list")
		if strings.Contains(r.stdout+r.stderr, "pkcs11") || strings.Contains(strings.ToLower(r.stdout+r.stderr), "error") {
			t.Fatalf("notary key list on the signet trust directory:\n%s", r)
		}
		if !strings.Contains(r.stdout, "targets") || strings.Contains(r.stdout, "root ") {
			t.Fatalf("notary key list: want the targets key and no root key file:\n%s", r)
		}
	}
	if need(t, "docker") {
		cfg := filepath.Join(dir, "docker-observer")
		tlsDir := filepath.Join(cfg, "tls", srv.host)
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		ca, _ := os.ReadFile(srv.caFile)
		if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
		denv := append(baseEnv(dir), "DOCKER_CONFIG="+cfg, "DOCKER_CONTENT_TRUST_SERVER="+srv.url, "DOCKER_CLI_HINTS=false",
			"DOCKER_HOST=unix://"+filepath.Join(dir, "no-docker-daemon.sock"))
		d := runner{t: t, prog: "docker", env: denv, dir: dir}
		f.docker = &d
	}
	f.observe("after init")

	f.publish("v1", "first release")
	f.observe("after v1")

	// `signet key list` shows the root key on the token.
	r = f.signet.ok("key", "list")
	wantContains(t, r, firstRoot, "pkcs11:token=signet")

	// Rotating the targets key re-signs the root: with the token key.
	r = f.signet.ok("key", "rotate", f.gun, "targets")
	wantContains(t, r, "Successfully rotated targets key")
	_, _, rootVersion := f.root()
	if rootVersion < 2 {
		t.Fatalf("root version %d after a targets rotation, want ≥ 2", rootVersion)
	}
	f.publish("v2", "second release")
	f.observe("after targets rotation")

	// Rotating the root key: the new key is made in the token, the old
	// token key signs the rotation.
	r = f.signet.okStdin("yes\n", "key", "rotate", f.gun, "root", "--root-pkcs11", "pkcs11:token=signet;object=root-2?module-path="+hsm.Module)
	wantContains(t, r, "Generated a new ECDSA P-256 root key inside", `"root-2"`, "Successfully rotated root key")
	_, canonical, _ = f.root()
	if len(canonical) != 1 || canonical[0] == firstRoot {
		t.Fatalf("root keys after rotation %v (first root %s)", canonical, firstRoot)
	}
	if refs := f.tokenRefs(); refs[canonical[0]] == "" || !strings.Contains(refs[canonical[0]], "object=root-2") {
		t.Fatalf("token references %v lack the new root key %s", refs, canonical[0])
	}
	if files := f.rootKeyFiles(); len(files) != 0 {
		t.Fatalf("root key files in the trust directory: %v", files)
	}
	// Rotating to the same key again is refused.
	r = f.signet.run("yes\n", "key", "rotate", f.gun, "root", "--root-pkcs11", "pkcs11:token=signet;object=root-2?module-path="+hsm.Module)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "already the root key") {
		t.Fatalf("rotating to the current root key:\n%s", r)
	}

	// A short targets lifetime from the environment; publish with the new root.
	f.publish("v3", "third release", "SIGNET_TARGETS_EXPIRY=90d")
	f.observe("after root rotation")

	// signet expiry shows the targets expiring within 90 days, and the
	// 10-year root certificate of the token key.
	r = f.signet.ok("expiry", "--within", "91d", "-o", "json")
	var rows []struct {
		GUN, Role, Kind string
		Expires         time.Time
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("signet expiry -o json: %v\n%s", err, r)
	}
	var roles []string
	for _, row := range rows {
		roles = append(roles, row.Role+"/"+row.Kind)
		if row.GUN != f.gun {
			t.Errorf("expiry row for %q", row.GUN)
		}
	}
	slices.Sort(roles)
	if want := []string{"targets/metadata", "timestamp/metadata"}; !slices.Equal(roles, want) {
		t.Fatalf("signet expiry --within 91d: roles %v, want %v\n%s", roles, want, r)
	}
	// The snapshot rotation needs the new token root to sign the root. (It
	// also renews the 90-day targets, which expire within the renewal window,
	// at the default lifetime.)
	r = f.signet.ok("key", "rotate", f.gun, "snapshot")
	wantContains(t, r, "Successfully rotated snapshot key")
	f.observe("after snapshot rotation")

	r = f.signet.ok("expiry")
	wantContains(t, r, "GUN", "ROLE", "VERSION", "EXPIRES", "IN", "root certificate "+canonical[0][:12], "9y 364d")
}
