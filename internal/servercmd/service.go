package servercmd

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/oidc"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// ServiceConfig is the `service:` section of the YAML config: the signing
// service served under /api/v1 (on by default).
//
//	service:
//	  disabled: false
//	  base_url: https://signet.example.com   # links in notifications
//	  docker_config: /etc/signet/docker      # config.json with registry credentials per host (push, for cosign)
//	  registry_ca: /etc/signet/registry-ca.pem  # CAs of private registries, beside the system's
//	  request_expiry: 168h                   # default of policies
//	  retention: 9600h                       # finished requests are purged after it
//	  rate_limit: 600                        # default requests per project and hour
//	  signing_lease: 30s                     # a signing job's lease (replicas)
//	  max_attempts: 5                        # transient signing failures before a request fails
//	  smtp:                                  # e-mail notifications (optional)
//	    addr: smtp.example.com:587
//	    from: Signet <signet@example.com>
//	    username: signet
//	    password_env: SIGNET_SMTP_PASSWORD
//
// SIGNET_ADMIN_TOKEN in the environment is an admin bearer token (first
// setup and automation; see docs/signing-service.md for rotating it away).
type ServiceConfig struct {
	Disabled     bool   `yaml:"disabled"`
	BaseURL      string `yaml:"base_url"`
	DockerConfig string `yaml:"docker_config"`
	// RegistryCA is a PEM file of CA certificates trusted, beside the
	// system's, by the connections to registries and their token services
	// (private registries).
	RegistryCA    string        `yaml:"registry_ca"`
	RequestExpiry time.Duration `yaml:"request_expiry"`
	Retention     time.Duration `yaml:"retention"`
	RateLimit     int           `yaml:"rate_limit"`
	SigningLease  time.Duration `yaml:"signing_lease"`
	MaxAttempts   int           `yaml:"max_attempts"`
	// SMTP, when set, sends e-mail notifications (approvers when a request
	// awaits them, submitters when it is final).
	SMTP *SMTPConfig `yaml:"smtp"`
}

// SMTPConfig is `service.smtp`. The password is read from the
// environment variable PasswordEnv, never from the file.
type SMTPConfig struct {
	Addr        string `yaml:"addr"`
	From        string `yaml:"from"`
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// TLS is starttls (default) or tls (SMTPS).
	TLS string `yaml:"tls"`
	// InsecurePlaintextLoopback allows a local sink without STARTTLS
	// (development and tests only).
	InsecurePlaintextLoopback bool `yaml:"insecure_plaintext_loopback"`
}

func (c ServiceConfig) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"request_expiry": c.RequestExpiry, "retention": c.Retention, "signing_lease": c.SigningLease} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("service.%s %v: must not be negative", name, d))
		}
	}
	if c.RateLimit < 0 || c.MaxAttempts < 0 {
		errs = append(errs, errors.New("service.rate_limit and service.max_attempts must not be negative"))
	}
	return errors.Join(errs...)
}

// RegistryResolver is the service's ImageResolver on internal/registry:
// references read as Docker reads them, tags resolved by c (with the
// credentials of the service's Docker configuration).
func RegistryResolver(c *registry.Client) service.ImageResolver { return registryResolver{c: c} }

type registryResolver struct{ c *registry.Client }

func (r registryResolver) Parse(image string) (service.ImageName, error) {
	ref, err := registry.ParseReference(image)
	if err != nil {
		return service.ImageName{}, err
	}
	return service.ImageName{GUN: ref.GUN(), Tag: ref.Tag, Digest: ref.Digest}, nil
}

func (r registryResolver) Resolve(ctx context.Context, image string) (service.Manifest, error) {
	ref, err := registry.ParseReference(image)
	if err != nil {
		return service.Manifest{}, err
	}
	d, err := r.c.Resolve(ctx, ref)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return service.Manifest{}, fmt.Errorf("%w: %v", service.ErrTagNotFound, err)
	case errors.Is(err, registry.ErrUnauthorized):
		return service.Manifest{}, fmt.Errorf("%w: %v", service.ErrRegistryAuth, err)
	case err != nil:
		return service.Manifest{}, err
	}
	return service.Manifest{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType}, nil
}

// CosignRegistry is the service's CosignWriter on internal/oci: cosign
// signatures written into registries reached by c (with the credentials of
// the service's Docker configuration, scope push).
func CosignRegistry(c *registry.Client) service.CosignWriter { return cosignRegistry{c: c} }

type cosignRegistry struct{ c *registry.Client }

func (w cosignRegistry) repository(image string) (*registry.Repository, error) {
	ref, err := registry.ParseReference(image)
	if err != nil {
		return nil, err
	}
	return w.c.Repository(ref, "push,pull"), nil
}

// classifyCosign sorts the errors of internal/oci and internal/registry for
// the service.
func classifyCosign(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrUnauthorized):
		return fmt.Errorf("%w: %v", service.ErrRegistryAuth, err)
	case errors.Is(err, oci.ErrTooManySignatures), errors.Is(err, oci.ErrUnsupportedKey), errors.Is(err, oci.ErrFormat):
		return fmt.Errorf("%w: %v", service.ErrCosignRefused, err)
	}
	return err
}

func (w cosignRegistry) CheckPush(ctx context.Context, image string) error {
	r, err := w.repository(image)
	if err != nil {
		return err
	}
	return classifyCosign(r.CheckPush(ctx))
}

func (w cosignRegistry) Sign(ctx context.Context, image string, m service.Manifest, key crypto.Signer, now time.Time) ([]service.CosignSignature, error) {
	r, err := w.repository(image)
	if err != nil {
		return nil, err
	}
	t := oci.Target{Repo: r, Manifest: registry.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}}
	if m.MediaType == "" {
		if t, err = oci.Resolve(ctx, r, m.Digest); err != nil {
			return nil, classifyCosign(err)
		}
	}
	ws, err := oci.Sign(ctx, t, key, oci.Options{Now: now})
	var out []service.CosignSignature
	for _, wr := range ws {
		form := audit.CosignBundle
		if wr.Form == oci.FormLegacy {
			form = audit.CosignLegacy
		}
		out = append(out, service.CosignSignature{Digest: m.Digest, Form: form, Ref: wr.Ref, Existing: wr.Existing})
	}
	return out, classifyCosign(err)
}

// dockerKeychain is the service's registry credentials: the Docker
// configuration in dir (config.json: auths per registry host, credsStore,
// credHelpers), read again whenever the file changes, so that credentials
// are rotated without a restart.
type dockerKeychain struct {
	dir string

	mu    sync.Mutex
	stamp string // size and modification time of the file read
	cfg   *registry.DockerConfig
}

func (k *dockerKeychain) config() (*registry.DockerConfig, error) {
	stamp := "none"
	if fi, err := os.Stat(filepath.Join(k.dir, "config.json")); err == nil {
		stamp = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg != nil && stamp == k.stamp {
		return k.cfg, nil
	}
	cfg, err := registry.LoadDockerConfig(k.dir, os.Environ())
	if err != nil {
		return nil, err
	}
	k.cfg, k.stamp = cfg, stamp
	return cfg, nil
}

func (k *dockerKeychain) Credentials(ctx context.Context, host string) (registry.Credentials, error) {
	cfg, err := k.config()
	if err != nil {
		return registry.Credentials{}, err
	}
	return cfg.Credentials(ctx, host)
}

// OriginVerifier is the service's OriginVerifier on internal/oidc.
func OriginVerifier(v *oidc.Verifier) service.OriginVerifier { return oidcOrigins{v: v} }

type oidcOrigins struct{ v *oidc.Verifier }

func rule(o service.Origin) oidc.Rule {
	return oidc.Rule{Issuer: o.Issuer, Audience: o.Audience, Claims: o.Claims}
}

// originError is a refusal of internal/oidc classified for the service:
// its message is oidc's sentence, and it wraps both.
type originError struct {
	kind, err error
}

func (e originError) Error() string   { return strings.TrimPrefix(e.err.Error(), "oidc: ") }
func (e originError) Unwrap() []error { return []error{e.kind, e.err} }

func classifyOrigin(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, oidc.ErrInvalidToken):
		return originError{service.ErrOriginInvalid, err}
	case errors.Is(err, oidc.ErrClaimMismatch):
		return originError{service.ErrOriginMismatch, err}
	case errors.Is(err, oidc.ErrIssuerUnavailable):
		return originError{service.ErrOriginUnavailable, err}
	}
	return err
}

func (o oidcOrigins) ValidateRule(r service.Origin) error {
	if err := rule(r).Validate(); err != nil {
		return errors.New(strings.TrimPrefix(strings.TrimPrefix(err.Error(), "oidc: "), "origin rule: "))
	}
	return nil
}

func (o oidcOrigins) Verify(ctx context.Context, raw string, r service.Origin) (service.OriginIdentity, error) {
	id, err := o.v.Verify(ctx, raw, rule(r))
	if err != nil {
		return service.OriginIdentity{}, classifyOrigin(err)
	}
	out := service.OriginIdentity{Issuer: id.Issuer, Subject: id.Subject, Claims: map[string]string{}}
	for name := range id.Claims {
		if v, ok := id.Claim(name); ok {
			out.Claims[name] = v
		}
	}
	return out, nil
}

func (o oidcOrigins) Match(r service.Origin, claims map[string]string) error {
	m := make(map[string]any, len(claims))
	for k, v := range claims {
		m[k] = v
	}
	return classifyOrigin(oidc.MatchClaims(rule(r), m))
}

// lateRepos is the server's in-process face, set once the server exists
// (the server takes the service's routes, and the service publishes
// through the server).
type lateRepos struct{ srv *server.Server }

func (l *lateRepos) Current(ctx context.Context, gun, role string) ([]byte, error) {
	return l.srv.Current(ctx, gun, role)
}
func (l *lateRepos) SnapshotManaged(ctx context.Context, gun string) (bool, error) {
	return l.srv.SnapshotManaged(ctx, gun)
}
func (l *lateRepos) Publish(ctx context.Context, gun string, files map[string][]byte) ([]store.File, error) {
	return l.srv.Publish(ctx, gun, files)
}

// openService builds the signing service, or nil when it is disabled.
func openService(cfg Config, st *sqlstore.Store, cust server.Custodian, getenv func(string) string, dataDir string, log *slog.Logger, repos *lateRepos, kick func(), auditLog *audit.Log) (*service.Service, error) {
	if cfg.Service.Disabled {
		if getenv("SIGNET_ADMIN_TOKEN") != "" {
			log.Warn("SIGNET_ADMIN_TOKEN is set but the signing service is disabled (service.disabled)")
		}
		return nil, nil
	}
	keys, ok := cust.(service.KeyCustody)
	if !ok {
		return nil, fmt.Errorf("signing service: the custodian (%T) cannot hold project keys", cust)
	}
	dockerDir := cfg.Service.DockerConfig
	if dockerDir == "" {
		dockerDir = filepath.Join(dataDir, "docker")
	}
	dc := &dockerKeychain{dir: dockerDir}
	if _, err := dc.config(); err != nil {
		return nil, fmt.Errorf("signing service: registry credentials: %w", err)
	}
	var transport http.RoundTripper
	if cfg.Service.RegistryCA != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.Service.RegistryCA)
		if err != nil {
			return nil, fmt.Errorf("service.registry_ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("service.registry_ca: %s holds no PEM certificate", cfg.Service.RegistryCA)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		transport = t
	}
	var auditKick func()
	if auditLog != nil {
		auditKick = auditLog.Kick
	}
	rc := &registry.Client{Keychain: dc, Transport: transport, UserAgent: "signet-server"}
	return service.New(service.Config{
		Store: st, Keys: keys, Repos: repos,
		Images:        RegistryResolver(rc),
		Cosign:        CosignRegistry(rc),
		Origins:       OriginVerifier(oidc.NewVerifier(oidc.Config{Logger: log.With("component", "oidc")})),
		Logger:        log.With("component", "service"),
		AdminToken:    getenv("SIGNET_ADMIN_TOKEN"),
		BaseURL:       cfg.Service.BaseURL,
		NotifyKick:    kick,
		AuditKick:     auditKick,
		DefaultExpiry: cfg.Service.RequestExpiry, Retention: cfg.Service.Retention, DefaultRateLimit: cfg.Service.RateLimit,
		SigningLease: cfg.Service.SigningLease, MaxAttempts: cfg.Service.MaxAttempts,
	})
}

// ServiceGroup is the service's API as a group of the route table, each
// route with the service role it needs (or public).
func ServiceGroup(svc *service.Service) server.Group {
	g := server.Group{Name: "signing service", WriteError: svc.WriteError}
	for _, rt := range svc.Routes() {
		access := server.Public()
		if rt.Role != "" {
			access = server.ServiceRole(rt.Role)
		}
		g.Routes = append(g.Routes, server.Route{Method: rt.Method, Pattern: rt.Pattern, Op: rt.Op, Access: access, Handler: rt.Handler})
	}
	return g
}

// notifier is the worker that sends the service's notifications from its
// outbox: webhooks always (HTTPS, system roots), e-mail when SMTP is
// configured.
func notifier(cfg ServiceConfig, st *sqlstore.Store, getenv func(string) string, log *slog.Logger) (*notify.Worker, error) {
	ob := service.NewOutbox(st)
	wc := notify.WorkerConfig{Outbox: ob, Webhooks: ob.Webhook, Sender: notify.NewWebhookSender(notify.WebhookConfig{}),
		Logger: log.With("component", "notify")}
	if c := cfg.SMTP; c != nil {
		mc := notify.SMTPConfig{Addr: c.Addr, From: c.From, Username: c.Username, TLS: notify.TLSMode(c.TLS),
			InsecurePlaintextLoopback: c.InsecurePlaintextLoopback}
		if c.PasswordEnv != "" {
			mc.Password = getenv(c.PasswordEnv)
			if mc.Password == "" {
				return nil, fmt.Errorf("service.smtp.password_env: %s is not set", c.PasswordEnv)
			}
		}
		m, err := notify.NewMailer(mc)
		if err != nil {
			return nil, fmt.Errorf("service.smtp: %w", err)
		}
		wc.Mailer = m
	}
	return notify.NewWorker(wc)
}
