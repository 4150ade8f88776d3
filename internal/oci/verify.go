package oci

// Finding and checking signatures and attestations of a target, in both
// forms. Every candidate is read, checked against the key and the target's
// digest, and either verified or rejected with the step that failed.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/signet-trust/signet/internal/registry"
)

// Errors of Verify and VerifyAttestations.
var (
	// ErrNoSignatures: the registry holds no signature (or attestation)
	// of the requested kind for the digest, in any form read.
	ErrNoSignatures = errors.New("oci: no cosign signatures")
	// ErrNotVerified: there are some, but none verifies with the key for
	// the digest (and annotations) asked about.
	ErrNotVerified = errors.New("oci: no cosign signature verifies")
)

// Bounds on what is read from a registry.
const (
	maxReferrers     = 1000 // referrers examined per digest
	maxLegacyLayers  = 1000 // cosign's own cap on .sig/.att layers
	maxPayload       = 1 << 20
	maxAttestation   = 32 << 20
	maxSigAnnotation = 64 << 10
)

// Signature is a verified signature or attestation.
type Signature struct {
	Form Form
	// Digest is the manifest digest it covers: always the target's.
	Digest string
	// KeyHint names the key that verified it (see KeyHint).
	KeyHint string
	// Source is where it was found: the referrer manifest's digest, or
	// "<tag>#<layer index>" for the legacy form.
	Source string
	// PredicateType is the Statement's (PredicateTypeSign for bundle
	// signatures; empty for legacy signatures, which have none).
	PredicateType string
	// Annotations are the signature's claims: the simple-signing optional
	// part, or the Statement subject's annotations. Non-string values are
	// given as JSON.
	Annotations map[string]string
	// Payload is what the signature signs: the simple-signing payload, or
	// the in-toto Statement inside the DSSE envelope.
	Payload []byte
	// Statement is Payload parsed, for the DSSE forms.
	Statement *Statement
}

// Rejection is a candidate that did not verify, and why.
type Rejection struct {
	Form   Form
	Source string
	Reason error
}

// Report is the outcome of a verification.
type Report struct {
	Verified []Signature
	Rejected []Rejection
}

// what a verification is after.
type want struct {
	digest      string
	pub         crypto.PublicKey
	hint        string
	attestation bool   // attestations, else signatures
	predicate   string // attestations: this predicate type only ("" any)
	annotations map[string]string
	opts        Options
}

func (w want) predicateOK(pt string) bool {
	if !w.attestation {
		return pt == PredicateTypeSign
	}
	return pt != PredicateTypeSign && (w.predicate == "" || pt == w.predicate)
}

// Verify checks the cosign signatures of the target with pub, in the forms
// o selects: bundle referrers whose in-toto Statement has cosign's sign
// predicate, and legacy simple-signing layers. It returns ErrNoSignatures
// when there are none, ErrNotVerified when none verifies (the report says
// why each was rejected), else the verified ones.
func Verify(ctx context.Context, t Target, pub crypto.PublicKey, o Options) (*Report, error) {
	return verify(ctx, t, pub, false, "", o)
}

// VerifyAttestations checks the target's attestations of predicateType (any
// type but cosign's sign predicate when empty) with pub, as Verify does.
func VerifyAttestations(ctx context.Context, t Target, pub crypto.PublicKey, predicateType string, o Options) (*Report, error) {
	return verify(ctx, t, pub, true, predicateType, o)
}

func verify(ctx context.Context, t Target, pub crypto.PublicKey, attestation bool, predicateType string, o Options) (*Report, error) {
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	hint, err := KeyHint(pub)
	if err != nil {
		return nil, err
	}
	w := want{digest: t.Digest(), pub: pub, hint: hint, attestation: attestation, predicate: predicateType, annotations: o.Annotations, opts: o}
	rep := &Report{}
	forms := o.forms()
	if forms&FormBundle != 0 {
		refs, _, err := readReferrers(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			rep.add(r.check(w))
		}
	}
	if forms&FormLegacy != 0 {
		suffix := "sig"
		if attestation {
			suffix = "att"
		}
		layers, _, err := readLegacy(ctx, t, suffix)
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			rep.add(l.check(w))
		}
	}
	kind := "signatures"
	if attestation {
		kind = "attestations"
		if predicateType != "" {
			kind += " of type " + predicateType
		}
	}
	switch {
	case len(rep.Verified) > 0:
		return rep, nil
	case len(rep.Rejected) == 0:
		return rep, fmt.Errorf("%w: %s has no cosign %s (%s form)", ErrNoSignatures, t, kind, forms)
	default:
		return rep, fmt.Errorf("%w: none of the %d cosign %s of %s verifies with key %s: %s", ErrNotVerified, len(rep.Rejected), kind, t, hint, rep.reasons())
	}
}

// outcome is one candidate's result: verified, rejected, or not of the
// kind asked for (neither).
type outcome struct {
	sig *Signature
	rej *Rejection
}

func (r *Report) add(o outcome) {
	if o.sig != nil {
		r.Verified = append(r.Verified, *o.sig)
	}
	if o.rej != nil {
		r.Rejected = append(r.Rejected, *o.rej)
	}
}

func (r *Report) reasons() string {
	var b bytes.Buffer
	for i, rej := range r.Rejected {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == 5 {
			fmt.Fprintf(&b, "and %d more", len(r.Rejected)-5)
			break
		}
		fmt.Fprintf(&b, "%s %s: %v", rej.Form, rej.Source, rej.Reason)
	}
	return b.String()
}

func reject(f Form, source string, format string, args ...any) outcome {
	return outcome{rej: &Rejection{Form: f, Source: source, Reason: fmt.Errorf(format, args...)}}
}

// referrer is a bundle referrer as read from the registry (or the error
// that stopped reading it).
type referrer struct {
	source string
	bundle *Bundle
	err    error
}

// readReferrers lists the target's referrers and reads every Sigstore
// bundle among them. supported reports whether the registry has the
// Referrers API (else the tag schema's index was read).
func readReferrers(ctx context.Context, t Target) ([]referrer, referrerList, error) {
	descs, list, err := listReferrers(ctx, t)
	if err != nil {
		return nil, list, err
	}
	var out []referrer
	for _, d := range descs {
		// The descriptor's artifactType is not trusted to select: registries
		// fill it differently (go-containerregistry's from the config media
		// type), and cosign looks at every referrer's layers.
		src := d.Digest.String()
		b, err := readBundleReferrer(ctx, t, src)
		if errors.Is(err, errNotBundle) {
			continue // another kind of referrer (Notation, SBOMs …)
		}
		out = append(out, referrer{source: src, bundle: b, err: err})
	}
	return out, list, nil
}

// referrerList is how the target's referrers were listed: by the
// Referrers API (supported), or from the referrers tag schema's index,
// whose bytes index holds (nil when the tag does not exist). Writing a
// referrer updates that index without reading it again.
type referrerList struct {
	supported bool
	index     []byte
}

// errNotBundle marks a referrer that is not a Sigstore bundle.
var errNotBundle = errors.New("not a Sigstore bundle")

// listReferrers returns the descriptors of the target's referrers.
func listReferrers(ctx context.Context, t Target) ([]v1.Descriptor, referrerList, error) {
	pages, supported, err := t.Repo.Referrers(ctx, t.Digest())
	if err != nil {
		return nil, referrerList{}, err
	}
	list := referrerList{supported: supported}
	if !supported && len(pages) == 1 {
		list.index = pages[0]
	}
	var out []v1.Descriptor
	for _, p := range pages {
		var idx v1.IndexManifest
		if err := json.Unmarshal(p, &idx); err != nil {
			return nil, list, fmt.Errorf("%w referrers list of %s: %v", ErrFormat, t, err)
		}
		for _, d := range idx.Manifests {
			if len(out) == maxReferrers {
				return out, list, nil
			}
			out = append(out, d)
		}
	}
	return out, list, nil
}

// readBundleReferrer reads a referrer manifest and its bundle layer as
// cosign does: exactly one layer, of a Sigstore bundle media type.
func readBundleReferrer(ctx context.Context, t Target, digest string) (*Bundle, error) {
	m, err := t.Repo.Manifest(ctx, digest, registry.MediaTypeOCIManifest)
	if err != nil {
		return nil, err
	}
	var man v1.Manifest
	if err := json.Unmarshal(m.Bytes, &man); err != nil {
		return nil, fmt.Errorf("%w referrer manifest: %v", ErrFormat, err)
	}
	if man.Subject == nil || man.Subject.Digest.String() != t.Digest() {
		return nil, fmt.Errorf("its subject is not %s", t.Digest())
	}
	if len(man.Layers) != 1 || !isBundleLayer(string(man.Layers[0].MediaType)) {
		return nil, errNotBundle // cosign's test: exactly one bundle layer
	}
	if man.Layers[0].Size > maxAttestation {
		return nil, fmt.Errorf("its bundle is %d bytes, more than %d", man.Layers[0].Size, maxAttestation)
	}
	blob, err := t.Repo.Blob(ctx, man.Layers[0].Digest.String(), maxAttestation)
	if err != nil {
		return nil, err
	}
	return ParseBundle(blob)
}

// check verifies a bundle referrer for w.
func (r referrer) check(w want) outcome {
	const f = FormBundle
	if r.err != nil {
		return reject(f, r.source, "%v", r.err)
	}
	b := r.bundle
	switch {
	case b.VerificationMaterial.Certificate != nil:
		return reject(f, r.source, "a certificate (keyless) bundle; only key-based bundles are verified")
	case b.MessageSignature != nil:
		return reject(f, r.source, "a message-signature bundle; cosign verifies images only from DSSE bundles")
	}
	env := b.DSSEEnvelope
	if len(env.Signatures) != 1 {
		return reject(f, r.source, "the DSSE envelope has %d signatures; a bundle must have exactly one", len(env.Signatures))
	}
	st, body, err := verifyEnvelope(env, w.pub)
	if err != nil {
		return reject(f, r.source, "%v", err)
	}
	return statementOutcome(f, r.source, st, body, w)
}

// verifyEnvelope checks a DSSE envelope of an in-toto Statement: one of its
// signatures over PAE must verify with pub.
func verifyEnvelope(env *Envelope, pub crypto.PublicKey) (*Statement, []byte, error) {
	if env.PayloadType != PayloadTypeInToto {
		return nil, nil, fmt.Errorf("DSSE payload type %q, want %s", env.PayloadType, PayloadTypeInToto)
	}
	body := env.Body()
	pae := PAE(env.PayloadType, body)
	verified := false
	for _, s := range env.Signatures {
		sig, _ := decodeB64(s.Sig)
		if verifySig(pub, pae, sig) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, nil, ErrSignature
	}
	st, err := ParseStatement(body)
	if err != nil {
		return nil, nil, err
	}
	return st, body, nil
}

// statementOutcome checks a verified Statement's subject, predicate type
// and annotations.
func statementOutcome(f Form, source string, st *Statement, body []byte, w want) outcome {
	sub, ok := st.Covers(w.digest)
	if !ok {
		return reject(f, source, "signed, but its statement does not cover %s", w.digest)
	}
	if !w.predicateOK(st.PredicateType) {
		return outcome{} // a signature when attestations are asked for, or another type
	}
	ann := stringAnnotations(sub.Annotations)
	if k, ok := missingAnnotation(w.annotations, sub.Annotations); !ok {
		return reject(f, source, "signed for %s, but without the annotation %s=%s", w.digest, k, w.annotations[k])
	}
	return outcome{sig: &Signature{
		Form: f, Digest: w.digest, KeyHint: w.hint, Source: source,
		PredicateType: st.PredicateType, Annotations: ann, Payload: body, Statement: st,
	}}
}

// missingAnnotation returns a required annotation have lacks (cosign's
// correctAnnotations: each must be present with an equal value).
func missingAnnotation(required map[string]string, have map[string]any) (string, bool) {
	keys := make([]string, 0, len(required))
	for k := range required {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, ok := have[k].(string); !ok || v != required[k] {
			return k, false
		}
	}
	return "", true
}

func stringAnnotations(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

// sameAnnotations reports whether a signature's annotations are exactly
// the requested ones (for idempotent signing).
func sameAnnotations(have map[string]any, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	_, ok := missingAnnotation(want, have)
	return ok
}

// legacyLayer is one layer of a .sig or .att image, with its blob.
type legacyLayer struct {
	source string
	desc   v1.Descriptor
	blob   []byte
	err    error
}

// readLegacy reads the target's sha256-<hex>.<suffix> image: its layers
// and their blobs, and its manifest (for appending to). No such tag means
// no layers and a nil manifest.
func readLegacy(ctx context.Context, t Target, suffix string) ([]legacyLayer, *v1.Manifest, error) {
	man, _, err := readLegacyManifest(ctx, t, suffix)
	if err != nil || man == nil {
		return nil, nil, err
	}
	tag := t.legacyTag(suffix)
	var out []legacyLayer
	for i, d := range man.Layers {
		if i == maxLegacyLayers {
			break
		}
		l := legacyLayer{source: fmt.Sprintf("%s#%d", tag, i), desc: d}
		limit := int64(maxPayload)
		if suffix == "att" {
			limit = maxAttestation
		}
		if d.Size > limit {
			l.err = fmt.Errorf("its payload is %d bytes, more than %d", d.Size, limit)
		} else {
			l.blob, l.err = t.Repo.Blob(ctx, d.Digest.String(), limit)
		}
		out = append(out, l)
	}
	return out, man, nil
}

// readLegacyManifest reads the manifest at the legacy tag; nil when the tag
// does not exist.
func readLegacyManifest(ctx context.Context, t Target, suffix string) (*v1.Manifest, registry.Descriptor, error) {
	m, err := t.Repo.Manifest(ctx, t.legacyTag(suffix), registry.MediaTypeOCIManifest, "application/vnd.docker.distribution.manifest.v2+json")
	if errors.Is(err, registry.ErrNotFound) {
		return nil, registry.Descriptor{}, nil
	}
	if err != nil {
		return nil, registry.Descriptor{}, err
	}
	var man v1.Manifest
	if err := json.Unmarshal(m.Bytes, &man); err != nil {
		return nil, registry.Descriptor{}, fmt.Errorf("%w %s manifest at %s: %v", ErrFormat, suffix, t.legacyTag(suffix), err)
	}
	if man.SchemaVersion != 2 {
		return nil, registry.Descriptor{}, fmt.Errorf("%w %s manifest at %s: schema version %d", ErrFormat, suffix, t.legacyTag(suffix), man.SchemaVersion)
	}
	return &man, m.Descriptor, nil
}

// check verifies a legacy layer for w.
func (l legacyLayer) check(w want) outcome {
	const f = FormLegacy
	if l.err != nil {
		return reject(f, l.source, "%v", l.err)
	}
	if w.attestation {
		return l.checkAttestation(w)
	}
	if string(l.desc.MediaType) != MediaTypeSimpleSigning {
		return reject(f, l.source, "layer media type %q, want %s", l.desc.MediaType, MediaTypeSimpleSigning)
	}
	b64, ok := l.desc.Annotations[AnnotationSignature]
	if !ok || len(b64) > maxSigAnnotation {
		return reject(f, l.source, "no %s annotation", AnnotationSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return reject(f, l.source, "the %s annotation is not base64", AnnotationSignature)
	}
	if err := l.checkCertificate(w); err != nil {
		return reject(f, l.source, "%v", err)
	}
	if err := verifySig(w.pub, l.blob, sig); err != nil {
		return reject(f, l.source, "%v", err)
	}
	p, err := ParseSimpleSigning(l.blob)
	if err != nil {
		return reject(f, l.source, "signed, but %v", err)
	}
	if p.Critical.Image.DockerManifestDigest != w.digest {
		return reject(f, l.source, "signed, but for %s, not %s", p.Critical.Image.DockerManifestDigest, w.digest)
	}
	if k, ok := missingAnnotation(w.annotations, p.Optional); !ok {
		return reject(f, l.source, "signed for %s, but without the annotation %s=%s", w.digest, k, w.annotations[k])
	}
	return outcome{sig: &Signature{
		Form: f, Digest: w.digest, KeyHint: w.hint, Source: l.source,
		Annotations: stringAnnotations(p.Optional), Payload: l.blob,
	}}
}

// checkCertificate applies cosign's rule for a certificate beside a legacy
// signature verified with a key: it must hold that key and be valid now.
func (l legacyLayer) checkCertificate(w want) error {
	p, ok := l.desc.Annotations[AnnotationCertificate]
	if !ok || p == "" {
		return nil
	}
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("the %s annotation is not a PEM certificate", AnnotationCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("the %s annotation: %v", AnnotationCertificate, err)
	}
	if !samePublicKey(cert.PublicKey, w.pub) {
		return errors.New("its certificate holds another key than the one verifying")
	}
	if w.opts.Now.Before(cert.NotBefore) || w.opts.Now.After(cert.NotAfter) {
		return fmt.Errorf("its certificate is valid from %s to %s, not at %s", cert.NotBefore.UTC(), cert.NotAfter.UTC(), w.opts.Now.UTC())
	}
	return nil
}

// checkAttestation verifies a legacy .att layer (a DSSE envelope).
func (l legacyLayer) checkAttestation(w want) outcome {
	const f = FormLegacy
	if string(l.desc.MediaType) != MediaTypeDSSE {
		return reject(f, l.source, "layer media type %q, want %s", l.desc.MediaType, MediaTypeDSSE)
	}
	if err := l.checkCertificate(w); err != nil {
		return reject(f, l.source, "%v", err)
	}
	env, err := ParseEnvelope(l.blob)
	if err != nil {
		return reject(f, l.source, "%v", err)
	}
	st, body, err := verifyEnvelope(env, w.pub)
	if err != nil {
		return reject(f, l.source, "%v", err)
	}
	return statementOutcome(f, l.source, st, body, w)
}

// samePredicate reports whether two predicates of predicateType say the
// same thing: equal JSON, and for cosign's custom type equal Data whatever
// the Timestamp.
func samePredicate(predicateType string, a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	if predicateType == predicateTypes["custom"] {
		ma, okA := va.(map[string]any)
		mb, okB := vb.(map[string]any)
		return okA && okB && reflect.DeepEqual(ma["Data"], mb["Data"])
	}
	return reflect.DeepEqual(va, vb)
}
