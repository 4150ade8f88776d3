package servercmd

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/server"
)

// AuthConfig is the `auth:` section of the YAML config. Without it (or
// with it empty) every request is allowed, as with the reference server
// without auth.
//
//	auth:
//	  type: token                       # the only type
//	  realm: https://host:4443/auth/token   # token service clients are sent to
//	  service: signet                   # this server's name; tokens' aud
//	  issuer: signet                    # the only accepted iss
//	  rootcertbundle: /etc/signet/token-ca.pem   # trusted signing certificates
//	  jwks: /etc/signet/token-keys.json          # and/or trusted keys by kid
//	  # the built-in token service at /auth/token (one machine):
//	  htpasswd: /etc/signet/htpasswd    # bcrypt users, shared with docker-registry
//	  admins: [alice]                   # users granted "*" (delete, key rotation)
//	  audiences: [signet, registry]     # services it issues for (default: [service])
//	  anonymous_pull: [signet]          # services anyone may pull from without a
//	                                    #   password (the notary CLI reads anonymously)
//	  signing_key: …                    # PEM key and certificate; default: made
//	  signing_cert: …                   #   once under <data-dir>/auth/
//	  token_ttl: 5m
type AuthConfig struct {
	Type           string        `yaml:"type"`
	Realm          string        `yaml:"realm"`
	Service        string        `yaml:"service"`
	Issuer         string        `yaml:"issuer"`
	RootCertBundle string        `yaml:"rootcertbundle"`
	JWKS           string        `yaml:"jwks"`
	Htpasswd       string        `yaml:"htpasswd"`
	Admins         []string      `yaml:"admins"`
	Audiences      []string      `yaml:"audiences"`
	AnonymousPull  []string      `yaml:"anonymous_pull"`
	SigningKey     string        `yaml:"signing_key"`
	SigningCert    string        `yaml:"signing_cert"`
	TokenTTL       time.Duration `yaml:"token_ttl"`
}

func (a AuthConfig) enabled() bool {
	return a.Type != "" || a.Realm != "" || a.Service != "" || a.Issuer != "" || a.RootCertBundle != "" ||
		a.JWKS != "" || a.Htpasswd != "" || len(a.Admins) > 0 || len(a.Audiences) > 0 ||
		len(a.AnonymousPull) > 0 || a.SigningKey != "" || a.SigningCert != "" || a.TokenTTL != 0
}

// validate checks the auth section; listen is the server's address, from
// which the built-in issuer's default realm is made.
func (a AuthConfig) validate(listen string) error {
	if !a.enabled() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("auth: "+format, args...)) }
	if a.Type != "token" {
		bad("type %q: the only type is token", a.Type)
	}
	if a.Service == "" {
		bad("service is required (the name tokens carry in aud)")
	}
	if a.Issuer == "" {
		bad("issuer is required (the iss of accepted tokens)")
	}
	builtin := a.Htpasswd != ""
	if a.RootCertBundle == "" && a.JWKS == "" && !builtin {
		bad("no trusted token signing key: set rootcertbundle, jwks, or htpasswd (built-in token service)")
	}
	realm := a.Realm
	if realm == "" && builtin {
		var err error
		if realm, err = defaultRealm(listen); err != nil {
			bad("realm: %v; set it explicitly", err)
		}
	} else if realm == "" {
		bad("realm is required (the token service URL clients are sent to)")
	}
	if realm != "" {
		if u, err := url.Parse(realm); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("realm %q: want an absolute http(s) URL", realm)
		}
	}
	if !builtin {
		if len(a.Admins) > 0 || len(a.Audiences) > 0 || len(a.AnonymousPull) > 0 || a.SigningKey != "" || a.SigningCert != "" || a.TokenTTL != 0 {
			bad("admins, audiences, anonymous_pull, signing_key, signing_cert and token_ttl configure the built-in token service and need htpasswd")
		}
	}
	if (a.SigningKey == "") != (a.SigningCert == "") {
		bad("signing_key and signing_cert go together")
	}
	if a.TokenTTL != 0 && (a.TokenTTL < time.Minute || a.TokenTTL > 24*time.Hour) {
		bad("token_ttl %v: between 1m and 24h", a.TokenTTL)
	}
	if len(a.Audiences) > 0 && !slices.Contains(a.Audiences, a.Service) {
		bad("audiences %q must include this server's service %q", a.Audiences, a.Service)
	}
	for _, svc := range a.AnonymousPull {
		if svc != a.Service && !slices.Contains(a.Audiences, svc) {
			bad("anonymous_pull %q: not a service the token service issues for (service or audiences)", svc)
		}
	}
	for _, f := range []struct{ key, path string }{
		{"rootcertbundle", a.RootCertBundle}, {"jwks", a.JWKS}, {"htpasswd", a.Htpasswd},
		{"signing_key", a.SigningKey}, {"signing_cert", a.SigningCert},
	} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad("%s: %v", f.key, err)
			}
		}
	}
	return errors.Join(errs...)
}

// defaultRealm is the built-in token service on the listen address, with
// an unspecified host shown as 127.0.0.1.
func defaultRealm(listen string) (string, error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if p == "0" {
		return "", errors.New("cannot derive it from a listen address with port 0")
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		h = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(h, p) + auth.TokenPath, nil
}

// authFromConfig builds the authorizer, and the route group of the
// built-in token service if configured. Both are nil without auth
// configuration. a has been validated.
func authFromConfig(a AuthConfig, listen, dataDir string, now func() time.Time, log *slog.Logger) (server.Authorizer, []server.Group, error) {
	if !a.enabled() {
		return nil, nil, nil
	}
	keys := auth.NewTrustedKeys()
	if a.RootCertBundle != "" {
		b, err := os.ReadFile(a.RootCertBundle)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: rootcertbundle: %w", err)
		}
		certs, err := auth.ParseCertBundle(b)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: rootcertbundle %s: %w", a.RootCertBundle, err)
		}
		for _, c := range certs {
			if err := keys.AddCertificate(c); err != nil {
				return nil, nil, fmt.Errorf("auth: rootcertbundle %s: %w", a.RootCertBundle, err)
			}
		}
	}
	if a.JWKS != "" {
		b, err := os.ReadFile(a.JWKS)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: jwks: %w", err)
		}
		set, err := auth.ParseJWKS(b)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: jwks %s: %w", a.JWKS, err)
		}
		for id, k := range set {
			if err := keys.AddKey(id, k); err != nil {
				return nil, nil, err
			}
		}
	}
	realm := a.Realm
	var groups []server.Group
	if a.Htpasswd != "" {
		users, err := auth.OpenHtpasswd(a.Htpasswd)
		if err != nil {
			return nil, nil, err
		}
		var chain []*x509.Certificate
		var is auth.IssuerConfig
		if a.SigningKey != "" {
			is.Signer, chain, err = auth.LoadSigningKey(a.SigningKey, a.SigningCert)
		} else {
			var created bool
			is.Signer, chain, created, err = auth.EnsureSigningKey(filepath.Join(dataDir, "auth"), now())
			if created {
				log.Info("made the token signing key of the built-in token service", "certificate", filepath.Join(dataDir, "auth", auth.SigningCertFile))
			}
		}
		if err != nil {
			return nil, nil, err
		}
		// This server trusts its own tokens.
		if err := keys.AddCertificate(chain[len(chain)-1]); err != nil {
			return nil, nil, err
		}
		audiences := a.Audiences
		if len(audiences) == 0 {
			audiences = []string{a.Service}
		}
		is.Issuer, is.Audiences, is.Users, is.Admins, is.AnonymousPull = a.Issuer, audiences, users, a.Admins, a.AnonymousPull
		is.Chain, is.TTL, is.Now, is.Logger = chain, a.TokenTTL, now, log.With("component", "token-service")
		h, err := auth.NewIssuer(is)
		if err != nil {
			return nil, nil, err
		}
		groups = append(groups, h.Routes())
		if realm == "" {
			if realm, err = defaultRealm(listen); err != nil {
				return nil, nil, err
			}
		}
		log.Info("built-in token service", "realm", realm, "issuer", a.Issuer, "audiences", audiences,
			"certificate", chainSource(a, dataDir), "admins", a.Admins, "anonymous_pull", a.AnonymousPull)
	}
	authz, err := auth.NewAuthorizer(auth.AuthorizerConfig{Realm: realm, Service: a.Service, Issuer: a.Issuer, Keys: keys, Now: now})
	if err != nil {
		return nil, nil, err
	}
	return authz, groups, nil
}

func chainSource(a AuthConfig, dataDir string) string {
	if a.SigningCert != "" {
		return a.SigningCert
	}
	return filepath.Join(dataDir, "auth", auth.SigningCertFile)
}
