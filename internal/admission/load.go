package admission

// Loading a checked policy file into what decisions read: globs compiled
// and ordered, verification policies built, keys, CAs and secrets read.

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/registry"
)

// Policy is a loaded policy file.
type Policy struct {
	cfg     *Config
	spaces  []*nsPolicy // most specific first
	noMatch NoMatch

	trustHTTP    *http.Transport // to the trust server (trust_ca)
	registryHTTP *http.Transport // to registries (their CAs)
	auditHTTP    *http.Transport // to the audit log
	keychain     registry.Keychain
	auditToken   string
}

type nsPolicy struct {
	name       string
	mode       Mode
	breakGlass bool
	noMatch    NoMatch
	rules      []*rulePolicy // most specific first
	line       int
}

// rulePolicy is one rule, ready to decide.
type rulePolicy struct {
	pattern string
	re      *regexp.Regexp
	ns      string
	line    int
	dct     *dctRule
	cosign  []cosignKey
}

// name identifies the rule in messages.
func (r *rulePolicy) name() string {
	return fmt.Sprintf("rule %q of namespace %q (line %d)", r.pattern, r.ns, r.line)
}

type dctRule struct {
	pol     policy.Policy
	pinning policy.Pinning
	// pinKey identifies the pinning in the trust cache: the same GUN
	// verified under another root key is another entry.
	pinKey string
}

type cosignKey struct {
	file string
	pub  crypto.PublicKey
	hint string
}

// Load reads a policy file and everything it names. dir resolves relative
// file names (the policy file's directory).
func Load(b []byte, dir string) (*Policy, error) {
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, err
	}
	return compile(cfg, dir)
}

// LoadFile is Load of a file.
func LoadFile(file string) (*Policy, error) {
	b, err := readLimited(file, maxPolicyFile)
	if err != nil {
		return nil, err
	}
	p, err := Load(b, filepath.Dir(file))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

func readLimited(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, limit)
	}
	return b, nil
}

func compile(cfg *Config, dir string) (*Policy, error) {
	abs := func(f string) string {
		if f == "" || filepath.IsAbs(f) {
			return f
		}
		return filepath.Join(dir, f)
	}
	p := &Policy{cfg: cfg, noMatch: cfg.Default}

	pool, err := certPool(abs(cfg.TrustCA))
	if err != nil {
		return nil, atLine(cfg.line, "trust_ca: %v", err)
	}
	p.trustHTTP = transport(pool)

	regPool, err := x509.SystemCertPool()
	if err != nil || regPool == nil {
		regPool = x509.NewCertPool()
	}
	creds := map[string]registry.Credentials{}
	for host, r := range cfg.Registries {
		if r.CA != "" {
			b, err := readLimited(abs(r.CA), maxKeyFile)
			if err != nil {
				return nil, atLine(r.line, "registry %s: ca: %v", host, err)
			}
			if !regPool.AppendCertsFromPEM(b) {
				return nil, atLine(r.line, "registry %s: ca %s holds no PEM certificate", host, r.CA)
			}
		}
		c := registry.Credentials{Username: r.Username, Password: r.Password}
		if r.PasswordFile != "" {
			s, err := readSecret(abs(r.PasswordFile))
			if err != nil {
				return nil, atLine(r.line, "registry %s: password_file: %v", host, err)
			}
			c.Password = s
		}
		creds[strings.ToLower(host)] = c
	}
	p.registryHTTP = transport(regPool)
	p.keychain = keychain(creds)

	if a := cfg.Audit; a.URL != "" {
		caFile := a.CA
		if caFile == "" {
			caFile = cfg.TrustCA
		}
		apool, err := certPool(abs(caFile))
		if err != nil {
			return nil, atLine(a.line, "audit.ca: %v", err)
		}
		p.auditHTTP = transport(apool)
		p.auditToken = a.Token
		if a.TokenFile != "" {
			if p.auditToken, err = readSecret(abs(a.TokenFile)); err != nil {
				return nil, atLine(a.line, "audit.token_file: %v", err)
			}
		}
	}

	rootKeys := map[string]*keys.PublicKey{}
	cosignKeys := map[string]cosignKey{}
	for _, ns := range cfg.Spaces {
		np := &nsPolicy{name: ns.Name, mode: ns.Mode, breakGlass: ns.BreakGlass, noMatch: ns.Default, line: ns.line}
		if np.noMatch == "" {
			np.noMatch = cfg.Default
		}
		for _, r := range ns.Rules {
			re, _ := compileGlob(r.Images) // checked by ParseConfig
			rp := &rulePolicy{pattern: r.Images, re: re, ns: ns.Name, line: r.line}
			if d := r.DCT; d != nil {
				pol, _ := d.policy() // checked by ParseConfig
				dr := &dctRule{pol: pol}
				if d.RootKey != "" {
					f := abs(d.RootKey)
					k, ok := rootKeys[f]
					if !ok {
						if k, err = readRootKey(f); err != nil {
							return nil, atLine(d.line, "root_key: %v", err)
						}
						rootKeys[f] = k
					}
					dr.pinning = policy.Pinning{RootKeys: []*keys.PublicKey{k}}
					dr.pinKey = k.CanonicalID()
				}
				rp.dct = dr
			}
			if c := r.Cosign; c != nil {
				for _, f := range c.Keys {
					f = abs(f)
					k, ok := cosignKeys[f]
					if !ok {
						pub, err := readCosignKey(f)
						if err != nil {
							return nil, atLine(c.line, "cosign key: %v", err)
						}
						hint, err := oci.KeyHint(pub)
						if err != nil {
							return nil, atLine(c.line, "cosign key %s: %v", f, err)
						}
						k = cosignKey{file: f, pub: pub, hint: hint}
						cosignKeys[f] = k
					}
					rp.cosign = append(rp.cosign, k)
				}
			}
			np.rules = append(np.rules, rp)
		}
		sortSpecific(np.rules, func(r *rulePolicy) string { return r.pattern })
		p.spaces = append(p.spaces, np)
	}
	sortSpecific(p.spaces, func(n *nsPolicy) string { return n.name })
	return p, nil
}

// transport is an HTTP transport to TLS servers trusting pool (the system
// roots when nil), with bounded dials and handshakes.
func transport(pool *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 64
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = 8 * time.Second
	return t
}

// noRedirect is the redirect policy of the clients that carry the
// webhook's own bearer tokens (the audit log, the Kubernetes API): neither
// server redirects, so a 3xx is an error and the token goes nowhere but
// the URL configured. (Go's client would re-send the Authorization header
// to another port, or over plain http, of the same host name; and an
// audit record answered 201 by another server would count as recorded.)
func noRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("redirected to %s: not followed; configure the final URL", req.URL.Redacted())
}

// certPool reads a CA bundle; "" is the system roots (nil).
func certPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := readLimited(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func readSecret(file string) (string, error) {
	b, err := readLimited(file, maxSecretFile)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}

// readRootKey reads a repository root key: its certificate (as
// root.json holds it) or its public key.
func readRootKey(file string) (*keys.PublicKey, error) {
	b, err := readLimited(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	k, err := keys.ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// readCosignKey reads a cosign public key (cosign.pub) or a certificate.
func readCosignKey(file string) (crypto.PublicKey, error) {
	b, err := readLimited(file, maxKeyFile)
	if err != nil {
		return nil, err
	}
	return keys.ParseCosignPublicKeyPEM(b, file)
}

// keychain gives the policy file's registry credentials.
type keychain map[string]registry.Credentials

// Credentials implements registry.Keychain.
func (k keychain) Credentials(_ context.Context, host string) (registry.Credentials, error) {
	host = strings.ToLower(host)
	if c, ok := k[host]; ok {
		return c, nil
	}
	if host == "index.docker.io" {
		for _, alias := range []string{"docker.io", "registry-1.docker.io"} {
			if c, ok := k[alias]; ok {
				return c, nil
			}
		}
	}
	return registry.Credentials{}, nil
}

// Namespaces lists the namespace entries, in the order they are tried.
func (p *Policy) Namespaces() []string {
	out := make([]string, len(p.spaces))
	for i, n := range p.spaces {
		out[i] = n.name
	}
	return out
}

// Rules lists a namespace entry's image patterns, in the order they are
// tried.
func (p *Policy) Rules(namespace string) []string {
	for _, n := range p.spaces {
		if n.name == namespace {
			var out []string
			for _, r := range n.rules {
				out = append(out, r.pattern)
			}
			return out
		}
	}
	return nil
}

// errNoAudit is break-glass without an audit log to record it in.
var errNoAudit = errors.New("no audit log is configured (audit.url)")
