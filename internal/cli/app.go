package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/trustdir"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/version"
)

// app holds the global flags and the environment of one run.
type app struct {
	env Env
	// printedJSON is set once a command printed its -o json result, so a
	// failure after it (a report with failed entries) adds no second object.
	printedJSON bool

	configFile string
	trustDir   string
	server     string
	tlsCACert  string
	tlsCert    string
	tlsKey     string
	debug      bool
	verbose    bool
	output     string

	// now returns the time; time.Now unless a test sets it.
	now func() time.Time

	// tokens are the PKCS#11 tokens this run logged in to.
	tokens tokenSessions

	// scope is the token scope the command asks a trust server for
	// (login.go).
	scope string
}

func newApp(env Env) *app { return &app{env: env, now: time.Now} }

// Defaults of the notary client.
const (
	defaultServer = "https://notary-server:4443"
)

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "signet",
		Short:         "Sign and verify container images with Notary v1 / Docker Content Trust",
		Long:          "signet is a drop-in for the notary client (the commands at the top level) and for docker trust (signet trust …), and verifies images for deploy pipelines (signet verify).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVarP(&a.configFile, "configFile", "c", "", "path to the notary configuration file (default ~/.notary/config.json)")
	f.StringVarP(&a.trustDir, "trustDir", "d", "", "directory where the trust data is kept (default ~/.notary)")
	f.StringVarP(&a.server, "server", "s", "", "URL of the trust server (default "+defaultServer+")")
	f.StringVar(&a.tlsCACert, "tlscacert", "", "CA certificate file that the trust server's certificate must chain to")
	f.StringVar(&a.tlsCert, "tlscert", "", "TLS client certificate file for the trust server")
	f.StringVar(&a.tlsKey, "tlskey", "", "TLS client key file for the trust server")
	f.BoolVarP(&a.debug, "debug", "D", false, "debug output")
	f.BoolVarP(&a.verbose, "verbose", "v", false, "verbose output")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.Version = version.String("signet")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(a.commands()...)
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version of this signet (module version, VCS revision, modified or not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(a.env.Stdout, version.String("signet"))
			return err
		},
	})
	root.PersistentPreRun = func(c *cobra.Command, _ []string) { a.noteCommand(c) }
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%v (see '%s --help')", err, c.CommandPath())
	})
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		globalsFor(c, func() { help(c, args) })
	})
	usage := root.UsageFunc()
	root.SetUsageFunc(func(c *cobra.Command) error {
		var err error
		globalsFor(c, func() { err = usage(c) })
		return err
	})
	return root
}

func (a *app) jsonOutput() bool { return a.output == "json" }

func (a *app) printJSON(v any) error {
	a.printedJSON = true
	enc := json.NewEncoder(a.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) home() string {
	if h := a.env.Getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

func (a *app) expand(p string) string {
	if p == "~" {
		return a.home()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(a.home(), p[2:])
	}
	return p
}

// notaryConfig is the notary client's config.json.
type notaryConfig struct {
	TrustDir     string `json:"trust_dir"`
	RemoteServer struct {
		URL           string `json:"url"`
		RootCA        string `json:"root_ca"`
		TLSClientCert string `json:"tls_client_cert"`
		TLSClientKey  string `json:"tls_client_key"`
		SkipTLSVerify bool   `json:"skipTLSVerify"`
	} `json:"remote_server"`
	TrustPinning struct {
		Certs       map[string][]string `json:"certs"`
		CA          map[string]string   `json:"ca"`
		DisableTOFU bool                `json:"disable_tofu"`
	} `json:"trust_pinning"`
	// AuditKey is the verifier key of the trust server's audit log
	// (signet's own key, ignored by notary): signet verify and signet list
	// then check that the timestamp they receive is in the log.
	AuditKey string `json:"audit_key"`
	dir      string
}

// settings are the effective connection and trust-directory settings.
type settings struct {
	trustDir   string
	server     string
	caFile     string
	certFile   string
	keyFile    string
	skipVerify bool
	pinning    *notaryConfig
	// rootKeys pin every repository's root to these keys (signet verify
	// --root-key), ahead of the configuration's trust_pinning.
	rootKeys []*keys.PublicKey
	docker   bool // docker trust conventions (passphrases, messages)
	// guessed: the trust server was guessed from the registry's name (no
	// -s, no DOCKER_CONTENT_TRUST_SERVER).
	guessed bool
}

// readNotaryConfig reads notary's config.json at path (a missing file is
// an empty configuration unless explicit).
func (a *app) readNotaryConfig(path string, explicit bool) (*notaryConfig, error) {
	path = a.expand(path)
	var cfg notaryConfig
	b, err := readFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		cfg.dir = filepath.Dir(path)
	case explicit || !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("config file: %w", err)
	}
	return &cfg, nil
}

// notarySettings resolves flags over config.json over defaults, as notary.
func (a *app) notarySettings() (*settings, error) {
	cfgPath := a.configFile
	explicit := cfgPath != ""
	if !explicit {
		cfgPath = filepath.Join(a.home(), ".notary", "config.json")
	}
	cfg, err := a.readNotaryConfig(cfgPath, explicit)
	if err != nil {
		return nil, err
	}
	rel := func(p string) string { // config paths are relative to the config file
		p = a.expand(p)
		if p != "" && !filepath.IsAbs(p) && cfg.dir != "" {
			return filepath.Join(cfg.dir, p)
		}
		return p
	}
	s := &settings{pinning: cfg}
	s.trustDir = firstNonEmpty(a.trustDir, a.expand(cfg.TrustDir), filepath.Join(a.home(), ".notary"))
	s.server = firstNonEmpty(a.server, cfg.RemoteServer.URL, defaultServer)
	s.caFile = firstNonEmpty(a.tlsCACert, rel(cfg.RemoteServer.RootCA))
	s.certFile = firstNonEmpty(a.tlsCert, rel(cfg.RemoteServer.TLSClientCert))
	s.keyFile = firstNonEmpty(a.tlsKey, rel(cfg.RemoteServer.TLSClientKey))
	s.skipVerify = cfg.RemoteServer.SkipTLSVerify
	return s, nil
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

// checkServerURL refuses a trust server that is not https: trust data
// and credentials never travel over plain HTTP.
func checkServerURL(server string) error {
	u, err := url.Parse(server)
	switch {
	case err != nil || u.Host == "":
		return usageError("the trust server URL %q is not valid; give https://HOST[:PORT] with -s or remote_server.url", server)
	case u.Scheme != "https":
		return usageError("the trust server must be https: %s (signet sends no trust data or credentials over plain %s; give https://%s)", server, u.Scheme, u.Host)
	}
	return nil
}

// maxFile bounds the configuration, certificate, key and PIN files signet
// reads (each a few kilobytes): a link to /dev/zero fails instead of
// exhausting memory.
const maxFile = 16 << 20

// readFile reads a configuration, certificate or key file of at most
// maxFile bytes.
func readFile(name string) ([]byte, error) { return atomicfile.ReadFile(name, maxFile) }

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// httpClient builds the client for the trust server: TLS 1.2+, the given CA
// as the only root when one is given, optional client certificate, and
// timeouts.
func (s *settings) httpClient() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.skipVerify} //nolint:gosec // opt-in only
	pems, pool, err := readCAs(s.caFiles())
	if err != nil {
		return nil, err
	}
	tc.RootCAs = pool // nil without CA files: the system's roots
	if s.certFile != "" || s.keyFile != "" {
		pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	if s.docker && len(pems) > 0 {
		// docker adds its CAs to the system's roots (roots.go)
		return &http.Client{Transport: trustHostAndSystemRoots(tr, pool, pems), Timeout: 5 * time.Minute}, nil
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}, nil
}

// readCAs reads CA certificate files, each of which must hold a PEM
// certificate, and returns their contents and a pool of them (nil for no
// files).
func readCAs(files []string) ([][]byte, *x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil, nil
	}
	var pems [][]byte
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := readFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("trust server CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("trust server CA %s holds no PEM certificate", f)
		}
		pems = append(pems, pem)
	}
	return pems, pool, nil
}

func (s *settings) caFiles() []string {
	if s.caFile == "" {
		return nil
	}
	return strings.Split(s.caFile, string(os.PathListSeparator))
}

// explainTLS turns a certificate error into steps a person can follow,
// and says how to name the trust server when it was guessed and could not
// be used.
func (s *settings) explainTLS(err error) error {
	if err == nil {
		return nil
	}
	return s.explainLogin(s.explainGuess(s.explainCertificate(err)))
}

// explainLogin says how to log in when the trust server (or its token
// service) refused the credentials, or their absence.
func (s *settings) explainLogin(err error) error {
	if !errors.Is(err, client.ErrUnauthorized) && !errors.Is(err, registry.ErrUnauthorized) {
		return err
	}
	how := "set NOTARY_AUTH to base64 of user:password (NOTARY_AUTH=$(printf %s 'user:password' | base64)), or log in with docker login to the registry whose credentials it shares, or run on a terminal to be asked"
	return fmt.Errorf("%w\nThe trust server %s refused the request: it wants credentials this command did not have or that were wrong; %s", err, s.server, how)
}

// explainGuess adds, to an error of a trust server guessed from the
// registry's name (unreachable, not TLS, or without the repository), how
// to name the right one.
func (s *settings) explainGuess(err error) error {
	if !s.guessed || !(unreachable(err) || errors.Is(err, client.ErrNoTrustData)) {
		return err
	}
	return fmt.Errorf("%w\nThe trust server %s was guessed from the image's registry. If the registry keeps its trust data elsewhere, name that server: export DOCKER_CONTENT_TRUST_SERVER=https://HOST:PORT (or pass -s https://HOST:PORT)", err, s.server)
}

// unreachable reports an error of the connection itself (client.Unreachable).
func unreachable(err error) bool { return client.Unreachable(err) }

// certificateError reports a trust server whose certificate did not
// verify: a setting to fix (the CA), never a reason to go offline.
func certificateError(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &ve)
}

// explainCertificate turns a certificate error into steps a person can
// follow.
func (s *settings) explainCertificate(err error) error {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	if !errors.As(err, &ua) && !errors.As(err, &ci) && !errors.As(err, &hn) {
		return err
	}
	host := s.server
	if u, perr := url.Parse(s.server); perr == nil {
		host = u.Host
	}
	if errors.As(err, &hn) {
		return fmt.Errorf("%w\nThe trust server's certificate does not name %q; connect with a name it carries", err, host)
	}
	if s.docker {
		return fmt.Errorf("%w\nThe trust server's certificate is not signed by a CA this machine trusts. Put its CA certificate at $DOCKER_CONFIG/tls/%s/ca.crt (default ~/.docker/tls/%s/ca.crt)", err, host, host)
	}
	return fmt.Errorf("%w\nThe trust server's certificate is not signed by a CA this machine trusts. Pass its CA certificate with --tlscacert FILE, or set remote_server.root_ca in ~/.notary/config.json", err)
}

// repo is everything a command needs for one repository.
type repo struct {
	gun      tuf.GUN
	settings *settings
	dir      trustdir.Dir
	remote   *client.Remote
	cache    *trustdir.Cache
	keys     *trustdir.KeyStore
	changes  changes.List
	reader   *client.Reader
}

// parseGUN validates a repository name given on the command line: every
// command that names a repository goes through it before the name becomes
// a path in the trust directory or on the server.
func parseGUN(s string) (tuf.GUN, error) {
	gun, err := tuf.ParseGUN(s)
	if err != nil {
		return "", usageError("%v", err)
	}
	return gun, nil
}

// openRepo prepares the repository gun with the given settings.
func (a *app) openRepo(s *settings, name string) (*repo, error) {
	gun, err := parseGUN(name)
	if err != nil {
		return nil, err
	}
	if err := checkServerURL(s.server); err != nil {
		return nil, err
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, err
	}
	scope := a.scope
	if scope == "" {
		scope = "pull"
	}
	hc.Transport = a.withLogin(hc.Transport, s.server, gun.String(), registryHost(gun.String(), s.server), scope)
	remote, err := client.NewRemote(s.server, hc, gun)
	if err != nil {
		return nil, err
	}
	if _, err := a.expiries(); err != nil {
		return nil, err
	}
	dir := trustdir.Dir{Path: s.trustDir}
	cache, err := dir.Cache(gun)
	if err != nil {
		return nil, err
	}
	cl, err := dir.Changelist(gun)
	if err != nil {
		return nil, err
	}
	r := &repo{gun: gun, settings: s, dir: dir, remote: remote, cache: cache, changes: cl}
	r.keys = a.keyStore(dir, s.docker)
	r.reader = &client.Reader{Remote: remote, Cache: r.cache, Now: a.now, Pinning: s.trustPinning()}
	return r, nil
}

// update fetches and verifies the repository, explaining TLS failures.
func (r *repo) update(ctx context.Context) (*trust.Repo, error) {
	v, err := r.reader.Update(ctx)
	if err != nil {
		return nil, r.settings.explainTLS(err)
	}
	return v, nil
}

// stagedChanges reads the changelist: the files, and the changes they hold
// (an error names a file that holds none signet can apply).
func (r *repo) stagedChanges() ([]changes.Staged, []changes.Change, error) {
	staged, err := r.changes.Read()
	if err != nil {
		return nil, nil, err
	}
	cs, err := r.changes.Changes(staged)
	return staged, cs, err
}

// publisher returns a Publisher over the repository's key store.
func (a *app) publisher(r *repo) *client.Publisher {
	exp, _ := a.expiries() // checked by openRepo
	return &client.Publisher{Reader: r.reader, Keys: r.keys, Now: a.now, Expiry: exp}
}

// trustPinning is config.json's trust_pinning, its CA files relative to
// the configuration file.
func (s *settings) trustPinning() policy.Pinning {
	cfg := s.pinning
	if cfg == nil {
		return policy.Pinning{RootKeys: s.rootKeys}
	}
	tp := cfg.TrustPinning
	p := policy.Pinning{Certs: tp.Certs, DisableTOFU: tp.DisableTOFU, RootKeys: s.rootKeys}
	for prefix, f := range tp.CA {
		if !filepath.IsAbs(f) && cfg.dir != "" {
			f = filepath.Join(cfg.dir, f)
		}
		if p.CA == nil {
			p.CA = map[string]string{}
		}
		p.CA[prefix] = f
	}
	return p
}
