package registry

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Docker Hub's names.
const (
	hubIndex = "index.docker.io" // go-containerregistry's name for Docker Hub
	hubGUN   = "docker.io"       // the prefix Docker's trust GUNs use
)

// Reference is a parsed image reference.
type Reference struct {
	// Registry is the registry host[:port] to speak the distribution API to
	// ("index.docker.io" for Docker Hub).
	Registry string
	// Repository is the repository path within the registry
	// ("library/alpine").
	Repository string
	// Tag is the tag named, or "" if none was.
	Tag string
	// Digest is the digest named ("sha256:…"), or "" if none was.
	Digest string
}

// Docker's reference grammar (distribution's reference package documents
// it): an optional registry (host names made of alphanumeric components
// with inner hyphens, joined by dots, or a bracketed IPv6 address, and an
// optional port), then path components of lowercase alphanumerics joined by
// one "." or "_", two "_", or any number of "-", then an optional tag of
// at most 128 word characters, dots and hyphens that starts with a word
// character, then an optional digest. So no component is empty, "." or
// "..", and no tag starts with "-" or ".".
var (
	refPathComponent   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	refDomainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	refDomain          = `(?:` + refDomainComponent + `(?:\.` + refDomainComponent + `)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`
	refName            = `(?:` + refDomain + `/)?` + refPathComponent + `(?:/` + refPathComponent + `)*`
	refTag             = `[\w][\w.-]{0,127}`
	refDigest          = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	referencePattern   = regexp.MustCompile(`^(` + refName + `)(?::` + refTag + `)?(?:@` + refDigest + `)?$`)
	hexIdentifier      = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// maxNameLength is Docker's limit on a repository name with its registry.
const maxNameLength = 255

// ParseReference parses an image reference as Docker does: a missing
// registry means Docker Hub (and a one-element Hub path gets "library/").
// Neither a tag nor a digest is filled in when absent. References outside
// Docker's grammar are refused, as docker refuses them (go-containerregistry
// alone would accept "..", empty path components and tags starting with
// "-" or ".").
func ParseReference(s string) (Reference, error) {
	m := referencePattern.FindStringSubmatch(s)
	switch {
	case m == nil:
		return Reference{}, fmt.Errorf("registry: %q is not a valid image reference (Docker's grammar: [registry[:port]/]path[:tag][@digest], lowercase path components, tags of letters, digits, \"_\", \".\" and \"-\" not starting with \".\" or \"-\")", s)
	case len(m[1]) > maxNameLength:
		return Reference{}, fmt.Errorf("registry: %q is not a valid image reference: the repository name is longer than %d characters", s, maxNameLength)
	case hexIdentifier.MatchString(s):
		return Reference{}, fmt.Errorf("registry: %q is not a valid image reference: a 64-character hexadecimal name is an image ID", s)
	}
	base, digest, hasDigest := strings.Cut(s, "@")
	opts := []name.Option{name.WithDefaultTag("")}
	var repo name.Repository
	var ref Reference
	if hasDigest {
		d, err := name.NewDigest(s, opts...)
		if err != nil {
			return Reference{}, fmt.Errorf("registry: %q is not a valid image reference: %w", s, err)
		}
		repo, ref.Digest = d.Context(), digest
	}
	t, err := name.NewTag(base, opts...)
	if err != nil {
		return Reference{}, fmt.Errorf("registry: %q is not a valid image reference: %w", s, err)
	}
	if !hasDigest {
		repo = t.Context()
	}
	ref.Tag = t.TagStr()
	ref.Registry = repo.RegistryStr()
	ref.Repository = repo.RepositoryStr()
	return ref, nil
}

// GUN is the name Docker Content Trust signs the repository under:
// "docker.io/library/alpine" for Docker Hub, "host[:port]/path" otherwise.
func (r Reference) GUN() string {
	reg := r.Registry
	if reg == hubIndex {
		reg = hubGUN
	}
	return reg + "/" + r.Repository
}

// Name is the repository with its registry as the user wrote it, without
// tag or digest (the GUN).
func (r Reference) String() string {
	s := r.GUN()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// IsDockerHub reports whether the registry is Docker Hub.
func (r Reference) IsDockerHub() bool { return r.Registry == hubIndex }
