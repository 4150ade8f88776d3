package oci

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/signet-trust/signet/internal/registry"
)

var testNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// ggcrRegistry starts go-containerregistry's in-process registry on
// 127.0.0.1, with or without the Referrers API, and returns host:port.
func ggcrRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(referrers)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func testClient() *registry.Client {
	return &registry.Client{Keychain: registry.Anonymous, UserAgent: "signet-test"}
}

// pushImage pushes a small random single-layer image (Docker schema 2, as
// docker push writes) to host/repo:tag with Signet's own registry client.
func pushImage(t *testing.T, host, repo, tag string) Target {
	t.Helper()
	ctx := context.Background()
	r := testClient().Repository(registry.Reference{Registry: host, Repository: repo}, "push,pull")
	layer := make([]byte, 512)
	if _, err := rand.Read(layer); err != nil {
		t.Fatal(err)
	}
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
	if _, _, err := r.PutManifest(ctx, tag, "application/vnd.docker.distribution.manifest.v2+json", []byte(man)); err != nil {
		t.Fatal(err)
	}
	tg, err := Resolve(ctx, r, tag)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "ecdsa-p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// snapshot is everything the signing code may write for a target, as raw
// bytes, to show that a second signing adds nothing.
func snapshot(t *testing.T, tg Target) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	pages, supported, err := tg.Repo.Referrers(ctx, tg.Digest())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "referrers API %v:\n", supported)
	var refs []string // in digest order: registries list them in any order
	for _, p := range pages {
		var idx v1.IndexManifest
		if err := json.Unmarshal(p, &idx); err != nil {
			t.Fatal(err)
		}
		for _, d := range idx.Manifests {
			refs = append(refs, d.Digest.String())
		}
	}
	sort.Strings(refs)
	for _, r := range refs {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	for _, tag := range []string{registry.FallbackTag(tg.Digest()), tg.legacyTag("sig"), tg.legacyTag("att")} {
		m, err := tg.Repo.Manifest(ctx, tag, registry.MediaTypeOCIManifest, registry.MediaTypeOCIIndex)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			fmt.Fprintf(&b, "%s: none\n", tag)
		case err != nil:
			t.Fatal(err)
		default:
			fmt.Fprintf(&b, "%s: %s\n", tag, m.Bytes)
		}
	}
	return b.String()
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	for _, referrers := range []bool{true, false} {
		host := ggcrRegistry(t, referrers)
		for _, kind := range []string{"ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"} {
			t.Run(fmt.Sprintf("referrers=%v/%s", referrers, kind), func(t *testing.T) {
				tg := pushImage(t, host, "team/"+kind, "v1")
				key := newKey(t, kind)
				before := snapshot(t, tg)
				ws, err := Sign(ctx, tg, key, Options{Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				if len(ws) != 2 || ws[0].Form != FormBundle || ws[0].Existing || ws[1].Form != FormLegacy || ws[1].Existing {
					t.Fatalf("first signing wrote %+v", ws)
				}
				after := snapshot(t, tg)
				if after == before {
					t.Fatal("signing changed nothing in the registry")
				}
				// The fallback index exists exactly when the registry has no
				// Referrers API.
				hasFallback := !strings.Contains(after, registry.FallbackTag(tg.Digest())+": none")
				if hasFallback == referrers {
					t.Fatalf("referrers API %v, fallback index present %v:\n%s", referrers, hasFallback, after)
				}

				rep, err := Verify(ctx, tg, key.Public(), Options{Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.Verified) != 2 || len(rep.Rejected) != 0 {
					t.Fatalf("verified %d, rejected %v", len(rep.Verified), rep.Rejected)
				}
				forms := Form(0)
				for _, s := range rep.Verified {
					forms |= s.Form
					if s.Digest != tg.Digest() {
						t.Fatalf("verified digest %s, want %s", s.Digest, tg.Digest())
					}
				}
				if forms != FormBoth {
					t.Fatalf("verified forms %s", forms)
				}
				for _, f := range []Form{FormBundle, FormLegacy} {
					rep, err := Verify(ctx, tg, key.Public(), Options{Forms: f})
					if err != nil || len(rep.Verified) != 1 || rep.Verified[0].Form != f {
						t.Fatalf("%s form alone: %v %+v", f, err, rep)
					}
				}

				// Signing again adds nothing.
				ws, err = Sign(ctx, tg, key, Options{Now: testNow.Add(time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				if len(ws) != 2 || !ws[0].Existing || !ws[1].Existing {
					t.Fatalf("second signing: %+v", ws)
				}
				if again := snapshot(t, tg); again != after {
					t.Fatalf("second signing changed the registry:\nbefore\n%s\nafter\n%s", after, again)
				}
			})
		}
	}
}

func TestAnnotations(t *testing.T) {
	ctx := context.Background()
	host := ggcrRegistry(t, false)
	tg := pushImage(t, host, "team/app", "v1")
	key := newKey(t, "ecdsa-p256")
	if _, err := Sign(ctx, tg, key, Options{Now: testNow}); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{"build": "42", "team": "blue"}
	ws, err := Sign(ctx, tg, key, Options{Now: testNow, Annotations: ann})
	if err != nil {
		t.Fatal(err)
	}
	if ws[0].Existing || ws[1].Existing {
		t.Fatalf("signing with new annotations wrote nothing: %+v", ws)
	}
	rep, err := Verify(ctx, tg, key.Public(), Options{Annotations: map[string]string{"team": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Verified) != 2 {
		t.Fatalf("verified %d with team=blue, want the 2 annotated ones", len(rep.Verified))
	}
	for _, s := range rep.Verified {
		if s.Annotations["build"] != "42" || s.Annotations["team"] != "blue" {
			t.Fatalf("claims %v", s.Annotations)
		}
	}
	if _, err := Verify(ctx, tg, key.Public(), Options{Annotations: map[string]string{"team": "red"}}); !errors.Is(err, ErrNotVerified) {
		t.Fatalf("team=red: %v", err)
	}
	if ws, err := Sign(ctx, tg, key, Options{Now: testNow, Annotations: ann}); err != nil || !ws[0].Existing || !ws[1].Existing {
		t.Fatalf("re-signing with the same annotations: %+v %v", ws, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	host := ggcrRegistry(t, true)
	key, other := newKey(t, "ecdsa-p256"), newKey(t, "ecdsa-p256")
	a := pushImage(t, host, "team/app", "a")
	b := pushImage(t, host, "team/app", "b")

	if _, err := Verify(ctx, a, key.Public(), Options{}); !errors.Is(err, ErrNoSignatures) {
		t.Fatalf("unsigned image: %v", err)
	}
	if _, err := Sign(ctx, a, key, Options{Now: testNow}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, a, other.Public(), Options{})
	if !errors.Is(err, ErrNotVerified) || len(rep.Rejected) != 2 || len(rep.Verified) != 0 {
		t.Fatalf("another key: %v %+v", err, rep)
	}
	for _, r := range rep.Rejected {
		if !errors.Is(r.Reason, ErrSignature) && !strings.Contains(r.Reason.Error(), "does not verify") {
			t.Fatalf("rejection reason %v", r.Reason)
		}
	}

	// Replays: a's signatures put where b's are looked for.
	sig, err := a.Repo.Manifest(ctx, a.legacyTag("sig"), registry.MediaTypeOCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Repo.PutManifest(ctx, b.legacyTag("sig"), registry.MediaTypeOCIManifest, sig.Bytes); err != nil {
		t.Fatal(err)
	}
	descs, _, err := listReferrers(ctx, a)
	if err != nil || len(descs) != 1 {
		t.Fatalf("a's referrers: %v %v", descs, err)
	}
	ref, err := a.Repo.Manifest(ctx, descs[0].Digest.String(), registry.MediaTypeOCIManifest)
	if err != nil {
		t.Fatal(err)
	}
	var man v1.Manifest
	if err := json.Unmarshal(ref.Bytes, &man); err != nil {
		t.Fatal(err)
	}
	subject, _ := descriptor(b.Manifest.MediaType, b.Digest(), b.Manifest.Size)
	man.Subject = &subject
	raw, _ := json.Marshal(&man)
	if _, _, err := b.Repo.PutManifest(ctx, "", registry.MediaTypeOCIManifest, raw); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(ctx, b, key.Public(), Options{})
	if !errors.Is(err, ErrNotVerified) || len(rep.Rejected) != 2 {
		t.Fatalf("replayed signatures: %v %+v", err, rep)
	}
	for _, r := range rep.Rejected {
		msg := r.Reason.Error()
		if !strings.Contains(msg, "does not cover "+b.Digest()) && !strings.Contains(msg, "for "+a.Digest()+", not "+b.Digest()) {
			t.Fatalf("%s rejected for %q", r.Form, msg)
		}
	}
}

func TestAttest(t *testing.T) {
	ctx := context.Background()
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers=%v", referrers), func(t *testing.T) {
			host := ggcrRegistry(t, referrers)
			tg := pushImage(t, host, "team/app", "v1")
			key := newKey(t, "ecdsa-p256")
			custom, err := Predicate("custom", []byte("hello\n"), testNow)
			if err != nil {
				t.Fatal(err)
			}
			customType, _ := PredicateType("custom")
			ws, err := Attest(ctx, tg, key, customType, custom, Options{Now: testNow})
			if err != nil || len(ws) != 2 || ws[0].Existing || ws[1].Existing {
				t.Fatalf("attest: %+v %v", ws, err)
			}
			slsa, err := Predicate("slsaprovenance1", []byte(`{"buildDefinition":{"buildType":"https://example.com/b"},"runDetails":{"builder":{"id":"https://example.com/ci"}}}`), testNow)
			if err != nil {
				t.Fatal(err)
			}
			slsaType, _ := PredicateType("slsaprovenance1")
			if _, err := Attest(ctx, tg, key, slsaType, slsa, Options{Now: testNow}); err != nil {
				t.Fatal(err)
			}
			// An attestation is not a signature.
			if _, err := Verify(ctx, tg, key.Public(), Options{}); !errors.Is(err, ErrNoSignatures) {
				t.Fatalf("signatures of an attested-only image: %v", err)
			}
			rep, err := VerifyAttestations(ctx, tg, key.Public(), slsaType, Options{})
			if err != nil || len(rep.Verified) != 2 {
				t.Fatalf("slsa attestations: %v %+v", err, rep)
			}
			for _, s := range rep.Verified {
				if s.PredicateType != slsaType || !samePredicate(slsaType, s.Statement.Predicate, slsa) {
					t.Fatalf("verified %s %s", s.PredicateType, s.Statement.Predicate)
				}
				if s.Statement.Subject[0].Name != tg.DockerReference() {
					t.Fatalf("subject name %q", s.Statement.Subject[0].Name)
				}
			}
			if rep, err := VerifyAttestations(ctx, tg, key.Public(), "", Options{}); err != nil || len(rep.Verified) != 4 {
				t.Fatalf("all attestations: %v %+v", err, rep)
			}
			if _, err := VerifyAttestations(ctx, tg, key.Public(), "https://example.com/other", Options{}); !errors.Is(err, ErrNoSignatures) {
				t.Fatalf("another type: %v", err)
			}
			// Attesting the same again adds nothing, even an hour later
			// (the custom predicate's timestamp is not compared).
			before := snapshot(t, tg)
			later, _ := Predicate("custom", []byte("hello\n"), testNow.Add(time.Hour))
			ws, err = Attest(ctx, tg, key, customType, later, Options{Now: testNow.Add(time.Hour)})
			if err != nil || !ws[0].Existing || !ws[1].Existing {
				t.Fatalf("attest again: %+v %v", ws, err)
			}
			if after := snapshot(t, tg); after != before {
				t.Fatalf("attesting again changed the registry:\n%s\n%s", before, after)
			}
			if _, err := Attest(ctx, tg, key, PredicateTypeSign, custom, Options{}); err == nil {
				t.Fatal("attested with cosign's sign predicate type")
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	host := ggcrRegistry(t, false)
	tg := pushImage(t, host, "team/app", "v1")
	repo := tg.Repo
	tags := func() string {
		resp, err := http.Get("http://" + host + "/v2/team/app/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	before := tags()

	// A digest that does not exist (any more).
	missing := "sha256:" + strings.Repeat("0", 64)
	if _, err := Resolve(ctx, repo, missing); !errors.Is(err, ErrNoImage) {
		t.Fatalf("missing digest: %v", err)
	}
	if _, err := Resolve(ctx, repo, "nope"); !errors.Is(err, ErrNoImage) {
		t.Fatalf("missing tag: %v", err)
	}
	// A target whose manifest vanished after it was resolved: signing
	// writes nothing (the referrer's subject cannot be checked, but the
	// legacy tag must not appear either).
	gone := Target{Repo: repo, Manifest: registry.Descriptor{MediaType: tg.Manifest.MediaType, Digest: missing, Size: 10}}
	if _, err := Verify(ctx, gone, newKey(t, "ecdsa-p256").Public(), Options{}); !errors.Is(err, ErrNoSignatures) {
		t.Fatalf("verify a missing digest: %v", err)
	}
	if after := tags(); after != before {
		t.Fatalf("tags changed: %s → %s", before, after)
	}

	// An unreachable registry.
	l := httptest.NewServer(http.NotFoundHandler())
	dead := strings.TrimPrefix(l.URL, "http://")
	l.Close()
	deadRepo := testClient().Repository(registry.Reference{Registry: dead, Repository: "team/app"}, "push,pull")
	if _, err := Resolve(ctx, deadRepo, "v1"); err == nil || !strings.Contains(err.Error(), "unable to reach "+dead) {
		t.Fatalf("unreachable registry: %v", err)
	}
	deadTarget := Target{Repo: deadRepo, Manifest: tg.Manifest}
	if _, err := Sign(ctx, deadTarget, newKey(t, "ecdsa-p256"), Options{}); err == nil || !strings.Contains(err.Error(), "unable to reach") {
		t.Fatalf("sign on an unreachable registry: %v", err)
	}

	// A key the formats cannot use.
	if _, err := Sign(ctx, tg, badSigner{}, Options{}); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("unsupported key: %v", err)
	}
	// A signer whose signatures do not verify writes nothing.
	if _, err := Sign(ctx, tg, lyingSigner{newKey(t, "ecdsa-p256")}, Options{}); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("lying signer: %v", err)
	}
	if after := tags(); after != before {
		t.Fatalf("tags changed: %s → %s", before, after)
	}
	if rep, err := Verify(ctx, tg, newKey(t, "ecdsa-p256").Public(), Options{}); !errors.Is(err, ErrNoSignatures) {
		t.Fatalf("after refused signings: %v %+v", err, rep)
	}
}

type badSigner struct{}

func (badSigner) Public() crypto.PublicKey { return "not a key" }
func (badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}

// lyingSigner returns signatures of another message.
type lyingSigner struct{ crypto.Signer }

func (l lyingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	d := bytes.Clone(digest)
	d[0] ^= 1
	return l.Signer.Sign(r, d, opts)
}
