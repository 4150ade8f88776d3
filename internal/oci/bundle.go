package oci

// The Sigstore bundle v0.3 in its protobuf-JSON form (sigstore
// protobuf-specs Bundle), as cosign v3 writes it:
//
//	{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
//	 "verificationMaterial":{"publicKey":{"hint":"<b64 sha256 of the SPKI>"}},
//	 "dsseEnvelope":{"payload":"<b64>","payloadType":"application/vnd.in-toto+json",
//	                 "signatures":[{"sig":"<b64>"}]}}
//
// The content is a DSSE envelope or a message signature; the verification
// material is a public-key hint, a certificate or (refused for v0.3, as
// sigstore-go does) a certificate chain, with optional transparency-log
// entries and timestamps, which are kept but not interpreted.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Bundle is a Sigstore bundle.
type Bundle struct {
	MediaType            string               `json:"mediaType"`
	VerificationMaterial VerificationMaterial `json:"verificationMaterial"`
	DSSEEnvelope         *Envelope            `json:"dsseEnvelope,omitempty"`
	MessageSignature     *MessageSignature    `json:"messageSignature,omitempty"`
}

// VerificationMaterial says what verifies a bundle.
type VerificationMaterial struct {
	PublicKey            *PublicKeyHint  `json:"publicKey,omitempty"`
	Certificate          *RawBytes       `json:"certificate,omitempty"`
	X509CertificateChain json.RawMessage `json:"x509CertificateChain,omitempty"`
	// TlogEntries and TimestampVerificationData are kept as they are:
	// verification by key does not use them.
	TlogEntries               []json.RawMessage `json:"tlogEntries,omitempty"`
	TimestampVerificationData json.RawMessage   `json:"timestampVerificationData,omitempty"`
}

// PublicKeyHint names the key that verifies a bundle without carrying it.
type PublicKeyHint struct {
	Hint string `json:"hint,omitempty"`
}

// RawBytes is protobuf-specs' X509Certificate: DER bytes in base64.
type RawBytes struct {
	RawBytes string `json:"rawBytes"`
}

// MessageSignature is a bundle's signature over an artifact digest.
type MessageSignature struct {
	MessageDigest *struct {
		Algorithm string `json:"algorithm"`
		Digest    string `json:"digest"`
	} `json:"messageDigest,omitempty"`
	Signature string `json:"signature"`
}

// maxBundle bounds the bundles read from a registry.
const maxBundle = 4 << 20

// NewBundle wraps a signed DSSE envelope into a v0.3 bundle with a
// public-key hint.
func NewBundle(env *Envelope, hint string) ([]byte, error) {
	b := Bundle{
		MediaType:            MediaTypeBundle,
		VerificationMaterial: VerificationMaterial{PublicKey: &PublicKeyHint{Hint: hint}},
		DSSEEnvelope:         env,
	}
	return json.Marshal(&b)
}

// ParseBundle reads a bundle as cosign v3 accepts it from a registry:
// protobuf JSON with no unknown fields, a v0.3 media type, exactly one kind
// of content and of key material, no certificate chain (v0.3), and an
// inclusion proof in every transparency-log entry it carries (sigstore-go's
// rule for v0.2 and later).
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) > maxBundle {
		return nil, fmt.Errorf("%w bundle: %d bytes", ErrFormat, len(b))
	}
	var bu Bundle
	if err := strictJSON(b, &bu); err != nil {
		return nil, fmt.Errorf("%w bundle: %v", ErrFormat, err)
	}
	if !isBundleV03(bu.MediaType) {
		return nil, fmt.Errorf("%w bundle: media type %q, want %s (cosign reads v0.3)", ErrFormat, bu.MediaType, MediaTypeBundle)
	}
	switch {
	case (bu.DSSEEnvelope == nil) == (bu.MessageSignature == nil):
		return nil, fmt.Errorf("%w bundle: it must hold either a DSSE envelope or a message signature", ErrFormat)
	case bu.DSSEEnvelope != nil:
		if err := bu.DSSEEnvelope.check(); err != nil {
			return nil, err
		}
	default:
		if _, err := decodeB64(bu.MessageSignature.Signature); err != nil {
			return nil, fmt.Errorf("%w bundle: message signature: %v", ErrFormat, err)
		}
	}
	vm := bu.VerificationMaterial
	n := 0
	for _, set := range []bool{vm.PublicKey != nil, vm.Certificate != nil, len(vm.X509CertificateChain) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%w bundle: verification material must be one of a public key, a certificate or a chain", ErrFormat)
	}
	if len(vm.X509CertificateChain) > 0 {
		return nil, fmt.Errorf("%w bundle: a v0.3 bundle cannot carry a certificate chain", ErrFormat)
	}
	if vm.Certificate != nil {
		if _, err := decodeB64(vm.Certificate.RawBytes); err != nil {
			return nil, fmt.Errorf("%w bundle: certificate: %v", ErrFormat, err)
		}
	}
	for _, e := range vm.TlogEntries {
		var entry map[string]json.RawMessage
		if err := json.Unmarshal(e, &entry); err != nil || entry == nil {
			return nil, fmt.Errorf("%w bundle: transparency-log entry is not an object", ErrFormat)
		}
		if p := entry["inclusionProof"]; len(p) == 0 || string(p) == "null" {
			return nil, fmt.Errorf("%w bundle: transparency-log entry without an inclusion proof", ErrFormat)
		}
	}
	return &bu, nil
}

// isBundleV03 accepts v0.3's two spellings (sigstore-go's getBundleVersion).
func isBundleV03(mt string) bool {
	return mt == MediaTypeBundle || mt == mediaTypeBundlePrefix+"+json;version=0.3"
}

// isBundleLayer is cosign's test for a referrer's bundle layer.
func isBundleLayer(mt string) bool { return strings.HasPrefix(mt, mediaTypeBundlePrefix) }

// keyHintEncoding is how sigstore-go writes the hint.
var keyHintEncoding = base64.StdEncoding
