// Package servercmd is signet-server's command line: it reads flags and the
// optional YAML config, prepares the data directory (database, local CA,
// key passphrase), wires the store, the custodian and the HTTP API
// together, serves until its context ends, and shuts down gracefully.
package servercmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/daemon"
	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// Config is everything signet-server can be told, by flag or YAML file.
type Config struct {
	Listen  string `yaml:"listen"`
	DataDir string `yaml:"data_dir"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TLSNoPostQuantum drops the hybrid post-quantum key exchange (tlskex.go).
	TLSNoPostQuantum bool   `yaml:"tls_no_post_quantum"`
	DB               string `yaml:"db"`
	Signer           string `yaml:"signer"`
	KeyAlgorithm     string `yaml:"key_algorithm"`
	LogLevel         string `yaml:"log_level"`
	LogFormat        string `yaml:"log_format"`
	// MaxUploadBytes bounds a metadata upload.
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// PprofListen, when set, serves Go's profiler on this loopback address.
	PprofListen string `yaml:"pprof_listen"`
	// MetricsListen, when set, serves /metrics over plain HTTP on this
	// address (and the main address keeps it behind auth, if any).
	MetricsListen string `yaml:"metrics_listen"`
	// InsecureNoAuth allows a non-loopback Listen without an auth section.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
	// Replicas and Retention: see replicas.go.
	Replicas  ReplicasConfig  `yaml:"replicas"`
	Retention RetentionConfig `yaml:"retention"`
	// Auth configures token authentication (YAML only; see AuthConfig).
	Auth AuthConfig `yaml:"auth"`
	// Limits bound what one client may make the server hold, store or
	// spend (YAML only; see LimitsConfig).
	Limits LimitsConfig `yaml:"limits"`
	// Service configures the signing service (service.go).
	Service ServiceConfig `yaml:"service"`
	// Audit configures the audit log (audit.go).
	Audit AuditConfig `yaml:"audit"`
	// RemoteSigner: TLS to the --signer (signer.go); top-level YAML keys.
	RemoteSigner `yaml:",inline"`
}

// Defaults of the one-machine setup.
func defaults() Config {
	return Config{
		Listen: "127.0.0.1:4443", DataDir: "./signet-data", KeyAlgorithm: custody.AlgorithmECDSA,
		LogLevel: "info", LogFormat: "json",
	}
}

// command is signet-server's command line, for its help and errors.
var command = daemon.Command{
	Program: "signet-server",
	Usage: `Usage:
  signet-server [flags]
  signet-server healthcheck [flags]   (the same flags or --config; exit 0 when healthy)
  signet-server version

Runs the Notary v1-compatible trust server. With no flags it listens on
127.0.0.1:4443, keeps a SQLite database under ./signet-data, and makes a
local CA there if no certificate is given.

A server on an address other than loopback needs token authentication (an
auth: section in --config) or, to serve anyone who can reach it without
credentials, --insecure-no-auth. Every flag has a YAML key of the same name
with underscores (see docs/configuration.md); flags win over the file.`,
	Examples: `  signet-server
  signet-server --listen 127.0.0.1:24999 --data-dir /tmp/signet-data
  signet-server --config /etc/signet/server.yaml        # listen: 0.0.0.0:4443 and an auth: section
  signet-server --db 'postgres://signet@db.internal/signet?sslmode=verify-full' --metrics-listen 127.0.0.1:9464
  signet-server healthcheck --config /etc/signet/server.yaml`,
}

// Main runs signet-server with args (without the program name) and returns
// the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheckMain(ctx, args[1:], stdout, stderr)
		case "version":
			daemon.Version(stdout, command.Program)
			return 0
		}
	}
	cfg, err := parseConfig(args, stdout)
	switch {
	case errors.Is(err, flag.ErrHelp), errors.Is(err, daemon.ErrVersion):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "signet-server: %v\n", err)
		return 2
	}
	// A process-wide setting, so here and not in Run (which tests call in
	// process).
	daemon.KeepHeapFloor(ctx, daemon.DefaultHeapFloor, getenv)
	if err := Run(ctx, cfg, getenv, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "signet-server: %v\n", err)
		return 1
	}
	return 0
}

// parseConfig reads the flags and the --config file and validates the
// result; --help and --version are printed on stdout.
func parseConfig(args []string, stdout io.Writer) (Config, error) {
	cfg, err := readConfig(args, stdout)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// readConfig reads the flags and the --config file, without validating.
func readConfig(args []string, stdout io.Writer) (Config, error) {
	cfg := defaults()
	fs := flag.NewFlagSet("signet-server", flag.ContinueOnError)
	var flagCfg Config
	fs.StringVar(&flagCfg.Listen, "listen", cfg.Listen, "`address` to listen on (host:port); not loopback needs auth or --insecure-no-auth")
	fs.StringVar(&flagCfg.DataDir, "data-dir", cfg.DataDir, "`directory` for the database, local CA and generated secrets")
	fs.StringVar(&flagCfg.TLSCert, "tls-cert", "", "TLS certificate `file` (PEM); a local CA is used when empty")
	fs.StringVar(&flagCfg.TLSKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.StringVar(&flagCfg.DB, "db", "", "database `url`: sqlite:/path/file.db or postgres://… (default sqlite:<data-dir>/signet.db)")
	fs.StringVar(&flagCfg.Signer, "signer", "", "`url` of a signet-signer holding the online keys (default: keys held by this server)")
	fs.StringVar(&flagCfg.KeyAlgorithm, "key-algorithm", cfg.KeyAlgorithm, "algorithm of new online keys: ecdsa (P-256) or ed25519")
	fs.StringVar(&flagCfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&flagCfg.PprofListen, "pprof-listen", "", "loopback `address` to serve Go's profiler on (off by default)")
	fs.StringVar(&flagCfg.MetricsListen, "metrics-listen", "", "`address` to serve /metrics on over plain HTTP, instead of the main address (e.g. 127.0.0.1:9464)")
	fs.BoolVar(&flagCfg.InsecureNoAuth, "insecure-no-auth", false, "serve on a non-loopback address without token authentication: anyone who can reach it may publish and delete")
	configFile := fs.String("config", "", "YAML `file` with the same settings (flags win)")
	sf := addSignerFlags(fs)
	if err := command.Parse(fs, args); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			command.Help(stdout, fs)
		case errors.Is(err, daemon.ErrVersion):
			daemon.Version(stdout, command.Program)
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see signet-server --help)", fs.Arg(0))
	}
	if *configFile != "" {
		raw, err := os.ReadFile(*configFile)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", *configFile, err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = flagCfg.Listen
		case "data-dir":
			cfg.DataDir = flagCfg.DataDir
		case "tls-cert":
			cfg.TLSCert = flagCfg.TLSCert
		case "tls-key":
			cfg.TLSKey = flagCfg.TLSKey
		case "db":
			cfg.DB = flagCfg.DB
		case "signer":
			cfg.Signer = flagCfg.Signer
		case "key-algorithm":
			cfg.KeyAlgorithm = flagCfg.KeyAlgorithm
		case "log-level":
			cfg.LogLevel = flagCfg.LogLevel
		case "pprof-listen":
			cfg.PprofListen = flagCfg.PprofListen
		case "metrics-listen":
			cfg.MetricsListen = flagCfg.MetricsListen
		case "insecure-no-auth":
			cfg.InsecureNoAuth = flagCfg.InsecureNoAuth
		}
	})
	sf.apply(fs, &cfg)
	return cfg, nil
}

func (c Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %v", c.Listen, err))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.KeyAlgorithm != custody.AlgorithmECDSA && c.KeyAlgorithm != custody.AlgorithmED25519 {
		errs = append(errs, fmt.Errorf("--key-algorithm %q: use ecdsa or ed25519", c.KeyAlgorithm))
	}
	errs = append(errs, c.validateSigner())
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: %v", c.LogLevel, err))
	}
	if c.PprofListen != "" {
		h, _, err := net.SplitHostPort(c.PprofListen)
		if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsLoopback() {
			errs = append(errs, fmt.Errorf("--pprof-listen %q: must be a loopback address such as 127.0.0.1:6060", c.PprofListen))
		}
	}
	if c.MaxUploadBytes < 0 {
		errs = append(errs, fmt.Errorf("max_upload_bytes %d: must be positive (0 means the default of 100 MiB)", c.MaxUploadBytes))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format %q: use json or text", c.LogFormat))
	}
	errs = append(errs, c.Replicas.validate(), c.Retention.validate(), c.Limits.validate())
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-listen %q: %v", c.MetricsListen, err))
		}
	}
	errs = append(errs, c.Auth.validate(c.Listen), c.Service.validate(), c.Audit.validate(), c.failClosed())
	return errors.Join(errs...)
}

// failClosed refuses a server that anyone on the network could write to:
// a listen address other than loopback with no auth section, unless
// insecure_no_auth says so.
func (c Config) failClosed() error {
	if c.Auth.enabled() || c.InsecureNoAuth || isLoopback(c.Listen) {
		return nil
	}
	return fmt.Errorf("--listen %s is reachable from other machines and no auth: section is configured, so anyone who can reach it could publish to and delete any repository; "+
		"configure token authentication (an auth: section in --config, see docs/operations.md) or, to serve without credentials on purpose, "+
		"pass --insecure-no-auth (insecure_no_auth: true in the config file)", c.Listen)
}

// isLoopback reports whether a listen address accepts connections from
// this machine only: a loopback IP or localhost. An empty host, an
// unspecified address or any other name may be reachable from elsewhere.
func isLoopback(listen string) bool {
	h, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Run serves until ctx ends, then shuts down gracefully: it stops accepting
// connections, lets requests in flight finish (each acknowledged write is
// already committed), and closes the database.
func Run(ctx context.Context, cfg Config, getenv func(string) string, stdout, stderr io.Writer) error {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	handler := daemon.LogHandler(stderr, lvl, cfg.LogFormat)
	log := slog.New(handler)
	if !cfg.Auth.enabled() && !isLoopback(cfg.Listen) {
		log.Warn("serving without authentication on an address other machines may reach (--insecure-no-auth): anyone who can connect may publish to and delete any repository", "listen", cfg.Listen)
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	dbURL := cfg.DB
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(dataDir, "signet.db")
	}
	// Startup steps run to completion even if a signal arrives meanwhile, so
	// a first start is never left half done.
	setup := context.WithoutCancel(ctx)
	st, err := sqlstore.Open(setup, dbURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer st.Close()

	cust, err := openCustodian(setup, cfg, st, getenv, dataDir, log) // signer.go
	if err != nil {
		return err
	}

	auditLog, err := openAuditLog(setup, cfg, st, cust, log) // audit.go
	if err != nil {
		return err
	}

	authz, groups, err := authFromConfig(cfg.Auth, cfg.Limits.logins(), cfg.Listen, dataDir, time.Now, log)
	if err != nil {
		return err
	}
	repos := &lateRepos{}
	var worker *notify.Worker
	if !cfg.Service.Disabled {
		if worker, err = notifier(cfg.Service, st, getenv, log); err != nil { // service.go
			return err
		}
	}
	svc, err := openService(cfg, st, cust, getenv, dataDir, log, repos, func() { worker.Wake() }, auditLog)
	if err != nil {
		return err
	}
	var svcAuthz server.ServiceAuthorizer
	if svc != nil {
		groups = append(groups, ServiceGroup(svc))
		svcAuthz = svc
		dash, err := DashboardGroup(svc, st, auditLog, cfg.Service.BaseURL, log) // ui.go
		if err != nil {
			return err
		}
		groups = append(groups, dash)
	}
	if auditLog != nil {
		g, err := AuditGroup(auditLog, svc, log.With("component", "audit"))
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	ar := runAudit(ctx, auditLog, log)
	defer ar.stop()
	firstCheckpoint(setup, auditLog, log)
	bg := startBackground(ctx, cfg, st, log)
	defer bg.stop()
	metrics := server.NewMetrics(nil)
	metrics.MustRegister(auditCollectors(auditLog)...)
	scfg := server.Config{
		Store: st, Custodian: cust, Logger: log, MaxUploadBytes: cfg.MaxUploadBytes, Metrics: metrics,
		Checks:     withSignerCheck(map[string]func(context.Context) error{"DB operational": st.Ping}, cust),
		Authorizer: authz, Groups: groups, ServiceAuthorizer: svcAuthz,
		AuditLog: auditLog, ReadyChecks: auditReady(auditLog),

		// Replicas (replicas.go).
		Invalidations: bg.invalidations, CacheMaxStale: bg.cacheMaxStale,
	}
	cfg.Limits.apply(&scfg) // limits.go
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	bg.run(srv)
	repos.srv = srv
	if svc != nil {
		bg.runService(svc, worker)
	}

	tlsCfg, ca, err := serverTLS(cfg, dataDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var metricsAddr string
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(handler, slog.LevelDebug)}
		go func() { _ = ms.Serve(mln) }()
		defer ms.Close()
		metricsAddr = mln.Addr().String()
		if !isLoopback(cfg.MetricsListen) {
			log.Warn("metrics served over plain HTTP without authentication on an address other machines may reach", "metrics_listen", cfg.MetricsListen)
		}
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelDebug),
	}
	addr := ln.Addr().String()
	// The key before the listening line: whoever waits for that line
	// (a test, a supervisor) has the key when it sees it.
	printAuditKey(stdout, auditLog)
	fmt.Fprintf(stdout, "signet-server: listening on https://%s (data in %s, database %s)\n", addr, dataDir, redactURL(dbURL))
	if metricsAddr != "" {
		fmt.Fprintf(stdout, "signet-server: metrics on http://%s/metrics\n", metricsAddr)
	}
	if ca != nil {
		shown := addr
		if h, p, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
				shown = net.JoinHostPort("127.0.0.1", p)
			}
		}
		printTrustSteps(stdout, shown, ca)
	}

	if cfg.PprofListen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Addr: cfg.PprofListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
		log.Warn("profiler listening", "addr", cfg.PprofListen)
	}

	refreshCtx, stopRefresh := context.WithCancel(context.WithoutCancel(ctx))
	refreshDone := make(chan struct{})
	go func() { defer close(refreshDone); srv.RunRefresher(refreshCtx, time.Minute) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-serveErr:
		stopRefresh()
		<-refreshDone
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = hs.Shutdown(shutCtx)
	stopRefresh()
	<-refreshDone
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "signet-server: stopped")
	return nil
}

func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 {
			return u[:i+3] + "…" + u[i+3+j:]
		}
	}
	return u
}

const passphraseFile = "key-passphrase"

// keyPassphrase returns SIGNET_KEY_PASSPHRASE, or the passphrase kept in the
// data directory, generating it (mode 0600) on first start. generated names
// the file when it is used.
func keyPassphrase(getenv func(string) string, dataDir string, sealed bool) (pass []byte, generated string, err error) {
	if p := getenv("SIGNET_KEY_PASSPHRASE"); p != "" {
		return []byte(p), "", nil
	}
	name := filepath.Join(dataDir, passphraseFile)
	b, err := os.ReadFile(name)
	if err == nil {
		if p := bytes.TrimSpace(b); len(p) > 0 {
			return p, name, nil
		}
		return nil, "", fmt.Errorf("%s is empty", name)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	if sealed {
		return nil, "", fmt.Errorf("SIGNET_KEY_PASSPHRASE is not set, and the online keys in this database were sealed with a passphrase that is not in %s: set SIGNET_KEY_PASSPHRASE to the passphrase used before", name)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	p := []byte(base64.RawURLEncoding.EncodeToString(raw))
	if err := atomicfile.Write(name, append(p, '\n'), 0o600); err != nil {
		return nil, "", fmt.Errorf("write %s: %w", name, err)
	}
	return p, name, nil
}

func serverTLS(cfg Config, dataDir string) (*tls.Config, *localCA, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	tuneTLS(t, cfg.TLSNoPostQuantum) // tlskex.go
	if cfg.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
		return t, nil, nil
	}
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && h != "" && !slices.Contains(hosts, h) {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	ca, err := ensureLocalCA(filepath.Join(dataDir, "tls"), hosts, time.Now())
	if err != nil {
		return nil, nil, err
	}
	pair, err := tls.LoadX509KeyPair(ca.serverCert(), ca.serverKey())
	if err != nil {
		return nil, nil, err
	}
	t.Certificates = []tls.Certificate{pair}
	return t, &ca, nil
}

func printTrustSteps(w io.Writer, addr string, ca *localCA) {
	if ca.created {
		fmt.Fprintf(w, "signet-server: created a local CA for this server: %s\n", ca.caCert())
	} else {
		fmt.Fprintf(w, "signet-server: using the local CA %s\n", ca.caCert())
	}
	fmt.Fprintf(w, `To trust it:
  docker trust:  mkdir -p ~/.docker/tls/%[1]s && cp %[2]s ~/.docker/tls/%[1]s/ca.crt
                 export DOCKER_CONTENT_TRUST_SERVER=https://%[1]s
  notary:        notary -s https://%[1]s --tlscacert %[2]s list <GUN>
  signet:        signet -s https://%[1]s --tlscacert %[2]s list <GUN>
`, addr, ca.caCert())
}
