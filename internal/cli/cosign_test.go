package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/registry"
)

// cosignFixtures holds a key pair the real cosign wrote (password "test").
const cosignFixtures = "../oci/testdata/cosign-v3.1.3/"

// testRegistry starts go-containerregistry's registry on 127.0.0.1.
func testRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(referrers)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushTestImage pushes a small random image to host/repo:tag and returns
// its manifest's descriptor.
func pushTestImage(t *testing.T, host, repo, tag string) registry.Descriptor {
	t.Helper()
	ctx := context.Background()
	r := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: host, Repository: repo}, "push,pull")
	layer := make([]byte, 256)
	_, _ = rand.Read(layer)
	ld, err := r.PutBlob(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld))
	cd, err := r.PutBlob(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":%d,"digest":%q}]}`, len(cfg), cd, len(layer), ld)
	d, _, err := r.PutManifest(ctx, tag, registry.MediaTypeOCIManifest, []byte(man))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// cosignUser runs signet with a fresh HOME and Docker configuration, and
// the cosign fixture key pair beside them.
func cosignUser(t *testing.T) *trustUser {
	u := &trustUser{t: t, dir: t.TempDir()}
	u.env = map[string]string{"HOME": u.dir, "DOCKER_CONFIG": filepath.Join(u.dir, "docker"), envCosignPassword: "test"}
	for _, f := range []string{"cosign.key", "cosign.pub"} {
		b, err := os.ReadFile(cosignFixtures + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(u.dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

func (u *trustUser) path(name string) string { return filepath.Join(u.dir, name) }

func TestCosignCommands(t *testing.T) {
	host := testRegistry(t, false)
	img := host + "/team/app"
	d := pushTestImage(t, host, "team/app", "v1")
	u := cosignUser(t)

	out := u.ok("cosign", "sign", "--key", u.path("cosign.key"), "-a", "team=blue", img+":v1")
	if !strings.Contains(out, "Signed "+img+"@"+d.Digest) || strings.Count(out, "(written)") != 2 {
		t.Fatalf("sign output:\n%s", out)
	}
	out = u.ok("-o", "json", "cosign", "sign", "--key", u.path("cosign.key"), "-a", "team=blue", img+"@"+d.Digest)
	var w writtenJSON
	if err := json.Unmarshal([]byte(out), &w); err != nil || len(w.Written) != 2 || !w.Written[0].Existing || !w.Written[1].Existing {
		t.Fatalf("signing again: %v\n%s", err, out)
	}

	if out := u.ok("cosign", "verify", "--key", u.path("cosign.pub"), img+":v1"); strings.TrimSpace(out) != d.Digest {
		t.Fatalf("cosign verify printed %q", out)
	}
	out = u.ok("-o", "json", "cosign", "verify", "--key", u.path("cosign.pub"), "-a", "team=blue", img+":v1")
	var v cosignVerifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Signatures) != 2 || v.Digest != d.Digest {
		t.Fatalf("verify -o json: %v\n%s", err, out)
	}
	for _, form := range []string{"bundle", "legacy"} {
		if out := u.ok("cosign", "verify", "--form", form, "--key", u.path("cosign.pub"), img+":v1"); strings.TrimSpace(out) != d.Digest {
			t.Fatalf("verify --form %s: %q", form, out)
		}
	}
	if code, _, errOut := u.run("cosign", "verify", "--key", u.path("cosign.pub"), "-a", "team=red", img+":v1"); code != ExitVerify {
		t.Fatalf("verify with an annotation not signed: exit %d\n%s", code, errOut)
	}
	// signet verify --cosign-key: the cosign signatures decide.
	if out := u.ok("verify", "--cosign-key", u.path("cosign.pub"), img+":v1"); strings.TrimSpace(out) != d.Digest {
		t.Fatalf("signet verify --cosign-key printed %q", out)
	}
	out = u.ok("-o", "json", "verify", "--cosign-key", u.path("cosign.pub"), img+":v1")
	var res verifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Digest != d.Digest || len(res.Signers) != 1 || !strings.HasPrefix(res.Signers[0], "cosign:") || res.Tag != "v1" {
		t.Fatalf("verify --cosign-key -o json: %v\n%s", err, out)
	}

	// Another key: signatures exist, none verifies (3); an unsigned image
	// has none (4).
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPub, _ := keys.FromCrypto(other.Public())
	if err := os.WriteFile(u.path("other.pub"), keys.MarshalPublicKeyPEM(otherPub, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := u.run("cosign", "verify", "--key", u.path("other.pub"), img+":v1"); code != ExitVerify || !strings.Contains(errOut, "verifies") {
		t.Fatalf("verify with another key: exit %d\n%s", code, errOut)
	}
	if code, _, _ := u.run("verify", "--cosign-key", u.path("other.pub"), img+":v1"); code != ExitVerify {
		t.Fatalf("signet verify with another key: exit %d", code)
	}
	d2 := pushTestImage(t, host, "team/app", "v2")
	if code, _, errOut := u.run("cosign", "verify", "--key", u.path("cosign.pub"), img+":v2"); code != ExitNotFound {
		t.Fatalf("verify of an unsigned image: exit %d\n%s", code, errOut)
	}

	// Attestations.
	pred := u.path("provenance.json")
	if err := os.WriteFile(pred, []byte(`{"buildDefinition":{"buildType":"https://example.com/build"},"runDetails":{"builder":{"id":"https://example.com/ci"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out = u.ok("cosign", "attest", "--key", u.path("cosign.key"), "--type", "slsaprovenance1", "--predicate", pred, img+":v2")
	if !strings.Contains(out, "Attested (https://slsa.dev/provenance/v1)") || strings.Count(out, "(written)") != 2 {
		t.Fatalf("attest output:\n%s", out)
	}
	out = u.ok("cosign", "verify-attestation", "--key", u.path("cosign.pub"), "--type", "slsaprovenance1", img+":v2")
	if strings.Count(out, `"predicateType":"https://slsa.dev/provenance/v1"`) != 2 || !strings.Contains(out, d2.Digest[len("sha256:"):]) {
		t.Fatalf("verify-attestation printed:\n%s", out)
	}
	if code, _, _ := u.run("cosign", "verify-attestation", "--key", u.path("cosign.pub"), "--type", "cyclonedx", img+":v2"); code != ExitNotFound {
		t.Fatalf("verify-attestation of another type: exit %d", code)
	}
	// The attestation is not a signature.
	if code, _, _ := u.run("cosign", "verify", "--key", u.path("cosign.pub"), img+":v2"); code != ExitNotFound {
		t.Fatalf("attested image verified as signed: exit %d", code)
	}

	// A PEM PKCS#8 key signs too.
	pem8, err := keys.MarshalPrivateKeyPEM(other, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.path("other.key"), pem8, 0o600); err != nil {
		t.Fatal(err)
	}
	u.ok("cosign", "sign", "--key", u.path("other.key"), img+":v2")
	u.ok("cosign", "verify", "--key", u.path("other.pub"), img+":v2")
}

func TestCosignBadInput(t *testing.T) {
	host := testRegistry(t, true)
	img := host + "/team/app"
	pushTestImage(t, host, "team/app", "v1")
	u := cosignUser(t)
	tags := func() []string {
		resp, err := http.Get("http://" + host + "/v2/team/app/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l struct{ Tags []string }
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		slices.Sort(l.Tags)
		return l.Tags
	}
	unchanged := func(what string) {
		t.Helper()
		if got := tags(); !slices.Equal(got, []string{"v1"}) {
			t.Fatalf("%s: tags are now %v", what, got)
		}
		if code, _, errOut := u.run("cosign", "verify", "--key", u.path("cosign.pub"), img+":v1"); code != ExitNotFound {
			t.Fatalf("%s: a signature appeared (verify exit %d)\n%s", what, code, errOut)
		}
	}

	// A wrong password.
	u.env[envCosignPassword] = "wrong"
	code, _, errOut := u.run("cosign", "sign", "--key", u.path("cosign.key"), img+":v1")
	if code != ExitError || !strings.Contains(errOut, "wrong password") {
		t.Fatalf("wrong password: exit %d\n%s", code, errOut)
	}
	unchanged("wrong password")
	u.env[envCosignPassword] = "test"

	// A digest that does not exist, and one that no longer does.
	missing := img + "@sha256:" + strings.Repeat("0", 64)
	code, _, errOut = u.run("cosign", "sign", "--key", u.path("cosign.key"), missing)
	if code != ExitError || !strings.Contains(errOut, "has no manifest sha256:") {
		t.Fatalf("missing digest: exit %d\n%s", code, errOut)
	}
	unchanged("missing digest")
	gone := pushTestImage(t, host, "team/app", "gone")
	for _, ref := range []string{"gone", gone.Digest} {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/team/app/manifests/"+ref, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	code, _, errOut = u.run("cosign", "sign", "--key", u.path("cosign.key"), img+"@"+gone.Digest)
	if code != ExitError || !strings.Contains(errOut, "has no manifest "+gone.Digest) {
		t.Fatalf("deleted digest: exit %d\n%s", code, errOut)
	}
	unchanged("deleted digest")

	// An unreachable registry.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadHost := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	code, _, errOut = u.run("cosign", "sign", "--key", u.path("cosign.key"), deadHost+"/team/app:v1")
	if code != ExitError || !strings.Contains(errOut, "unable to reach "+deadHost) {
		t.Fatalf("unreachable registry: exit %d\n%s", code, errOut)
	}
	if code, _, errOut = u.run("verify", "--cosign-key", u.path("cosign.pub"), deadHost+"/team/app:v1"); code != ExitError {
		t.Fatalf("verify on an unreachable registry: exit %d\n%s", code, errOut)
	}

	// Bad command lines.
	pred := u.path("p.json")
	_ = os.WriteFile(pred, []byte(`[1,2]`), 0o600)
	for _, args := range [][]string{
		{"cosign", "sign", img + ":v1"},
		{"cosign", "sign", "--key", u.path("cosign.key"), "--form", "sideways", img + ":v1"},
		{"cosign", "sign", "--key", u.path("cosign.key"), "-a", "novalue", img + ":v1"},
		{"cosign", "attest", "--key", u.path("cosign.key"), "--type", "not a type", "--predicate", pred, img + ":v1"},
		{"cosign", "attest", "--key", u.path("cosign.key"), img + ":v1"},
		{"cosign", "verify", img + ":v1"},
		{"cosign", "sign", "--key", "signet-signer://127.0.0.1:1/abc", img + ":v1"},
		{"cosign", "sign", "--key", "signet-signer://127.0.0.1:1/abc?gun=x", img + ":v1"},
		{"verify", "--cosign-key", u.path("cosign.pub"), "example.com/gun", "target"},
	} {
		if code, _, errOut := u.run(args...); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, ExitUsage, errOut)
		}
	}
	// A predicate that is not a JSON object.
	if code, _, errOut := u.run("cosign", "attest", "--key", u.path("cosign.key"), "--type", "cyclonedx", "--predicate", pred, img+":v1"); code != ExitError || !strings.Contains(errOut, "JSON object") {
		t.Fatalf("array predicate: exit %d\n%s", code, errOut)
	}
	unchanged("bad command lines")
}

// TestVerifyCosignWithSigners: with --require-signer, the signers' digest
// (from the trust server) must carry a cosign signature by the key too.
func TestVerifyCosignWithSigners(t *testing.T) {
	srv := startTrustTestServer(t)
	host := testRegistry(t, false)
	gun := host + "/team/app"
	a := pushTestImage(t, host, "team/app", "v1")
	b := pushTestImage(t, host, "team/app", "b")

	admin := newTrustUser(t, srv, "admin")
	alice := newTrustUser(t, srv, "alice")
	alice.ok("trust", "key", "generate", "alice", "--dir", alice.dir)
	admin.ok("trust", "signer", "add", "--key", filepath.Join(alice.dir, "alice.pub"), "alice", gun)
	alice.ok("trust", "sign", gun+":v1", "--digest", a.Digest, "--size", fmt.Sprint(a.Size))

	u := cosignUser(t)
	admin.env[envCosignPassword] = "test"
	u.ok("cosign", "sign", "--key", u.path("cosign.key"), gun+":v1")

	out := admin.ok("-o", "json", "verify", "--require-signer", "alice", "--cosign-key", u.path("cosign.pub"), gun+":v1")
	var res verifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Digest != a.Digest || len(res.Signers) != 2 || res.Signers[1] != "targets/alice" || !strings.HasPrefix(res.Signers[0], "cosign:") {
		t.Fatalf("both agree: %v\n%s", err, out)
	}

	// alice now signs b for v1; the registry's v1 (and the cosign
	// signature) stay on a: they disagree.
	alice.ok("trust", "sign", gun+":v1", "--digest", b.Digest, "--size", fmt.Sprint(b.Size))
	code, _, errOut := admin.run("verify", "--require-signer", "alice", "--cosign-key", u.path("cosign.pub"), gun+":v1")
	if code != ExitVerify || !strings.Contains(errOut, "disagree") || !strings.Contains(errOut, b.Digest) || !strings.Contains(errOut, a.Digest) {
		t.Fatalf("signers and cosign disagree: exit %d\n%s", code, errOut)
	}
	// Without the cosign key the signers alone decide, as before.
	if out := admin.ok("verify", "--require-signer", "alice", gun+":v1"); strings.TrimSpace(out) != b.Digest {
		t.Fatalf("signers alone: %q", out)
	}
	// Once b carries a cosign signature too, they agree again.
	u.ok("cosign", "sign", "--key", u.path("cosign.key"), gun+"@"+b.Digest)
	if out := admin.ok("verify", "--require-signer", "alice", "--cosign-key", u.path("cosign.pub"), gun+":v1"); strings.TrimSpace(out) != b.Digest {
		t.Fatalf("agree on b: %q", out)
	}
}
