// Package auth is signet-server's authentication, compatible with Docker
// registries and the reference notary-server (notary-v1.md §2.12): bearer
// tokens (JWS compact JWTs) from a registry token service, checked against
// trusted certificates or a JWKS, carrying the access claim the registry
// token specification defines. It also holds a small token service of its
// own (Issuer) so that, on one machine, a registry and signet-server can
// share users from an htpasswd file without a third-party service.
//
// Invariants: a request passes only with a token whose issuer, audience,
// validity window (±Leeway), signing key and signature all check out and
// whose access claim lists every action the route needs ("*" standing for
// any action); anything else gets the reference's 401 challenge and
// UNAUTHORIZED envelope, whose detail names the access needed and never the
// reason a token was refused (that goes to the server log). The issuer never
// grants "*" on a repository, nor access to the registry catalog, except to
// configured admins.
package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/server/apierr"
)

// ErrTokenRequired means a request carried no bearer token.
var ErrTokenRequired = errors.New("auth: bearer token required")

// ErrInsufficientScope means a valid token lacks an action the request
// needs.
var ErrInsufficientScope = errors.New("auth: insufficient scope")

// AuthorizerConfig configures an Authorizer.
type AuthorizerConfig struct {
	// Realm is the token service URL sent in challenges; Service the name
	// of this server, which tokens must carry in aud; Issuer the only iss
	// accepted.
	Realm, Service, Issuer string
	// Keys are the trusted signing keys.
	Keys *TrustedKeys
	// Now returns the current time.
	Now func() time.Time
}

// Authorizer is a server.Authorizer for registry bearer tokens.
type Authorizer struct {
	realm, service string
	v              Verifier
	now            func() time.Time
	cache          tokenCache
}

var _ server.Authorizer = (*Authorizer)(nil)

// NewAuthorizer checks cfg and returns an Authorizer.
func NewAuthorizer(cfg AuthorizerConfig) (*Authorizer, error) {
	var errs []error
	if cfg.Realm == "" {
		errs = append(errs, errors.New("auth: no realm"))
	}
	if cfg.Service == "" {
		errs = append(errs, errors.New("auth: no service"))
	}
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("auth: no issuer"))
	}
	if cfg.Keys == nil || cfg.Keys.Len() == 0 {
		errs = append(errs, errors.New("auth: no trusted token signing key"))
	}
	if cfg.Now == nil {
		errs = append(errs, errors.New("auth: no clock"))
	}
	for _, s := range []string{cfg.Realm, cfg.Service} {
		if strings.ContainsAny(s, "\"\\\r\n") {
			errs = append(errs, fmt.Errorf("auth: %q cannot be quoted in a challenge", s))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Authorizer{
		realm: cfg.Realm, service: cfg.Service, now: cfg.Now,
		v: Verifier{Issuer: cfg.Issuer, Audience: cfg.Service, Keys: cfg.Keys},
	}, nil
}

// Authorize allows r when its bearer token grants every action of need;
// otherwise it sets the challenge on w and returns UNAUTHORIZED with the
// needed access as detail.
func (a *Authorizer) Authorize(w http.ResponseWriter, r *http.Request, need []server.Scope) error {
	err := a.check(r, need)
	if err == nil {
		return nil
	}
	w.Header().Set("Www-Authenticate", a.challenge(need, err))
	return &apierr.Error{Code: notaryapi.Unauthorized, Detail: accessDetail(need), Cause: err}
}

// Identify returns the subject of r's bearer token when it is valid (the
// user the token service issued it to), "" otherwise: the actor the audit
// log records for the writes r makes (server.Identifier).
func (a *Authorizer) Identify(r *http.Request) string {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || raw == "" || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	c, err := a.verify(raw, a.now())
	if err != nil {
		return ""
	}
	return c.Subject
}

var _ server.Identifier = (*Authorizer)(nil)

func (a *Authorizer) check(r *http.Request, need []server.Scope) error {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || raw == "" || !strings.EqualFold(scheme, "bearer") {
		return ErrTokenRequired
	}
	now := a.now()
	claims, err := a.verify(raw, now)
	if err != nil {
		return err
	}
	for _, n := range need {
		for _, act := range n.Actions {
			if !claims.Allows(n.Type, n.Name, act) {
				return fmt.Errorf("%w: %s:%s:%s not granted to %q", ErrInsufficientScope, n.Type, n.Name, act, claims.Subject)
			}
		}
	}
	return nil
}

// verify checks a token, remembering valid ones so that a client sending
// the same token on each request pays for the signature (and chain) check
// once; the time window is checked on every use.
func (a *Authorizer) verify(raw string, now time.Time) (*Claims, error) {
	key := sha256.Sum256([]byte(raw))
	if c, ok := a.cache.get(key); ok {
		if now.After(c.Expiry.Time().Add(Leeway)) {
			return nil, fmt.Errorf("%w (cached token)", ErrExpired)
		}
		if now.Before(c.NotBefore.Time().Add(-Leeway)) {
			return nil, fmt.Errorf("%w (cached token)", ErrNotYetValid)
		}
		return c, nil
	}
	c, err := a.v.Verify(raw, now)
	if err != nil {
		return nil, err
	}
	a.cache.put(key, c)
	return c, nil
}

// challenge is the WWW-Authenticate value: the reference's format, with
// each resource's actions in the order the route lists them.
func (a *Authorizer) challenge(need []server.Scope, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Bearer realm=%q,service=%q", a.realm, a.service)
	scopes := make([]string, 0, len(need))
	for _, n := range need {
		scopes = append(scopes, n.Type+":"+n.Name+":"+strings.Join(n.Actions, ","))
	}
	if len(scopes) > 0 {
		fmt.Fprintf(&b, ",scope=%q", strings.Join(scopes, " "))
	}
	switch {
	case errors.Is(err, ErrInsufficientScope):
		b.WriteString(`,error="insufficient_scope"`)
	case errors.Is(err, ErrInvalidToken):
		b.WriteString(`,error="invalid_token"`)
	}
	return b.String()
}

// accessDetail is the UNAUTHORIZED detail: every action needed, one
// record each, as the reference sends it.
func accessDetail(need []server.Scope) []notaryapi.AccessRecord {
	out := []notaryapi.AccessRecord{}
	for _, n := range need {
		for _, act := range n.Actions {
			out = append(out, notaryapi.AccessRecord{Type: n.Type, Name: n.Name, Action: act})
		}
	}
	return out
}

// tokenCache remembers verified tokens; it is bounded and simply emptied
// when full (tokens live minutes, and a refill costs one verification per
// client).
type tokenCache struct {
	mu sync.Mutex
	m  map[[32]byte]*Claims
}

const tokenCacheSize = 4096

func (c *tokenCache) get(k [32]byte) (*Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *tokenCache) put(k [32]byte, v *Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheSize {
		c.m = make(map[[32]byte]*Claims)
	}
	c.m[k] = v
}
