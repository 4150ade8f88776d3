package servercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"os"
	"path/filepath"
	"time"

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
//	  docker_config: /etc/signet/docker      # config.json with registry credentials per host
//	  request_expiry: 168h                   # default of policies
//	  retention: 9600h                       # finished requests are purged after it
//	  rate_limit: 600                        # default requests per project and hour
//	  signing_lease: 30s                     # a signing job's lease (replicas)
//	  max_attempts: 5                        # transient signing failures before a request fails
//
// SIGNET_ADMIN_TOKEN in the environment is an admin bearer token (first
// setup and automation; see docs/signing-service.md for rotating it away).
type ServiceConfig struct {
	Disabled      bool          `yaml:"disabled"`
	BaseURL       string        `yaml:"base_url"`
	DockerConfig  string        `yaml:"docker_config"`
	RequestExpiry time.Duration `yaml:"request_expiry"`
	Retention     time.Duration `yaml:"retention"`
	RateLimit     int           `yaml:"rate_limit"`
	SigningLease  time.Duration `yaml:"signing_lease"`
	MaxAttempts   int           `yaml:"max_attempts"`
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
func openService(cfg Config, st *sqlstore.Store, cust server.Custodian, getenv func(string) string, dataDir string, log *slog.Logger, repos *lateRepos) (*service.Service, error) {
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
	dc, err := registry.LoadDockerConfig(dockerDir, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("signing service: registry credentials: %w", err)
	}
	return service.New(service.Config{
		Store: st, Keys: keys, Repos: repos,
		Images:        registryResolver{c: &registry.Client{Keychain: dc, UserAgent: "signet-server"}},
		Logger:        log.With("component", "service"),
		AdminToken:    getenv("SIGNET_ADMIN_TOKEN"),
		BaseURL:       cfg.Service.BaseURL,
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
