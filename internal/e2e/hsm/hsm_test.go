//go:build pkcs11

package hsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/keys/pkcs11/pkcs11test"
	"github.com/signet-trust/signet/internal/tuf"
)

const commandTimeout = 2 * time.Minute

// runner runs one program with a fixed environment.
type runner struct {
	t    *testing.T
	prog string
	args []string // leading arguments (global flags)
	env  []string
	dir  string
}

// run runs the program with its leading arguments and args, feeding it
// stdin; it never fails the test itself.
func (rn runner) run(stdin string, args ...string) *e2etest.Result {
	rn.t.Helper()
	c := e2etest.Command{Env: rn.env, Dir: rn.dir, Stdin: stdin, Timeout: commandTimeout}
	return c.Run(rn.t, append(append([]string{rn.prog}, rn.args...), args...)...)
}

func (rn runner) ok(args ...string) *e2etest.Result {
	rn.t.Helper()
	r := rn.run("", args...)
	if !r.Succeeded() {
		rn.t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func (rn runner) okStdin(stdin string, args ...string) *e2etest.Result {
	rn.t.Helper()
	r := rn.run(stdin, args...)
	if !r.Succeeded() {
		rn.t.Fatalf("command failed:\n%s", r)
	}
	return r
}

func (rn runner) fail(args ...string) *e2etest.Result {
	rn.t.Helper()
	r := rn.run("", args...)
	if r.Err != nil || r.Code == 0 {
		rn.t.Fatalf("command succeeded, want a failure:\n%s", r)
	}
	return r
}

// notaryList parses `notary list` rows into "name digest" strings.
func notaryList(r *e2etest.Result) []string {
	var out []string
	for _, line := range strings.Split(r.Stdout, "\n") {
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
	srv      *inproc.Server
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
	resp, err := f.srv.Client.Get(f.srv.URL + "/v2/" + f.gun + "/_trust/tuf/root.json")
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
		if err := json.Unmarshal([]byte(r.Stdout), &repos); err != nil || len(repos) != 1 {
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
	signetBin := e2etest.Binary(t, "signet", "pkcs11") // the token code needs a signet built with -tags pkcs11
	srv := inproc.StartServer(t, inproc.ServerOptions{})
	dir := t.TempDir()
	f := &fixture{t: t, srv: srv, hsm: hsm, token: tok, dir: dir, gun: "example.com/hsm/app", trustDir: filepath.Join(dir, "signet-trust")}

	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(e2etest.BaseEnv(dir), hsm.Env()...)
	env = append(env,
		"NOTARY_TARGETS_PASSPHRASE=targets-passphrase",
		"NOTARY_SNAPSHOT_PASSPHRASE=snapshot-passphrase",
		"SIGNET_PKCS11_PIN_FILE="+pinFile,
	)
	f.signet = runner{t: t, prog: signetBin, args: []string{"-d", f.trustDir, "-s", srv.URL, "--tlscacert", srv.CAFile}, env: env, dir: dir}
	tokenURI := "pkcs11:token=signet?module-path=" + hsm.Module

	// Startup errors are clear: an absent token, an absent module, a wrong PIN.
	r := f.signet.fail("init", "example.com/hsm/none", "--root-pkcs11", "pkcs11:token=nope?module-path="+hsm.Module)
	e2etest.WantOutput(t, r, `token "nope" is not present`, `present: "signet"`)
	r = f.signet.fail("init", "example.com/hsm/none", "--root-pkcs11", "pkcs11:token=signet?module-path=/nonexistent/libp11.so")
	e2etest.WantOutput(t, r, "/nonexistent/libp11.so", "install")
	wrong := f.signet
	wrong.env = append(append([]string{}, env...), "SIGNET_PKCS11_PIN=not-the-pin")
	r = wrong.fail("init", "example.com/hsm/none", "--root-pkcs11", tokenURI)
	e2etest.WantOutput(t, r, "PIN incorrect")
	r = f.signet.fail("init", "example.com/hsm/none", "--root-pkcs11", "pkcs11:token=signet?module-path="+hsm.Module+"&pin-value="+tok.PIN)
	if strings.Contains(r.Stdout+r.Stderr, tok.PIN) {
		t.Fatalf("an error shows the PIN:\n%s", r)
	}

	// init with the root key created inside the token.
	r = f.signet.ok("init", f.gun, "--root-pkcs11", tokenURI, "-p")
	e2etest.WantOutput(t, r, "Generated a new ECDSA P-256 root key inside", `"root-`+f.gun+`"`)
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
	if e2etest.Have(t, "notary") {
		n := runner{t: t, prog: "notary", args: []string{"-d", filepath.Join(dir, "notary-observer"), "-s", srv.URL, "--tlscacert", srv.CAFile}, env: e2etest.BaseEnv(dir), dir: dir}
		f.notary = &n
		// notary reads the signet trust directory and ignores the token reference.
		r := runner{t: t, prog: "notary", args: []string{"-d", f.trustDir}, env: e2etest.BaseEnv(dir), dir: dir}.ok("key", "list")
		if strings.Contains(r.Stdout+r.Stderr, "pkcs11") || strings.Contains(strings.ToLower(r.Stdout+r.Stderr), "error") {
			t.Fatalf("notary key list on the signet trust directory:\n%s", r)
		}
		if !strings.Contains(r.Stdout, "targets") || strings.Contains(r.Stdout, "root ") {
			t.Fatalf("notary key list: want the targets key and no root key file:\n%s", r)
		}
	}
	if e2etest.Have(t, "docker") {
		cfg := filepath.Join(dir, "docker-observer")
		tlsDir := filepath.Join(cfg, "tls", srv.Host)
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		ca, _ := os.ReadFile(srv.CAFile)
		if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
			t.Fatal(err)
		}
		denv := append(e2etest.BaseEnv(dir), "DOCKER_CONFIG="+cfg, "DOCKER_CONTENT_TRUST_SERVER="+srv.URL, "DOCKER_CLI_HINTS=false",
			"DOCKER_HOST=unix://"+filepath.Join(dir, "no-docker-daemon.sock"))
		d := runner{t: t, prog: "docker", env: denv, dir: dir}
		f.docker = &d
	}
	f.observe("after init")

	f.publish("v1", "first release")
	f.observe("after v1")

	// `signet key list` shows the root key on the token.
	r = f.signet.ok("key", "list")
	e2etest.WantOutput(t, r, firstRoot, "pkcs11:token=signet")

	// Rotating the targets key re-signs the root: with the token key.
	r = f.signet.ok("key", "rotate", f.gun, "targets")
	e2etest.WantOutput(t, r, "Successfully rotated targets key")
	_, _, rootVersion := f.root()
	if rootVersion < 2 {
		t.Fatalf("root version %d after a targets rotation, want ≥ 2", rootVersion)
	}
	f.publish("v2", "second release")
	f.observe("after targets rotation")

	// Rotating the root key: the new key is made in the token, the old
	// token key signs the rotation.
	r = f.signet.okStdin("yes\n", "key", "rotate", f.gun, "root", "--root-pkcs11", "pkcs11:token=signet;object=root-2?module-path="+hsm.Module)
	e2etest.WantOutput(t, r, "Generated a new ECDSA P-256 root key inside", `"root-2"`, "Successfully rotated root key")
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
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "already the root key") {
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
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
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
	e2etest.WantOutput(t, r, "Successfully rotated snapshot key")
	f.observe("after snapshot rotation")

	r = f.signet.ok("expiry")
	e2etest.WantOutput(t, r, "GUN", "ROLE", "VERSION", "EXPIRES", "IN", "root certificate "+canonical[0][:12], "9y 364d")
}
