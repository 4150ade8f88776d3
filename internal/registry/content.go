package registry

// Reading and writing one repository's manifests and blobs, and listing the
// referrers of a manifest (OCI distribution spec 1.1), for the objects
// cosign-format signatures are made of. Like Resolve, these speak the
// distribution API with net/http (see the package comment for why not
// go-containerregistry's remote package).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/signet-trust/signet/internal/origin"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Media types of the OCI objects a Repository reads and writes.
const (
	MediaTypeOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex    = "application/vnd.oci.image.index.v1+json"
)

// ErrBlobMismatch reports a blob whose bytes do not hash to the digest it
// was asked for by.
var ErrBlobMismatch = errors.New("registry: blob digest mismatch")

// Manifest is a manifest as the registry served it.
type Manifest struct {
	Descriptor
	Bytes []byte
}

// Repository reads and writes one repository of a registry. Requests that
// the registry answers with a 401 challenge are retried once with the
// credentials of the client's keychain, for the scope
// repository:<Name>:<actions>.
type Repository struct {
	// Registry is host[:port]; Name is the repository path in it.
	Registry, Name string

	hc *http.Client
	// blobs holds the digests of blobs the repository is known to have
	// (uploaded or found by this Repository), so a blob shared by many
	// objects is looked for once.
	blobs sync.Map
	// noReferrersAPI is set once the registry showed it has no Referrers
	// API (a registry that has it never answers 404 there): later listings
	// go straight to the referrers tag schema's fallback tag.
	noReferrersAPI atomic.Bool
	// noSinglePost is set once the registry answered a single-request
	// upload by opening a session: later uploads do not send the body twice.
	noSinglePost atomic.Bool
}

// Repository returns access to ref's repository. actions is "pull" or
// "push,pull".
func (c *Client) Repository(ref Reference, actions string) *Repository {
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	kc := c.Keychain
	if kc == nil {
		kc = Anonymous
	}
	plain := userAgent{base, c.UserAgent}
	tr := &AuthTransport{Base: plain, Keychain: kc, Server: baseURL(ref.Registry), Registry: ref.Registry, Repository: ref.Repository, Actions: actions}
	return &Repository{
		Registry: ref.Registry,
		Name:     ref.Repository,
		hc: &http.Client{Transport: hostScoped{host: ref.Registry, auth: tr, plain: plain}, Timeout: 2 * time.Minute,
			CheckRedirect: origin.Policy{}.CheckRedirect},
	}
}

// hostScoped sends credentials only to the registry itself: a blob
// download redirected to storage on another host goes there without them.
type hostScoped struct {
	host        string
	auth, plain http.RoundTripper
}

func (h hostScoped) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.URL.Host, h.host) {
		return h.auth.RoundTrip(req)
	}
	return h.plain.RoundTrip(req)
}

// Reference returns the reference of a tag or digest in the repository.
func (r *Repository) Reference(tagOrDigest string) Reference {
	ref := Reference{Registry: r.Registry, Repository: r.Name}
	if strings.HasPrefix(tagOrDigest, "sha256:") {
		ref.Digest = tagOrDigest
	} else {
		ref.Tag = tagOrDigest
	}
	return ref
}

type userAgent struct {
	base  http.RoundTripper
	agent string
}

func (u userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.agent != "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", u.agent)
	}
	return u.base.RoundTrip(req)
}

func (r *Repository) url(path string) string {
	return baseURL(r.Registry) + "/v2/" + r.Name + path
}

// do sends one request; errors name the registry when it cannot be reached.
func (r *Repository) do(req *http.Request) (*http.Response, error) {
	resp, err := r.hc.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("registry: %s %s: %w", req.Method, r.Registry, ctxErr)
		}
		return nil, fmt.Errorf("registry: unable to reach %s: %w", r.Registry, err)
	}
	return resp, nil
}

// statusError turns an unexpected answer into an error: ErrNotFound for
// 404, ErrUnauthorized for 401 and 403.
func (r *Repository) statusError(resp *http.Response, what string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s in %s/%s", ErrNotFound, what, r.Registry, r.Name)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s in %s/%s (HTTP %d); log in with docker login %s", ErrUnauthorized, what, r.Registry, r.Name, resp.StatusCode, r.Registry)
	}
	return fmt.Errorf("registry: %s in %s/%s: HTTP %d: %s", what, r.Registry, r.Name, resp.StatusCode, msg)
}

// Manifest fetches the manifest a tag or digest names, accepting the given
// media types (ManifestMediaTypes when none). Its digest is computed over
// the bytes received and must match a digest reference.
func (r *Repository) Manifest(ctx context.Context, tagOrDigest string, accept ...string) (Manifest, error) {
	if len(accept) == 0 {
		accept = ManifestMediaTypes
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("/manifests/"+tagOrDigest), nil)
	if err != nil {
		return Manifest{}, err
	}
	req.Header.Set("Accept", strings.Join(accept, ", "))
	resp, err := r.do(req)
	if err != nil {
		return Manifest{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return Manifest{}, r.statusError(resp, "manifest "+tagOrDigest)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("registry: reading manifest %s: %w", tagOrDigest, err)
	}
	if len(body) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("registry: manifest %s in %s/%s is more than %d bytes", tagOrDigest, r.Registry, r.Name, MaxManifestSize)
	}
	m := Manifest{Descriptor: Descriptor{
		MediaType: strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0]),
		Digest:    sha256Digest(body),
		Size:      int64(len(body)),
	}, Bytes: body}
	if strings.HasPrefix(tagOrDigest, "sha256:") && m.Digest != tagOrDigest {
		return Manifest{}, fmt.Errorf("%w: asked for %s, got bytes hashing to %s", ErrDigestMismatch, tagOrDigest, m.Digest)
	}
	return m, nil
}

// PutManifest stores a manifest under a tag, or under its own digest when
// tag is "". It returns the manifest's descriptor and whether the registry
// answered with an OCI-Subject header (it maintains the referrers of the
// manifest's subject itself).
func (r *Repository) PutManifest(ctx context.Context, tag, mediaType string, body []byte) (Descriptor, bool, error) {
	d := Descriptor{MediaType: mediaType, Digest: sha256Digest(body), Size: int64(len(body))}
	ref := tag
	if ref == "" {
		ref = d.Digest
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url("/manifests/"+ref), bytes.NewReader(body))
	if err != nil {
		return d, false, err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := r.do(req)
	if err != nil {
		return d, false, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return d, false, r.statusError(resp, "storing manifest "+ref)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != d.Digest {
		return d, false, fmt.Errorf("%w: stored %s, the registry says %s", ErrDigestMismatch, d.Digest, h)
	}
	return d, resp.Header.Get("OCI-Subject") != "", nil
}

// Blob fetches a blob, at most limit bytes, and checks its digest.
func (r *Repository) Blob(ctx context.Context, digest string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url("/blobs/"+digest), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(req)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, r.statusError(resp, "blob "+digest)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("registry: reading blob %s: %w", digest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("registry: blob %s in %s/%s is more than %d bytes", digest, r.Registry, r.Name, limit)
	}
	if got := sha256Digest(b); got != digest {
		return nil, fmt.Errorf("%w: asked for %s, got bytes hashing to %s", ErrBlobMismatch, digest, got)
	}
	return b, nil
}

// PutBlob uploads a blob unless the repository already has it, and returns
// its digest. A blob it has uploaded or found before is not looked for
// again.
func (r *Repository) PutBlob(ctx context.Context, body []byte) (string, error) {
	digest := sha256Digest(body)
	if _, ok := r.blobs.Load(digest); ok {
		return digest, nil
	}
	head, err := http.NewRequestWithContext(ctx, http.MethodHead, r.url("/blobs/"+digest), nil)
	if err != nil {
		return "", err
	}
	resp, err := r.do(head)
	if err != nil {
		return "", err
	}
	drain(resp)
	if resp.StatusCode == http.StatusOK {
		r.blobs.Store(digest, true)
		return digest, nil
	}
	if resp.StatusCode != http.StatusNotFound {
		return "", r.statusError(resp, "blob "+digest)
	}
	return r.UploadBlob(ctx, body)
}

// UploadBlob uploads a blob without asking first whether the repository
// has it (for bytes just made), and returns its digest. It asks for a
// single-request upload (POST with the digest and the body); a registry
// that does not offer it (distribution 2.8 does not) opens a session
// instead, which a PUT with the digest and the body closes.
func (r *Repository) UploadBlob(ctx context.Context, body []byte) (string, error) {
	digest := sha256Digest(body)
	single := !r.noSinglePost.Load()
	var post *http.Request
	var err error
	if single {
		post, err = http.NewRequestWithContext(ctx, http.MethodPost, r.url("/blobs/uploads/?digest="+url.QueryEscape(digest)), bytes.NewReader(body))
		if err == nil {
			post.Header.Set("Content-Type", "application/octet-stream")
		}
	} else {
		post, err = http.NewRequestWithContext(ctx, http.MethodPost, r.url("/blobs/uploads/"), nil)
	}
	if err != nil {
		return "", err
	}
	resp, err := r.do(post)
	if err != nil {
		return "", err
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated:
		if !single {
			return "", fmt.Errorf("registry: %s answered the start of an upload with 201 Created", r.Registry)
		}
		if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != digest {
			return "", fmt.Errorf("%w: uploaded %s, the registry says %s", ErrBlobMismatch, digest, h)
		}
		r.blobs.Store(digest, true)
		return digest, nil
	case http.StatusAccepted:
		if single {
			r.noSinglePost.Store(true)
		}
	default:
		return "", r.statusError(resp, "starting the upload of "+digest)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("registry: %s gave no upload location: %w", r.Registry, err)
	}
	if !sameOrigin(loc, post.URL) {
		return "", fmt.Errorf("registry: %s named the upload location %s on another host; refusing to send the blob there", r.Registry, loc.Redacted())
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	put.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = r.do(put); err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return "", r.statusError(resp, "uploading blob "+digest)
	}
	r.blobs.Store(digest, true)
	return digest, nil
}

// CheckPush reports whether the registry lets these credentials push to
// the repository, without storing anything: it opens a blob upload (what
// every push starts with, refused with 401 or 403 without push access)
// and cancels it. An error wraps ErrUnauthorized when the registry
// refuses.
func (r *Repository) CheckPush(ctx context.Context) error {
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url("/blobs/uploads/"), nil)
	if err != nil {
		return err
	}
	resp, err := r.do(post)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode != http.StatusAccepted {
		return r.statusError(resp, "starting an upload")
	}
	// Cancel the session; a registry that keeps it expires it on its own.
	loc, err := resp.Location()
	if err != nil || !sameOrigin(loc, post.URL) {
		return nil
	}
	del, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc.String(), nil)
	if err != nil {
		return nil
	}
	if resp, err := r.do(del); err == nil {
		drain(resp)
	}
	return nil
}

// sameOrigin reports whether an upload location stays on the registry's
// scheme and host, so credentials are not sent elsewhere.
func sameOrigin(loc, base *url.URL) bool {
	return loc.Scheme == base.Scheme && strings.EqualFold(loc.Host, base.Host)
}

// maxReferrerPages bounds how many pages of a paginated referrers list are
// followed.
const maxReferrerPages = 16

// Referrers lists the manifests whose subject is digest, as the OCI image
// index bodies the registry returned (one per page). supported reports
// whether the registry has the Referrers API; when it does not, the list is
// read from the referrers tag schema's fallback tag (sha256-<hex>), and is
// empty when that tag does not exist. Once the registry has shown it has no
// Referrers API, the Repository goes to the fallback tag directly.
func (r *Repository) Referrers(ctx context.Context, digest string) (pages [][]byte, supported bool, err error) {
	if r.noReferrersAPI.Load() {
		return r.fallbackReferrers(ctx, digest)
	}
	next := r.url("/referrers/" + digest)
	for page := 0; next != "" && page < maxReferrerPages; page++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, false, err
		}
		req.Header.Set("Accept", MediaTypeOCIIndex)
		resp, err := r.do(req)
		if err != nil {
			return nil, false, err
		}
		ct := strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
		if resp.StatusCode != http.StatusOK || ct != MediaTypeOCIIndex {
			switch resp.StatusCode {
			case http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusMethodNotAllowed:
				drain(resp)
			default:
				err := r.statusError(resp, "referrers of "+digest)
				drain(resp)
				return nil, false, err
			}
			if page > 0 {
				return nil, false, fmt.Errorf("registry: %s stopped serving the referrers of %s after %d pages", r.Registry, digest, page)
			}
			r.noReferrersAPI.Store(true)
			return r.fallbackReferrers(ctx, digest)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
		link := resp.Header.Get("Link")
		drain(resp)
		if err != nil {
			return nil, false, fmt.Errorf("registry: reading the referrers of %s: %w", digest, err)
		}
		if len(body) > MaxManifestSize {
			return nil, false, fmt.Errorf("registry: the referrers list of %s is more than %d bytes", digest, MaxManifestSize)
		}
		pages = append(pages, body)
		next, err = nextLink(req.URL, link)
		if err != nil {
			return nil, false, err
		}
	}
	return pages, true, nil
}

// FallbackTag is the referrers tag schema's tag for digest: sha256-<hex>.
func FallbackTag(digest string) string { return strings.Replace(digest, ":", "-", 1) }

func (r *Repository) fallbackReferrers(ctx context.Context, digest string) ([][]byte, bool, error) {
	m, err := r.Manifest(ctx, FallbackTag(digest), MediaTypeOCIIndex)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return [][]byte{m.Bytes}, false, nil
}

// nextLink reads an RFC 8288 Link header's rel="next" target, relative to
// the request's URL; it must stay on the same host.
func nextLink(base *url.URL, h string) (string, error) {
	if h == "" {
		return "", nil
	}
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(target), "<"), ">")
		u, err := base.Parse(target)
		if err != nil {
			return "", fmt.Errorf("registry: bad Link header %q: %w", h, err)
		}
		if !sameOrigin(u, base) {
			return "", fmt.Errorf("registry: the referrers list links to another host (%s)", u.Host)
		}
		return u.String(), nil
	}
	return "", nil
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
