package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/jose"
)

// Defaults of Config.
const (
	DefaultLeeway       = 30 * time.Second
	DefaultKeyTTL       = time.Hour
	DefaultMinRefresh   = 30 * time.Second
	DefaultFetchTimeout = 10 * time.Second
)

// maxDocBytes bounds a discovery document or JWKS.
const maxDocBytes = 1 << 20

// Config configures a Verifier. Zero values take the defaults.
type Config struct {
	// Client fetches discovery documents and key sets. Nil means a client
	// trusting the system roots (SSL_CERT_FILE and SSL_CERT_DIR honoured).
	// Redirects are followed only to https URLs, whatever the client.
	Client *http.Client
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// KeyTTL is how long an issuer's fetched keys are used before they are
	// fetched again.
	KeyTTL time.Duration
	// MinRefresh is the least time between two fetches from one issuer
	// (after an unknown kid, or after a failed fetch).
	MinRefresh time.Duration
	// FetchTimeout bounds one fetch of a discovery document or key set.
	FetchTimeout time.Duration
	// Logger receives fetches and fetch failures; nil discards.
	Logger *slog.Logger
}

// Identity is what a verified ID token says about its bearer.
type Identity struct {
	Issuer, Subject string
	Audience        []string
	IssuedAt        time.Time
	Expiry          time.Time
	// Claims are all the token's claims; numbers are json.Number.
	Claims map[string]any
}

// Claim returns a claim as patterns see it (a string, or a number or
// boolean in its JSON text); ok is false when absent or not such a value.
func (id *Identity) Claim(name string) (value string, ok bool) {
	v, present := id.Claims[name]
	if !present {
		return "", false
	}
	return scalar(v)
}

// Verifier checks ID tokens against origin rules. It is safe for concurrent
// use; one Verifier per process shares its key cache among all rules.
type Verifier struct {
	client                                   *http.Client
	now                                      func() time.Time
	leeway, keyTTL, minRefresh, fetchTimeout time.Duration
	log                                      *slog.Logger

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

// issuerKeys is one issuer's cached keys. lock is a one-slot semaphore so
// that waiting for another caller's fetch honours the context.
type issuerKeys struct {
	lock        chan struct{}
	keys        []jose.JWK
	fetched     time.Time // last successful fetch; zero before the first
	lastAttempt time.Time // last fetch, successful or not
	lastErr     *UnavailableError
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg Config) *Verifier {
	v := &Verifier{
		client: cfg.Client, now: cfg.Now, log: cfg.Logger,
		leeway: cfg.Leeway, keyTTL: cfg.KeyTTL, minRefresh: cfg.MinRefresh, fetchTimeout: cfg.FetchTimeout,
		issuers: map[string]*issuerKeys{},
	}
	if v.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = nil // system roots
		v.client = &http.Client{Transport: t}
	}
	c := *v.client // never follow a redirect off https, whatever the caller's client does
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to %s, which is not https", req.URL.Redacted())
		}
		if len(via) >= 5 {
			return errors.New("more than 5 redirects")
		}
		return nil
	}
	v.client = &c
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.leeway == 0 {
		v.leeway = DefaultLeeway
	}
	if v.keyTTL == 0 {
		v.keyTTL = DefaultKeyTTL
	}
	if v.minRefresh == 0 {
		v.minRefresh = DefaultMinRefresh
	}
	if v.fetchTimeout == 0 {
		v.fetchTimeout = DefaultFetchTimeout
	}
	return v
}

// Verify checks rawToken against rule, in this order: the rule is valid;
// the token is a signed JWT of at most MaxTokenBytes with an asymmetric
// algorithm; iss equals the rule's issuer; aud holds the rule's audience;
// exp, nbf and iat hold at now (with leeway); the issuer publishes the key
// the token names (kid) and its signature verifies; and the claims match
// every pattern of the rule. Nothing is fetched for a token that fails
// before the key lookup.
//
// Errors wrap ErrInvalidToken (*TokenError), ErrClaimMismatch
// (*MismatchError) or ErrIssuerUnavailable (*UnavailableError); an invalid
// rule is an error wrapping none of them.
func (v *Verifier) Verify(ctx context.Context, rawToken string, rule Rule) (*Identity, error) {
	if err := rule.Validate(); err != nil {
		return nil, err
	}
	t, err := parseIDToken(rawToken)
	if err != nil {
		return nil, err
	}
	if t.issuer != rule.Issuer {
		return nil, invalid(CheckIssuer, "the token was issued by %q, not by %q as the origin rule requires", t.issuer, rule.Issuer)
	}
	if !slices.Contains(t.audience, rule.Audience) {
		return nil, invalid(CheckAudience, "the token is meant for %q, not for %q as the origin rule requires", t.audience, rule.Audience)
	}
	if err := t.checkTimes(v.now(), v.leeway); err != nil {
		return nil, err
	}
	if err := v.checkSignature(ctx, rule.Issuer, t); err != nil {
		return nil, err
	}
	if err := MatchClaims(rule, t.claims); err != nil {
		return nil, err
	}
	return &Identity{
		Issuer: t.issuer, Subject: t.subject, Audience: t.audience,
		IssuedAt: t.iat, Expiry: t.exp, Claims: t.claims,
	}, nil
}

// checkSignature finds the issuer's key for the token and verifies it.
func (v *Verifier) checkSignature(ctx context.Context, issuer string, t *idToken) error {
	h := t.jws.Header
	keys, err := v.keysFor(ctx, issuer, h.KeyID)
	if err != nil {
		return err
	}
	var candidates []jose.JWK
	for _, k := range keys {
		if (h.KeyID == "" || k.KeyID == h.KeyID) && (k.Use == "" || k.Use == "sig") && (k.Algorithm == "" || k.Algorithm == h.Algorithm) {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		if h.KeyID == "" {
			return invalid(CheckKey, "the token names no key (kid) and the issuer publishes no %s signing key", h.Algorithm)
		}
		return invalid(CheckKey, "the token is signed with key %q, which the issuer publishes for another use or algorithm than %s", h.KeyID, h.Algorithm)
	}
	var last error
	for _, k := range candidates {
		if last = jose.Verify(h.Algorithm, k.Key, t.jws.SigningInput, t.jws.Signature); last == nil {
			return nil
		}
	}
	return invalid(CheckSignature, "the token's signature does not verify with the issuer's key (%s)", strings.TrimPrefix(last.Error(), "jose: "))
}

// keysFor returns the issuer's current keys, fetching them when none are
// cached, when they are older than KeyTTL, or when kid is not among them
// and the last fetch is at least MinRefresh old. A kid the issuer does not
// publish is a TokenError; a failed fetch an UnavailableError.
func (v *Verifier) keysFor(ctx context.Context, issuer, kid string) ([]jose.JWK, error) {
	if err := ctx.Err(); err != nil {
		return nil, &UnavailableError{Issuer: issuer, Reason: "the request ended before its keys were checked", Err: err}
	}
	v.mu.Lock()
	ik := v.issuers[issuer]
	if ik == nil {
		ik = &issuerKeys{lock: make(chan struct{}, 1)}
		v.issuers[issuer] = ik
	}
	v.mu.Unlock()
	select {
	case ik.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, &UnavailableError{Issuer: issuer, Reason: "gave up waiting for another fetch of its keys", Err: ctx.Err()}
	}
	defer func() { <-ik.lock }()

	now := v.now()
	fresh := !ik.fetched.IsZero() && now.Sub(ik.fetched) < v.keyTTL
	mayFetch := ik.lastAttempt.IsZero() || now.Sub(ik.lastAttempt) >= v.minRefresh
	known := kid == "" || slices.ContainsFunc(ik.keys, func(k jose.JWK) bool { return k.KeyID == kid })
	switch {
	case fresh && known:
		return ik.keys, nil
	case !mayFetch && ik.lastErr != nil:
		// The last fetch failed: do not try again before MinRefresh.
		e := *ik.lastErr
		e.RetryAfter = v.minRefresh - now.Sub(ik.lastAttempt)
		return nil, &e
	case !mayFetch && fresh:
		return nil, invalid(CheckKey, "the token is signed with key %q, which the issuer does not publish (its keys were fetched %s ago and are fetched at most every %s)", kid, now.Sub(ik.fetched).Round(time.Second), v.minRefresh)
	}
	keys, err := v.fetchKeys(ctx, issuer)
	if err != nil && ctx.Err() != nil {
		// The caller gave up; that says nothing about the issuer, so it
		// does not hold back the next caller.
		return nil, err
	}
	ik.lastAttempt = now
	if err != nil {
		err.RetryAfter = v.minRefresh
		ik.lastErr = err
		v.log.WarnContext(ctx, "oidc: fetching issuer keys failed", "issuer", issuer, "error", err.Error())
		return nil, err
	}
	ik.keys, ik.fetched, ik.lastErr = keys, now, nil
	v.log.InfoContext(ctx, "oidc: fetched issuer keys", "issuer", issuer, "keys", len(keys))
	if kid != "" && !slices.ContainsFunc(keys, func(k jose.JWK) bool { return k.KeyID == kid }) {
		return nil, invalid(CheckKey, "the token is signed with key %q, which the issuer does not publish", kid)
	}
	return keys, nil
}

// discovery is the part of an OpenID Provider configuration used here.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// fetchKeys fetches the issuer's discovery document and key set.
func (v *Verifier) fetchKeys(ctx context.Context, issuer string) ([]jose.JWK, *UnavailableError) {
	if err := validateIssuer(issuer); err != nil { // checked by Rule.Validate; kept next to the fetch
		return nil, &UnavailableError{Issuer: issuer, Reason: "the issuer URL is not usable", Err: err}
	}
	docURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	b, err := v.get(ctx, docURL)
	if err != nil {
		return nil, &UnavailableError{Issuer: issuer, Reason: "fetching its discovery document failed", Err: err}
	}
	var d discovery
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, &UnavailableError{Issuer: issuer, Reason: "its discovery document is not JSON", Err: err}
	}
	if d.Issuer != issuer {
		return nil, &UnavailableError{Issuer: issuer, Reason: fmt.Sprintf("its discovery document names the issuer %q; OpenID Connect Discovery requires them to be equal", d.Issuer)}
	}
	u, err := url.Parse(d.JWKSURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, &UnavailableError{Issuer: issuer, Reason: fmt.Sprintf("its discovery document's jwks_uri %q is not an https URL", d.JWKSURI)}
	}
	b, err = v.get(ctx, d.JWKSURI)
	if err != nil {
		return nil, &UnavailableError{Issuer: issuer, Reason: "fetching its key set failed", Err: err}
	}
	keys, err := jose.ParseJWKSet(b, true)
	if err != nil {
		return nil, &UnavailableError{Issuer: issuer, Reason: "its key set is not usable", Err: err}
	}
	return keys, nil
}

// get fetches an https URL within FetchTimeout and returns a 200 answer's
// body of at most maxDocBytes.
func (v *Verifier) get(ctx context.Context, u string) ([]byte, error) {
	if !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("%s is not an https URL", u)
	}
	ctx, cancel := context.WithTimeout(ctx, v.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxDocBytes {
		return nil, fmt.Errorf("GET %s: more than %d bytes", u, maxDocBytes)
	}
	return b, nil
}
