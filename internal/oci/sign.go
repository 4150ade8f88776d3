package oci

// Writing signatures and attestations: the bundle referrer (with the
// referrers tag schema's index where the registry has no Referrers API)
// and the legacy .sig/.att image. Each form is written only when no
// equivalent one by the same key is there already.

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/signet-trust/signet/internal/registry"
)

// emptyJSON is the OCI empty descriptor's blob.
var emptyJSON = []byte("{}")

// Written is what Sign or Attest did for one form.
type Written struct {
	Form Form
	// Ref is the referrer manifest's digest (bundle form) or the tag the
	// legacy image is at.
	Ref string
	// Existing is true when an equivalent signature by the same key was
	// already there and nothing was written.
	Existing bool
}

// ErrTooManySignatures reports a legacy image at cosign's cap of 1000
// layers.
var ErrTooManySignatures = errors.New("oci: the legacy signature image is full")

// Sign writes a cosign signature of the target with key, in the forms o
// selects: the bundle referrer (an in-toto Statement with cosign's sign
// predicate, the annotations on its subject) and the legacy simple-signing
// layer (the annotations as its optional part). A form that already holds
// a signature by the same key with exactly these annotations is left as it
// is.
func Sign(ctx context.Context, t Target, key crypto.Signer, o Options) ([]Written, error) {
	pub := key.Public()
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	vo := Options{Now: o.Now}
	var out []Written
	if o.forms()&FormBundle != 0 {
		w, err := writeOnce(ctx, t, pub, false, vo, FormBundle,
			func(s Signature) bool {
				return sameAnnotations(s.Statement.subjectAnnotations(t.Digest()), o.Annotations)
			},
			func(have found) (string, error) {
				stmt, err := NewStatement(t.Digest(), "", PredicateTypeSign, nil, o.Annotations)
				if err != nil {
					return "", err
				}
				return writeBundle(ctx, t, key, stmt, PredicateTypeSign, o.Now, have.referrers)
			})
		if err != nil {
			return out, err
		}
		out = append(out, w)
	}
	if o.forms()&FormLegacy != 0 {
		w, err := writeOnce(ctx, t, pub, false, vo, FormLegacy,
			func(s Signature) bool { return sameAnnotationStrings(s.Annotations, o.Annotations) },
			func(have found) (string, error) {
				payload, err := NewSimpleSigning(t.DockerReference(), t.Digest(), o.Annotations)
				if err != nil {
					return "", err
				}
				sig, err := sign(key, payload)
				if err != nil {
					return "", err
				}
				return appendLegacy(ctx, t, have.legacy, "sig", v1.Descriptor{
					MediaType:   MediaTypeSimpleSigning,
					Annotations: map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(sig)},
				}, payload)
			})
		if err != nil {
			return out, err
		}
		out = append(out, w)
	}
	return out, nil
}

// Attest writes an attestation of the target with key: an in-toto
// Statement v1 whose subject is the target (named by its repository, as
// cosign attest names it) with predicateType and predicate, signed in a
// DSSE envelope, as a bundle referrer and as a legacy .att layer. A form
// that already holds an attestation by the same key of the same type with
// the same predicate (for cosign's custom type: the same Data) is left as
// it is.
func Attest(ctx context.Context, t Target, key crypto.Signer, predicateType string, predicate json.RawMessage, o Options) ([]Written, error) {
	pub := key.Public()
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	if predicateType == "" || predicateType == PredicateTypeSign {
		return nil, fmt.Errorf("oci: %q is not an attestation predicate type", predicateType)
	}
	stmt, err := NewStatement(t.Digest(), t.DockerReference(), predicateType, predicate, nil)
	if err != nil {
		return nil, err
	}
	vo := Options{Now: o.Now}
	same := func(s Signature) bool {
		return s.PredicateType == predicateType && samePredicate(predicateType, s.Statement.Predicate, predicate)
	}
	var out []Written
	if o.forms()&FormBundle != 0 {
		w, err := writeOnce(ctx, t, pub, true, vo, FormBundle, same, func(have found) (string, error) {
			return writeBundle(ctx, t, key, stmt, predicateType, o.Now, have.referrers)
		})
		if err != nil {
			return out, err
		}
		out = append(out, w)
	}
	if o.forms()&FormLegacy != 0 {
		w, err := writeOnce(ctx, t, pub, true, vo, FormLegacy, same, func(have found) (string, error) {
			env, err := signEnvelope(key, stmt)
			if err != nil {
				return "", err
			}
			blob, err := json.Marshal(env)
			if err != nil {
				return "", err
			}
			return appendLegacy(ctx, t, have.legacy, "att", v1.Descriptor{
				MediaType:   MediaTypeDSSE,
				Annotations: map[string]string{AnnotationSignature: "", AnnotationPredicate: predicateType},
			}, blob)
		})
		if err != nil {
			return out, err
		}
		out = append(out, w)
	}
	return out, nil
}

// found is what writeOnce read of a form, for its writer to build on
// without reading it again: how the referrers were listed (and the
// fallback index), or the legacy image's manifest (nil when the tag does
// not exist).
type found struct {
	referrers referrerList
	legacy    *v1.Manifest
}

// writeOnce looks for a verified signature of the form by the key that
// satisfies same; when there is none it calls write with what it read and
// reports what it wrote.
func writeOnce(ctx context.Context, t Target, pub crypto.PublicKey, attestation bool, vo Options, f Form,
	same func(Signature) bool, write func(found) (string, error)) (Written, error) {
	hint, err := KeyHint(pub)
	if err != nil {
		return Written{}, err
	}
	w := want{digest: t.Digest(), pub: pub, hint: hint, attestation: attestation, opts: vo}
	var (
		outcomes []outcome
		have     found
	)
	if f == FormBundle {
		refs, list, err := readReferrers(ctx, t)
		if err != nil {
			return Written{}, err
		}
		have.referrers = list
		for _, r := range refs {
			outcomes = append(outcomes, r.check(w))
		}
	} else {
		suffix := "sig"
		if attestation {
			suffix = "att"
		}
		layers, man, err := readLegacy(ctx, t, suffix)
		if err != nil {
			return Written{}, err
		}
		have.legacy = man
		for _, l := range layers {
			outcomes = append(outcomes, l.check(w))
		}
	}
	for _, o := range outcomes {
		if o.sig != nil && same(*o.sig) {
			ref := o.sig.Source
			if f == FormLegacy {
				ref = t.legacyTag(map[bool]string{false: "sig", true: "att"}[attestation])
			}
			return Written{Form: f, Ref: ref, Existing: true}, nil
		}
	}
	ref, err := write(have)
	if err != nil {
		return Written{}, fmt.Errorf("oci: writing the %s %s of %s: %w", f, map[bool]string{false: "signature", true: "attestation"}[attestation], t, err)
	}
	return Written{Form: f, Ref: ref}, nil
}

// signEnvelope signs an in-toto Statement into a DSSE envelope.
func signEnvelope(key crypto.Signer, stmt []byte) (*Envelope, error) {
	sig, err := sign(key, PAE(PayloadTypeInToto, stmt))
	if err != nil {
		return nil, err
	}
	return &Envelope{
		Payload:     base64.StdEncoding.EncodeToString(stmt),
		PayloadType: PayloadTypeInToto,
		Signatures:  []EnvelopeSig{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, nil
}

// writeBundle signs stmt into a bundle and pushes it as a referrer of the
// target, as cosign's WriteReferrer does; on a registry without the
// Referrers API it also adds the referrer to the tag schema's index, as
// list read it. It returns the referrer manifest's digest.
func writeBundle(ctx context.Context, t Target, key crypto.Signer, stmt []byte, predicateType string, now time.Time, list referrerList) (string, error) {
	env, err := signEnvelope(key, stmt)
	if err != nil {
		return "", err
	}
	hint, err := KeyHint(key.Public())
	if err != nil {
		return "", err
	}
	bundle, err := NewBundle(env, hint)
	if err != nil {
		return "", err
	}
	// The bundle holds a new signature: no other object has its bytes, so
	// it is uploaded without asking whether the registry has it. The empty
	// config is shared by every referrer (the Repository remembers it is
	// there once it has seen it).
	layer, err := uploadBlob(ctx, t.Repo, MediaTypeBundle, bundle)
	if err != nil {
		return "", err
	}
	config, err := putBlob(ctx, t.Repo, MediaTypeEmpty, emptyJSON)
	if err != nil {
		return "", err
	}
	subject, err := descriptor(t.Manifest.MediaType, t.Manifest.Digest, t.Manifest.Size)
	if err != nil {
		return "", err
	}
	man := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  MediaTypeBundle,
		Config:        config,
		Layers:        []v1.Descriptor{layer},
		Subject:       &subject,
		Annotations: map[string]string{
			AnnotationCreated:         now.UTC().Format(time.RFC3339),
			AnnotationBundleContent:   "dsse-envelope",
			AnnotationBundlePredicate: predicateType,
		},
	}
	raw, err := json.Marshal(&man)
	if err != nil {
		return "", err
	}
	d, ociSubject, err := t.Repo.PutManifest(ctx, "", registry.MediaTypeOCIManifest, raw)
	if err != nil {
		return "", err
	}
	if !list.supported && !ociSubject {
		ref, err := descriptor(registry.MediaTypeOCIManifest, d.Digest, d.Size)
		if err != nil {
			return "", err
		}
		ref.ArtifactType = MediaTypeBundle
		ref.Annotations = man.Annotations
		if err := addFallbackReferrer(ctx, t, list.index, ref); err != nil {
			return "", fmt.Errorf("referrer %s stored, but the referrers tag %s not updated: %w", d.Digest, registry.FallbackTag(t.Digest()), err)
		}
	}
	return d.Digest, nil
}

// addFallbackReferrer adds a descriptor to the referrers tag schema's index
// at tag sha256-<hex>: the index as it was read (existing; nil when the
// tag did not exist, and an empty index is started), the descriptor
// appended unless present, sorted by digest, put back.
func addFallbackReferrer(ctx context.Context, t Target, existing []byte, ref v1.Descriptor) error {
	tag := registry.FallbackTag(t.Digest())
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	if existing != nil {
		if err := json.Unmarshal(existing, &idx); err != nil {
			return fmt.Errorf("%w referrers index at %s: %v", ErrFormat, tag, err)
		}
		if idx.SchemaVersion != 2 || idx.MediaType != types.OCIImageIndex {
			return fmt.Errorf("%w: the tag %s is not an OCI image index; refusing to overwrite it", ErrFormat, tag)
		}
	}
	for _, d := range idx.Manifests {
		if d.Digest == ref.Digest {
			return nil
		}
	}
	idx.Manifests = append(idx.Manifests, ref)
	sort.Slice(idx.Manifests, func(i, j int) bool { return idx.Manifests[i].Digest.String() < idx.Manifests[j].Digest.String() })
	raw, err := json.Marshal(&idx)
	if err != nil {
		return err
	}
	_, _, err = t.Repo.PutManifest(ctx, tag, registry.MediaTypeOCIIndex, raw)
	return err
}

// appendLegacy adds one layer (layer's media type and annotations, blob as
// its content) to the legacy image at sha256-<hex>.<suffix>, keeping the
// layers of existing (its manifest as it was read; nil when the tag did
// not exist), as cosign's append does. Concurrent appends to one digest can
// lose one of them (cosign has the same race); the caller serialises when
// it can.
func appendLegacy(ctx context.Context, t Target, existing *v1.Manifest, suffix string, layer v1.Descriptor, blob []byte) (string, error) {
	tag := t.legacyTag(suffix)
	var layers []v1.Descriptor
	if existing != nil {
		layers = append(layers, existing.Layers...)
	}
	if len(layers) >= maxLegacyLayers {
		return "", fmt.Errorf("%w: %s has %d layers", ErrTooManySignatures, tag, len(layers))
	}
	// The registry is unlikely to hold the blob (only another signature of
	// this digest could share it) or the config listing it: both are
	// uploaded without asking first.
	d, err := uploadBlob(ctx, t.Repo, string(layer.MediaType), blob)
	if err != nil {
		return "", err
	}
	d.Annotations = layer.Annotations
	layers = append(layers, d)

	// The config is an OCI image config listing every layer, as
	// go-containerregistry's empty image with appended layers has it.
	cfg := v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest)
		cfg.History = append(cfg.History, v1.History{})
	}
	rawCfg, err := json.Marshal(&cfg)
	if err != nil {
		return "", err
	}
	config, err := uploadBlob(ctx, t.Repo, MediaTypeImageConfig, rawCfg)
	if err != nil {
		return "", err
	}
	man := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: config, Layers: layers}
	raw, err := json.Marshal(&man)
	if err != nil {
		return "", err
	}
	if _, _, err := t.Repo.PutManifest(ctx, tag, registry.MediaTypeOCIManifest, raw); err != nil {
		return "", err
	}
	return tag, nil
}

// putBlob uploads a blob and returns its descriptor.
func putBlob(ctx context.Context, repo *registry.Repository, mediaType string, b []byte) (v1.Descriptor, error) {
	digest, err := repo.PutBlob(ctx, b)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return descriptor(mediaType, digest, int64(len(b)))
}

// uploadBlob uploads a blob without asking first whether the repository
// has it (for bytes just made, which it cannot have unless an interrupted
// run uploaded them: then they are stored again, harmlessly).
func uploadBlob(ctx context.Context, repo *registry.Repository, mediaType string, b []byte) (v1.Descriptor, error) {
	digest, err := repo.UploadBlob(ctx, b)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return descriptor(mediaType, digest, int64(len(b)))
}

func descriptor(mediaType, digest string, size int64) (v1.Descriptor, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w digest %q: %v", ErrFormat, digest, err)
	}
	return v1.Descriptor{MediaType: types.MediaType(mediaType), Digest: h, Size: size}, nil
}

// subjectAnnotations returns the annotations of the subject covering
// digest.
func (s *Statement) subjectAnnotations(digest string) map[string]any {
	sub, _ := s.Covers(digest)
	return sub.Annotations
}

// sameAnnotationStrings compares verified annotations with requested ones.
func sameAnnotationStrings(have, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
