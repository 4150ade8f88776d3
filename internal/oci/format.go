package oci

// The payload formats: cosign's simple-signing payload, in-toto Statements
// and DSSE envelopes. Parsers keep the bytes they were given; what is
// verified is always the bytes that were signed.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Media types, annotation keys and type names of the cosign formats.
const (
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	MediaTypeDSSE          = "application/vnd.dsse.envelope.v1+json"
	MediaTypeBundle        = "application/vnd.dev.sigstore.bundle.v0.3+json"
	mediaTypeBundlePrefix  = "application/vnd.dev.sigstore.bundle"
	MediaTypeEmpty         = "application/vnd.oci.empty.v1+json"
	MediaTypeImageConfig   = "application/vnd.oci.image.config.v1+json"

	// PayloadTypeInToto is the DSSE payload type of in-toto Statements.
	PayloadTypeInToto = "application/vnd.in-toto+json"

	// Layer annotations of the legacy form.
	AnnotationSignature   = "dev.cosignproject.cosign/signature"
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	AnnotationChain       = "dev.sigstore.cosign/chain"
	AnnotationPredicate   = "predicateType" // on .att layers
	// Manifest annotations of bundle referrers.
	AnnotationBundleContent   = "dev.sigstore.bundle.content"
	AnnotationBundlePredicate = "dev.sigstore.bundle.predicateType"
	AnnotationCreated         = "org.opencontainers.image.created"

	// SimpleSigningType is critical.type of every cosign signature payload.
	SimpleSigningType = "cosign container image signature"

	StatementTypeV1  = "https://in-toto.io/Statement/v1"
	StatementTypeV01 = "https://in-toto.io/Statement/v0.1"

	// PredicateTypeSign is what cosign v3's image signatures state.
	PredicateTypeSign = "https://sigstore.dev/cosign/sign/v1"
)

// Predicate types cosign's --type names stand for.
var predicateTypes = map[string]string{
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
}

// ErrFormat reports bytes that are not the format they should be.
var ErrFormat = errors.New("oci: malformed")

// digestRE is a sha256 digest as registries name manifests.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidDigest reports whether d is "sha256:" and 64 lower-case hex digits.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// PredicateType resolves cosign's --type value: a short name (custom,
// slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson,
// cyclonedx, link, vuln, openvex) or an absolute URI.
func PredicateType(name string) (string, error) {
	if t, ok := predicateTypes[name]; ok {
		return t, nil
	}
	if u, err := url.ParseRequestURI(name); err == nil && u.Scheme != "" {
		return name, nil
	}
	return "", fmt.Errorf("oci: predicate type %q is neither one of cosign's names nor a URI", name)
}

// Predicate builds the predicate cosign attests for --type name and the
// --predicate file's bytes: for "custom", {"Data": <the file as a string>,
// "Timestamp": <now, RFC 3339>}; for every other type the file itself, which
// must be a JSON object.
func Predicate(name string, file []byte, now time.Time) (json.RawMessage, error) {
	if name == "custom" {
		return json.Marshal(struct {
			Data      string
			Timestamp string
		}{string(file), now.UTC().Format(time.RFC3339)})
	}
	var obj map[string]json.RawMessage
	if err := strictJSON(file, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("oci: the predicate for type %s must be a JSON object: %v", name, err)
	}
	return compactJSON(file)
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return buf.Bytes(), nil
}

// strictJSON decodes exactly one JSON value, refusing trailing data and,
// for structs, unknown fields.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// SimpleSigning is cosign's signature payload ("simple signing").
type SimpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	// Optional holds cosign's -a annotations (null when there are none).
	Optional map[string]any `json:"optional"`
}

// NewSimpleSigning makes the payload cosign signs for digest in the
// repository named dockerReference (registry/path), with annotations as
// its optional part.
func NewSimpleSigning(dockerReference, digest string, annotations map[string]string) ([]byte, error) {
	var p SimpleSigning
	p.Critical.Identity.DockerReference = dockerReference
	p.Critical.Image.DockerManifestDigest = digest
	p.Critical.Type = SimpleSigningType
	if len(annotations) > 0 {
		p.Optional = map[string]any{}
		for k, v := range annotations {
			p.Optional[k] = v
		}
	}
	return json.Marshal(&p)
}

// ParseSimpleSigning reads a simple-signing payload. Unknown fields are
// allowed (cosign reads it with plain encoding/json); the type must be
// cosign's and the digest well formed.
func ParseSimpleSigning(b []byte) (*SimpleSigning, error) {
	var p SimpleSigning
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w simple-signing payload: %v", ErrFormat, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w simple-signing payload: data after the JSON value", ErrFormat)
	}
	if p.Critical.Type != SimpleSigningType {
		return nil, fmt.Errorf("%w simple-signing payload: critical.type is %q, want %q", ErrFormat, p.Critical.Type, SimpleSigningType)
	}
	if !ValidDigest(p.Critical.Image.DockerManifestDigest) {
		return nil, fmt.Errorf("%w simple-signing payload: docker-manifest-digest %q", ErrFormat, p.Critical.Image.DockerManifestDigest)
	}
	return &p, nil
}

// Statement is an in-toto Statement (v1 or v0.1).
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate,omitempty"`
}

// Subject is an in-toto ResourceDescriptor as a Statement's subject.
type Subject struct {
	Name             string            `json:"name,omitempty"`
	URI              string            `json:"uri,omitempty"`
	Digest           map[string]string `json:"digest,omitempty"`
	Content          []byte            `json:"content,omitempty"`
	DownloadLocation string            `json:"downloadLocation,omitempty"`
	MediaType        string            `json:"mediaType,omitempty"`
	Annotations      map[string]any    `json:"annotations,omitempty"`
}

// Bounds sigstore-go applies to Statements.
const (
	maxSubjects       = 1024
	maxSubjectDigests = 32
)

// NewStatement makes the in-toto Statement v1 over digest: one subject
// (named name when not empty, carrying annotations when given) and the
// predicate (an empty object when nil).
func NewStatement(digest, name, predicateType string, predicate json.RawMessage, annotations map[string]string) ([]byte, error) {
	if !ValidDigest(digest) {
		return nil, fmt.Errorf("oci: %q is not a sha256 digest", digest)
	}
	s := Statement{Type: StatementTypeV1, PredicateType: predicateType, Predicate: predicate}
	if s.Predicate == nil {
		s.Predicate = json.RawMessage(`{}`)
	}
	sub := Subject{Name: name, Digest: map[string]string{"sha256": digest[len("sha256:"):]}}
	if len(annotations) > 0 {
		sub.Annotations = map[string]any{}
		for k, v := range annotations {
			sub.Annotations[k] = v
		}
	}
	s.Subject = []Subject{sub}
	return json.Marshal(&s)
}

// ParseStatement reads an in-toto Statement as sigstore-go does (protojson:
// unknown fields are refused), within sigstore-go's bounds on subjects.
func ParseStatement(b []byte) (*Statement, error) {
	var s Statement
	if err := strictJSON(b, &s); err != nil {
		return nil, fmt.Errorf("%w in-toto statement: %v", ErrFormat, err)
	}
	if s.Type != StatementTypeV1 && s.Type != StatementTypeV01 {
		return nil, fmt.Errorf("%w in-toto statement: _type %q", ErrFormat, s.Type)
	}
	if s.PredicateType == "" {
		return nil, fmt.Errorf("%w in-toto statement: no predicateType", ErrFormat)
	}
	if len(s.Subject) > maxSubjects {
		return nil, fmt.Errorf("%w in-toto statement: %d subjects", ErrFormat, len(s.Subject))
	}
	for _, sub := range s.Subject {
		if len(sub.Digest) > maxSubjectDigests {
			return nil, fmt.Errorf("%w in-toto statement: a subject with %d digests", ErrFormat, len(sub.Digest))
		}
	}
	return &s, nil
}

// Covers returns the subject whose sha256 digest is digest's, if any.
func (s *Statement) Covers(digest string) (Subject, bool) {
	for _, sub := range s.Subject {
		if "sha256:"+sub.Digest["sha256"] == digest {
			return sub, true
		}
	}
	return Subject{}, false
}

// Envelope is a DSSE envelope.
type Envelope struct {
	Payload     string        `json:"payload"`
	PayloadType string        `json:"payloadType"`
	Signatures  []EnvelopeSig `json:"signatures"`
}

// EnvelopeSig is one signature of an envelope.
type EnvelopeSig struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding, what DSSE signatures sign:
// "DSSEv1" SP len(type) SP type SP len(body) SP body.
func PAE(payloadType string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte(' ')
	b.Write(body)
	return b.Bytes()
}

// ParseEnvelope reads a DSSE envelope JSON (as a legacy .att layer holds it).
func ParseEnvelope(b []byte) (*Envelope, error) {
	var e Envelope
	if err := strictJSON(b, &e); err != nil {
		return nil, fmt.Errorf("%w DSSE envelope: %v", ErrFormat, err)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return &e, nil
}

func (e *Envelope) check() error {
	if e.PayloadType == "" {
		return fmt.Errorf("%w DSSE envelope: no payloadType", ErrFormat)
	}
	if len(e.Signatures) == 0 {
		return fmt.Errorf("%w DSSE envelope: no signatures", ErrFormat)
	}
	if _, err := decodeB64(e.Payload); err != nil {
		return fmt.Errorf("%w DSSE envelope: payload: %v", ErrFormat, err)
	}
	for _, s := range e.Signatures {
		if _, err := decodeB64(s.Sig); err != nil {
			return fmt.Errorf("%w DSSE envelope: signature: %v", ErrFormat, err)
		}
	}
	return nil
}

// Body returns the decoded payload.
func (e *Envelope) Body() []byte {
	b, _ := decodeB64(e.Payload) // checked when parsed or made
	return b
}

// decodeB64 reads base64 as DSSE and protobuf JSON allow: standard or
// URL-safe alphabet, padded or not.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}
