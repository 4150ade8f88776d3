package signerapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Algorithm is the type of keys Create asks for: keys.TypeECDSA (the
	// default) or keys.TypeED25519.
	Algorithm string
	// Timeout bounds each call to the signer (DefaultTimeout when zero).
	Timeout time.Duration
}

// Client talks to a signet-signer. It implements custody.Custodian.
type Client struct {
	base    string // https://host:port, no trailing slash
	hc      *http.Client
	alg     string
	timeout time.Duration

	mu   sync.Mutex
	pubs map[string]heldPub // key ID → the GUN it is held for and its public key
}

var _ custody.Custodian = (*Client)(nil)

type heldPub struct {
	gun string
	pub *keys.PublicKey
}

// maxPubs bounds the public keys the client remembers.
const maxPubs = 4096

// NewClient returns a client of the signer at baseURL (https://host:port)
// using tlsConfig (see ClientTLSConfig).
func NewClient(baseURL string, tlsConfig *tls.Config, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("signerapi: signer URL %q: want https://host:port", baseURL)
	}
	if tlsConfig == nil || len(tlsConfig.Certificates) == 0 {
		return nil, errors.New("signerapi: a client certificate is required to reach the signer")
	}
	if opts.Algorithm == "" {
		opts.Algorithm = keys.TypeECDSA
	}
	if opts.Algorithm != keys.TypeECDSA && opts.Algorithm != keys.TypeED25519 {
		return nil, fmt.Errorf("signerapi: algorithm %q not supported (use ecdsa or ed25519)", opts.Algorithm)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	tr := &http.Transport{
		TLSClientConfig:       tlsConfig.Clone(),
		DialContext:           (&net.Dialer{Timeout: min(3*time.Second, opts.Timeout), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   min(5*time.Second, opts.Timeout),
		ResponseHeaderTimeout: opts.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
		// A connection to a signer that vanished without closing it is
		// detected by pings and dropped, instead of hanging calls.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 5 * time.Second},
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   opts.Timeout,
		// A signer never redirects: a 3xx is an error (see call), and the
		// request, its body and the client certificate go nowhere but the
		// configured signer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{
		base:    strings.TrimRight(u.String(), "/"),
		hc:      hc,
		alg:     opts.Algorithm,
		timeout: opts.Timeout,
		pubs:    map[string]heldPub{},
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Create makes a new online key for gun and role on the signer, of the
// client's algorithm (the request of earlier releases).
func (c *Client) Create(ctx context.Context, gun, role string) (*keys.PublicKey, error) {
	var info KeyInfo
	if err := c.call(ctx, http.MethodPost, "/v1/keys", nil, CreateKeyRequest{GUN: gun, Role: role, Algorithm: c.alg}, false, &info); err != nil {
		return nil, fmt.Errorf("signerapi: create %s key of %s: %w", role, gun, err)
	}
	k, err := c.parse(info, "")
	if err != nil {
		return nil, err
	}
	return k.Public, nil
}

// Keys lists the active keys the signer holds for gun and role, newest
// first.
func (c *Client) Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error) {
	ks, err := c.list(ctx, url.Values{"gun": {gun}, "role": {role}})
	if err != nil {
		return nil, fmt.Errorf("signerapi: list %s keys of %s: %w", role, gun, err)
	}
	out := make([]*keys.PublicKey, len(ks))
	for i, k := range ks {
		out[i] = k.Public
	}
	return out, nil
}

// CreateKey makes a new key as spec says on the signer.
func (c *Client) CreateKey(ctx context.Context, spec custody.Spec) (custody.Key, error) {
	if err := spec.Validate(); err != nil {
		return custody.Key{}, err
	}
	var info KeyInfo
	if err := c.call(ctx, http.MethodPost, "/v1/keys", nil, createRequest(spec), false, &info); err != nil {
		return custody.Key{}, fmt.Errorf("signerapi: create %s key: %w", spec.Purpose, err)
	}
	return c.parse(info, "")
}

// ImportKey sends priv to the signer, which seals it; priv must be an
// *ecdsa.PrivateKey (P-256) or an ed25519.PrivateKey.
func (c *Client) ImportKey(ctx context.Context, spec custody.Spec, priv crypto.Signer) (custody.Key, error) {
	if err := spec.Validate(); err != nil {
		return custody.Key{}, err
	}
	switch priv.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return custody.Key{}, fmt.Errorf("%w: cannot import a %T (import an *ecdsa.PrivateKey or an ed25519.PrivateKey)", custody.ErrInvalid, priv)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return custody.Key{}, fmt.Errorf("%w: %v", custody.ErrInvalid, err)
	}
	var info KeyInfo
	err = c.call(ctx, http.MethodPost, "/v1/keys/import", nil, ImportKeyRequest{CreateKeyRequest: createRequest(spec), PrivateKey: der}, false, &info)
	clear(der)
	if err != nil {
		return custody.Key{}, fmt.Errorf("signerapi: import %s key: %w", spec.Purpose, err)
	}
	return c.parse(info, "")
}

// RotateKey makes a new key like id on the signer.
func (c *Client) RotateKey(ctx context.Context, id string) (custody.Key, error) {
	if err := custody.CheckKeyID(id); err != nil {
		return custody.Key{}, err
	}
	var info KeyInfo
	if err := c.call(ctx, http.MethodPost, keyPath(id, "/rotate"), nil, nil, false, &info); err != nil {
		return custody.Key{}, fmt.Errorf("signerapi: rotate key %s: %w", id, err)
	}
	return c.parse(info, "")
}

// Key describes a key the signer holds, active or retired.
func (c *Client) Key(ctx context.Context, id string) (custody.Key, error) {
	if err := custody.CheckKeyID(id); err != nil {
		return custody.Key{}, err
	}
	var info KeyInfo
	if err := c.call(ctx, http.MethodGet, keyPath(id, ""), nil, nil, true, &info); err != nil {
		return custody.Key{}, fmt.Errorf("signerapi: key %s: %w", id, err)
	}
	return c.parse(info, id)
}

// ListKeys lists the keys f selects, newest first.
func (c *Client) ListKeys(ctx context.Context, f custody.Filter) ([]custody.Key, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"gun": f.GUN, "role": f.Role, "purpose": string(f.Purpose), "owner": f.Owner} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.IncludeRetired {
		q.Set("retired", "true")
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(min(f.Limit, custody.MaxList)))
	}
	ks, err := c.list(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("signerapi: list keys: %w", err)
	}
	return ks, nil
}

func (c *Client) list(ctx context.Context, q url.Values) ([]custody.Key, error) {
	var list KeyList
	if err := c.call(ctx, http.MethodGet, "/v1/keys", q, nil, true, &list); err != nil {
		return nil, err
	}
	out := make([]custody.Key, 0, len(list.Keys))
	for _, info := range list.Keys {
		k, err := c.parse(info, "")
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// RetireKey stops a key from signing on the signer.
func (c *Client) RetireKey(ctx context.Context, id string) (custody.Key, error) {
	if err := custody.CheckKeyID(id); err != nil {
		return custody.Key{}, err
	}
	c.forget(id)
	var info KeyInfo
	if err := c.call(ctx, http.MethodPost, keyPath(id, "/retire"), nil, nil, true, &info); err != nil {
		return custody.Key{}, fmt.Errorf("signerapi: retire key %s: %w", id, err)
	}
	return c.parse(info, id)
}

// DeleteKey destroys a retired key on the signer.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	if err := custody.CheckKeyID(id); err != nil {
		return err
	}
	c.forget(id)
	if err := c.call(ctx, http.MethodDelete, keyPath(id, ""), nil, nil, false, nil); err != nil {
		return fmt.Errorf("signerapi: delete key %s: %w", id, err)
	}
	return nil
}

func keyPath(id, suffix string) string { return "/v1/keys/" + url.PathEscape(id) + suffix }

// Signer returns a crypto.Signer for an active key the signer holds for
// gun, or an error wrapping custody.ErrNotHeld when it holds none. A key's
// GUN and public key never change, so they are asked for once and
// remembered; the signer is not called again until Sign.
//
// A crypto.Signer's Sign takes no context, so the returned signer uses ctx
// (with the client's timeout on top) for its calls: it is meant for the
// request it was asked for.
func (c *Client) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	if err := custody.CheckKeyID(id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	h, ok := c.pubs[id]
	c.mu.Unlock()
	if ok && h.gun == gun {
		return &remoteSigner{c: c, ctx: ctx, gun: gun, pub: h.pub}, nil
	}
	var info KeyInfo
	err := c.call(ctx, http.MethodGet, keyPath(id, ""), url.Values{"gun": {gun}}, nil, true, &info)
	if err != nil {
		return nil, fmt.Errorf("signerapi: key %s of %s: %w", id, gun, err)
	}
	k, err := c.parse(info, id)
	if err != nil {
		return nil, err
	}
	return &remoteSigner{c: c, ctx: ctx, gun: gun, pub: k.Public}, nil
}

// Check asks the signer whether it can serve.
func (c *Client) Check(ctx context.Context) error {
	var ok map[string]string
	if err := c.call(ctx, http.MethodGet, "/v1/health", nil, nil, true, &ok); err != nil {
		return fmt.Errorf("signerapi: health: %w", err)
	}
	return nil
}

// parse checks a key description from the signer (its public key hashes to
// its ID, and that ID is wantID when given) and remembers an active key's
// GUN and public key for Signer.
func (c *Client) parse(info KeyInfo, wantID string) (custody.Key, error) {
	pub, err := keys.New(info.Algorithm, info.Public)
	if err != nil {
		return custody.Key{}, fmt.Errorf("signerapi: the signer sent a bad key: %w", err)
	}
	if pub.ID() != info.ID || (wantID != "" && pub.ID() != wantID) {
		return custody.Key{}, fmt.Errorf("signerapi: the signer sent key %s for %s", pub.ID(), cmp.Or(wantID, info.ID))
	}
	k := custody.Key{
		Public: pub, GUN: info.GUN, Role: info.Role, Purpose: custody.Purpose(info.Purpose), Owner: info.Owner,
		Alias: info.Alias, Token: info.Token, CreatedAt: info.CreatedAt, RetiredAt: info.RetiredAt,
	}
	if k.RetiredAt.IsZero() {
		c.remember(k.GUN, pub)
	} else {
		c.forget(pub.ID())
	}
	return k, nil
}

func (c *Client) remember(gun string, k *keys.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pubs[k.ID()]; !ok && len(c.pubs) >= maxPubs {
		for id := range c.pubs { // drop an arbitrary entry; it is asked for again
			delete(c.pubs, id)
			break
		}
	}
	c.pubs[k.ID()] = heldPub{gun: gun, pub: k}
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pubs, id)
}

// call sends one request and decodes a 2xx answer into out. replayable
// marks requests the transport may resend on a connection that turns out
// to be dead (they change nothing on the signer). Network failures,
// timeouts and 503 answers wrap ErrUnavailable; 404 KEY_NOT_HELD wraps
// keys.ErrKeyNotHeld.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in any, replayable bool, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if replayable && method == http.MethodPost {
		// Not sent: it marks the request as safe to retry (net/http).
		req.Header["X-Idempotency-Key"] = nil
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("%w: reading the answer: %v", ErrUnavailable, err)
	}
	if len(raw) > maxResponse {
		return fmt.Errorf("signerapi: answer larger than %d bytes", maxResponse)
	}
	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("signerapi: the signer answered %s, redirecting to %q: a signer does not redirect, and the request was not sent there (check the signer URL %s)", resp.Status, resp.Header.Get("Location"), c.base)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		_ = json.Unmarshal(raw, &eb)
		msg := eb.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		switch {
		case resp.StatusCode == http.StatusNotFound && eb.Error.Code == CodeNotHeld:
			return fmt.Errorf("%w (%s)", custody.ErrNotHeld, msg)
		case resp.StatusCode == http.StatusBadRequest && eb.Error.Code == CodeInvalid:
			return fmt.Errorf("%w: the signer says: %s", custody.ErrInvalid, msg)
		case resp.StatusCode == http.StatusConflict && eb.Error.Code == CodeExists:
			return fmt.Errorf("%w (%s)", custody.ErrExists, msg)
		case resp.StatusCode == http.StatusConflict && eb.Error.Code == CodeActive:
			return fmt.Errorf("%w (%s)", custody.ErrActive, msg)
		case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusGatewayTimeout:
			return fmt.Errorf("%w: %s: %s", ErrUnavailable, resp.Status, msg)
		}
		return fmt.Errorf("signerapi: the signer answered %s: %s %s", resp.Status, eb.Error.Code, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("signerapi: the signer's answer: %w", err)
	}
	return nil
}

// remoteSigner is a crypto.Signer whose private key is in the signer.
type remoteSigner struct {
	c   *Client
	ctx context.Context
	gun string
	pub *keys.PublicKey
}

func (s *remoteSigner) Public() crypto.PublicKey { return s.pub.CryptoKey() }

// Sign sends digest (the whole message for Ed25519) and opts' hash to the
// signer and returns what the key's own Sign returns there: ASN.1 DER for
// ECDSA, 64 bytes for Ed25519. The signature is verified before it is
// returned. rand is not used: the signer has its own randomness.
func (s *remoteSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	req := SignRequest{GUN: s.gun}
	hash := opts.HashFunc()
	switch s.pub.CryptoKey().(type) {
	case ed25519.PublicKey:
		if hash != 0 {
			return nil, fmt.Errorf("signerapi: ed25519 signs whole messages, not %v digests", hash)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return nil, errors.New("signerapi: ed25519 contexts are not supported")
		}
		req.Message = digest
	case *ecdsa.PublicKey:
		if _, ok := hashes[hash.String()]; !ok || len(digest) != hash.Size() {
			return nil, fmt.Errorf("signerapi: ecdsa signs SHA-256/384/512 digests; got %d bytes of %v", len(digest), hash)
		}
		req.Hash, req.Digest = hash.String(), digest
	default:
		return nil, fmt.Errorf("%w: %s", keys.ErrUnsupportedKey, s.pub.Type())
	}
	var resp SignResponse
	if err := s.c.call(s.ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(s.pub.ID())+"/sign", nil, req, true, &resp); err != nil {
		return nil, fmt.Errorf("signerapi: sign with %s: %w", s.pub.ID(), err)
	}
	ok := false
	switch pub := s.pub.CryptoKey().(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, digest, resp.Signature)
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest, resp.Signature)
	}
	if !ok {
		return nil, fmt.Errorf("signerapi: the signer returned a signature by %s that does not verify", s.pub.ID())
	}
	return resp.Signature, nil
}
