package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/origin"
	"github.com/signet-trust/signet/internal/printable"
)

// MaxManifestSize bounds the manifests Resolve reads (go-containerregistry
// and distribution use the same 4 MiB limit).
const MaxManifestSize = 4 << 20

// ManifestMediaTypes are the manifest types Resolve accepts, in the Accept
// header's order: what `docker push` produces and what `docker pull`
// resolves a tag to.
var ManifestMediaTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// Errors of Resolve.
var (
	// ErrNotFound: the registry has no such repository, tag or digest.
	ErrNotFound = errors.New("registry: manifest not found")
	// ErrUnauthorized: the registry refused the credentials (or their
	// absence).
	ErrUnauthorized = errors.New("registry: not authorized")
	// ErrDigestMismatch: the manifest bytes do not hash to the digest the
	// registry or the reference named.
	ErrDigestMismatch = errors.New("registry: manifest digest mismatch")
	// ErrNotManifest: the registry answered 200 with something that is not
	// a manifest of a type asked for (a proxy's login page, a schema1
	// manifest, a body that does not parse as its media type).
	ErrNotManifest = errors.New("registry: not an image manifest")
)

// Descriptor is what a tag resolves to.
type Descriptor struct {
	MediaType string
	Digest    string // "sha256:<hex>"
	Size      int64  // length of the manifest in bytes
}

// Hex returns the hex SHA-256 of the manifest.
func (d Descriptor) Hex() string { return strings.TrimPrefix(d.Digest, "sha256:") }

// SHA256 returns the SHA-256 of the manifest.
func (d Descriptor) SHA256() []byte {
	b, _ := hex.DecodeString(d.Hex())
	return b
}

// Client speaks the distribution API to registries, read only.
type Client struct {
	// Transport carries the requests (TLS settings included); nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Keychain gives the credentials; nil means anonymous.
	Keychain Keychain
	// UserAgent is sent with every request when set.
	UserAgent string
}

// http returns the HTTP client for one kind of request: redirects follow
// p (credentials never leave the origin they are bound to, never from
// https to http).
func (c *Client) http(p origin.Policy) *http.Client {
	t := c.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	return &http.Client{Transport: t, Timeout: 2 * time.Minute, CheckRedirect: p.CheckRedirect}
}

// baseURL is the registry's API origin: plain HTTP for loopback registries
// (as Docker allows), TLS for every other.
func baseURL(registry string) string {
	if origin.IsLoopback(registry) {
		return "http://" + registry
	}
	return "https://" + registry
}

// Resolve returns the descriptor of the manifest that ref's tag (or
// digest) names in the registry. The digest is computed over the bytes
// received.
func (c *Client) Resolve(ctx context.Context, ref Reference) (Descriptor, error) {
	id := ref.Digest
	if id == "" {
		id = ref.Tag
	}
	if id == "" {
		return Descriptor{}, fmt.Errorf("registry: %s names neither a tag nor a digest", ref)
	}
	u := baseURL(ref.Registry) + "/v2/" + ref.Repository + "/manifests/" + id
	reg, err := origin.Parse(u)
	if err != nil {
		return Descriptor{}, fmt.Errorf("registry: %s: %w", ref, err)
	}
	get := func(auth origin.Auth) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", strings.Join(ManifestMediaTypes, ", "))
		auth.Set(req)
		c.agent(req)
		resp, err := c.http(origin.Policy{}).Do(req)
		if err != nil {
			return nil, fmt.Errorf("registry: unable to reach %s: %w", ref.Registry, err)
		}
		return resp, nil
	}
	resp, err := get(origin.Auth{})
	if err != nil {
		return Descriptor{}, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		challenge := resp.Header.Get("WWW-Authenticate")
		from := origin.Of(resp.Request.URL)
		drain(resp)
		if from != reg {
			return Descriptor{}, fmt.Errorf("%w: %s redirected to %s, which asks for credentials; the credentials for %s are sent only to %s", ErrUnauthorized, reg, from, ref.Registry, reg)
		}
		auth, err := c.authorizeScope(ctx, ref, from, challenge, "pull")
		if err != nil {
			return Descriptor{}, err
		}
		if resp, err = get(auth); err != nil {
			return Descriptor{}, err
		}
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return Descriptor{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case http.StatusUnauthorized, http.StatusForbidden:
		return Descriptor{}, fmt.Errorf("%w to read %s (HTTP %d); log in with docker login %s", ErrUnauthorized, ref, resp.StatusCode, ref.Registry)
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Descriptor{}, fmt.Errorf("registry: GET %s: HTTP %d: %s", u, resp.StatusCode, printable.Quote(strings.TrimSpace(string(b))))
	}
	if resp.ContentLength > MaxManifestSize {
		return Descriptor{}, fmt.Errorf("registry: the manifest of %s is %d bytes, more than %d", ref, resp.ContentLength, MaxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return Descriptor{}, fmt.Errorf("registry: reading the manifest of %s: %w", ref, err)
	}
	if len(body) > MaxManifestSize {
		return Descriptor{}, fmt.Errorf("registry: the manifest of %s is more than %d bytes", ref, MaxManifestSize)
	}
	mediaType := strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	if err := checkManifest(mediaType, body); err != nil {
		return Descriptor{}, fmt.Errorf("%w: %s: %w", ErrNotManifest, ref, err)
	}
	sum := sha256.Sum256(body)
	d := Descriptor{
		MediaType: mediaType,
		Digest:    "sha256:" + hex.EncodeToString(sum[:]),
		Size:      int64(len(body)),
	}
	if h := resp.Header.Get("Docker-Content-Digest"); strings.HasPrefix(h, "sha256:") && h != d.Digest {
		return Descriptor{}, fmt.Errorf("%w: the registry says %s, the manifest of %s hashes to %s", ErrDigestMismatch, printable.Quote(h), ref, d.Digest)
	}
	if ref.Digest != "" && ref.Digest != d.Digest {
		return Descriptor{}, fmt.Errorf("%w: asked for %s, got bytes hashing to %s", ErrDigestMismatch, ref.Digest, d.Digest)
	}
	return d, nil
}

// checkManifest checks that body is a manifest of one of the types Resolve
// asks for, as its Content-Type says: schema version 2, the same media
// type inside when it names one, and the fields of its kind (an image
// index lists manifests; an image manifest has a config and layers). A
// proxy's login page, an error document or a schema1 manifest answered
// with 200 is not signed as an image.
func checkManifest(mediaType string, body []byte) error {
	if !slices.Contains(ManifestMediaTypes, mediaType) {
		return fmt.Errorf("the registry answered with content type %s, not one of the manifest types asked for", printable.Quote(mediaType))
	}
	var m struct {
		SchemaVersion int                `json:"schemaVersion"`
		MediaType     string             `json:"mediaType"`
		Config        *manifestDesc      `json:"config"`
		Layers        *[]manifestDesc    `json:"layers"`
		Manifests     *[]manifestDesc    `json:"manifests"`
		FSLayers      *[]json.RawMessage `json:"fsLayers"` // schema1
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("the %s body is not a JSON manifest: %w", mediaType, err)
	}
	if m.SchemaVersion != 2 || m.FSLayers != nil {
		return fmt.Errorf("schema version %d; only schema 2 manifests are signed", m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != mediaType {
		return fmt.Errorf("the body says media type %s, the registry %s", printable.Quote(m.MediaType), mediaType)
	}
	var descs []manifestDesc
	switch mediaType {
	case "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		if m.Manifests == nil || m.Config != nil || m.Layers != nil {
			return fmt.Errorf("a %s lists manifests and has no config or layers", mediaType)
		}
		descs = *m.Manifests
	default:
		if m.Config == nil || m.Layers == nil || m.Manifests != nil {
			return fmt.Errorf("a %s has a config and layers and lists no manifests", mediaType)
		}
		descs = append([]manifestDesc{*m.Config}, *m.Layers...)
	}
	for _, d := range descs {
		if err := d.check(); err != nil {
			return err
		}
	}
	return nil
}

// manifestDesc is a content descriptor inside a manifest.
type manifestDesc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func (d manifestDesc) check() error {
	alg, enc, ok := strings.Cut(d.Digest, ":")
	if !ok || alg == "" || enc == "" || d.MediaType == "" || d.Size < 0 {
		return fmt.Errorf("a descriptor lacks a media type, digest or size (%s)", printable.Quote(d.Digest))
	}
	return nil
}

func (c *Client) agent(req *http.Request) {
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// authorizeScope answers a 401 challenge from the origin challenger:
// Basic with the keychain's username and password, or Bearer with a token
// from the realm it names (distribution's token protocol, including OAuth2
// refresh tokens for identity tokens). The answer is bound to challenger:
// it is sent to no other origin, and never over plain http to a host that
// is not loopback.
func (c *Client) authorizeScope(ctx context.Context, ref Reference, challenger origin.Origin, header, actions string) (origin.Auth, error) {
	if !challenger.Secure() {
		return origin.Auth{}, fmt.Errorf("%w: %s asks for credentials over plain http; signet sends the credentials for %s only over https (or to a loopback host)", ErrUnauthorized, challenger, ref.Registry)
	}
	var cred Credentials
	if c.Keychain != nil {
		var err error
		if cred, err = c.Keychain.Credentials(ctx, ref.Registry); err != nil {
			return origin.Auth{}, err
		}
	}
	scheme, params := parseChallenge(header)
	switch strings.ToLower(scheme) {
	case "basic":
		if cred.Username == "" {
			return origin.Auth{}, fmt.Errorf("%w: %s wants a username and password; log in with docker login %s", ErrUnauthorized, ref.Registry, ref.Registry)
		}
		return origin.Bind(challenger, basicAuth(cred.Username, cred.Password))
	case "bearer":
		if cred.RegistryToken != "" {
			return origin.Bind(challenger, "Bearer "+cred.RegistryToken)
		}
		tok, err := c.token(ctx, ref, params, cred, actions)
		if err != nil {
			return origin.Auth{}, err
		}
		return origin.Bind(challenger, "Bearer "+tok)
	}
	return origin.Auth{}, fmt.Errorf("%w: %s answered 401 with an unsupported challenge %s", ErrUnauthorized, ref.Registry, printable.Quote(header))
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// token fetches a bearer token from the challenge's realm. The realm, and
// every URL a redirect leads the request to, must be https (or http to a
// loopback host); the username and password go only to the realm's own
// origin, and a refresh token (in a POST body) is never redirected off it.
func (c *Client) token(ctx context.Context, ref Reference, params map[string]string, cred Credentials, actions string) (string, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || realm.Host == "" || (realm.Scheme != "https" && realm.Scheme != "http") {
		return "", fmt.Errorf("%w: %s named no usable token realm (%s)", ErrUnauthorized, ref.Registry, printable.Quote(params["realm"]))
	}
	ro := origin.Of(realm)
	if !ro.Secure() {
		return "", fmt.Errorf("%w: %s named the token realm %s, which is not https", ErrUnauthorized, ref.Registry, ro)
	}
	scope := "repository:" + ref.Repository + ":" + actions
	var req *http.Request
	policy := origin.Policy{Secure: true}
	if cred.IdentityToken != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {cred.IdentityToken},
			"service":       {params["service"]},
			"scope":         {scope},
			"client_id":     {"signet"},
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		policy.SameOrigin = true
	} else {
		q := realm.Query()
		if s := params["service"]; s != "" {
			q.Set("service", s)
		}
		q.Set("scope", scope)
		realm.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
		if err != nil {
			return "", err
		}
		if cred.Username != "" {
			auth, err := origin.Bind(ro, basicAuth(cred.Username, cred.Password))
			if err != nil {
				return "", err
			}
			auth.Set(req)
		}
	}
	c.agent(req)
	resp, err := c.http(policy).Do(req)
	if err != nil {
		return "", fmt.Errorf("registry: unable to reach the token service %s: %w", realm.Host, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: the token service %s answered HTTP %d for %s", ErrUnauthorized, realm.Host, resp.StatusCode, scope)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("registry: the token service %s: %w", realm.Host, err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", fmt.Errorf("%w: the token service %s returned no token", ErrUnauthorized, realm.Host)
	}
	return body.Token, nil
}

// parseChallenge splits a WWW-Authenticate value into its scheme and
// parameters (`Bearer realm="…",service="…",scope="…"`).
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimLeft(v, " ")
		if strings.HasPrefix(v, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			params[k] = b.String()
			rest = v[min(i+1, len(v)):]
		} else {
			val, after, _ := strings.Cut(v, ",")
			params[k] = strings.TrimSpace(val)
			rest = "," + after
		}
		rest = strings.TrimLeft(rest, ", ")
	}
	return scheme, params
}
