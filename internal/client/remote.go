package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/origin"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/tuf"
)

// Download limits. The notary client reads at most MaxMetadataSize of a
// file of unknown length and MaxTimestampSize of a timestamp; a file whose
// length the metadata lists (snapshot, targets, delegations) is read up to
// that length — and, unlike notary, never beyond the cap of its role,
// whatever length the metadata claims.
const (
	MaxMetadataSize  = 100 << 20 // root, snapshot, targets, each delegation
	MaxTimestampSize = 1 << 20
	maxKeySize       = 256 << 10
	maxErrorSize     = 64 << 10
	preallocMax      = 16 << 20
)

// MaxSize returns the most bytes the client reads of a role's file.
func MaxSize(role string) int64 {
	if role == tuf.RoleTimestamp {
		return MaxTimestampSize
	}
	return MaxMetadataSize
}

// Errors of the remote.
var (
	// ErrNotFound: the server has no such metadata (HTTP 404).
	ErrNotFound = errors.New("client: not found on the trust server")
	// ErrUnauthorized: the server wants credentials (HTTP 401).
	ErrUnauthorized = errors.New("client: not authorized by the trust server")
	// ErrMaliciousServer: a response broke a limit the metadata set.
	ErrMaliciousServer = errors.New("client: the trust server sent more data than the metadata allows")
	// ErrChecksum: a file asked for by its SHA-256 has another one.
	ErrChecksum = errors.New("client: the trust server sent a file that does not match the checksum it was asked for")
)

// ServerError is a refusal from the trust server, decoded from its error
// envelope. The fields hold what the server sent; Error quotes them
// (printable.Quote), so a hostile server cannot put escape sequences or
// line breaks into the message a person reads.
type ServerError struct {
	Status  int
	Code    string // VERSION, INVALID_UPDATE, …
	Message string
	// Name and Msg are set for INVALID_UPDATE (ErrBadRoot, ErrBadTargets, …).
	Name, Msg string
	Detail    json.RawMessage
}

func (e *ServerError) Error() string {
	switch {
	case e.Code == notaryapi.OldVersion.Name():
		return "the trust server has newer metadata than this update; update and try again"
	case e.Msg != "":
		return fmt.Sprintf("the trust server rejected the update (%s): %s", printable.Quote(e.Name), printable.Quote(e.Msg))
	case e.Code != "":
		detail := ""
		if len(e.Detail) > 0 && string(e.Detail) != "{}" && string(e.Detail) != "null" {
			detail = ": " + printable.Quote(string(e.Detail))
		}
		return fmt.Sprintf("the trust server answered %d %s (%s)%s", e.Status, printable.Quote(e.Code), printable.Quote(strings.TrimSuffix(e.Message, ".")), detail)
	default:
		return fmt.Sprintf("the trust server answered HTTP %d", e.Status)
	}
}

// Remote speaks the Notary v1 HTTP API for one repository (GUN).
type Remote struct {
	base *url.URL
	hc   *http.Client
	gun  string

	tsMu sync.Mutex
	ts   *TimestampSeen
}

// TimestampSeen is the current timestamp as this Remote last downloaded
// it: the SHA-256 (lowercase hex) of its bytes and the audit log index the
// server named for it ("" when it named none).
type TimestampSeen struct {
	SHA256     string
	AuditIndex string
}

// LastTimestamp returns the timestamp last downloaded, or nil.
func (r *Remote) LastTimestamp() *TimestampSeen {
	r.tsMu.Lock()
	defer r.tsMu.Unlock()
	return r.ts
}

// NewRemote returns a Remote for gun at the server's base URL (which may
// carry a path prefix). Requests follow redirects by origin.Policy: never
// from https to http, and credentials a transport of hc sets by origin
// (registry.AuthTransport) stay with their origin; a CheckRedirect hc
// already has is kept.
func NewRemote(serverURL string, hc *http.Client, gun tuf.GUN) (*Remote, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("client: trust server URL %q must be https://host[:port]", serverURL)
	}
	if gun == "" {
		return nil, fmt.Errorf("client: no repository name (GUN)")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := *hc
	if c.CheckRedirect == nil {
		c.CheckRedirect = origin.Policy{}.CheckRedirect
	}
	return &Remote{base: u, hc: &c, gun: gun.String()}, nil
}

// HTTPClient returns the client requests to the server go through (its
// TLS settings and credentials), for other APIs of the same server.
func (r *Remote) HTTPClient() *http.Client { return r.hc }

// GUN returns the repository name.
func (r *Remote) GUN() string { return r.gun }

// url is the server's base URL with an API path (package notaryapi).
func (r *Remote) url(path string) string {
	u := *r.base
	u.Path += path
	return u.String()
}

func (r *Remote) do(ctx context.Context, method, u string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		if Unreachable(err) {
			return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, r.base.Host, err)
		}
		// The server answered, and something refused the answer (a token
		// service that turned down the credentials, a redirect policy).
		return nil, fmt.Errorf("client: the trust server at %s was reached, but the request failed: %w", r.base.Host, err)
	}
	return resp, nil
}

// ErrUnreachable: the trust server could not be reached at all.
var ErrUnreachable = errors.New("client: could not reach the trust server")

// Unreachable reports an error of the connection itself: no answer, a
// refused or reset connection, a name that does not resolve, a peer that
// does not speak TLS, or a certificate that is not trusted. A server that
// answered, with a refusal or an error, was reached.
func Unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var ve *tls.CertificateVerificationError
	var ne net.Error
	return errors.Is(err, ErrUnreachable) || errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &rh) ||
		errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &ve) ||
		(errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// responseError turns a non-2xx response into an error.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorSize))
	switch resp.StatusCode {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (HTTP 401)", ErrUnauthorized)
	}
	se := &ServerError{Status: resp.StatusCode}
	if errs, ok := notaryapi.ParseErrors(b); ok {
		e := errs[0]
		se.Code, se.Message, se.Detail = e.Code, e.Message, e.Detail
		if v, ok := e.Validation(); ok {
			se.Name, se.Msg = v.Name, v.Error.Msg
		}
	}
	return se
}

// get downloads a file at an API path, refusing more than limit bytes.
// With a checksum, the SHA-256 of the body is computed as it streams in and
// a file that does not match is refused before anything parses it.
func (r *Remote) get(ctx context.Context, path string, limit int64, checksum []byte) ([]byte, error) {
	file := strings.TrimPrefix(path, notaryapi.TUFPath(r.gun))
	resp, err := r.do(ctx, http.MethodGet, r.url(path), nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d expected", ErrMaliciousServer, file, resp.ContentLength, limit)
	}
	var body io.Reader = io.LimitReader(resp.Body, limit+1)
	h := sha256.New()
	if len(checksum) > 0 {
		body = io.TeeReader(body, h)
	}
	b, err := readAll(body, min(resp.ContentLength, limit))
	if err != nil {
		return nil, fmt.Errorf("client: reading %s: %w", file, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrMaliciousServer, file, limit)
	}
	if len(checksum) > 0 && !bytes.Equal(h.Sum(nil), checksum) {
		return nil, fmt.Errorf("%w: %s", ErrChecksum, file)
	}
	if path == notaryapi.CurrentPath(r.gun, "timestamp") {
		sum := sha256.Sum256(b)
		r.tsMu.Lock()
		r.ts = &TimestampSeen{SHA256: hex.EncodeToString(sum[:]), AuditIndex: resp.Header.Get(notaryapi.AuditIndexHeader)}
		r.tsMu.Unlock()
	}
	return b, nil
}

// readAll is io.ReadAll into a buffer of the size the response announced
// (size < 0: unknown), so that a large file is not copied over and over
// as the buffer grows. At most preallocMax is allocated before the bytes
// arrive, whatever a server announces; a wrong announcement costs only
// the growth io.ReadAll would have had.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, min(size, preallocMax)+1) // +1: EOF is read without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow as append does
		}
	}
}

// GetCurrent downloads the current version of a role, refusing more than
// limit bytes (and never more than MaxSize(role)).
func (r *Remote) GetCurrent(ctx context.Context, role string, limit int64) ([]byte, error) {
	return r.get(ctx, notaryapi.CurrentPath(r.gun, role), min(limit, MaxSize(role)), nil)
}

// GetVersion downloads one version of a role (used to walk root rotations).
func (r *Remote) GetVersion(ctx context.Context, role string, version int, limit int64) ([]byte, error) {
	return r.get(ctx, notaryapi.VersionPath(r.gun, role, version), min(limit, MaxSize(role)), nil)
}

// GetChecksum downloads a role by the SHA-256 its parent lists, reading at
// most length bytes — the length the parent lists, which must be within
// MaxSize(role): a parent claiming a larger file is refused before anything
// is downloaded. The body is hashed as it arrives (ErrChecksum). A file
// listed without a SHA-256 (only a SHA-512) is fetched by name, as notary
// does; the state machine checks its hashes.
func (r *Remote) GetChecksum(ctx context.Context, role string, sum []byte, length int64) ([]byte, error) {
	path := notaryapi.CurrentPath(r.gun, role)
	if len(sum) > 0 {
		path = notaryapi.ChecksumPath(r.gun, role, sum)
	}
	file := strings.TrimPrefix(path, notaryapi.TUFPath(r.gun))
	switch {
	case length > MaxSize(role):
		return nil, fmt.Errorf("%w: %s is listed with %d bytes, more than the %d this client reads of a %s file", ErrMaliciousServer, file, length, MaxSize(role), role)
	case length < 1:
		return nil, fmt.Errorf("%w: %s is listed with %d bytes", ErrMaliciousServer, file, length)
	case len(sum) > 0 && len(sum) != sha256.Size:
		return nil, fmt.Errorf("%w: %s is listed with a %d-byte SHA-256", ErrChecksum, role, len(sum))
	}
	return r.get(ctx, path, length, sum)
}

func (r *Remote) key(ctx context.Context, method, role string) (*keys.PublicKey, error) {
	resp, err := r.do(ctx, method, r.url(notaryapi.KeyPath(r.gun, role)), nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySize))
	if err != nil {
		return nil, err
	}
	var k keys.PublicKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("client: the server's %s key: %w", role, err)
	}
	return &k, nil
}

// GetKey returns the server's key for timestamp or snapshot.
func (r *Remote) GetKey(ctx context.Context, role string) (*keys.PublicKey, error) {
	return r.key(ctx, http.MethodGet, role)
}

// RotateKey asks the server for a new timestamp or snapshot key.
func (r *Remote) RotateKey(ctx context.Context, role string) (*keys.PublicKey, error) {
	return r.key(ctx, http.MethodPost, role)
}

// Publish uploads metadata files atomically, one multipart part per role
// (form field "files", file name = role).
func (r *Remote) Publish(ctx context.Context, files map[string][]byte) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	roles := make([]string, 0, len(files))
	for role := range files {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="files"; filename=%q`, role))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(files[role]); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	resp, err := r.do(ctx, http.MethodPost, r.url(notaryapi.TUFPath(r.gun)), &buf, mw.FormDataContentType())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// Delete removes every version of every role of the repository.
func (r *Remote) Delete(ctx context.Context) error {
	resp, err := r.do(ctx, http.MethodDelete, r.url(notaryapi.TUFPath(r.gun)), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	return nil
}
