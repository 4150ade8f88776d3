package service

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/store"
)

// KeyCustody is the part of the custody core the service uses: the
// in-process *custody.Core, or signet-signer's client (which reaches a
// PKCS#11 token). Project keys are made with purpose delegation or cosign
// and owner custody.ProjectOwner(project).
type KeyCustody interface {
	CreateKey(ctx context.Context, spec custody.Spec) (custody.Key, error)
	ImportKey(ctx context.Context, spec custody.Spec, priv crypto.Signer) (custody.Key, error)
	// Signer lends the signer of an active key held for gun ("" for keys
	// outside TUF).
	Signer(ctx context.Context, gun, id string) (crypto.Signer, error)
	// RetireKey stops a key from signing.
	RetireKey(ctx context.Context, id string) (custody.Key, error)
}

// Repositories is the Notary server's in-process face (*server.Server):
// the current metadata of a repository and the validation chokepoint every
// upload passes.
type Repositories interface {
	// Current returns the current bytes of a role; an error wrapping
	// store.ErrNotFound when there are none.
	Current(ctx context.Context, gun, role string) ([]byte, error)
	// SnapshotManaged reports whether the server holds the snapshot key
	// of gun's root.
	SnapshotManaged(ctx context.Context, gun string) (bool, error)
	// Publish validates and stores files as an upload of them would be;
	// an error wrapping store.ErrOldVersion when another writer got there
	// first.
	Publish(ctx context.Context, gun string, files map[string][]byte) ([]store.File, error)
}

// ImageName is an image reference as Docker reads it.
type ImageName struct {
	GUN    string // the repository name DCT signs under
	Tag    string // "" when none was named
	Digest string // "" when none was named
}

// Manifest is what a tag resolves to in the registry.
type Manifest struct {
	Digest    string // "sha256:<hex>" of the manifest bytes
	Size      int64
	MediaType string
}

// Errors of ImageResolver.Resolve.
var (
	ErrTagNotFound  = errors.New("service: the registry has no such tag")
	ErrRegistryAuth = errors.New("service: the registry refused the service's credentials")
)

// ImageResolver reads image references and resolves tags in registries,
// with the service's registry credentials (internal/registry, wired by
// signet-server's command).
type ImageResolver interface {
	Parse(image string) (ImageName, error)
	// Resolve returns the manifest the registry serves for name's tag.
	// Errors wrap ErrTagNotFound or ErrRegistryAuth where they apply.
	Resolve(ctx context.Context, image string) (Manifest, error)
}

// ErrCosignRefused reports a cosign signature that cannot be written for a
// reason a retry does not change: the legacy signature image is full, a
// tag in the way is not what cosign's formats put there, or the key is of
// a type cosign cannot use.
var ErrCosignRefused = errors.New("service: the cosign signature cannot be written")

// CosignWriter writes cosign signatures into registries with the service's
// registry credentials (internal/oci over internal/registry, wired by
// signet-server's command).
type CosignWriter interface {
	// CheckPush checks, writing nothing, that the registry lets the
	// service push to the repository of image (a reference as Parse reads
	// it; a tag is ignored). An error wraps ErrRegistryAuth when the
	// registry refuses.
	CheckPush(ctx context.Context, image string) error
	// Sign writes the cosign signature of manifest m, in image's
	// repository, with key, in both storage forms: the Sigstore bundle as
	// an OCI 1.1 referrer of m (with the referrers tag schema's index on
	// registries without the Referrers API) and a layer of the legacy
	// image at tag sha256-<hex>.sig. A form already holding a signature of
	// m by key is left as it is (Existing), so Sign is idempotent. It
	// returns the signatures of the forms done (KeyID left to the caller),
	// and with an error what was done before it; the error wraps
	// ErrRegistryAuth or ErrCosignRefused where they apply, and is
	// transient otherwise.
	Sign(ctx context.Context, image string, m Manifest, key crypto.Signer, now time.Time) ([]CosignSignature, error)
}

// Errors of OriginVerifier.Verify.
var (
	// ErrOriginInvalid: not a valid ID token of the rule's issuer for its
	// audience (expired, unknown key, alg none, …): 401.
	ErrOriginInvalid = errors.New("service: the ID token is not valid")
	// ErrOriginMismatch: a valid token whose claims the rule refuses: 403.
	ErrOriginMismatch = errors.New("service: the ID token's claims do not match the policy's origin")
	// ErrOriginUnavailable: the issuer's keys could not be fetched: 503.
	ErrOriginUnavailable = errors.New("service: the ID token's issuer is unavailable")
)

// OriginIdentity is what a verified ID token says: its issuer and subject,
// and its claims with scalar values as text.
type OriginIdentity struct {
	Issuer, Subject string
	Claims          map[string]string
}

// OriginVerifier checks CI ID tokens against policies' origin rules
// (internal/oidc, wired by signet-server's command).
type OriginVerifier interface {
	// ValidateRule checks a rule before a policy holding it is saved.
	ValidateRule(rule Origin) error
	// Verify checks a raw ID token against rule; errors wrap
	// ErrOriginInvalid, ErrOriginMismatch or ErrOriginUnavailable, and
	// their messages name the check or claim that failed.
	Verify(ctx context.Context, rawToken string, rule Origin) (OriginIdentity, error)
	// Match checks claims verified earlier (a resubmission) against
	// rule's claims; an error wrapping ErrOriginMismatch names the claim.
	Match(rule Origin, claims map[string]string) error
}

// Defaults.
const (
	DefaultExpiry       = 7 * 24 * time.Hour
	DefaultRetention    = 400 * 24 * time.Hour
	DefaultRateLimit    = 600 // requests per project per hour
	DefaultSigningLease = 30 * time.Second
	DefaultMaxAttempts  = 5
	DefaultMaxBody      = 1 << 20
	DefaultSyncWait     = 10 * time.Second
)

// Config holds the dependencies and settings of a Service.
type Config struct {
	Store  Store
	Keys   KeyCustody
	Repos  Repositories
	Images ImageResolver
	// Origins verifies CI ID tokens; without one, policies with an origin
	// rule are refused.
	Origins OriginVerifier
	// Cosign writes cosign signatures; without one, policies with the
	// cosign format are refused.
	Cosign CosignWriter
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// AdminToken, when set (SIGNET_ADMIN_TOKEN), is an admin bearer
	// credential for first setup and automation; at least 32 characters.
	AdminToken string
	// BaseURL is the server's external URL, for links in notifications.
	BaseURL string
	// Holder names this process's signing worker in its leases (default:
	// a random ID).
	Holder string

	// AuditKick is called after a commit that appended audit events (so
	// the log integrates them at once); NotifyKick after one that queued
	// notifications. Either may be nil.
	AuditKick  func()
	NotifyKick func()

	// DefaultExpiry of requests awaiting approval; Retention of finished
	// requests; DefaultRateLimit of requests per project and hour.
	DefaultExpiry    time.Duration
	Retention        time.Duration
	DefaultRateLimit int
	// SigningLease is how long a worker holds a signing job before another
	// may take it over; MaxAttempts bounds retries of transient failures.
	SigningLease time.Duration
	MaxAttempts  int
	// MaxBodyBytes bounds a request body of the API.
	MaxBodyBytes int64
	// SyncWait is how long an approval (or a submission needing none)
	// waits for the signing before answering.
	SyncWait time.Duration
}

// Service is the signing service.
type Service struct {
	cfg    Config
	st     Store
	log    *slog.Logger
	now    func() time.Time
	ids    idGen
	holder string

	kick chan struct{}

	gunMu sync.Mutex
	guns  map[string]*gunLock

	waitMu  sync.Mutex
	waiters map[string][]chan struct{}

	stashMu sync.Mutex
	stash   map[any]Principal
}

type gunLock struct {
	mu   sync.Mutex
	refs int
}

// New checks the configuration and returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("service: no store")
	case cfg.Keys == nil:
		return nil, errors.New("service: no key custody")
	case cfg.Repos == nil:
		return nil, errors.New("service: no repositories")
	case cfg.Images == nil:
		return nil, errors.New("service: no image resolver")
	}
	if cfg.AdminToken != "" && len(cfg.AdminToken) < 32 {
		return nil, errors.New("service: SIGNET_ADMIN_TOKEN must be at least 32 characters (generate one with: openssl rand -base64 32)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DefaultExpiry, DefaultExpiry)
	def(&cfg.Retention, DefaultRetention)
	def(&cfg.SigningLease, DefaultSigningLease)
	def(&cfg.SyncWait, DefaultSyncWait)
	if cfg.DefaultRateLimit <= 0 {
		cfg.DefaultRateLimit = DefaultRateLimit
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBody
	}
	s := &Service{
		cfg: cfg, st: cfg.Store, log: cfg.Logger, now: cfg.Now, holder: cfg.Holder,
		kick: make(chan struct{}, 1), guns: map[string]*gunLock{}, waiters: map[string][]chan struct{}{},
		stash: map[any]Principal{},
	}
	if s.holder == "" {
		s.holder = "worker-" + randomToken("")[:16]
	}
	return s, nil
}

// Run runs the service's background work until ctx ends: the signing
// worker, and the sweeps that expire requests awaiting approval past
// their expiry and purge finished requests past the retention.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.runWorker(ctx) }()
	go func() { defer wg.Done(); s.runSweeps(ctx, time.Minute) }()
	wg.Wait()
}

func (s *Service) runSweeps(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "expiring requests failed", "error", err.Error())
		} else if n > 0 {
			s.log.InfoContext(ctx, "requests expired", "count", n)
		}
		if n, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "purging finished requests failed", "error", err.Error())
		} else if n > 0 {
			s.log.InfoContext(ctx, "finished requests purged after their retention", "count", n, "retention", s.cfg.Retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// committed tells the audit log and the notifier about a commit.
func (s *Service) committed(fx Effects) {
	if len(fx.Events) > 0 && s.cfg.AuditKick != nil {
		s.cfg.AuditKick()
	}
	if len(fx.Deliveries) > 0 && s.cfg.NotifyKick != nil {
		s.cfg.NotifyKick()
	}
}

// lockGUN serializes the signing of one repository in this process.
func (s *Service) lockGUN(gun string) func() {
	s.gunMu.Lock()
	l := s.guns[gun]
	if l == nil {
		l = &gunLock{}
		s.guns[gun] = l
	}
	l.refs++
	s.gunMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.gunMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.guns, gun)
		}
		s.gunMu.Unlock()
	}
}

// changed wakes those waiting for request id to change.
func (s *Service) changed(id string) {
	s.waitMu.Lock()
	ws := s.waiters[id]
	delete(s.waiters, id)
	s.waitMu.Unlock()
	for _, c := range ws {
		close(c)
	}
}

// waitFinal waits up to d for request id to reach a final status (as seen
// by this process; other replicas' changes show at the next read) and
// returns it as it then stands.
func (s *Service) waitFinal(ctx context.Context, id string, d time.Duration) (Request, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c := make(chan struct{})
		s.waitMu.Lock()
		s.waiters[id] = append(s.waiters[id], c)
		s.waitMu.Unlock()
		r, err := s.st.GetRequest(ctx, id)
		if err != nil || r.Status.Final() {
			return r, err
		}
		select {
		case <-c:
		case <-deadline.C:
			return r, nil
		case <-ctx.Done():
			return r, nil
		case <-time.After(time.Second): // another replica may sign it
		}
	}
}

// event builds an audit event at now.
func (s *Service) event(typ audit.EventType, actor audit.Actor, subj audit.Subject) audit.Event {
	return audit.Event{Type: typ, Time: s.now(), Actor: actor, Subject: subj}
}
