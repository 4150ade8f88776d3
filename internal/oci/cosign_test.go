package oci

// Interoperability with the real cosign v3.1.3 (built from the Go module
// proxy by scripts/test-deps.sh) on the real docker-registry (distribution
// 2.8, no Referrers API) and on go-containerregistry's registry with the
// Referrers API: what Signet writes, cosign verifies; what cosign writes,
// Signet verifies.

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/registry"
)

// cosignVersion is the cosign scripts/test-deps.sh builds.
const cosignVersion = "v3.1.3"

// required reports whether SIGNET_TEST_REQUIRE asks for the component
// (make test sets it to "all"): then a missing one fails the test.
func required(component string) bool {
	for _, f := range strings.FieldsFunc(os.Getenv("SIGNET_TEST_REQUIRE"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if f == "all" || f == component {
			return true
		}
	}
	return false
}

func missing(t *testing.T, component, msg string) {
	t.Helper()
	if required(component) {
		t.Fatalf("%s (SIGNET_TEST_REQUIRE=%q makes this an error; run scripts/test-deps.sh)", msg, os.Getenv("SIGNET_TEST_REQUIRE"))
	}
	t.Skipf("%s (set SIGNET_TEST_REQUIRE=all to fail instead; scripts/test-deps.sh installs it)", msg)
}

// cosignBin finds cosign: $SIGNET_COSIGN_BIN (the Makefile sets it), else
// test-deps.sh's cache, else cosign on PATH.
func cosignBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIGNET_COSIGN_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			missing(t, "cosign", fmt.Sprintf("SIGNET_COSIGN_BIN=%s: %v", p, err))
		}
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	p := filepath.Join(cache, "signet", "tools", "cosign@"+cosignVersion, "cosign")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	missing(t, "cosign", "cosign "+cosignVersion+" not found (neither $SIGNET_COSIGN_BIN, "+p+" nor cosign on PATH)")
	return ""
}

// cosignRun runs cosign offline with its own HOME and Docker config.
type cosignRun struct {
	t    *testing.T
	bin  string
	home string
	env  []string
}

func newCosign(t *testing.T) *cosignRun {
	home := t.TempDir()
	return &cosignRun{t: t, bin: cosignBin(t), home: home, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, "docker"),
		"TUF_ROOT=" + filepath.Join(home, "tuf"), "COSIGN_PASSWORD=test", "COSIGN_YES=true",
	}}
}

func (c *cosignRun) run(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Dir = c.home
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("cosign %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (c *cosignRun) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// verifiedDigests reads `cosign verify`'s JSON array and returns the
// digests it vouches for.
func verifiedDigests(t *testing.T, out string) []string {
	t.Helper()
	var sigs []struct {
		Critical struct {
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
		Optional map[string]any `json:"optional"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &sigs); err != nil {
		t.Fatalf("cosign verify output is not its JSON array: %v\n%s", err, out)
	}
	var ds []string
	for _, s := range sigs {
		ds = append(ds, s.Critical.Image.DockerManifestDigest)
	}
	return ds
}

// dockerRegistry starts Debian's docker-registry (distribution 2.8) on a
// free 127.0.0.1 port with filesystem storage under the test's temp dir,
// and returns host:port. It is stopped when the test ends.
func dockerRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		missing(t, "docker-registry", "docker-registry not found (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "storage"), addr)
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("docker-registry log:\n%s", b)
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("docker-registry exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s within 20s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// registries are the two the interop tests run against.
func interopRegistries(t *testing.T) map[string]string {
	return map[string]string{
		"docker-registry":       dockerRegistry(t),
		"ggcr-referrers-api":    ggcrRegistry(t, true),
		"ggcr-no-referrers-api": ggcrRegistry(t, false),
	}
}

// writePublicKey writes pub as cosign.pub is written (PEM PUBLIC KEY).
func writePublicKey(t *testing.T, dir string, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeKeyPair writes a key as cosign.key (cosign's encrypted format,
// password "test") and cosign.pub into dir.
func writeKeyPair(t *testing.T, dir string, k crypto.Signer) (keyFile, pubFile string) {
	t.Helper()
	kb, err := keys.MarshalCosignPrivateKeyPEM(k, []byte("test"))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile = filepath.Join(dir, "signet.key"), filepath.Join(dir, "signet.pub")
	if err := os.WriteFile(keyFile, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, pubFile
}

// offline are the flags cosign needs to verify key-based signatures without
// a transparency log, against a plain-HTTP loopback registry.
var offline = []string{"--insecure-ignore-tlog=true", "--allow-http-registry"}

func args(a ...[]string) []string {
	var out []string
	for _, x := range a {
		out = append(out, x...)
	}
	return out
}

// TestCosignVerifiesSignet: signatures and attestations Signet writes are
// accepted by cosign verify / verify-attestation, in the bundle form
// (cosign's default) and the legacy form (--new-bundle-format=false).
func TestCosignVerifiesSignet(t *testing.T) {
	c := newCosign(t)
	ctx := context.Background()
	for name, host := range interopRegistries(t) {
		t.Run(name, func(t *testing.T) {
			for _, kind := range []string{"ecdsa-p256", "rsa-2048", "ed25519", "ecdsa-p384"} {
				t.Run(kind, func(t *testing.T) {
					c.t = t
					key := newKey(t, kind)
					pub := writePublicKey(t, t.TempDir(), key.Public())
					otherPub := writePublicKey(t, t.TempDir(), newKey(t, kind).Public())
					tg := pushImage(t, host, "interop/"+kind, "v1")
					img := tg.String()
					if _, err := Sign(ctx, tg, key, Options{Now: time.Now(), Annotations: map[string]string{"team": "blue"}}); err != nil {
						t.Fatal(err)
					}
					for _, form := range [][]string{nil, {"--new-bundle-format=false"}} {
						out := c.ok(args([]string{"verify", "--key", pub, "-a", "team=blue"}, offline, form, []string{img})...)
						if ds := verifiedDigests(t, out); len(ds) != 1 || ds[0] != tg.Digest() {
							t.Fatalf("cosign verify %v vouches for %v, want %s", form, ds, tg.Digest())
						}
						// The oracle can say no: another key, another annotation.
						if _, err := c.run(args([]string{"verify", "--key", otherPub}, offline, form, []string{img})...); err == nil {
							t.Fatalf("cosign verify %v accepted another key", form)
						}
						if _, err := c.run(args([]string{"verify", "--key", pub, "-a", "team=red"}, offline, form, []string{img})...); err == nil {
							t.Fatalf("cosign verify %v accepted an annotation not signed", form)
						}
					}

					slsa := json.RawMessage(`{"buildDefinition":{"buildType":"https://example.com/build","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/ci"}}}`)
					if _, err := Attest(ctx, tg, key, "https://slsa.dev/provenance/v1", slsa, Options{Now: time.Now()}); err != nil {
						t.Fatal(err)
					}
					custom, _ := Predicate("custom", []byte("signet was here\n"), time.Now())
					if _, err := Attest(ctx, tg, key, predicateTypes["custom"], custom, Options{Now: time.Now()}); err != nil {
						t.Fatal(err)
					}
					for _, form := range [][]string{nil, {"--new-bundle-format=false"}} {
						for typ, want := range map[string]string{"slsaprovenance1": "https://example.com/ci", "custom": "signet was here"} {
							out := c.ok(args([]string{"verify-attestation", "--key", pub, "--type", typ}, offline, form, []string{img})...)
							if !strings.Contains(out, want) && !strings.Contains(string(decodeAttestations(t, out)), want) {
								t.Fatalf("cosign verify-attestation --type %s %v:\n%s", typ, form, out)
							}
						}
						if _, err := c.run(args([]string{"verify-attestation", "--key", pub, "--type", "cyclonedx"}, offline, form, []string{img})...); err == nil {
							t.Fatalf("cosign verify-attestation accepted a type not attested (%v)", form)
						}
					}
				})
			}
		})
	}
}

// decodeAttestations returns the statements of verify-attestation's output
// (one DSSE envelope JSON per line).
func decodeAttestations(t *testing.T, out string) []byte {
	var all []byte
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var env Envelope
		if json.Unmarshal([]byte(line), &env) == nil {
			all = append(all, env.Body()...)
		}
	}
	return all
}

// TestCosignLegacyOnly: a legacy-only signature is found by cosign v3's
// default verify (no bundle referrer, so it falls back to .sig).
func TestCosignLegacyOnly(t *testing.T) {
	c := newCosign(t)
	host := dockerRegistry(t)
	key := newKey(t, "ecdsa-p256")
	pub := writePublicKey(t, t.TempDir(), key.Public())
	tg := pushImage(t, host, "interop/legacy", "v1")
	if _, err := Sign(context.Background(), tg, key, Options{Now: time.Now(), Forms: FormLegacy}); err != nil {
		t.Fatal(err)
	}
	out := c.ok(args([]string{"verify", "--key", pub}, offline, []string{tg.String()})...)
	if ds := verifiedDigests(t, out); len(ds) != 1 || ds[0] != tg.Digest() {
		t.Fatalf("cosign verify vouches for %v", ds)
	}
}

// TestSignetVerifiesCosign: what cosign sign / attest write (bundle and
// legacy), Signet verifies, with cosign's own key file; and cosign signs
// with a key file Signet wrote.
func TestSignetVerifiesCosign(t *testing.T) {
	c := newCosign(t)
	ctx := context.Background()
	c.ok("generate-key-pair")
	keyFile, pubFile := filepath.Join(c.home, "cosign.key"), filepath.Join(c.home, "cosign.pub")
	pemKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.ParseCosignPrivateKeyPEM(pemKey, keys.Passphrase([]byte("test")))
	if err != nil {
		t.Fatalf("reading the key cosign generated: %v", err)
	}
	pubPEM, _ := os.ReadFile(pubFile)
	block, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !samePublicKey(pub, k.Public()) {
		t.Fatal("cosign.key and cosign.pub differ once read")
	}
	signOffline := []string{"--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", "--yes"}
	for name, host := range interopRegistries(t) {
		t.Run(name, func(t *testing.T) {
			c.t = t
			tg := pushImage(t, host, "interop/cosign", "v1")
			c.ok(args([]string{"sign", "--key", keyFile, "-a", "team=blue"}, signOffline, []string{tg.String()})...)
			rep, err := Verify(ctx, tg, pub, Options{Forms: FormBundle, Annotations: map[string]string{"team": "blue"}})
			if err != nil || len(rep.Verified) != 1 {
				t.Fatalf("cosign's bundle: %v %+v", err, rep)
			}
			if _, err := Verify(ctx, tg, pub, Options{Forms: FormLegacy}); !errors.Is(err, ErrNoSignatures) {
				t.Fatalf("legacy form before cosign wrote one: %v", err)
			}
			c.ok(args([]string{"sign", "--key", keyFile, "--new-bundle-format=false"}, signOffline, []string{tg.String()})...)
			if rep, err := Verify(ctx, tg, pub, Options{Forms: FormLegacy}); err != nil || len(rep.Verified) != 1 {
				t.Fatalf("cosign's legacy signature: %v %+v", err, rep)
			}
			// Signing with the same key where cosign already did adds the
			// legacy layer only if the annotations differ: cosign's legacy
			// signature has none, ours neither.
			ws, err := Sign(ctx, tg, k, Options{Now: time.Now()})
			if err != nil || ws[1].Form != FormLegacy || !ws[1].Existing {
				t.Fatalf("signing over cosign's signatures: %+v %v", ws, err)
			}
			// Another key verifies nothing.
			if _, err := Verify(ctx, tg, newKey(t, "ecdsa-p256").Public(), Options{}); !errors.Is(err, ErrNotVerified) {
				t.Fatalf("another key: %v", err)
			}

			pred := filepath.Join(t.TempDir(), "pred.json")
			if err := os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"https://example.com/b"},"runDetails":{"builder":{"id":"https://example.com/ci"}}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, form := range [][]string{nil, {"--new-bundle-format=false"}} {
				c.ok(args([]string{"attest", "--key", keyFile, "--type", "slsaprovenance1", "--predicate", pred}, signOffline, form, []string{tg.String()})...)
			}
			rep, err = VerifyAttestations(ctx, tg, pub, "https://slsa.dev/provenance/v1", Options{})
			if err != nil || len(rep.Verified) != 2 {
				t.Fatalf("cosign's attestations: %v %+v", err, rep)
			}
			for _, s := range rep.Verified {
				if !strings.Contains(string(s.Statement.Predicate), "https://example.com/ci") {
					t.Fatalf("attested predicate %s", s.Statement.Predicate)
				}
			}
		})
	}

	// cosign signs with a key file Signet wrote.
	t.Run("signet-key-file", func(t *testing.T) {
		c.t = t
		host := ggcrRegistry(t, true)
		key := newKey(t, "ecdsa-p256")
		kf, pf := writeKeyPair(t, t.TempDir(), key)
		tg := pushImage(t, host, "interop/keyfile", "v1")
		c.ok(args([]string{"sign", "--key", kf}, signOffline, []string{tg.String()})...)
		if rep, err := Verify(ctx, tg, key.Public(), Options{}); err != nil || len(rep.Verified) != 1 {
			t.Fatalf("cosign's signature with Signet's key file: %v %+v", err, rep)
		}
		c.ok(args([]string{"verify", "--key", pf}, offline, []string{tg.String()})...)
	})
}

// TestCosignSeesIdempotentWrites: after Signet signs twice, cosign's view
// of the registry is one bundle and one legacy layer (cosign verify lists
// exactly one signature per form).
func TestCosignSeesIdempotentWrites(t *testing.T) {
	c := newCosign(t)
	ctx := context.Background()
	host := dockerRegistry(t)
	key := newKey(t, "ecdsa-p256")
	pub := writePublicKey(t, t.TempDir(), key.Public())
	tg := pushImage(t, host, "interop/twice", "v1")
	for i := 0; i < 2; i++ {
		if _, err := Sign(ctx, tg, key, Options{Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, form := range [][]string{nil, {"--new-bundle-format=false"}} {
		out := c.ok(args([]string{"verify", "--key", pub}, offline, form, []string{tg.String()})...)
		if ds := verifiedDigests(t, out); len(ds) != 1 {
			t.Fatalf("cosign verify %v lists %d signatures after signing twice", form, len(ds))
		}
	}
	descs, list, err := listReferrers(ctx, tg)
	if err != nil || list.supported || len(descs) != 1 {
		t.Fatalf("docker-registry referrers (tag schema): %v supported=%v %v", descs, list.supported, err)
	}
	if _, err := tg.Repo.Manifest(ctx, registry.FallbackTag(tg.Digest()), registry.MediaTypeOCIIndex); err != nil {
		t.Fatalf("the fallback index: %v", err)
	}
}
