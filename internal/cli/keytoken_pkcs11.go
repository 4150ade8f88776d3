//go:build pkcs11

package cli

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/trustdir"
	"github.com/signet-trust/signet/internal/tuf"
)

// tokenSessions are the tokens this run logged in to, by module and token;
// Main closes them.
type tokenSessions struct {
	open map[string]*pkcs11.Token
}

func (ts *tokenSessions) close() {
	for k, t := range ts.open {
		t.Close()
		delete(ts.open, k)
	}
}

// needPKCS11 is nil: this build has PKCS#11.
func needPKCS11(string) error { return nil }

// tokenURI parses a pkcs11: URI, taking the module from SIGNET_PKCS11_MODULE
// when the URI has none. The module must be allowed (moduleAllowList): a
// URI from a command line or a trust directory cannot choose the library
// this process loads.
func (a *app) tokenURI(s string) (pkcs11.URI, error) {
	u, err := pkcs11.ParseURI(s)
	if err != nil {
		return u, err
	}
	if u.ModulePath == "" {
		u.ModulePath = a.env.Getenv(envPKCS11Module)
	}
	if u.ModulePath == "" {
		return u, fmt.Errorf("%q names no PKCS#11 module: add ?module-path=/path/to/module.so or set %s", s, envPKCS11Module)
	}
	if u.Token == "" && u.Serial == "" {
		return u, fmt.Errorf("%q names no token: add token=<label> or serial=<serial>", s)
	}
	allow, err := a.moduleAllowList()
	if err != nil {
		return u, err
	}
	if err := allow.Check(u.ModulePath, envPKCS11Modules); err != nil {
		return u, err
	}
	return u, nil
}

// moduleAllowList is the modules this run may load: those listed in
// SIGNET_PKCS11_MODULES, else the well-known SoftHSM2, OpenSC and ykcs11
// modules present on the machine; and SIGNET_PKCS11_MODULE, which the
// user set as well.
func (a *app) moduleAllowList() (pkcs11.ModuleAllowList, error) {
	l := pkcs11.DefaultModules()
	if v := a.env.Getenv(envPKCS11Modules); v != "" {
		var err error
		if l, err = pkcs11.ParseModuleList(v); err != nil {
			return l, fmt.Errorf("%s: %w", envPKCS11Modules, err)
		}
	}
	if m := a.env.Getenv(envPKCS11Module); filepath.IsAbs(m) {
		return pkcs11.NewModuleAllowList(append(l.Paths(), m)...)
	}
	return l, nil
}

// tokenPIN finds the PIN: SIGNET_PKCS11_PIN, the URI's pin-source, the
// file SIGNET_PKCS11_PIN_FILE names, or a prompt on a terminal.
func (a *app) tokenPIN(u pkcs11.URI) (string, error) {
	if v := a.env.Getenv(envPKCS11PIN); v != "" {
		return v, nil
	}
	for _, f := range []string{u.PINSource, a.env.Getenv(envPKCS11PINFile)} {
		if f == "" {
			continue
		}
		b, err := readFile(a.expand(f))
		if err != nil {
			return "", fmt.Errorf("reading the PIN of %s: %w", u.TokenName(), err)
		}
		if pin := strings.TrimRight(string(b), "\r\n"); pin != "" {
			return pin, nil
		}
		return "", fmt.Errorf("the PIN file %s is empty", f)
	}
	if a.env.Terminal && a.env.ReadPassword != nil {
		fmt.Fprintf(a.env.Stderr, "Enter the user PIN of %s: ", u.TokenName())
		b, err := a.env.ReadPassword()
		fmt.Fprintln(a.env.Stderr)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return "", fmt.Errorf("no PIN for %s: set %s, or %s to a file holding it, or add pin-source=file:PATH to the URI", u.TokenName(), envPKCS11PIN, envPKCS11PINFile)
}

// token logs in to the token a URI names, once per run.
func (a *app) token(ctx context.Context, u pkcs11.URI) (*pkcs11.Token, error) {
	key := u.ModulePath + "\x00" + u.Token + "\x00" + u.Serial
	if t := a.tokens.open[key]; t != nil {
		return t, nil
	}
	pin, err := a.tokenPIN(u)
	if err != nil {
		return nil, err
	}
	t, err := pkcs11.Open(ctx, pkcs11.ConfigFromURI(u, pin))
	if err != nil {
		return nil, err
	}
	if a.tokens.open == nil {
		a.tokens.open = map[string]*pkcs11.Token{}
	}
	a.tokens.open[key] = t
	return t, nil
}

// openTokenKey reaches a key the trust directory says is on a token.
func (a *app) openTokenKey(ctx context.Context, ref trustdir.TokenRef) (crypto.Signer, error) {
	u, err := a.tokenURI(ref.URI)
	if err != nil {
		return nil, err
	}
	t, err := a.token(ctx, u)
	if err != nil {
		return nil, err
	}
	return t.FindURI(ctx, u)
}

// tokenRootKey finds (or creates, inside the token) the root key a
// --root-pkcs11 URI names, and records it in the trust directory.
// defaultLabel is the key label when the URI names none.
func (a *app) tokenRootKey(ctx context.Context, r *repo, uriFlag, defaultLabel string) (crypto.Signer, error) {
	u, err := a.tokenURI(uriFlag)
	if err != nil {
		return nil, usageError("--root-pkcs11: %v", err)
	}
	if u.Object == "" && len(u.ID) == 0 {
		u.Object = defaultLabel
	}
	t, err := a.token(ctx, u)
	if err != nil {
		return nil, err
	}
	k, err := t.FindURI(ctx, u)
	switch {
	case errors.Is(err, pkcs11.ErrKeyNotFound) && u.Object != "" && len(u.ID) == 0:
		if k, err = t.GenerateECDSA(ctx, u.Object); err != nil {
			return nil, err
		}
		fmt.Fprintf(a.env.Stdout, "Generated a new ECDSA P-256 root key inside %s, labelled %q\n", u.TokenName(), u.Object)
	case err != nil:
		return nil, err
	default:
		fmt.Fprintf(a.env.Stdout, "Using the root key labelled %q on %s\n", k.Label(), u.TokenName())
	}
	ref := k.URI()
	ref.PINSource = u.PINSource
	if u.ModulePath == a.env.Getenv(envPKCS11Module) && !strings.Contains(uriFlag, "module-path=") {
		ref.ModulePath = "" // keep following the environment
	}
	id, err := r.keys.AddTokenRef(k.Public(), tuf.RoleRoot, ref.String())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.env.Stdout, "Root key ID %s is held on the token (%s)\n", id, ref.String())
	return k, nil
}
