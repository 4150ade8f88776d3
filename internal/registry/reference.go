package registry

import (
	"fmt"
	"net"
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

// ParseReference parses an image reference as Docker does: a missing
// registry means Docker Hub (and a one-element Hub path gets "library/").
// Neither a tag nor a digest is filled in when absent.
func ParseReference(s string) (Reference, error) {
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

// IsLoopback reports whether a registry host[:port] is localhost or a
// loopback address (127.0.0.1, ::1), which Docker lets the user reach
// without TLS. Names are not resolved.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
