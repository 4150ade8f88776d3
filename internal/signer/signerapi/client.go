package signerapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

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

// Client talks to a signet-signer. It implements the server's Custodian
// interface: Create, Keys and Signer.
type Client struct {
	base    string // https://host:port, no trailing slash
	hc      *http.Client
	alg     string
	timeout time.Duration

	mu   sync.Mutex
	pubs map[string]heldPub // key ID → the GUN it is held for and its public key
}

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
	return &Client{
		base:    strings.TrimRight(u.String(), "/"),
		hc:      &http.Client{Transport: tr, Timeout: opts.Timeout},
		alg:     opts.Algorithm,
		timeout: opts.Timeout,
		pubs:    map[string]heldPub{},
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Create makes a new key for gun and role on the signer.
func (c *Client) Create(ctx context.Context, gun, role string) (*keys.PublicKey, error) {
	var info KeyInfo
	if err := c.call(ctx, http.MethodPost, "/v1/keys", nil, CreateKeyRequest{GUN: gun, Role: role, Algorithm: c.alg}, false, &info); err != nil {
		return nil, fmt.Errorf("signerapi: create %s key of %s: %w", role, gun, err)
	}
	k, err := parseInfo(info, "")
	if err != nil {
		return nil, err
	}
	c.remember(gun, k)
	return k, nil
}

// Keys lists the keys the signer holds for gun and role, newest first.
func (c *Client) Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error) {
	var list KeyList
	if err := c.call(ctx, http.MethodGet, "/v1/keys", url.Values{"gun": {gun}, "role": {role}}, nil, true, &list); err != nil {
		return nil, fmt.Errorf("signerapi: list %s keys of %s: %w", role, gun, err)
	}
	out := make([]*keys.PublicKey, 0, len(list.Keys))
	for _, info := range list.Keys {
		k, err := parseInfo(info, "")
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// Signer returns a crypto.Signer for a key the signer holds for gun, or an
// error wrapping keys.ErrKeyNotHeld when it holds none. A key's GUN and
// public key never change, so they are asked for once and remembered; the
// signer is not called again until Sign.
//
// A crypto.Signer's Sign takes no context, so the returned signer uses ctx
// (with the client's timeout on top) for its calls: it is meant for the
// request it was asked for.
func (c *Client) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	c.mu.Lock()
	h, ok := c.pubs[id]
	c.mu.Unlock()
	if ok && h.gun == gun {
		return &remoteSigner{c: c, ctx: ctx, gun: gun, pub: h.pub}, nil
	}
	var info KeyInfo
	err := c.call(ctx, http.MethodGet, "/v1/keys/"+url.PathEscape(id), url.Values{"gun": {gun}}, nil, true, &info)
	if err != nil {
		return nil, fmt.Errorf("signerapi: key %s of %s: %w", id, gun, err)
	}
	k, err := parseInfo(info, id)
	if err != nil {
		return nil, err
	}
	c.remember(gun, k)
	return &remoteSigner{c: c, ctx: ctx, gun: gun, pub: k}, nil
}

// Check asks the signer whether it can serve.
func (c *Client) Check(ctx context.Context) error {
	var ok map[string]string
	if err := c.call(ctx, http.MethodGet, "/v1/health", nil, nil, true, &ok); err != nil {
		return fmt.Errorf("signerapi: health: %w", err)
	}
	return nil
}

func (c *Client) remember(gun string, k *keys.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pubs) >= maxPubs {
		for id := range c.pubs { // drop an arbitrary entry; it is asked for again
			delete(c.pubs, id)
			break
		}
	}
	c.pubs[k.ID()] = heldPub{gun: gun, pub: k}
}

func parseInfo(info KeyInfo, wantID string) (*keys.PublicKey, error) {
	k, err := keys.New(info.Algorithm, info.Public)
	if err != nil {
		return nil, fmt.Errorf("signerapi: the signer sent a bad key: %w", err)
	}
	if k.ID() != info.ID || (wantID != "" && k.ID() != wantID) {
		return nil, fmt.Errorf("signerapi: the signer sent key %s for %s", k.ID(), cmpOr(wantID, info.ID))
	}
	return k, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
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
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		_ = json.Unmarshal(raw, &eb)
		msg := eb.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		switch {
		case resp.StatusCode == http.StatusNotFound && eb.Error.Code == CodeNotHeld:
			return fmt.Errorf("%w (%s)", keys.ErrKeyNotHeld, msg)
		case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusBadGateway, resp.StatusCode == http.StatusGatewayTimeout:
			return fmt.Errorf("%w: %s: %s", ErrUnavailable, resp.Status, msg)
		}
		return fmt.Errorf("signerapi: the signer answered %s: %s %s", resp.Status, eb.Error.Code, msg)
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
