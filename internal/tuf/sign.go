package tuf

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf/cjson"
)

// Signer is a private key used to sign metadata: the crypto.Signer and the
// public key (with its TUF key ID) that metadata lists for it.
type Signer struct {
	Key    *keys.PublicKey
	Signer crypto.Signer
}

// Sign encodes the role object canonically, signs it with every signer, and
// returns the whole file exactly as Notary writes it:
// {"signed":<canonical>,"signatures":[{"keyid","method","sig"},…]}.
func Sign(signed any, signers ...Signer) ([]byte, error) {
	canon, err := cjson.Marshal(signed)
	if err != nil {
		return nil, fmt.Errorf("tuf: encode: %w", err)
	}
	sigs := make([]Signature, 0, len(signers))
	for _, s := range signers {
		method, sig, err := keys.Sign(s.Signer, canon)
		if err != nil {
			return nil, fmt.Errorf("tuf: sign with %s: %w", s.Key.ID(), err)
		}
		sigs = append(sigs, Signature{KeyID: s.Key.ID(), Method: method, Sig: sig})
	}
	return Envelope(canon, sigs), nil
}

// Envelope assembles a metadata file from canonical signed bytes and
// signatures the way Notary's encoder does (encoding/json over a raw
// message, which escapes <, >, &, U+2028 and U+2029).
func Envelope(canonical []byte, sigs []Signature) []byte {
	b := make([]byte, 0, len(canonical)+64+len(sigs)*160)
	b = append(b, `{"signed":`...)
	b = appendHTMLEscaped(b, canonical)
	b = append(b, `,"signatures":[`...)
	for i, s := range sigs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"keyid":`...)
		b = appendJSONString(b, s.KeyID)
		b = append(b, `,"method":`...)
		b = appendJSONString(b, s.Method)
		b = append(b, `,"sig":"`...)
		b = base64.StdEncoding.AppendEncode(b, s.Sig)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

const hexDigits = "0123456789abcdef"

func appendHTMLEscaped(b, src []byte) []byte {
	start := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '<' || c == '>' || c == '&' {
			b = append(b, src[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		}
		// U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
		if c == 0xE2 && i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8 {
			b = append(b, src[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(b, src[start:]...)
}

// appendJSONString writes a key ID or method name as encoding/json would.
func appendJSONString(b []byte, s string) []byte {
	return appendHTMLEscaped(b, cjson.AppendString(nil, s))
}

// Errors of signature verification.
var (
	ErrThreshold = errors.New("tuf: valid signatures did not meet threshold")
	// ErrInvalidKeyID reports a signature naming a key listed under an ID
	// that is not the key's own (Notary: "key ID is not valid for key
	// content"); the whole role is refused, as Notary refuses it.
	ErrInvalidKeyID = errors.New("tuf: key ID is not valid for key content")
)

// ThresholdError reports how many valid signatures a role had and needed.
type ThresholdError struct {
	Role      string
	Have      int
	Threshold int
}

func (e *ThresholdError) Error() string {
	return fmt.Sprintf("valid signatures did not meet threshold for %s", e.Role)
}

func (e *ThresholdError) Unwrap() error { return ErrThreshold }

// VerifySignatures checks that at least threshold distinct keys among ids
// (looked up in ks) made valid signatures over the file's signed value.
// Signatures by other keys are ignored.
//
// What is verified is what Notary 0.7 verifies: the signed value decoded
// into a generic value (numbers as float64) and encoded canonically, never
// the received bytes as such (they agree exactly when the file is
// canonical, as Notary writes it; parse proves that in one pass, and only
// other files are re-encoded, once). A key counts once towards the
// threshold whatever IDs or encodings (plain or certificate) it is listed
// under; a signature naming a key listed under an ID that is not its
// content ID refuses the role (ErrInvalidKeyID).
func VerifySignatures[T any](m *Meta[T], ids []string, threshold int, ks map[string]*keys.PublicKey) error {
	if threshold < 1 {
		return fmt.Errorf("tuf: %s: threshold %d is below 1", m.Role, threshold)
	}
	msg, err := m.canonical, m.canonErr
	if err == nil && msg == nil {
		// A Meta not made by parse: compute what parse would have.
		msg, err = canonical(m.SignedRaw)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidMetadata, m.Role, err)
	}
	have, err := countValid(m.Signatures, msg, ids, ks)
	if err != nil {
		return fmt.Errorf("%w (role %s)", err, m.Role)
	}
	if have < threshold {
		return &ThresholdError{Role: m.Role, Have: have, Threshold: threshold}
	}
	return nil
}

// countValid counts the distinct keys (by canonical key ID) among ids with
// a valid signature over msg.
func countValid(sigs []Signature, msg []byte, ids []string, ks map[string]*keys.PublicKey) (int, error) {
	listed := func(id string) bool { return slices.Contains(ids, id) }
	if len(ids) > 8 {
		set := make(map[string]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		listed = func(id string) bool { return set[id] }
	}
	valid := map[string]bool{}
	for _, s := range sigs {
		k := ks[s.KeyID]
		if k == nil || !listed(s.KeyID) {
			continue
		}
		if k.ID() != s.KeyID {
			return 0, ErrInvalidKeyID
		}
		if valid[k.CanonicalID()] {
			continue
		}
		if k.Verify(s.Method, msg, s.Sig) == nil {
			valid[k.CanonicalID()] = true
		}
	}
	return len(valid), nil
}
