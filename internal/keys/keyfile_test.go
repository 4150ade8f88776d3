package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// fixtureRoot holds key files and metadata written by the reference clients.
const fixtureRoot = "../tuf/testdata"

// fixtureKey is one committed key file with what the fixture says about it.
type fixtureKey struct {
	scenario   string // e.g. notary-0.7/basic
	path       string
	id         string // file name without .key
	pem        []byte
	passphrase string
	// metaRoles maps every canonical key ID in the scenario's metadata to
	// the roles that list it ("root", "targets", "targets/alice", …).
	metaRoles map[string][]string
	// metaKeys maps canonical key IDs to the metadata keys.
	metaKeys map[string]*PublicKey
}

type fixtureMeta struct {
	Passphrases map[string]string `json:"passphrases"`
}

type metadataFile struct {
	Signed struct {
		Keys  map[string]*PublicKey `json:"keys"`
		Roles map[string]struct {
			KeyIDs []string `json:"keyids"`
		} `json:"roles"`
		Delegations struct {
			Keys  map[string]*PublicKey `json:"keys"`
			Roles []struct {
				Name   string   `json:"name"`
				KeyIDs []string `json:"keyids"`
			} `json:"roles"`
		} `json:"delegations"`
	} `json:"signed"`
}

// fixtureKeys loads every committed key file of the reference clients.
func fixtureKeys(t testing.TB) []fixtureKey {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fixtureRoot, "*", "*", "*", "*.key"))
	if err != nil {
		t.Fatal(err)
	}
	var out []fixtureKey
	scenarios := map[string]*fixtureKey{}
	for _, f := range files {
		dir := filepath.Dir(filepath.Dir(f))
		scen, ok := scenarios[dir]
		if !ok {
			scen = loadScenario(t, dir)
			scenarios[dir] = scen
		}
		k := *scen
		k.path = f
		k.id = strings.TrimSuffix(filepath.Base(f), ".key")
		if k.pem, err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
		info, err := InspectPrivateKeyPEM(k.pem)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		k.passphrase = fixturePassphrase(t, dir, info.Role)
		out = append(out, k)
	}
	if len(out) < 16 {
		t.Fatalf("found %d fixture key files under %s, want at least 16", len(out), fixtureRoot)
	}
	return out
}

func loadScenario(t testing.TB, dir string) *fixtureKey {
	t.Helper()
	rel, _ := filepath.Rel(fixtureRoot, dir)
	k := &fixtureKey{scenario: filepath.ToSlash(rel), metaRoles: map[string][]string{}, metaKeys: map[string]*PublicKey{}}
	var metas []string
	for _, pat := range []string{"*.json", "targets/*.json"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		metas = append(metas, m...)
	}
	for _, m := range metas {
		if filepath.Base(m) == "fixture.json" {
			continue
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var md metadataFile
		if err := json.Unmarshal(b, &md); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		add := func(keys map[string]*PublicKey, role string, ids []string) {
			for _, id := range ids {
				pk := keys[id]
				if pk == nil {
					continue
				}
				if pk.ID() != id {
					t.Fatalf("%s: key %s has ID %s", m, id, pk.ID())
				}
				cid := pk.CanonicalID()
				k.metaKeys[cid] = pk
				if !slices.Contains(k.metaRoles[cid], role) {
					k.metaRoles[cid] = append(k.metaRoles[cid], role)
				}
			}
		}
		for role, r := range md.Signed.Roles {
			add(md.Signed.Keys, role, r.KeyIDs)
		}
		for _, r := range md.Signed.Delegations.Roles {
			add(md.Signed.Delegations.Keys, r.Name, r.KeyIDs)
		}
	}
	pubs, _ := filepath.Glob(filepath.Join(dir, "*.pub"))
	for _, p := range pubs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := ParsePublicKeyPEM(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		k.metaKeys[pk.ID()] = pk
		role := "targets/" + strings.TrimSuffix(filepath.Base(p), ".pub")
		if !slices.Contains(k.metaRoles[pk.ID()], role) {
			k.metaRoles[pk.ID()] = append(k.metaRoles[pk.ID()], role)
		}
	}
	return k
}

// fixturePassphrase picks the passphrase the client used for a role: notary
// has one per root/targets/snapshot and one for all delegations; docker has
// root and "repository" for everything else.
func fixturePassphrase(t testing.TB, dir, role string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fm fixtureMeta
	if err := json.Unmarshal(b, &fm); err != nil {
		t.Fatal(err)
	}
	p := fm.Passphrases
	if pass, ok := p[role]; ok {
		return pass
	}
	if pass, ok := p["delegation"]; ok {
		return pass
	}
	if pass, ok := p["repository"]; ok {
		return pass
	}
	t.Fatalf("%s: no passphrase for role %q", dir, role)
	return ""
}

// wantMetaRole is the role a key file's role header says its key is in.
func wantMetaRole(role string) string {
	switch {
	case role == "root" || role == "targets" || role == "snapshot" || strings.HasPrefix(role, "targets/"):
		return role
	default: // docker signer names
		return "targets/" + role
	}
}

func TestParsePrivateKeyPEMFixtures(t *testing.T) {
	t.Parallel()
	for _, fk := range fixtureKeys(t) {
		t.Run(fk.scenario+"/"+fk.id[:7], func(t *testing.T) {
			t.Parallel()
			info, err := InspectPrivateKeyPEM(fk.pem)
			if err != nil || !info.Encrypted || info.Role == "" {
				t.Fatalf("InspectPrivateKeyPEM = %+v, %v; want an encrypted key with a role", info, err)
			}
			k, err := ParsePrivateKeyPEM(fk.pem, Passphrase([]byte(fk.passphrase)))
			if err != nil {
				t.Fatal(err)
			}
			if k.ID() != fk.id {
				t.Errorf("ID = %s, want the file name %s", k.ID(), fk.id)
			}
			if k.Role() != info.Role || k.GUN() != info.GUN {
				t.Errorf("Role, GUN = %q, %q; headers say %q, %q", k.Role(), k.GUN(), info.Role, info.GUN)
			}
			if typ := k.PublicKey().Type(); typ != TypeECDSA {
				t.Errorf("public key type %s, want ecdsa", typ)
			}
			// Notary writes gun only for targets and snapshot keys.
			if wantGUN := k.Role() == "targets" || k.Role() == "snapshot"; wantGUN != (k.GUN() != "") {
				t.Errorf("role %q with gun %q", k.Role(), k.GUN())
			}
			want := wantMetaRole(k.Role())
			if !slices.Contains(fk.metaRoles[k.ID()], want) {
				t.Fatalf("key %s (role %q) is not listed for %s in the metadata; it is listed for %v", k.ID(), k.Role(), want, fk.metaRoles[k.ID()])
			}
			if k.Role() == "root" {
				if mk := fk.metaKeys[k.ID()]; mk.Type() != TypeECDSAX509 || mk.CanonicalID() != k.ID() || mk.ID() == k.ID() {
					t.Errorf("root key in metadata: type %s, ID %s, canonical %s; want ecdsa-x509 whose canonical ID is the file's", mk.Type(), mk.ID(), mk.CanonicalID())
				}
			}
			// The key signs what the metadata key verifies.
			msg := []byte(`{"_type":"Targets"}`)
			method, sig, err := Sign(k, msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := fk.metaKeys[k.ID()].Verify(method, msg, sig); err != nil {
				t.Errorf("metadata key does not verify the file key's signature: %v", err)
			}
		})
	}
}

// TestMarshalPrivateKeyPEMReproducesFixtures re-encrypts every fixture key
// with the file's own salt and IV and expects the reference client's bytes.
func TestMarshalPrivateKeyPEMReproducesFixtures(t *testing.T) {
	t.Parallel()
	for _, fk := range fixtureKeys(t) {
		t.Run(fk.scenario+"/"+fk.id[:7], func(t *testing.T) {
			t.Parallel()
			k, err := ParsePrivateKeyPEM(fk.pem, Passphrase([]byte(fk.passphrase)))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(fk.pem)
			p, err := parseEncryptedPKCS8(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			random := bytes.NewReader(slices.Concat(p.salt, p.iv))
			got, err := marshalPrivateKeyPEM(random, k, k.Role(), k.GUN(), []byte(fk.passphrase))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, fk.pem) {
				t.Errorf("re-encrypted file differs from the reference client's\n got: %s\nwant: %s", got, fk.pem)
			}
			plain, err := p.decrypt([]byte(fk.passphrase))
			if err != nil {
				t.Fatal(err)
			}
			ours, err := marshalPKCS8(k.signer)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain, ours) {
				t.Errorf("PrivateKeyInfo differs:\n got %x\nwant %x", ours, plain)
			}
		})
	}
}

func TestParsePrivateKeyPEMWrongPassphrase(t *testing.T) {
	t.Parallel()
	fk := fixtureKeys(t)[0]
	_, err := ParsePrivateKeyPEM(fk.pem, Passphrase([]byte("not-"+fk.passphrase)))
	if !errors.Is(err, ErrWrongPassphrase) || errors.Is(err, ErrInvalidKeyFile) {
		t.Fatalf("wrong passphrase: err = %v, want ErrWrongPassphrase only", err)
	}
	if !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("error %q does not say the passphrase was wrong", err)
	}

	// The caller is asked again, with the attempt counter, until it is right.
	var attempts []int
	k, err := ParsePrivateKeyPEM(fk.pem, func(attempt int) ([]byte, error) {
		attempts = append(attempts, attempt)
		if attempt < 2 {
			return []byte(fmt.Sprintf("guess-%d", attempt)), nil
		}
		return []byte(fk.passphrase), nil
	})
	if err != nil || k.ID() != fk.id || !slices.Equal(attempts, []int{0, 1, 2}) {
		t.Fatalf("retry: key %v, err %v, attempts %v; want success on attempt 2", k, err, attempts)
	}

	// A caller that always answers wrongly is stopped.
	attempts = nil
	_, err = ParsePrivateKeyPEM(fk.pem, func(attempt int) ([]byte, error) {
		attempts = append(attempts, attempt)
		return []byte("wrong"), nil
	})
	if !errors.Is(err, ErrWrongPassphrase) || len(attempts) != MaxPassphraseAttempts {
		t.Fatalf("always wrong: err %v after %d attempts", err, len(attempts))
	}

	// The caller's own error ends it.
	errGiveUp := errors.New("user gave up")
	_, err = ParsePrivateKeyPEM(fk.pem, func(int) ([]byte, error) { return nil, errGiveUp })
	if !errors.Is(err, errGiveUp) {
		t.Fatalf("giving up: err = %v", err)
	}
	if _, err = ParsePrivateKeyPEM(fk.pem, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("no passphrase func: err = %v", err)
	}
}

func TestParsePrivateKeyPEMInvalid(t *testing.T) {
	t.Parallel()
	fk := fixtureKeys(t)[0]
	block, _ := pem.Decode(fk.pem)
	reencode := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: block.Headers, Bytes: der})
	}
	truncated := block.Bytes[:len(block.Bytes)-16]
	for name, data := range map[string][]byte{
		"empty":                 nil,
		"not PEM":               []byte("role: root\nhello"),
		"public key":            reencode("PUBLIC KEY", block.Bytes),
		"unknown type":          reencode("OPENSSH PRIVATE KEY", block.Bytes),
		"garbage pkcs8":         reencode(PEMPrivateKey, []byte{0x30, 0x03, 0x02, 0x01, 0x00}),
		"encrypted garbage":     reencode(PEMEncryptedPrivateKey, []byte("garbage")),
		"truncated ciphertext":  reencode(PEMEncryptedPrivateKey, truncated),
		"encrypted as plain":    reencode(PEMPrivateKey, block.Bytes),
		"legacy EC garbage":     reencode("EC PRIVATE KEY", []byte{0x30, 0x00}),
		"legacy ed25519 short":  reencode("ED25519 PRIVATE KEY", make([]byte, 64)),
		"legacy ed25519 zeroes": reencode("ED25519 PRIVATE KEY", make([]byte, 96)),
	} {
		_, err := ParsePrivateKeyPEM(data, Passphrase([]byte(fk.passphrase)))
		if !errors.Is(err, ErrInvalidKeyFile) || errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%s: err = %v, want ErrInvalidKeyFile", name, err)
		}
	}
	// Not PBES2: unsupported, and still an invalid key file.
	pbes1 := []byte{0x30, 0x1a, 0x30, 0x0e, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x03, 0x30, 0x01, 0x00, 0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8}
	_, err := ParsePrivateKeyPEM(reencode(PEMEncryptedPrivateKey, pbes1), Passphrase(nil))
	if !errors.Is(err, ErrInvalidKeyFile) {
		t.Errorf("PBES1: err = %v", err)
	}
}

// testKeys are the key types Notary files hold.
func testKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ecdsa-p256": ec, "ecdsa-p384": ec384, "ed25519": ed, "rsa-2048": rs}
}

func TestPrivateKeyPEMRoundTrip(t *testing.T) {
	t.Parallel()
	for name, s := range testKeys(t) {
		want, err := FromCrypto(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		for _, pass := range []string{"", "round-trip pass"} {
			for _, gun := range []string{"", "example.com/app"} {
				t.Run(fmt.Sprintf("%s/pass=%t/gun=%t", name, pass != "", gun != ""), func(t *testing.T) {
					t.Parallel()
					out, err := MarshalPrivateKeyPEM(s, "targets", gun, []byte(pass))
					if err != nil {
						t.Fatal(err)
					}
					block, rest := pem.Decode(out)
					if block == nil || len(rest) != 0 {
						t.Fatalf("not one PEM block:\n%s", out)
					}
					wantType, wantHeaders := PEMPrivateKey, map[string]string{"role": "targets"}
					if pass != "" {
						wantType = PEMEncryptedPrivateKey
					}
					if gun != "" {
						wantHeaders["gun"] = gun
					}
					if block.Type != wantType || fmt.Sprint(block.Headers) != fmt.Sprint(wantHeaders) {
						t.Errorf("PEM %q %v, want %q %v", block.Type, block.Headers, wantType, wantHeaders)
					}
					info, err := InspectPrivateKeyPEM(out)
					if err != nil || info.Encrypted != (pass != "") || info.Role != "targets" || info.GUN != gun {
						t.Errorf("InspectPrivateKeyPEM = %+v, %v", info, err)
					}
					k, err := ParsePrivateKeyPEM(out, Passphrase([]byte(pass)))
					if err != nil {
						t.Fatal(err)
					}
					if k.ID() != want.ID() || k.Role() != "targets" || k.GUN() != gun {
						t.Errorf("read back %v gun %q, want ID %s", k, k.GUN(), want.ID())
					}
					msg := []byte("round trip")
					method, sig, err := Sign(k, msg)
					if err != nil {
						t.Fatal(err)
					}
					if err := want.Verify(method, msg, sig); err != nil {
						t.Error(err)
					}
					// Writing a parsed key again gives the same key.
					again, err := MarshalPrivateKeyPEM(k, "root", "", []byte("other"))
					if err != nil {
						t.Fatal(err)
					}
					k2, err := ParsePrivateKeyPEM(again, Passphrase([]byte("other")))
					if err != nil || k2.ID() != want.ID() || k2.Role() != "root" || k2.GUN() != "" {
						t.Errorf("rewrite: %v, %v", k2, err)
					}
					if s := fmt.Sprintf("%v %+v %#v %s", k, k, k, k); !strings.Contains(s, k.ID()) || strings.Contains(s, "D:") {
						t.Errorf("formatting a PrivateKey shows %s", s)
					}
				})
			}
		}
	}
}

func TestMarshalPrivateKeyPEMBadInput(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct{ role, gun string }{{"root\nrole: x", ""}, {"targets", "a\r\nb"}, {" root", ""}} {
		if _, err := MarshalPrivateKeyPEM(ec, tc.role, tc.gun, nil); err == nil {
			t.Errorf("role %q gun %q: no error", tc.role, tc.gun)
		}
	}
	if _, err := MarshalPrivateKeyPEM(opaqueSigner{ec}, "root", "", nil); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("opaque signer: err = %v", err)
	}
}

// opaqueSigner hides its key, like a hardware signer.
type opaqueSigner struct{ crypto.Signer }

// TestParsePrivateKeyPEMOtherWriters reads what Go's x509 package writes:
// RFC 5208 PKCS#8 (version 0, RSA with NULL parameters, RFC 8410 Ed25519),
// SEC1 and PKCS#1, and RFC 1423 encryption. Files written by openssl are in
// TestOpenSSLWritesWeRead.
func TestParsePrivateKeyPEMOtherWriters(t *testing.T) {
	t.Parallel()
	for name, s := range testKeys(t) {
		want, _ := FromCrypto(s.Public())
		files := map[string]*pem.Block{}
		der, err := x509.MarshalPKCS8PrivateKey(s)
		if err != nil {
			t.Fatal(err)
		}
		files["pkcs8"] = &pem.Block{Type: PEMPrivateKey, Bytes: der}
		var legacyType string
		switch k := s.(type) {
		case *ecdsa.PrivateKey:
			legacyType = "EC PRIVATE KEY"
			der, _ = x509.MarshalECPrivateKey(k)
		case *rsa.PrivateKey:
			legacyType = "RSA PRIVATE KEY"
			der = x509.MarshalPKCS1PrivateKey(k)
		case ed25519.PrivateKey:
			legacyType = "ED25519 PRIVATE KEY"
			der = slices.Concat([]byte(k.Public().(ed25519.PublicKey)), k)
		}
		files["legacy"] = &pem.Block{Type: legacyType, Headers: map[string]string{"role": "snapshot"}, Bytes: der}
		//lint:ignore SA1019 writing a legacy file to test reading one
		enc, err := x509.EncryptPEMBlock(rand.Reader, legacyType, der, []byte("legacy-pass"), x509.PEMCipherAES256)
		if err != nil {
			t.Fatal(err)
		}
		files["legacy-encrypted"] = enc
		for kind, b := range files {
			data := pem.EncodeToMemory(b)
			k, err := ParsePrivateKeyPEM(data, Passphrase([]byte("legacy-pass")))
			if err != nil {
				t.Errorf("%s %s: %v", name, kind, err)
				continue
			}
			if k.ID() != want.ID() || k.Role() != b.Headers["role"] {
				t.Errorf("%s %s: ID %s role %q, want %s %q", name, kind, k.ID(), k.Role(), want.ID(), b.Headers["role"])
			}
			if kind == "legacy-encrypted" {
				if _, err := ParsePrivateKeyPEM(data, Passphrase([]byte("wrong-pass"))); !errors.Is(err, ErrWrongPassphrase) {
					t.Errorf("%s %s with a wrong passphrase: %v", name, kind, err)
				}
			}
		}
	}
}

func TestPublicKeyPEM(t *testing.T) {
	t.Parallel()
	// docker trust key generate's NAME.pub, byte for byte.
	for _, name := range []string{"docker-trust/signer/alice.pub", "docker-trust/registry/bob.pub"} {
		data, err := os.ReadFile(filepath.Join(fixtureRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ParsePublicKeyPEM(data)
		if err != nil {
			t.Fatal(err)
		}
		keyFiles, _ := filepath.Glob(filepath.Join(fixtureRoot, filepath.Dir(name), "private", pub.ID()+".key"))
		if pub.Type() != TypeECDSA || len(keyFiles) != 1 {
			t.Errorf("%s: type %s ID %s, want an ecdsa key with a key file", name, pub.Type(), pub.ID())
		}
		signer := strings.TrimSuffix(filepath.Base(name), ".pub")
		if got := MarshalPublicKeyPEM(pub, signer); !bytes.Equal(got, data) {
			t.Errorf("%s: MarshalPublicKeyPEM =\n%s\nwant\n%s", name, got, data)
		}
	}
	// Certificates give x509 keys with the same ID as in root.json.
	for _, fk := range fixtureKeys(t) {
		mk := fk.metaKeys[fk.id]
		if mk == nil || mk.Type() != TypeECDSAX509 {
			continue
		}
		pub, err := ParsePublicKeyPEM(mk.Public())
		if err != nil {
			t.Fatal(err)
		}
		if pub.Type() != TypeECDSAX509 || pub.ID() != mk.ID() || pub.CanonicalID() != fk.id {
			t.Errorf("certificate of %s: %s %s, want %s %s", fk.id, pub.Type(), pub.ID(), mk.Type(), mk.ID())
		}
		// Its PUBLIC KEY form is the plain key the file is named after.
		plain, err := ParsePublicKeyPEM(MarshalPublicKeyPEM(pub, "root"))
		if err != nil || plain.ID() != fk.id {
			t.Errorf("public key of certificate %s: %v, %v", fk.id, plain, err)
		}
	}
	keys := testKeys(t)
	for name, s := range keys {
		want, _ := FromCrypto(s.Public())
		got, err := ParsePublicKeyPEM(MarshalPublicKeyPEM(want, "x"))
		if err != nil || got.ID() != want.ID() || got.Type() != want.Type() {
			t.Errorf("%s: round trip gave %v, %v", name, got, err)
		}
	}
	if MarshalPublicKeyPEM(mustFromCrypto(t, keys["ed25519"].Public()), "a\nb") != nil {
		t.Error("a role with a line break was written")
	}
	for _, bad := range []string{"", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := ParsePublicKeyPEM([]byte(bad)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePublicKeyPEM(%q) err = %v", bad, err)
		}
	}
}

func mustFromCrypto(t testing.TB, pub crypto.PublicKey) *PublicKey {
	t.Helper()
	k, err := FromCrypto(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ---- the reference tools ----

// requireTool returns the path of a reference tool, or skips the test; with
// SIGNET_TEST_REQUIRE=all (or naming the tool) a missing tool fails it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	e2etest.Need(t, name)
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs a reference tool with only the environment given (plus PATH and
// HOME), with no stdin, and returns its output (stdout, then stderr).
func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	c := e2etest.Command{Env: append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...), Timeout: 60 * time.Second}
	r := c.Run(t, append([]string{name}, args...)...)
	switch {
	case r.Err != nil:
		return r.Output(), r.Err
	case r.Code != 0:
		return r.Output(), fmt.Errorf("exit status %d", r.Code)
	}
	return r.Output(), nil
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSSLReadsOurFiles: openssl decrypts what we write and finds the
// same key; and the plaintext openssl gets by PBKDF2 + AES-256-CBC is
// exactly our PrivateKeyInfo (also for Notary's Ed25519 OID, which openssl
// cannot load as a key).
func TestOpenSSLReadsOurFiles(t *testing.T) {
	t.Parallel()
	openssl := requireTool(t, "openssl")
	const pass = "openssl-interop"
	for name, s := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			want := mustFromCrypto(t, s.Public())
			out, err := MarshalPrivateKeyPEM(s, "targets", "example.com/app", []byte(pass))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, want.ID()+".key")
			writeFile(t, file, out)

			// OpenSSL refuses PEM headers other than Proc-Type/DEK-Info
			// ("not proc type"), so it reads Notary's files, and ours, only
			// once the role and gun lines are gone.
			if _, err := run(t, nil, openssl, "pkcs8", "-in", file, "-passin", "pass:"+pass); err == nil {
				t.Log("openssl now reads key files with role/gun headers")
			}
			block, _ := pem.Decode(out)
			file = filepath.Join(dir, "noheaders.key")
			writeFile(t, file, pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes}))
			if name != "ed25519" {
				dec, err := run(t, nil, openssl, "pkcs8", "-in", file, "-passin", "pass:"+pass)
				if err != nil {
					t.Fatalf("openssl pkcs8: %v\n%s", err, dec)
				}
				k, err := ParsePrivateKeyPEM([]byte(dec), nil)
				if err != nil || k.ID() != want.ID() {
					t.Fatalf("openssl's decryption %q: %v, %v", dec, k, err)
				}
				pubPEM, err := run(t, nil, openssl, "pkey", "-in", file, "-passin", "pass:"+pass, "-pubout")
				if err != nil {
					t.Fatalf("openssl pkey: %v\n%s", err, pubPEM)
				}
				if pub, err := ParsePublicKeyPEM([]byte(pubPEM)); err != nil || pub.ID() != want.ID() {
					t.Fatalf("openssl's public key %q: %v, %v", pubPEM, pub, err)
				}
				if dec, err := run(t, nil, openssl, "pkcs8", "-in", file, "-passin", "pass:wrong"); err == nil {
					t.Fatalf("openssl decrypted with a wrong passphrase:\n%s", dec)
				}
			}

			// Decrypt with openssl's own PBKDF2 and AES from the parameters.
			p, err := parseEncryptedPKCS8(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			kdf, err := run(t, nil, openssl, "kdf", "-keylen", "32", "-kdfopt", "digest:SHA1", "-kdfopt", "pass:"+pass,
				"-kdfopt", "hexsalt:"+hex.EncodeToString(p.salt), "-kdfopt", "iter:2048", "PBKDF2")
			if err != nil {
				t.Fatalf("openssl kdf: %v\n%s", err, kdf)
			}
			key := strings.ReplaceAll(strings.TrimSpace(kdf), ":", "")
			ct := filepath.Join(dir, "ct")
			writeFile(t, ct, p.data)
			plain := filepath.Join(dir, "plain")
			if msg, err := run(t, nil, openssl, "enc", "-d", "-aes-256-cbc", "-K", key, "-iv", hex.EncodeToString(p.iv), "-in", ct, "-out", plain); err != nil {
				t.Fatalf("openssl enc: %v\n%s", err, msg)
			}
			got, err := os.ReadFile(plain)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := marshalPKCS8(s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ours) {
				t.Errorf("openssl plaintext %x, want %x", got, ours)
			}
		})
	}
}

// TestOpenSSLWritesWeRead reads encrypted PKCS#8 as `openssl pkcs8 -topk8`
// writes it with its PRFs and ciphers.
func TestOpenSSLWritesWeRead(t *testing.T) {
	t.Parallel()
	openssl := requireTool(t, "openssl")
	const pass = "openssl-writes"
	keys := testKeys(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", nil}, // OpenSSL 3: AES-256-CBC, HMAC-SHA256
		{"aes128-sha1", []string{"-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"}},
		{"aes256-sha256", []string{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"}},
		{"aes192-sha512", []string{"-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512"}},
		{"des3-sha1", []string{"-v2", "des3", "-v2prf", "hmacWithSHA1"}},
		{"iter-10000", []string{"-iter", "10000"}},
	} {
		for name, s := range keys {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				want := mustFromCrypto(t, s.Public())
				der, err := x509.MarshalPKCS8PrivateKey(s)
				if err != nil {
					t.Fatal(err)
				}
				in := filepath.Join(dir, "in.pem")
				writeFile(t, in, pem.EncodeToMemory(&pem.Block{Type: PEMPrivateKey, Bytes: der}))
				args := append([]string{"pkcs8", "-topk8", "-in", in, "-passout", "pass:" + pass}, tc.args...)
				out, err := run(t, nil, openssl, args...)
				if err != nil {
					t.Fatalf("openssl %v: %v\n%s", args, err, out)
				}
				k, err := ParsePrivateKeyPEM([]byte(out), Passphrase([]byte(pass)))
				if err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if k.ID() != want.ID() {
					t.Errorf("ID %s, want %s", k.ID(), want.ID())
				}
				if _, err := ParsePrivateKeyPEM([]byte(out), Passphrase([]byte("wrong"))); !errors.Is(err, ErrWrongPassphrase) {
					t.Errorf("wrong passphrase: %v", err)
				}
			})
		}
	}
}

// TestNotaryCLIUsesOurFiles puts key files we wrote into a notary trust
// directory: `notary key list` lists them under their role, and `notary key
// passwd` decrypts each with its passphrase and writes it back, which we
// read again.
func TestNotaryCLIUsesOurFiles(t *testing.T) {
	t.Parallel()
	notary := requireTool(t, "notary")
	keys := testKeys(t)
	trustDir := t.TempDir()
	type entry struct {
		role, gun, env, pass string
		key                  crypto.Signer
		id                   string
	}
	entries := []*entry{
		{role: "root", env: "NOTARY_ROOT_PASSPHRASE", pass: "our-root-pass", key: keys["ecdsa-p256"]},
		{role: "targets", gun: "example.com/signet/app", env: "NOTARY_TARGETS_PASSPHRASE", pass: "our-targets-pass", key: keys["ed25519"]},
		{role: "snapshot", gun: "example.com/signet/app", env: "NOTARY_SNAPSHOT_PASSPHRASE", pass: "our-snapshot-pass", key: keys["rsa-2048"]},
		{role: "targets/releases", env: "NOTARY_DELEGATION_PASSPHRASE", pass: "our-delegation-pass", key: keys["ecdsa-p384"]},
	}
	var env []string
	for _, e := range entries {
		e.id = mustFromCrypto(t, e.key.Public()).ID()
		out, err := MarshalPrivateKeyPEM(e.key, e.role, e.gun, []byte(e.pass))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(trustDir, "private", e.id+".key"), out)
		env = append(env, e.env+"="+e.pass)
	}

	list, err := run(t, env, notary, "-d", trustDir, "key", "list")
	if err != nil {
		t.Fatalf("notary key list: %v\n%s", err, list)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		for i, field := range f {
			if len(field) == 64 {
				rows[field] = f[:i] // ROLE [GUN]
			}
		}
	}
	for _, e := range entries {
		want := []string{e.role}
		if e.gun != "" {
			want = append(want, e.gun)
		}
		if !slices.Equal(rows[e.id], want) {
			t.Errorf("notary key list shows %s as %v, want %v\n%s", e.id, rows[e.id], want, list)
		}
	}

	for _, e := range entries {
		path := filepath.Join(trustDir, "private", e.id+".key")
		before, _ := os.ReadFile(path)
		out, err := run(t, []string{e.env + "=wrong-passphrase"}, notary, "-d", trustDir, "key", "passwd", e.id)
		if err == nil {
			t.Errorf("notary key passwd %s (%s) with a wrong passphrase succeeded:\n%s", e.id, e.role, out)
		}
		out, err = run(t, env, notary, "-d", trustDir, "key", "passwd", e.id)
		if err != nil || !strings.Contains(out, "Successfully updated passphrase") {
			t.Errorf("notary key passwd %s (%s): %v\n%s", e.id, e.role, err, out)
			continue
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(before, after) {
			t.Errorf("notary key passwd did not rewrite %s", path)
		}
		k, err := ParsePrivateKeyPEM(after, Passphrase([]byte(e.pass)))
		if err != nil {
			t.Errorf("reading notary's rewrite of %s (%s): %v\n%s", e.id, e.role, err, after)
			continue
		}
		if k.ID() != e.id || k.Role() != e.role || k.GUN() != e.gun {
			t.Errorf("notary rewrote %s as %v gun %q", e.id, k, k.GUN())
		}
	}
}

// TestDockerTrustKeyLoad loads key files we wrote with `docker trust key
// load` (no daemon needed).
//
// Docker 28 decrypts an encrypted file with the repository passphrase but
// then hands the decrypted DER, not PEM, to notary's ImportKeys, which finds
// no PEM block and imports nothing while reporting success. So the encrypted
// case checks only that docker decrypts our file (and refuses a wrong
// passphrase); the unencrypted case must land in trust/private, encrypted
// by docker, under the key's canonical ID and role.
func TestDockerTrustKeyLoad(t *testing.T) {
	t.Parallel()
	docker := requireTool(t, "docker")
	const repoPass = "docker-repo-pass"
	for name, s := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := mustFromCrypto(t, s.Public()).ID()
			dir := t.TempDir()
			env := func(pass string) []string {
				return []string{"DOCKER_CONFIG=" + filepath.Join(dir, "config"), "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=" + pass}
			}
			landed := filepath.Join(dir, "config", "trust", "private", id+".key")

			enc, err := MarshalPrivateKeyPEM(s, "carol", "", []byte(repoPass))
			if err != nil {
				t.Fatal(err)
			}
			encFile := filepath.Join(dir, "enc.key")
			writeFile(t, encFile, enc)
			if out, err := run(t, env("wrong-pass"), docker, "trust", "key", "load", "--name", "carol", encFile); err == nil || !strings.Contains(out, "could not decrypt") {
				t.Errorf("docker trust key load with a wrong passphrase: %v\n%s", err, out)
			}
			if out, err := run(t, env(repoPass), docker, "trust", "key", "load", "--name", "carol", encFile); err != nil || !strings.Contains(out, "Successfully imported") {
				t.Fatalf("docker trust key load (encrypted): %v\n%s", err, out)
			}
			if data, err := os.ReadFile(landed); err == nil {
				checkLanded(t, data, id, repoPass)
				t.Log("docker imported the encrypted file (its import bug is fixed)")
			}

			plain, err := MarshalPrivateKeyPEM(s, "carol", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			plainFile := filepath.Join(dir, "plain.key")
			writeFile(t, plainFile, plain)
			if err := os.Chmod(plainFile, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := run(t, env(repoPass), docker, "trust", "key", "load", "--name", "carol", plainFile); err == nil {
				t.Errorf("docker loaded a world-readable key file:\n%s", out)
			}
			if err := os.Chmod(plainFile, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := run(t, env(repoPass), docker, "trust", "key", "load", "--name", "carol", plainFile); err != nil || !strings.Contains(out, "Successfully imported") {
				t.Fatalf("docker trust key load (unencrypted): %v\n%s", err, out)
			}
			data, err := os.ReadFile(landed)
			if err != nil {
				entries, _ := os.ReadDir(filepath.Dir(landed))
				t.Fatalf("key not in docker's trust dir: %v (it holds %v)", err, entries)
			}
			checkLanded(t, data, id, repoPass)
		})
	}
}

func checkLanded(t *testing.T, data []byte, id, pass string) {
	t.Helper()
	k, err := ParsePrivateKeyPEM(data, Passphrase([]byte(pass)))
	if err != nil {
		t.Fatalf("reading docker's key file: %v\n%s", err, data)
	}
	if k.ID() != id || k.Role() != "carol" || k.GUN() != "" {
		t.Errorf("docker stored %v gun %q, want %s role carol", k, k.GUN(), id)
	}
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, fk := range fixtureKeys(f) {
		f.Add(fk.pem)
	}
	for _, s := range testKeys(f) {
		for _, pass := range []string{"", "compat-root-pass"} {
			out, err := MarshalPrivateKeyPEM(s, "targets", "example.com/app", []byte(pass))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(out)
		}
	}
	tries := []string{"compat-root-pass", "compat-targets-pass", "compat-docker-repo-pass"}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKeyPEM(data, func(attempt int) ([]byte, error) {
			if attempt >= len(tries) {
				return nil, ErrWrongPassphrase
			}
			return []byte(tries[attempt]), nil
		})
		if err != nil {
			for _, sentinel := range []error{ErrInvalidKeyFile, ErrWrongPassphrase, ErrUnsupportedKey, ErrInvalidKey} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("error outside the sentinels: %v", err)
		}
		if want := mustFromCrypto(t, k.Public()); want.ID() != k.ID() {
			t.Fatalf("ID %s, public key's %s", k.ID(), want.ID())
		}
		out, err := MarshalPrivateKeyPEM(k, k.Role(), k.GUN(), nil)
		if err != nil {
			// Headers Notary could not have written (line breaks) are refused.
			return
		}
		k2, err := ParsePrivateKeyPEM(out, nil)
		if err != nil || k2.ID() != k.ID() {
			t.Fatalf("re-read: %v, %v", k2, err)
		}
	})
}

// FuzzParsePrivateKeyDER fuzzes the DER under the PEM layer, which mutations
// of base64 rarely reach: each input is tried as every PEM type we read.
func FuzzParsePrivateKeyDER(f *testing.F) {
	for _, fk := range fixtureKeys(f) {
		block, _ := pem.Decode(fk.pem)
		f.Add(block.Bytes)
		p, err := parseEncryptedPKCS8(block.Bytes)
		if err != nil {
			f.Fatal(err)
		}
		plain, err := p.decrypt([]byte(fk.passphrase))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(plain)
	}
	for _, s := range testKeys(f) {
		der, err := marshalPKCS8(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		if der, err = x509.MarshalPKCS8PrivateKey(s); err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	types := []string{PEMEncryptedPrivateKey, PEMPrivateKey, "EC PRIVATE KEY", "RSA PRIVATE KEY", "ED25519 PRIVATE KEY"}
	f.Fuzz(func(t *testing.T, der []byte) {
		for _, typ := range types {
			data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
			k, err := ParsePrivateKeyPEM(data, func(attempt int) ([]byte, error) {
				if attempt > 1 {
					return nil, ErrWrongPassphrase
				}
				return []byte("compat-root-pass"), nil
			})
			if err != nil {
				if !errors.Is(err, ErrInvalidKeyFile) && !errors.Is(err, ErrWrongPassphrase) && !errors.Is(err, ErrUnsupportedKey) && !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("%s: error outside the sentinels: %v", typ, err)
				}
				continue
			}
			if want := mustFromCrypto(t, k.Public()); want.ID() != k.ID() {
				t.Fatalf("%s: ID %s, public key's %s", typ, k.ID(), want.ID())
			}
		}
	})
}
