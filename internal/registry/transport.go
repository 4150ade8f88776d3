package registry

import (
	"fmt"
	"net/http"
	"sync"
)

// AuthTransport answers the 401 challenges of a trust server the way the
// Docker CLI does: with a token from the realm the challenge names,
// obtained with the registry's credentials for the scope
// repository:<Repository>:<Actions>. The token is kept for later requests.
type AuthTransport struct {
	Base       http.RoundTripper
	Keychain   Keychain
	Registry   string // whose credentials to use
	Repository string // the GUN
	Actions    string // "pull" or "push,pull"

	mu   sync.Mutex
	auth string
}

// RoundTrip implements http.RoundTripper.
func (t *AuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	t.mu.Lock()
	auth := t.auth
	t.mu.Unlock()
	first := req
	if auth != "" {
		first = req.Clone(req.Context())
		first.Header.Set("Authorization", auth)
	}
	resp, err := base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	if challenge == "" || (req.Body != nil && req.GetBody == nil) {
		return resp, nil
	}
	drain(resp)
	c := &Client{Transport: base, Keychain: t.Keychain}
	actions := t.Actions
	if actions == "" {
		actions = "pull"
	}
	auth, err = c.authorizeScope(req.Context(), Reference{Registry: t.Registry, Repository: t.Repository}, challenge, actions)
	if err != nil {
		return nil, fmt.Errorf("trust server %s: %w", req.URL.Host, err)
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
	retry.Header.Set("Authorization", auth)
	return base.RoundTrip(retry)
}
