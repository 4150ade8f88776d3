package registry

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/signet-trust/signet/internal/origin"
)

// AuthTransport answers the 401 challenges of a trust server the way the
// Docker CLI does: with a token from the realm the challenge names,
// obtained with the registry's credentials for the scope
// repository:<Repository>:<Actions>. The answer is kept for later
// requests, bound to the trust server's origin.
//
// Only challenges from Server's origin (its scheme, host and port) are
// answered, and the credentials are set only on requests to that origin:
// a trust server that redirects elsewhere does not take them along, and a
// host it redirects to cannot ask for them. Credentials are never sent over
// plain http to a host that is not loopback.
type AuthTransport struct {
	Base       http.RoundTripper
	Keychain   Keychain
	Server     string // the trust server's URL; required
	Registry   string // whose credentials to use
	Repository string // the GUN
	Actions    string // "pull" or "push,pull"

	mu   sync.Mutex
	auth origin.Auth
}

// RoundTrip implements http.RoundTripper.
func (t *AuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	server, err := origin.Parse(t.Server)
	if err != nil {
		return nil, fmt.Errorf("registry: AuthTransport needs the trust server's URL: %w", err)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	t.mu.Lock()
	auth := t.auth
	t.mu.Unlock()
	first := req.Clone(req.Context())
	auth.Set(first)
	resp, err := base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	if challenge == "" || (req.Body != nil && req.GetBody == nil) || origin.Of(req.URL) != server {
		return resp, nil
	}
	drain(resp)
	c := &Client{Transport: base, Keychain: t.Keychain}
	actions := t.Actions
	if actions == "" {
		actions = "pull"
	}
	auth, err = c.authorizeScope(req.Context(), Reference{Registry: t.Registry, Repository: t.Repository}, server, challenge, actions)
	if err != nil {
		return nil, fmt.Errorf("trust server %s: %w", server, err)
	}
	t.mu.Lock()
	t.auth = auth
	t.mu.Unlock()
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	auth.Set(retry)
	return base.RoundTrip(retry)
}
