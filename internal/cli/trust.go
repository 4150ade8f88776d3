package cli

// `signet trust …`: docker trust's commands, reading the same Docker
// configuration (DOCKER_CONFIG, its trust/ and tls/ directories, registry
// credentials) and the same environment variables, so a user can switch
// between `docker trust` and `signet trust` on one repository.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/trustdir"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Docker's names.
const (
	releasesRole     = policy.ReleasesRole
	repoAdminSigner  = "Repo Admin"
	dockerHubNotary  = "https://notary.docker.io"
	defaultSignerKey = "signer" // docker trust key load's default --name
)

// validSignerName is docker's rule for signer and key names.
var validSignerName = policy.SignerNamePattern

// dockerTrust holds the flags of `signet trust` and `signet verify`.
type dockerTrust struct {
	a *app
	// insecure skips verification of the trust server's certificate; only
	// ever set by --insecure-skip-tls-verify.
	insecure bool
	// rootKeys pin the root of the repository (signet verify --root-key).
	rootKeys []*keys.PublicKey
	// warnedInsecure: the --insecure-skip-tls-verify warning was printed.
	warnedInsecure bool
}

func (d *dockerTrust) command() *cobra.Command {
	c := &cobra.Command{
		Use:   "trust",
		Short: "Manage trust on images as docker trust does (no Docker daemon needed)",
		Long: `The docker trust commands, daemonless. They read $DOCKER_CONFIG (default ~/.docker):
its trust/ directory for keys and metadata, tls/<server host:port>/ for the trust server's
CA (*.crt) and client certificate (*.cert, *.key), and config.json for registry credentials.
The trust server is DOCKER_CONTENT_TRUST_SERVER (an https URL), else https://notary.docker.io
for Docker Hub, else https://<registry host:port>. Passphrases come from
DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE and DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE, or a prompt.

Unlike docker, signet verifies the trust server's certificate for loopback registries too
(127.0.0.1, localhost, ::1); --insecure-skip-tls-verify turns verification off explicitly.`,
	}
	d.addInsecureFlag(c)
	c.AddCommand(d.inspectCommand(), d.signCommand(), d.revokeCommand(), d.signerCommand(), d.keyCommand())
	return c
}

func (d *dockerTrust) addInsecureFlag(c *cobra.Command) {
	c.PersistentFlags().BoolVar(&d.insecure, "insecure-skip-tls-verify", false,
		"do not verify the trust server's TLS certificate (docker does this silently for loopback registries; signet only when asked)")
}

// configDir is $DOCKER_CONFIG, default ~/.docker.
func (d *dockerTrust) configDir() string {
	if v := d.a.env.Getenv("DOCKER_CONFIG"); v != "" {
		return d.a.expand(v)
	}
	return filepath.Join(d.a.home(), ".docker")
}

// serverURL finds the trust server of a registry as docker does, unless
// --server is given; guessed reports the last resort, the registry's own
// host.
func (d *dockerTrust) serverURL(ref registry.Reference) (server string, guessed bool, err error) {
	if d.a.server != "" {
		return d.a.server, false, nil
	}
	if v := d.a.env.Getenv("DOCKER_CONTENT_TRUST_SERVER"); v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return "", false, usageError("valid https URL required for trust server, got DOCKER_CONTENT_TRUST_SERVER=%s", v)
		}
		return v, false, nil
	}
	if ref.IsDockerHub() {
		return dockerHubNotary, false, nil
	}
	return "https://" + ref.Registry, true, nil
}

// dockerSettings are settings plus the CA files of the Docker tls/
// directory, kept apart because their paths hold a colon (host:port), the
// list separator of settings.caFile.
type dockerSettings struct {
	*settings
	cas []string
}

// settings are the connection settings for ref's repository: flags, then
// the Docker configuration.
func (d *dockerTrust) settings(ref registry.Reference) (*dockerSettings, error) {
	server, guessed, err := d.serverURL(ref)
	if err != nil {
		return nil, err
	}
	if err := checkServerURL(server); err != nil {
		return nil, err
	}
	u, _ := url.Parse(server)
	s := &settings{
		trustDir:   firstNonEmpty(d.a.trustDir, filepath.Join(d.configDir(), "trust")),
		server:     server,
		docker:     true,
		skipVerify: d.insecure,
		guessed:    guessed,
		rootKeys:   d.rootKeys,
	}
	if d.a.configFile != "" {
		// -c: notary's configuration, for its trust_pinning (docker has
		// none; nothing else of it applies to docker's commands).
		if s.pinning, err = d.a.readNotaryConfig(d.a.configFile, true); err != nil {
			return nil, err
		}
	}
	cas, cert, key, err := readCertsDir(filepath.Join(d.configDir(), "tls", u.Host))
	if err != nil {
		return nil, err
	}
	ds := &dockerSettings{settings: s}
	if d.a.tlsCACert != "" {
		s.caFile = d.a.tlsCACert
	} else {
		ds.cas = cas
	}
	s.certFile = firstNonEmpty(d.a.tlsCert, cert)
	s.keyFile = firstNonEmpty(d.a.tlsKey, key)
	if d.insecure && !d.warnedInsecure {
		d.warnedInsecure = true
		fmt.Fprintf(d.a.env.Stderr, "WARNING: not verifying the TLS certificate of the trust server %s (--insecure-skip-tls-verify)\n", u.Host)
	}
	return ds, nil
}

// httpClient is settings.httpClient with the tls/ directory's CAs added to
// the system's, as docker does.
func (ds *dockerSettings) httpClient() (*http.Client, error) {
	hc, err := ds.settings.httpClient()
	if err != nil || len(ds.cas) == 0 {
		return hc, err
	}
	pems, pool, err := readCAs(ds.cas)
	if err != nil {
		return nil, err
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case *http.Transport:
		tr = t
	case *unionRoots:
		tr = t.host
	default:
		return nil, fmt.Errorf("trust server: unexpected transport %T", hc.Transport)
	}
	hc.Transport = trustHostAndSystemRoots(tr, pool, pems) // roots.go
	return hc, nil
}

// readCertsDir reads a Docker certificate directory: *.crt are CA
// certificates, and a *.cert with the *.key of the same name is a client
// certificate. A missing directory is empty.
func readCertsDir(dir string) (cas []string, cert, key string, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", "", nil
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".crt"):
			cas = append(cas, filepath.Join(dir, n))
		case strings.HasSuffix(n, ".cert"):
			k := strings.TrimSuffix(n, ".cert") + ".key"
			if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
				return nil, "", "", fmt.Errorf("client certificate %s has no key %s", filepath.Join(dir, n), k)
			}
			if cert == "" {
				cert, key = filepath.Join(dir, n), filepath.Join(dir, k)
			}
		case strings.HasSuffix(n, ".key"):
			if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(n, ".key")+".cert")); err != nil {
				return nil, "", "", fmt.Errorf("client key %s has no certificate %s", filepath.Join(dir, n), strings.TrimSuffix(n, ".key")+".cert")
			}
		}
	}
	sort.Strings(cas)
	return cas, cert, key, nil
}

// keychain reads the registry credentials of the Docker configuration.
func (d *dockerTrust) keychain() (registry.Keychain, error) {
	return registry.LoadDockerConfig(d.configDir(), nil)
}

// serverTransport routes requests to the trust server's origin (scheme,
// host and port) through the transport configured for it (its CA, client
// certificate), and every other request through other (the system's
// roots). A registry whose token realm is the trust server's built-in
// token service is then reached with the CA the user gave for that server
// (--tlscacert, or $DOCKER_CONFIG/tls/<host:port>/), as the trust server
// itself is.
type serverTransport struct {
	server       *url.URL
	trust, other http.RoundTripper
}

func (t *serverTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if sameOrigin(req.URL, t.server) {
		return t.trust.RoundTrip(req)
	}
	return t.other.RoundTrip(req)
}

// sameOrigin compares scheme, host and port (default ports made explicit).
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if u.Scheme == "http" {
			return "80"
		}
		return "443"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// transport returns the transport of ref's trust server, routed as
// serverTransport: the trust server and its token realm through the trust
// server's TLS settings, other hosts through the system's.
func (d *dockerTrust) transport(ref registry.Reference) (http.RoundTripper, *dockerSettings, error) {
	s, err := d.settings(ref)
	if err != nil {
		return nil, nil, err
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(s.server)
	if err != nil {
		return nil, nil, err
	}
	return &serverTransport{server: u, trust: hc.Transport, other: http.DefaultTransport}, s, nil
}

// openRepo opens ref's repository; requests the trust server answers with
// a 401 challenge are retried with the registry's credentials, as docker
// authenticates to Notary.
func (d *dockerTrust) openRepo(ref registry.Reference, actions string) (*repo, error) {
	s, err := d.settings(ref)
	if err != nil {
		return nil, err
	}
	r, err := d.a.openRepo(s.settings, ref.GUN())
	if err != nil {
		return nil, err
	}
	// Docker's configuration is read now, as docker reads it at start: a
	// broken config.json is an error even before a server asks for
	// credentials.
	dc, err := d.keychain()
	if err != nil {
		return nil, err
	}
	kc := d.a.keychain()
	kc.Docker = func() (registry.Keychain, error) { return dc, nil }
	hc, err := s.httpClient()
	if err != nil {
		return nil, err
	}
	base, _, err := d.transport(ref)
	if err != nil {
		return nil, err
	}
	hc.Transport = &registry.AuthTransport{
		Base:       base,
		Keychain:   kc,
		Server:     s.server,
		Registry:   ref.Registry,
		Repository: ref.GUN(),
		Actions:    actions,
	}
	remote, err := client.NewRemote(s.server, hc, r.gun)
	if err != nil {
		return nil, err
	}
	r.remote = remote
	r.reader.Remote = remote
	return r, nil
}

// parseRef parses an image reference for a trust command.
func parseRef(s string) (registry.Reference, error) {
	ref, err := registry.ParseReference(s)
	if err != nil {
		return ref, usageError("%v", err)
	}
	return ref, nil
}

// heldKeys lists the canonical IDs of the keys in the trust directory.
func heldKeys(ks *trustdir.KeyStore) (map[string]trustdir.KeyInfo, error) {
	list, err := ks.List()
	if err != nil {
		return nil, err
	}
	out := map[string]trustdir.KeyInfo{}
	for _, k := range list {
		out[k.ID] = k
	}
	return out, nil
}

// signableRoles are the roles docker signs a target into: every direct
// child delegation of targets whose paths allow the name and one of whose
// keys is held locally; or targets itself if there are no delegations.
func signableRoles(v *trust.Repo, held map[string]trustdir.KeyInfo, target string) ([]string, error) {
	t := v.Targets(tuf.RoleTargets)
	if t == nil || len(t.Signed.Delegations.Roles) == 0 {
		return []string{tuf.RoleTargets}, nil
	}
	var out []string
	for _, dr := range t.Signed.Delegations.Roles {
		if !tuf.PathAllowed(v.Paths(dr.Name), target) {
			continue
		}
		for _, id := range dr.KeyIDs {
			if k := t.Signed.Delegations.Keys[id]; k != nil {
				if _, ok := held[k.CanonicalID()]; ok {
					out = append(out, dr.Name)
					break
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no valid signing keys for delegation roles of %s: none of their keys is in %s; ask the repository's administrator to add yours (signet trust signer add --key KEY.pub NAME %s)", v.GUN(), "the trust directory", v.GUN())
	}
	sort.Strings(out)
	return out, nil
}

// newSignerKey makes a P-256 key, the only kind docker and notary generate.
func newSignerKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// initRepo initialises a repository as docker does: the local root key
// with the lowest ID (or a new one), a new targets key, and a snapshot key
// held by the server.
func (d *dockerTrust) initRepo(ctx context.Context, r *repo) error {
	roots, err := r.keys.RootKeys()
	if err != nil {
		return err
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].ID < roots[j].ID })
	var root *keys.PrivateKey
	if len(roots) > 0 {
		k, ok, err := r.keys.Load(roots[0].ID)
		if err != nil {
			return err
		}
		if ok {
			root = k
		}
	}
	opts := client.InitOptions{}
	if root != nil {
		opts.Root = root
	} else {
		k, err := newSignerKey()
		if err != nil {
			return err
		}
		if _, err := r.keys.Add(k, tuf.RoleRoot, ""); err != nil {
			return err
		}
		opts.Root = k
	}
	tk, err := newSignerKey()
	if err != nil {
		return err
	}
	if _, err := r.keys.Add(tk, tuf.RoleTargets, r.gun.String()); err != nil {
		return err
	}
	opts.Targets = tk
	if err := client.Initialize(ctx, r.remote, r.cache, opts, d.a.now()); err != nil {
		return r.settings.explainTLS(err)
	}
	return nil
}

// confirm asks a yes/no question on stdin; only "y" or "yes" agree.
func (d *dockerTrust) confirm(question string) bool {
	fmt.Fprintf(d.a.env.Stdout, "%s [y/N] ", question)
	var answer string
	_, _ = fmt.Fscanln(d.a.env.Stdin, &answer)
	fmt.Fprintln(d.a.env.Stdout)
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

var _ http.RoundTripper = (*registry.AuthTransport)(nil)
