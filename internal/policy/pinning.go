package policy

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Pinning is how the root of a repository is trusted when a client has no
// root of it yet: notary's trust_pinning (certificates by GUN, a CA by GUN
// prefix, trust on first use unless disabled), plus root keys given
// outright. The zero Pinning is trust on first use.
type Pinning struct {
	// Certs maps a GUN, or a GUN prefix ending in "*", to the root key IDs
	// (the IDs root.json gives its certificates) that may sign the root.
	Certs map[string][]string
	// CA maps a GUN prefix to a CA bundle file (PEM certificates); the root
	// of a matching GUN must hold a certificate that chains to it. The
	// caller reads the file (see PinRule.Pin).
	CA map[string]string
	// DisableTOFU refuses a first root that nothing pins.
	DisableTOFU bool
	// RootKeys, when not empty, pin every GUN's root to these public keys
	// (a root certificate counts when its key is one of them), ahead of
	// Certs and CA: a root key given on the command line.
	RootKeys []*keys.PublicKey
}

// PinMode is the kind of rule that applies to a GUN.
type PinMode int

// Pin modes, in the order they are chosen.
const (
	PinTOFU     PinMode = iota // trust on first use (or refuse, with DisableTOFU)
	PinRootKeys                // Pinning.RootKeys
	PinCerts                   // Pinning.Certs: the GUN, else the longest "prefix*"
	PinCA                      // Pinning.CA: the longest prefix of the GUN
)

// PinRule is the rule Pinning applies to one GUN.
type PinRule struct {
	GUN  string
	Mode PinMode
	// Pattern is the Certs or CA key that matched.
	Pattern string
	// KeyIDs are the pinned root key IDs (PinCerts).
	KeyIDs []string
	// CAFile is the CA bundle to read (PinCA).
	CAFile string
	// RootKeys are the pinned keys (PinRootKeys).
	RootKeys []*keys.PublicKey
	// DisableTOFU refuses a first root (PinTOFU).
	DisableTOFU bool
}

// Rule chooses the rule for gun as notary 0.7 does: certificates pinned
// for the GUN itself, else for the longest matching "prefix*"; else the CA
// of the longest matching prefix; else trust on first use (refused with
// DisableTOFU). Root keys, when given, come first.
func (p Pinning) Rule(gun string) PinRule {
	if len(p.RootKeys) > 0 {
		return PinRule{GUN: gun, Mode: PinRootKeys, RootKeys: p.RootKeys}
	}
	if ids, ok := p.Certs[gun]; ok {
		return PinRule{GUN: gun, Mode: PinCerts, Pattern: gun, KeyIDs: ids}
	}
	longest, found := "", false
	for pattern := range p.Certs {
		if strings.HasSuffix(pattern, "*") && trust.MatchesGUN(pattern, gun) && len(pattern) > len(longest) {
			longest, found = pattern, true
		}
	}
	if found {
		return PinRule{GUN: gun, Mode: PinCerts, Pattern: longest, KeyIDs: p.Certs[longest]}
	}
	longest, found = "", false
	for prefix := range p.CA {
		if strings.HasPrefix(gun, prefix) && len(prefix) >= len(longest) {
			longest, found = prefix, true
		}
	}
	if found {
		return PinRule{GUN: gun, Mode: PinCA, Pattern: longest, CAFile: p.CA[longest]}
	}
	return PinRule{GUN: gun, Mode: PinTOFU, DisableTOFU: p.DisableTOFU}
}

// Pins reports whether the rule checks anything: trust on first use that
// is not disabled accepts every root.
func (r PinRule) Pins() bool { return r.Mode != PinTOFU || r.DisableTOFU }

// ErrPinning reports a pinning rule that cannot be used (a CA bundle that
// holds no usable certificate).
var ErrPinning = errors.New("policy: unusable trust pinning")

// Pin prepares the rule's check. caBundle is the content of CAFile (PinCA
// only, read by the caller); now is the time certificates are checked at.
// The CA bundle's certificates must all parse; those that notary's
// certificate rules refuse (expired, SHA-1, short RSA) are left out, and a
// bundle with none left is an error, as in notary.
func (r PinRule) Pin(caBundle []byte, now time.Time) (*RootPin, error) {
	p := &RootPin{rule: r, now: now}
	if r.Mode != PinCA {
		return p, nil
	}
	certs, err := parseCertBundle(caBundle)
	if err != nil {
		return nil, fmt.Errorf("%w: the CA pinned for %s (%s): %v", ErrPinning, r.Pattern, r.CAFile, err)
	}
	p.cas = x509.NewCertPool()
	var why []string
	for _, c := range certs {
		if err := keys.CheckCertificate(c, now); err != nil {
			why = append(why, strings.TrimPrefix(err.Error(), "keys: "))
			continue
		}
		p.cas.AddCert(c)
		p.caCount++
	}
	if p.caCount == 0 {
		return nil, fmt.Errorf("%w: the CA pinned for %s (%s) holds no valid certificate (%s)", ErrPinning, r.Pattern, r.CAFile, strings.Join(why, "; "))
	}
	return p, nil
}

func parseCertBundle(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a %s block is not a certificate", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// RootPin is a prepared pinning rule; it implements trust.RootPin.
type RootPin struct {
	rule    PinRule
	now     time.Time
	cas     *x509.CertPool
	caCount int
}

var _ trust.RootPin = (*RootPin)(nil)

// PinRoot returns the root certificates the rule accepts (see
// trust.RootPin): pinned key IDs; certificates that chain to the pinned CA
// (through the intermediates the root key carries that are themselves
// valid, with Go's default key usage, as notary verifies); certificates of
// the pinned root keys; or, trusting on first use, all of them — unless
// disabled, when a first root is refused.
func (p *RootPin) PinRoot(gun string, first bool, valid map[string]*keys.PublicKey) (map[string]*keys.PublicKey, error) {
	r := p.rule
	if gun != r.GUN {
		return nil, fmt.Errorf("the pinning rule is for %s, not %s", r.GUN, gun)
	}
	out := map[string]*keys.PublicKey{}
	switch r.Mode {
	case PinTOFU:
		if r.DisableTOFU && first {
			return nil, fmt.Errorf("trust on first use is disabled (trust_pinning.disable_tofu) and nothing is pinned for %s", gun)
		}
		return valid, nil
	case PinRootKeys:
		for id, k := range valid {
			for _, want := range r.RootKeys {
				if k.CanonicalID() == want.CanonicalID() {
					out[id] = k
				}
			}
		}
		if len(out) == 0 {
			var have []*keys.PublicKey
			for _, k := range valid {
				have = append(have, k)
			}
			return nil, fmt.Errorf("the root of %s is signed by root key %s, not by the pinned root key %s",
				gun, strings.Join(sortedStrings(canonicalIDs(have)), ", "), strings.Join(canonicalIDs(r.RootKeys), ", "))
		}
	case PinCerts:
		for id, k := range valid {
			if slices.Contains(r.KeyIDs, id) && k.ID() == id {
				out[id] = k
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no root certificate of %s has a pinned key ID (trust_pinning.certs[%q]: %s; the root has %s)",
				gun, r.Pattern, strings.Join(r.KeyIDs, ", "), strings.Join(sortedIDs(valid), ", "))
		}
	case PinCA:
		for id, k := range valid {
			certs := k.Certificates()
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				if keys.CheckCertificate(c, p.now) == nil {
					inter.AddCert(c)
				}
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: p.cas, Intermediates: inter, CurrentTime: p.now}); err == nil {
				out[id] = k
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no root certificate of %s chains to the CA pinned for %s (%s)", gun, r.Pattern, r.CAFile)
		}
	default:
		return nil, fmt.Errorf("%w: unknown pin mode %d", ErrPinning, r.Mode)
	}
	return out, nil
}

func sortedIDs(ks map[string]*keys.PublicKey) []string {
	out := make([]string, 0, len(ks))
	for id := range ks {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

func canonicalIDs(ks []*keys.PublicKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.CanonicalID()
	}
	return out
}
