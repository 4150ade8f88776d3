// Package credentials is where signet finds what a user logs in to a trust
// server (and its token service) with, the ways notary and docker do:
//
//  1. NOTARY_AUTH, base64 of "user:password", as the notary CLI reads it;
//  2. Docker's configuration for the registry host: config.json's auths,
//     credsStore and credHelpers (credential helpers), as docker trust
//     reads it;
//  3. a prompt for a username and password, when standard input is a
//     terminal (as notary prompts);
//
// and otherwise none (anonymous). A Keychain is a registry.Keychain: it
// only finds credentials, when a server's 401 challenge asks for them; the
// registry package decides where they go (bound to the origin that
// challenged, over https or to loopback only) and turns them into a token.
//
// Invariants: a Keychain asks the prompt at most once per registry host in
// a run and reads no file and runs no helper before it is asked; a
// malformed NOTARY_AUTH is an error, never silently anonymous; nothing is
// written anywhere.
package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/signet-trust/signet/internal/registry"
)

// EnvNotaryAuth is notary's variable: base64("user:password").
const EnvNotaryAuth = "NOTARY_AUTH"

// ErrNotaryAuth reports a NOTARY_AUTH that is not base64 of user:password.
var ErrNotaryAuth = errors.New("credentials: NOTARY_AUTH must be base64 of user:password")

// Prompt asks a person for a username and password for host.
type Prompt func(ctx context.Context, host string) (username, password string, err error)

// Keychain finds credentials in NOTARY_AUTH, then Docker's configuration,
// then a prompt. The zero value finds none.
type Keychain struct {
	// Getenv reads NOTARY_AUTH (nil: not read).
	Getenv func(string) string
	// Docker loads Docker's configuration (config.json with its helpers)
	// when first needed; nil: not used.
	Docker func() (registry.Keychain, error)
	// Prompt asks on a terminal; nil: never.
	Prompt Prompt

	mu       sync.Mutex
	docker   registry.Keychain
	prompted map[string]registry.Credentials
}

// Credentials implements registry.Keychain.
func (k *Keychain) Credentials(ctx context.Context, host string) (registry.Credentials, error) {
	if k.Getenv != nil {
		if v := k.Getenv(EnvNotaryAuth); v != "" {
			return NotaryAuth(v)
		}
	}
	if k.Docker != nil {
		k.mu.Lock()
		if k.docker == nil {
			kc, err := k.Docker()
			if err != nil {
				k.mu.Unlock()
				return registry.Credentials{}, err
			}
			k.docker = kc
		}
		kc := k.docker
		k.mu.Unlock()
		c, err := kc.Credentials(ctx, host)
		if err != nil || !c.Empty() {
			return c, err
		}
	}
	if k.Prompt == nil {
		return registry.Credentials{}, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.prompted[host]; ok {
		return c, nil
	}
	user, pass, err := k.Prompt(ctx, host)
	if err != nil {
		return registry.Credentials{}, fmt.Errorf("credentials for %s: %w", host, err)
	}
	c := registry.Credentials{Username: user, Password: pass}
	if k.prompted == nil {
		k.prompted = map[string]registry.Credentials{}
	}
	k.prompted[host] = c
	return c, nil
}

// NotaryAuth decodes a NOTARY_AUTH value.
func NotaryAuth(v string) (registry.Credentials, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return registry.Credentials{}, fmt.Errorf("%w (it is not base64: %v)", ErrNotaryAuth, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return registry.Credentials{}, fmt.Errorf("%w (no user:password inside)", ErrNotaryAuth)
	}
	return registry.Credentials{Username: user, Password: pass}, nil
}

var _ registry.Keychain = (*Keychain)(nil)
