package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

func TestPinRule(t *testing.T) {
	rootKey := tuftest.NewKey(t).Key
	p := policy.Pinning{
		Certs: map[string][]string{
			"example.com/policy/app": {"exact"},
			"example.com/policy/*":   {"team"},
			"example.com/*":          {"org"},
			"example.com/empty/*":    {},
			"example.com/nostar/":    {"not a wildcard"},
		},
		CA: map[string]string{
			"example.com/":          "org-ca.pem",
			"example.com/ca/":       "team-ca.pem",
			"example.com/ca/deeper": "deep-ca.pem",
			"":                      "any-ca.pem",
		},
	}
	for _, tc := range []struct {
		gun     string
		mode    policy.PinMode
		pattern string
		ids     []string
		ca      string
	}{
		{"example.com/policy/app", policy.PinCerts, "example.com/policy/app", []string{"exact"}, ""}, // the GUN itself first
		{"example.com/policy/other", policy.PinCerts, "example.com/policy/*", []string{"team"}, ""},  // then the longest wildcard
		{"example.com/other/app", policy.PinCerts, "example.com/*", []string{"org"}, ""},             // certs win over a CA
		{"example.com/empty/app", policy.PinCerts, "example.com/empty/*", []string{}, ""},            // an empty list still pins (nothing)
		{"other.com/ca/deeper/app", policy.PinCA, "", nil, "any-ca.pem"},                             // CA by prefix, "" the shortest
		{"example.com/nostar/app", policy.PinCerts, "example.com/*", []string{"org"}, ""},            // no "*": not a pattern
	} {
		r := p.Rule(tc.gun)
		if r.GUN != tc.gun || r.Mode != tc.mode || r.Pattern != tc.pattern || strings.Join(r.KeyIDs, ",") != strings.Join(tc.ids, ",") || r.CAFile != tc.ca {
			t.Errorf("%s: rule %+v", tc.gun, r)
		}
		if !r.Pins() {
			t.Errorf("%s: a certs or CA rule does not pin", tc.gun)
		}
	}
	ca := policy.Pinning{CA: p.CA}
	for gun, want := range map[string]string{
		"example.com/ca/deeper/x": "example.com/ca/deeper",
		"example.com/ca/x":        "example.com/ca/",
		"example.com/x":           "example.com/",
		"other.com/x":             "",
	} {
		if r := ca.Rule(gun); r.Mode != policy.PinCA || r.Pattern != want || r.CAFile != ca.CA[want] {
			t.Errorf("%s: CA rule %+v, want prefix %q", gun, r, want)
		}
	}
	if r := (policy.Pinning{}).Rule(gun); r.Mode != policy.PinTOFU || r.Pins() {
		t.Errorf("no pinning: %+v", r)
	}
	if r := (policy.Pinning{DisableTOFU: true}).Rule(gun); r.Mode != policy.PinTOFU || !r.Pins() {
		t.Errorf("disable_tofu: %+v", r)
	}
	if r := (policy.Pinning{Certs: p.Certs, RootKeys: []*keys.PublicKey{rootKey}}).Rule("example.com/policy/app"); r.Mode != policy.PinRootKeys || len(r.RootKeys) != 1 {
		t.Errorf("root keys come first: %+v", r)
	}
}

// rootRepo is a repository whose root role lists the given keys (threshold
// 1), signed by sign.
func rootRepo(t *testing.T, g string, listed []tuftest.Key, sign ...tuftest.Key) []byte {
	r := tuftest.NewRepo(t, g, now)
	r.SetRoleKeys(tuf.RoleRoot, listed...)
	return r.Sign(tuf.RoleRoot, sign...)
}

// loadPinned loads root as the first root of g under rule.
func loadPinned(t *testing.T, g string, rule policy.PinRule, caPEM []byte, root []byte) error {
	t.Helper()
	pin, err := rule.Pin(caPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	return trust.New(g, now, trust.Options{RootPin: pin}).LoadRoot(root)
}

func TestPinCerts(t *testing.T) {
	pinned, other := tuftest.NewRootKey(t, gun, now), tuftest.NewRootKey(t, gun, now)
	rule := policy.Pinning{Certs: map[string][]string{gun: {pinned.Key.ID()}}}.Rule(gun)
	if err := loadPinned(t, gun, rule, nil, rootRepo(t, gun, []tuftest.Key{pinned, other}, pinned)); err != nil {
		t.Fatalf("root signed by the pinned certificate refused: %v", err)
	}
	// Listed, but the threshold is met only by the certificate that is not
	// pinned: notary prunes unpinned certificates before counting.
	err := loadPinned(t, gun, rule, nil, rootRepo(t, gun, []tuftest.Key{pinned, other}, other))
	if !errors.Is(err, trust.ErrSignatures) {
		t.Fatalf("root signed only by an unpinned certificate: %v", err)
	}
	err = loadPinned(t, gun, rule, nil, rootRepo(t, gun, []tuftest.Key{other}, other))
	if !errors.Is(err, trust.ErrRootCert) || !strings.Contains(err.Error(), "no root certificate of "+gun+" has a pinned key ID") || !strings.Contains(err.Error(), other.Key.ID()) {
		t.Fatalf("root without the pinned certificate: %v", err)
	}
	// notary compares the root key ID (the certificate's), not the ID of
	// the plain key inside it.
	byCanonical := policy.Pinning{Certs: map[string][]string{gun: {pinned.Key.CanonicalID()}}}.Rule(gun)
	if err := loadPinned(t, gun, byCanonical, nil, rootRepo(t, gun, []tuftest.Key{pinned}, pinned)); !errors.Is(err, trust.ErrRootCert) {
		t.Fatalf("a canonical key ID pinned the root: %v", err)
	}
	// Pins apply to rotations too when the client asks (a trusted root
	// whose cached copy expired, as notary): a rotation signed by the
	// trusted root to an unpinned certificate is refused.
	r := tuftest.NewRepo(t, gun, now)
	r.SetRoleKeys(tuf.RoleRoot, pinned)
	v := trust.New(gun, now, trust.Options{})
	if err := v.LoadRoot(r.Sign(tuf.RoleRoot)); err != nil {
		t.Fatal(err)
	}
	pin, err := rule.Pin(nil, now)
	if err != nil {
		t.Fatal(err)
	}
	v.SetRootPin(pin)
	r.SetRoleKeys(tuf.RoleRoot, other)
	r.Bump(tuf.RoleRoot)
	if err := v.LoadRoot(r.Sign(tuf.RoleRoot, pinned, other)); !errors.Is(err, trust.ErrRootCert) || !strings.Contains(err.Error(), "pinned key ID") {
		t.Fatalf("rotation to an unpinned root: %v", err)
	}
	if _, err := pin.PinRoot("example.com/other", true, nil); err == nil {
		t.Fatal("a rule for one GUN checked another")
	}
}

// pki issues certificates for CA pinning.
type pki struct {
	t    *testing.T
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

var serial int64

func newCA(t *testing.T, parent *pki, cn string, notAfter time.Time) *pki {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	signer, signerKey := tmpl, k
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, k.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{t: t, key: k, cert: c}
}

func (ca *pki) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// rootKey issues a root certificate for g, bundled with the chain given.
func (ca *pki) rootKey(g string, eku []x509.ExtKeyUsage, chain ...*x509.Certificate) tuftest.Key {
	ca.t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: g},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pub, err := keys.FromCertificate(append([]*x509.Certificate{leaf}, chain...)...)
	if err != nil {
		ca.t.Fatal(err)
	}
	return tuftest.Signer(pub, k)
}

func TestPinCA(t *testing.T) {
	org := newCA(t, nil, "org root CA", now.AddDate(5, 0, 0))
	team := newCA(t, org, "team intermediate CA", now.AddDate(5, 0, 0))
	stranger := newCA(t, nil, "another CA", now.AddDate(5, 0, 0))
	expired := newCA(t, nil, "expired CA", now.Add(-time.Minute))
	rule := policy.Pinning{CA: map[string]string{"example.com/": "org.pem"}}.Rule(gun)

	direct := org.rootKey(gun, nil)
	viaIntermediate := team.rootKey(gun, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, team.cert)
	intermediateMissing := team.rootKey(gun, nil)
	foreign := stranger.rootKey(gun, nil)
	codeSigning := org.rootKey(gun, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning})
	selfSigned := tuftest.NewRootKey(t, gun, now)
	for _, tc := range []struct {
		name string
		key  tuftest.Key
		ok   bool
	}{
		{"issued by the pinned CA", direct, true},
		{"through an intermediate the root key carries", viaIntermediate, true},
		{"intermediate not carried", intermediateMissing, false},
		{"issued by another CA", foreign, false},
		{"self-signed (notary's own root certificates)", selfSigned, false},
		// notary verifies with Go's default key usage (server auth), so a
		// code-signing-only leaf does not chain: the same here.
		{"code signing only", codeSigning, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := loadPinned(t, gun, rule, org.pem(), rootRepo(t, gun, []tuftest.Key{tc.key}, tc.key))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && (!errors.Is(err, trust.ErrRootCert) || !strings.Contains(err.Error(), "chains to the CA pinned for example.com/ (org.pem)")) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
	// A bundle: expired CAs are left out, the others kept.
	bundle := append(expired.pem(), org.pem()...)
	if err := loadPinned(t, gun, rule, bundle, rootRepo(t, gun, []tuftest.Key{direct}, direct)); err != nil {
		t.Fatalf("bundle with an expired CA beside the right one: %v", err)
	}
	for name, b := range map[string][]byte{
		"only expired":  expired.pem(),
		"empty":         nil,
		"not PEM":       []byte("not a certificate"),
		"a private key": append(org.pem(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...),
		"bad DER":       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
	} {
		if _, err := rule.Pin(b, now); !errors.Is(err, policy.ErrPinning) || !strings.Contains(err.Error(), "org.pem") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPinTOFU(t *testing.T) {
	k := tuftest.NewRootKey(t, gun, now)
	root := rootRepo(t, gun, []tuftest.Key{k}, k)
	tofu := policy.Pinning{}.Rule(gun)
	if err := loadPinned(t, gun, tofu, nil, root); err != nil {
		t.Fatalf("trust on first use: %v", err)
	}
	off := policy.Pinning{DisableTOFU: true}.Rule(gun)
	if err := loadPinned(t, gun, off, nil, root); !errors.Is(err, trust.ErrRootCert) || !strings.Contains(err.Error(), "trust on first use is disabled") {
		t.Fatalf("first root with disable_tofu: %v", err)
	}
	// With a root already trusted, disable_tofu has nothing to refuse (the
	// trusted root signs the next, as notary).
	v := trust.New(gun, now, trust.Options{})
	r := tuftest.NewRepo(t, gun, now)
	if err := v.LoadRoot(r.Sign(tuf.RoleRoot)); err != nil {
		t.Fatal(err)
	}
	pin, _ := off.Pin(nil, now)
	v.SetRootPin(pin)
	next := tuftest.NewRootKey(t, gun, now)
	old := r.Keys[tuf.RoleRoot][0]
	r.SetRoleKeys(tuf.RoleRoot, next)
	r.Bump(tuf.RoleRoot)
	if err := v.LoadRoot(r.Sign(tuf.RoleRoot, old, next)); err != nil {
		t.Fatalf("rotation with disable_tofu: %v", err)
	}
}

func TestPinRootKeys(t *testing.T) {
	k, other := tuftest.NewRootKey(t, gun, now), tuftest.NewRootKey(t, gun, now)
	plain, err := keys.FromCrypto(k.Key.Certificates()[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// The key given as a bare public key or as its certificate.
	for _, given := range []*keys.PublicKey{plain, k.Key} {
		rule := policy.Pinning{RootKeys: []*keys.PublicKey{given}, DisableTOFU: true}.Rule(gun)
		if err := loadPinned(t, gun, rule, nil, rootRepo(t, gun, []tuftest.Key{k, other}, k)); err != nil {
			t.Fatalf("root of the given key refused: %v", err)
		}
		if err := loadPinned(t, gun, rule, nil, rootRepo(t, gun, []tuftest.Key{k, other}, other)); !errors.Is(err, trust.ErrSignatures) {
			t.Fatalf("root signed by another key: %v", err)
		}
		err := loadPinned(t, gun, rule, nil, rootRepo(t, gun, []tuftest.Key{other}, other))
		otherID := other.Key.CanonicalID()
		if !errors.Is(err, trust.ErrRootCert) || !strings.Contains(err.Error(), "is signed by root key "+otherID+", not by the pinned root key "+plain.ID()) {
			t.Fatalf("root without the given key: %v", err)
		}
	}
}
