package clientshape

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/cli"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

var passphrases = map[string]string{
	"NOTARY_ROOT_PASSPHRASE":       "shape-root-passphrase",
	"NOTARY_TARGETS_PASSPHRASE":    "shape-targets-passphrase",
	"NOTARY_SNAPSHOT_PASSPHRASE":   "shape-snapshot-passphrase",
	"NOTARY_DELEGATION_PASSPHRASE": "shape-delegation-passphrase",
}

// client is one of the two clients, on its own repository and trust
// directory.
type client struct {
	name     string
	gun      string
	home     string
	trustDir string
	run      func(t *testing.T, args ...string)
}

func globalFlags(c *client, srv *e2etest.Server, ca string) []string {
	return []string{"-s", srv.Base, "--tlscacert", ca, "-d", c.trustDir}
}

func newNotary(t *testing.T, dir string, srv *e2etest.Server, ca string) *client {
	c := &client{name: "notary", gun: "example.com/shape/notary", home: filepath.Join(dir, "notary-home"), trustDir: filepath.Join(dir, "notary-trust")}
	c.run = func(t *testing.T, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "notary", append(globalFlags(c, srv, ca), args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home}
		for k, v := range passphrases {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader("yes\n") // key rotate root asks
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("notary %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return c
}

func newSignet(t *testing.T, dir string, srv *e2etest.Server, ca string) *client {
	c := &client{name: "signet", gun: "example.com/shape/signet", home: filepath.Join(dir, "signet-home"), trustDir: filepath.Join(dir, "signet-trust")}
	c.run = func(t *testing.T, args ...string) {
		t.Helper()
		env := map[string]string{"HOME": c.home}
		for k, v := range passphrases {
			env[k] = v
		}
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		code := cli.Main(ctx, append(globalFlags(c, srv, ca), args...), cli.Env{
			Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &out,
			Stdin: strings.NewReader("yes\n"), // key rotate root asks
		})
		if code != 0 {
			t.Fatalf("signet %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
		}
	}
	return c
}

// delegationKey writes an ECDSA key (PKCS#8 PEM) and a certificate for it,
// as a delegate hands them to a repository owner.
func delegationKey(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// step is one command sequence both clients run ("G" is the client's
// repository).
type step struct {
	name string
	cmds [][]string
}

func TestClientsWriteNotarysShape(t *testing.T) {
	if _, err := exec.LookPath("notary"); err != nil {
		if e2etest.Required("notary") {
			t.Fatalf("notary not found on PATH (SIGNET_TEST_REQUIRE=%q)", os.Getenv("SIGNET_TEST_REQUIRE"))
		}
		t.Skip("notary not found on PATH (set SIGNET_TEST_REQUIRE=all to fail instead)")
	}
	dir := t.TempDir()
	srv := e2etest.Start(t, e2etest.Options{Bin: e2etest.Binary(t, "signet-server"), DataDir: filepath.Join(dir, "server"), LogTailOnFailure: true})
	ca := filepath.Join(dir, "server", "tls", "ca.crt")
	payload := filepath.Join(dir, "payload.txt")
	if err := os.WriteFile(payload, []byte("clientshape payload\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	relCert, relKey := delegationKey(t, dir, "releases")
	teamCert, _ := delegationKey(t, dir, "team")
	clients := []*client{newNotary(t, dir, srv, ca), newSignet(t, dir, srv, ca)}

	steps := []step{
		{"init", [][]string{{"init", "G"}}},
		{"add and first publish", [][]string{{"add", "G", "v1", payload}, {"publish", "G"}}},
		{"delegation add (all paths, and restricted paths), publish", [][]string{
			{"delegation", "add", "G", "targets/releases", relCert, "--all-paths"},
			{"delegation", "add", "G", "targets/team", teamCert, "--paths", "team/"},
			{"publish", "G"}}},
		{"key import, add to a delegation, publish", [][]string{
			{"key", "import", relKey, "--role", "targets/releases"},
			{"add", "G", "rel-v1", payload, "--roles", "targets/releases"},
			{"publish", "G"}}},
		{"remove a target, publish", [][]string{{"remove", "G", "v1"}, {"publish", "G"}}},
		{"addhash, publish", [][]string{{"addhash", "G", "v2", "123", "--sha256", strings.Repeat("ab", 32)}, {"publish", "G"}}},
		{"delegation remove, publish", [][]string{{"delegation", "remove", "G", "targets/team", "-y"}, {"publish", "G"}}},
		{"witness, publish", [][]string{{"witness", "G", "targets/releases"}, {"publish", "G"}}},
		{"key rotate targets", [][]string{{"key", "rotate", "G", "targets"}}},
		{"key rotate snapshot (client key)", [][]string{{"key", "rotate", "G", "snapshot"}}},
		{"key rotate snapshot -r (server key)", [][]string{{"key", "rotate", "G", "snapshot", "-r"}}},
		{"key rotate timestamp -r", [][]string{{"key", "rotate", "G", "timestamp", "-r"}}},
		{"key rotate root", [][]string{{"key", "rotate", "G", "root"}}},
		{"publish after the rotations", [][]string{{"add", "G", "v3", payload}, {"publish", "G"}}},
		{"key rotate root again", [][]string{{"key", "rotate", "G", "root"}}},
	}
	for _, st := range steps {
		shapes := make([]map[string]any, len(clients))
		for i, c := range clients {
			for _, cmd := range st.cmds {
				args := slices.Clone(cmd)
				for j, a := range args {
					if a == "G" {
						args[j] = c.gun
					}
				}
				c.run(t, args...)
			}
			// notary's publish leaves its cache as it was before the
			// upload; both caches are compared as a read leaves them
			// (after init nothing is published yet to read).
			if st.name != "init" {
				c.run(t, "list", c.gun)
			}
			shapes[i] = shapeOf(t, c, srv)
		}
		diff(t, st.name, shapes[0], shapes[1])
		if testing.Verbose() {
			b, _ := json.MarshalIndent(shapes[0]["served"], "", "  ")
			t.Logf("after %q both serve:\n%s", st.name, b)
		}
	}
}

// shapeOf describes what a client wrote: the repository's files as the
// server serves them, the client's cached metadata, and the roles of the
// private keys it holds.
func shapeOf(t *testing.T, c *client, srv *e2etest.Server) map[string]any {
	t.Helper()
	out := map[string]any{}
	served := map[string]any{}
	queue := []string{"root", "targets", "snapshot", "timestamp"}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		b := get(t, srv, "/v2/"+c.gun+"/_trust/tuf/"+role+".json")
		if b == nil {
			served[role] = "absent"
			continue
		}
		served[role] = fileShape(t, c.gun, role, b)
		queue = append(queue, delegationsOf(t, b)...)
	}
	out["served"] = served
	cached := map[string]any{}
	mdir := filepath.Join(c.trustDir, "tuf", filepath.FromSlash(c.gun), "metadata")
	_ = filepath.WalkDir(mdir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		rel, _ := filepath.Rel(mdir, path)
		role := strings.TrimSuffix(filepath.ToSlash(rel), ".json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cached[role] = fileShape(t, c.gun, role, b)
		return nil
	})
	out["cached"] = cached
	var keyRoles []string
	files, _ := filepath.Glob(filepath.Join(c.trustDir, "private", "*.key"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s: not PEM", f)
		}
		gun := "no gun"
		if g := block.Headers["gun"]; g != "" {
			gun = "this gun"
			if g != c.gun {
				gun = "another gun"
			}
		}
		keyRoles = append(keyRoles, fmt.Sprintf("%s (%s, %s)", block.Headers["role"], gun, block.Type))
	}
	sort.Strings(keyRoles)
	out["private keys"] = keyRoles
	return out
}

func get(t *testing.T, srv *e2etest.Server, path string) []byte {
	t.Helper()
	resp, err := srv.Client.Get(srv.Base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var env struct {
		Signed     map[string]any   `json:"signed"`
		Signatures []map[string]any `json:"signatures"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	env.Signed["signatures"] = env.Signatures
	return env.Signed
}

func delegationsOf(t *testing.T, b []byte) []string {
	m := decode(t, b)
	dl, _ := m["delegations"].(map[string]any)
	roles, _ := dl["roles"].([]any)
	var out []string
	for _, r := range roles {
		out = append(out, r.(map[string]any)["name"].(string))
	}
	return out
}

// days is the lifetime left of an expiry, in whole days.
func days(v any) string {
	exp, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
	if err != nil {
		return "unparsable expiry " + fmt.Sprint(v)
	}
	return fmt.Sprintf("%.0f days", math.Round(time.Until(exp).Hours()/24))
}

// keyShape is a key's type and, for a certificate, its subject and
// lifetime.
func keyShape(gun string, k any) string {
	km, _ := k.(map[string]any)
	typ := fmt.Sprint(km["keytype"])
	pub, _ := km["keyval"].(map[string]any)["public"].(string)
	if !strings.HasSuffix(typ, "-x509") {
		return typ
	}
	der, _ := base64.StdEncoding.DecodeString(pub)
	block, _ := pem.Decode(der)
	if block == nil {
		return typ + " (no PEM)"
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return typ + " (bad certificate)"
	}
	cn := "CN=" + cert.Subject.CommonName
	if cert.Subject.CommonName == gun {
		cn = "CN=GUN"
	}
	return fmt.Sprintf("%s (%s, %.0f days, CA %v)", typ, cn, cert.NotAfter.Sub(cert.NotBefore).Hours()/24, cert.IsCA)
}

func keyID(k any) string {
	km, _ := k.(map[string]any)
	b, _ := json.Marshal(map[string]any{"keytype": km["keytype"], "keyval": map[string]any{"private": nil, "public": km["keyval"].(map[string]any)["public"]}})
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%x", sum)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hashAlgs(fm any) string {
	h, _ := fm.(map[string]any)["hashes"].(map[string]any)
	return strings.Join(sortedKeys(h), "+")
}

// fileShape reduces a metadata file to what must agree between clients.
func fileShape(t *testing.T, gun, role string, b []byte) map[string]any {
	t.Helper()
	m := decode(t, b)
	s := map[string]any{"_type": m["_type"], "version": m["version"], "expires": days(m["expires"])}
	var methods []string
	for _, sig := range m["signatures"].([]map[string]any) {
		methods = append(methods, fmt.Sprint(sig["method"]))
	}
	sort.Strings(methods)
	s["signatures"] = methods
	switch {
	case role == "root" || strings.HasSuffix(role, ".root"):
		s["consistent_snapshot"] = m["consistent_snapshot"]
		keys, _ := m["keys"].(map[string]any)
		used := map[string]bool{}
		roles := map[string]any{}
		rm, _ := m["roles"].(map[string]any)
		for name, r := range rm {
			r := r.(map[string]any)
			var kinds []string
			for _, id := range r["keyids"].([]any) {
				used[id.(string)] = true
				kinds = append(kinds, keyShape(gun, keys[id.(string)]))
			}
			sort.Strings(kinds)
			roles[name] = map[string]any{"threshold": r["threshold"], "keys": kinds}
		}
		s["roles"] = roles
		var unused, all []string
		for id, k := range keys {
			all = append(all, keyShape(gun, k))
			if !used[id] {
				unused = append(unused, keyShape(gun, k))
			}
			if keyID(k) != id {
				unused = append(unused, "key listed under a foreign ID")
			}
		}
		sort.Strings(all)
		sort.Strings(unused)
		s["keys"], s["keys in no role"] = all, unused
	case role == "snapshot" || role == "timestamp":
		meta := map[string]any{}
		mm, _ := m["meta"].(map[string]any)
		for name, fm := range mm {
			meta[name] = hashAlgs(fm)
		}
		s["meta"] = meta
	default: // targets roles
		tg := map[string]any{}
		tm, _ := m["targets"].(map[string]any)
		for name, fm := range tm {
			_, custom := fm.(map[string]any)["custom"]
			tg[name] = fmt.Sprintf("%s length %v custom %v", hashAlgs(fm), fm.(map[string]any)["length"], custom)
		}
		s["targets"] = tg
		dl, _ := m["delegations"].(map[string]any)
		keys, _ := dl["keys"].(map[string]any)
		var kinds []string
		for _, k := range keys {
			kinds = append(kinds, keyShape(gun, k))
		}
		sort.Strings(kinds)
		var roles []string
		rl, _ := dl["roles"].([]any)
		for _, r := range rl {
			r := r.(map[string]any)
			roles = append(roles, fmt.Sprintf("%v threshold %v keys %d paths %v", r["name"], r["threshold"], len(r["keyids"].([]any)), r["paths"]))
		}
		s["delegations"] = map[string]any{"keys": kinds, "roles": roles, "present": dl != nil}
	}
	return s
}

// diff reports every difference between notary's shape and signet's.
func diff(t *testing.T, stepName string, notary, signet map[string]any) {
	t.Helper()
	var walk func(path string, a, b any)
	walk = func(path string, a, b any) {
		am, aok := a.(map[string]any)
		bm, bok := b.(map[string]any)
		if aok && bok {
			for _, k := range sortedKeys(am) {
				walk(path+"/"+k, am[k], bm[k])
			}
			for _, k := range sortedKeys(bm) {
				if _, ok := am[k]; !ok {
					walk(path+"/"+k, nil, bm[k])
				}
			}
			return
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("after %q, %s:\n  notary %s\n  signet %s", stepName, path, ja, jb)
		}
	}
	walk("", notary, signet)
}
