package cli

// Logging in to a trust server that asks for credentials (a 401 token
// challenge): notary's ways (NOTARY_AUTH, a prompt on a terminal) and
// docker's (config.json credentials and credential helpers for the
// registry host), for every command that talks to a trust server.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/credentials"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/registry"
)

// notaryActions are the token scopes the notary CLI asks for, by command:
// reads "pull", writes "push,pull", and "*" to rotate a key on the server
// or delete the repository there. Commands not listed read.
var notaryActions = map[string]string{
	"init": "push,pull", "add": "push,pull", "addhash": "push,pull", "remove": "push,pull",
	"publish": "push,pull", "witness": "push,pull",
	"delegation add": "push,pull", "delegation remove": "push,pull", "delegation purge": "push,pull",
	"key rotate": "*", "delete": "*",
}

// noteCommand records the command being run, for its token scope.
func (a *app) noteCommand(c *cobra.Command) {
	path := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
	a.scope = "pull"
	if s, ok := notaryActions[path]; ok {
		a.scope = s
	}
}

// keychain finds credentials for a trust server's token service:
// NOTARY_AUTH, then Docker's configuration for the registry host, then a
// prompt when standard input is a terminal.
func (a *app) keychain() *credentials.Keychain {
	k := &credentials.Keychain{
		Getenv: a.env.Getenv,
		Docker: func() (registry.Keychain, error) {
			return registry.LoadDockerConfig((&dockerTrust{a: a}).configDir(), nil)
		},
	}
	if a.env.Terminal && a.env.ReadPassword != nil {
		k.Prompt = a.promptLogin
	}
	return k
}

// promptLogin asks for a username and password on the terminal, as notary
// does when NOTARY_AUTH is not set.
func (a *app) promptLogin(_ context.Context, host string) (string, string, error) {
	fmt.Fprintf(a.env.Stderr, "The trust server at %s wants a login (set %s to skip this prompt).\nUsername: ", printable.Quote(host), credentials.EnvNotaryAuth)
	line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
	user := strings.TrimSpace(line)
	if user == "" {
		if err != nil {
			return "", "", fmt.Errorf("no username read: %w", err)
		}
		return "", "", nil // anonymous
	}
	fmt.Fprint(a.env.Stderr, "Password: ")
	pass, err := a.env.ReadPassword()
	fmt.Fprintln(a.env.Stderr)
	if err != nil {
		return "", "", err
	}
	return user, strings.TrimRight(string(pass), "\r\n"), nil
}

// registryHost is whose credentials a notary command logs in with: the
// GUN's first component when it names a host (example.com/…,
// host:5000/…, localhost/…), else the trust server's host.
func registryHost(gun, server string) string {
	first, _, found := strings.Cut(gun, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	if u, err := parseURL(server); err == nil && u.Host != "" {
		return u.Host
	}
	return first
}

// withLogin wraps the trust server's transport so that a 401 challenge is
// answered with a token got with the keychain's credentials, for the
// command's scope.
func (a *app) withLogin(base http.RoundTripper, server, gun, reg, actions string) http.RoundTripper {
	return &registry.AuthTransport{
		Base:       base,
		Keychain:   a.keychain(),
		Server:     server,
		Registry:   reg,
		Repository: gun,
		Actions:    actions,
	}
}
