package oci

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/registry"
)

// Target is the manifest signatures are about: its repository and its
// descriptor as the registry serves it.
type Target struct {
	Repo     *registry.Repository
	Manifest registry.Descriptor
}

// ErrNoImage reports that the registry has no manifest for the reference.
var ErrNoImage = errors.New("oci: no such image")

// Resolve finds the manifest a tag or digest names in repo.
func Resolve(ctx context.Context, repo *registry.Repository, tagOrDigest string) (Target, error) {
	m, err := repo.Manifest(ctx, tagOrDigest)
	if errors.Is(err, registry.ErrNotFound) {
		return Target{}, fmt.Errorf("%w: %s/%s has no manifest %s", ErrNoImage, repo.Registry, repo.Name, tagOrDigest)
	}
	if err != nil {
		return Target{}, err
	}
	return Target{Repo: repo, Manifest: m.Descriptor}, nil
}

// DockerReference is the repository as simple-signing payloads name it.
func (t Target) DockerReference() string { return t.Repo.Registry + "/" + t.Repo.Name }

// Digest is the signed manifest's digest.
func (t Target) Digest() string { return t.Manifest.Digest }

// String names the target as registry/repository@digest.
func (t Target) String() string { return t.DockerReference() + "@" + t.Manifest.Digest }

func (t Target) legacyTag(suffix string) string {
	return registry.FallbackTag(t.Manifest.Digest) + "." + suffix
}

// Form is a storage form of signatures: a bit set.
type Form uint8

const (
	// FormBundle is the Sigstore bundle as an OCI 1.1 referrer.
	FormBundle Form = 1 << iota
	// FormLegacy is cosign's sha256-<hex>.sig / .att tag.
	FormLegacy
	// FormBoth is every form.
	FormBoth = FormBundle | FormLegacy
)

func (f Form) String() string {
	var parts []string
	if f&FormBundle != 0 {
		parts = append(parts, "bundle")
	}
	if f&FormLegacy != 0 {
		parts = append(parts, "legacy")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Options are the choices of Sign, Attest and Verify.
type Options struct {
	// Now stamps what is written (the referrer's creation annotation, the
	// custom predicate's timestamp) and is the time certificates found
	// beside legacy signatures are checked at.
	Now time.Time
	// Annotations are written into signatures (cosign sign -a k=v); when
	// verifying, every one must be present with that value.
	Annotations map[string]string
	// Forms selects what is written or read; zero means FormBoth.
	Forms Form
}

func (o Options) forms() Form {
	if o.Forms == 0 {
		return FormBoth
	}
	return o.Forms
}
