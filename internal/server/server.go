// Package server is signet-server's HTTP API: the one route table every
// route of the process is an entry of (the Notary v1 API, the server's own
// health, readiness and metrics routes, and groups such as the token
// service, later the signing service, the audit log and the UI), and the
// Notary v1 API itself — the routes, bytes, caching headers and error
// envelopes of the reference notary-server, with every upload run through
// the verification state machine of tuf/trust.
//
// Invariants: every route has an operation and an access rule, or New
// refuses to start; a route that names a repository runs only for a GUN
// notaryapi.ParseGUN accepts (400 INVALID_GUN otherwise, before
// authorization); a handler runs only after the authorizer of its route's
// access kind allows the request; every Notary API error is classified and
// written by apierr; stored bytes are served verbatim; an upload is
// validated in full and stored atomically or not at all, and holds its
// share of the upload memory budget while it runs; the server signs only
// timestamp (always) and snapshot (when the root lists a key its custodian
// holds); GET requests never create keys for an initialised repository,
// and keys for repositories without metadata only within the rate of
// Config.NewRepositoryKeys; request bodies must keep a minimum rate;
// current metadata is served from a bounded in-memory cache invalidated on
// write.
package server

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/store"
)

// Custodian holds the server's online keys. The embedded custodian
// (package custody) and the remote signet-signer client implement it.
type Custodian interface {
	// Create makes a new key for gun and role.
	Create(ctx context.Context, gun, role string) (*keys.PublicKey, error)
	// Keys lists the keys held for gun and role, newest first.
	Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error)
	// Signer returns the signer of a key held for gun; an error wrapping
	// ErrNotHeld (of the implementation) when there is none.
	Signer(ctx context.Context, gun, id string) (crypto.Signer, error)
}

// Config holds the dependencies and settings of a Server.
type Config struct {
	Store     store.MetaStore
	Custodian Custodian
	Logger    *slog.Logger
	// Now returns the current time; time.Now when nil.
	Now func() time.Time

	// TimestampExpiry and SnapshotExpiry are the lifetimes of metadata the
	// server signs (defaults: 14 days and 3 years, as the reference).
	TimestampExpiry time.Duration
	SnapshotExpiry  time.Duration
	// RefreshWithin re-signs a timestamp (or server-held snapshot) in the
	// background once it expires within this duration (default: half of
	// TimestampExpiry).
	RefreshWithin time.Duration

	// MaxUploadBytes bounds a POST body (default 100 MiB, the notary
	// client's own download limit for one metadata file).
	MaxUploadBytes int64
	// UploadMemory bounds the memory that uploads in flight may take
	// together, server-wide (default 1 GiB). Each upload reserves
	// UploadMemoryPerByte times its body's size before it is read (as it
	// is read when the client sends no Content-Length) and keeps the
	// reservation until it is answered; one that does not fit is 503
	// UNAVAILABLE with Retry-After. An upload is admitted whatever its
	// size while no other holds any of the budget, so MaxUploadBytes
	// stays reachable: peak memory is about the larger of UploadMemory
	// and UploadMemoryPerByte×MaxUploadBytes, plus the server's own.
	UploadMemory int64
	// NewRepositoryKeys limits the keys made for repositories that have no
	// metadata yet — what a GET of snapshot.key or timestamp.key (or a
	// POST rotating one) creates before the first publish — server-wide;
	// past it such requests are 429 TOOMANYREQUESTS with Retry-After and
	// make nothing. Keys of initialised repositories and keys already
	// made are never limited. The zero Limit means the default (a burst
	// of 100, then 1 a second); a negative Rate turns the limit off.
	NewRepositoryKeys ratelimit.Limit
	// MinBodyRate is the slowest a request body may arrive, in bytes a
	// second on average, once BodyRateGrace has passed since the request
	// began (defaults 4 KiB/s and 10 s; a negative rate turns it off). A
	// slower body fails to read: the request is answered and the
	// connection closed, instead of being held until BodyTimeout.
	MinBodyRate   int64
	BodyRateGrace time.Duration
	// BodyTimeout bounds the time to read a request body, however fast it
	// arrives (default 5 minutes): http.Server's ReadTimeout, which the
	// minimum rate's read deadlines would otherwise replace.
	BodyTimeout time.Duration
	// CurrentMaxAge and ConsistentMaxAge are the Cache-Control lifetimes of
	// current and of checksum/version addressed metadata (defaults 300 s and
	// 30 days; a negative value disables caching).
	CurrentMaxAge    time.Duration
	ConsistentMaxAge time.Duration
	// CacheGUNs bounds the repositories kept in memory (default 10000).
	CacheGUNs int

	// Authorizer decides the routes that need registry token scopes
	// (AccessRepository, AccessCatalog: the Notary API); without one they
	// are open, as on the reference server without auth.
	Authorizer Authorizer
	// ServiceAuthorizer decides the routes that need a role of the
	// signing service (AccessService); New refuses such a route without
	// one.
	ServiceAuthorizer ServiceAuthorizer
	// Groups are further route groups served beside the Notary API, in
	// the same route table (the token service; later the signing
	// service, the audit log, the UI).
	Groups []Group
	// Invalidations, when set, carries GUNs written by other server
	// processes (replicas sharing the database); their cached metadata is
	// dropped as each arrives, and "" drops every GUN. With it set, uploads
	// are validated against the store, not the cache.
	Invalidations <-chan string
	// CacheMaxStale, when positive, bounds how long current metadata is
	// served from memory before it is read from the store again, so that a
	// lost invalidation cannot serve stale metadata for longer (replicas).
	CacheMaxStale time.Duration

	// AuditLog, when set, records every write of metadata in the audit
	// log, in the write's own transaction (the Store must be a
	// store.AuditedMetaStore): uploads, imports, re-signs and deletes, and
	// the keys the server makes. timestamp.json responses then name their
	// entry in AuditIndexHeader.
	AuditLog *audit.Log
	// AuditWait bounds how long a write waits for its entry to be in a
	// checkpoint before it is answered (default 2 s); the entry is durable
	// either way.
	AuditWait time.Duration

	// Checks are health checks by name ("DB operational", …).
	Checks map[string]func(context.Context) error
	// ReadyChecks are further checks of readiness only (/_signet/ready),
	// such as the audit log's self-check.
	ReadyChecks map[string]func(context.Context) error
	// Metrics, when set, receives the server's Prometheus metrics.
	Metrics *Metrics
}

// Server is signet-server's HTTP API: the route table and the Notary API.
type Server struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	cache *metaCache
	locks gunLocks
	m     *Metrics
	// Resource limits: keys made for new repositories, memory of uploads.
	newKeys *ratelimit.Bucket
	uploads *budget
	// replicated: other processes write to the same store.
	replicated bool
	// audit is the audit log, nil without one.
	audit *serverAudit

	skipMu sync.Mutex
	skip   map[string]time.Time // refresher: role+GUN set aside until

	currentCC, consistentCC []string

	// The route table: every route in order, the Notary API's dispatch
	// and the mux of everything else.
	routes []Route
	notary *notaryTable
	mux    *http.ServeMux
}

// New checks the configuration and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	if cfg.Custodian == nil {
		return nil, errors.New("server: no custodian")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.TimestampExpiry, 14*24*time.Hour)
	def(&cfg.SnapshotExpiry, 3*365*24*time.Hour)
	def(&cfg.RefreshWithin, cfg.TimestampExpiry/2)
	def(&cfg.CurrentMaxAge, 300*time.Second)
	def(&cfg.ConsistentMaxAge, 30*24*time.Hour)
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = 100 << 20
	}
	if cfg.UploadMemory == 0 {
		cfg.UploadMemory = 1 << 30
	}
	if cfg.NewRepositoryKeys == (ratelimit.Limit{}) {
		cfg.NewRepositoryKeys = ratelimit.Limit{Rate: 1, Burst: 100}
	}
	if cfg.MinBodyRate == 0 {
		cfg.MinBodyRate = 4 << 10
	}
	def(&cfg.BodyRateGrace, 10*time.Second)
	def(&cfg.BodyTimeout, 5*time.Minute)
	if cfg.MaxUploadBytes < 0 || cfg.UploadMemory < 0 || cfg.BodyRateGrace < 0 || cfg.BodyTimeout < 0 {
		return nil, errors.New("server: MaxUploadBytes, UploadMemory, BodyRateGrace and BodyTimeout must not be negative")
	}
	if l := cfg.NewRepositoryKeys; l.Rate > 0 && l.Burst < 1 {
		return nil, errors.New("server: NewRepositoryKeys needs a burst of at least 1")
	}
	if cfg.CacheGUNs == 0 {
		cfg.CacheGUNs = 10000
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	cfg.Custodian = timedCustodian{c: cfg.Custodian, obs: cfg.Metrics.signer}
	s := &Server{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, m: cfg.Metrics,
		cache:        newMetaCache(cfg.CacheGUNs, 64, cfg.CacheMaxStale, cfg.Now),
		newKeys:      ratelimit.NewBucket(cfg.NewRepositoryKeys),
		uploads:      &budget{limit: cfg.UploadMemory},
		replicated:   cfg.Invalidations != nil,
		skip:         map[string]time.Time{},
		currentCC:    []string{cacheControl(cfg.CurrentMaxAge, true)},
		consistentCC: []string{cacheControl(cfg.ConsistentMaxAge, false)},
	}
	var err error
	if s.audit, err = newServerAudit(cfg); err != nil {
		return nil, err
	}
	if err := s.buildTable(); err != nil {
		return nil, err
	}
	if cfg.Invalidations != nil {
		go func() {
			for gun := range cfg.Invalidations {
				s.cache.invalidateRemote(gun)
			}
		}()
	}
	return s, nil
}

func cacheControl(d time.Duration, revalidate bool) string {
	if d < 0 {
		return "max-age=0, no-cache, no-store"
	}
	secs := itoa(int64(d / time.Second))
	v := "public, max-age=" + secs + ", s-maxage=" + secs
	if revalidate {
		v += ", must-revalidate"
	}
	return v
}

// buildTable builds the route table: the Notary API (matched by
// notaryapi.ParsePath behind the mux's catch-all), the server's own
// routes, then Config.Groups, each route checked.
func (s *Server) buildTable() error {
	notary, err := s.buildNotary(s.notaryRoutes())
	if err != nil {
		return err
	}
	s.notary = notary
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", s.serveNotary)
	for _, g := range append([]Group{s.hostRoutes()}, s.cfg.Groups...) {
		if err := s.mount(s.mux, g); err != nil {
			return err
		}
	}
	return nil
}

// Handler returns the HTTP handler of the whole route table.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP) // middleware.go
}

func (s *Server) handleBase(w http.ResponseWriter, _ *http.Request, _ notaryapi.Path) error {
	w.Header()["Content-Type"] = textPlain
	_, _ = w.Write([]byte("{}"))
	return nil
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	failed := map[string]string{}
	for name, check := range s.cfg.Checks {
		if err := check(ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	w.Header().Set("Content-Type", notaryapi.ContentTypeJSON)
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(mustJSON(failed))
		return
	}
	_, _ = w.Write([]byte("{}"))
}
