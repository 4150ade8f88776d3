// Package server is signet-server's Notary v1 HTTP API: the routes, bytes,
// caching headers and error envelopes of the reference notary-server, with
// every upload run through the verification state machine of tuf/trust.
//
// Invariants: stored bytes are served verbatim; an upload is validated in
// full and stored atomically or not at all; the server signs only timestamp
// (always) and snapshot (when the root lists a key its custodian holds);
// GET requests never create keys for an initialised repository; current
// metadata is served from a bounded in-memory cache invalidated on write.
package server

import (
	"context"
	"crypto"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/server/apierr"
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
	// CurrentMaxAge and ConsistentMaxAge are the Cache-Control lifetimes of
	// current and of checksum/version addressed metadata (defaults 300 s and
	// 30 days; a negative value disables caching).
	CurrentMaxAge    time.Duration
	ConsistentMaxAge time.Duration
	// CacheGUNs bounds the repositories kept in memory (default 10000).
	CacheGUNs int

	// Authorizer, when set, must allow every API request (see Access);
	// without one every request is allowed, as with the reference server
	// without auth.
	Authorizer Authorizer
	// Invalidations, when set, carries GUNs written by other server
	// processes (replicas sharing the database); their cached metadata is
	// dropped as each arrives, and "" drops every GUN. With it set, uploads
	// are validated against the store, not the cache.
	Invalidations <-chan string
	// CacheMaxStale, when positive, bounds how long current metadata is
	// served from memory before it is read from the store again, so that a
	// lost invalidation cannot serve stale metadata for longer (replicas).
	CacheMaxStale time.Duration

	// Checks are health checks by name ("DB operational", …).
	Checks map[string]func(context.Context) error
	// Metrics, when set, receives the server's Prometheus metrics.
	Metrics *Metrics
}

// Access is what a request needs: actions on a repository, or, for routes
// without a GUN, on the registry catalog — the reference's rules (§2.12).
type Access struct {
	// Type is "repository" or "registry"; Name the GUN or "catalog".
	Type, Name string
	Actions    []string // "pull", "push", "*"
}

// Authorizer decides whether a request may have the access it needs. It
// returns nil to allow, or an error: an *apierr.Error (UNAUTHORIZED with a
// challenge set on w) is sent as is.
type Authorizer interface {
	Authorize(w http.ResponseWriter, r *http.Request, need []Access) error
}

// Server is the HTTP API.
type Server struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	cache *metaCache
	locks gunLocks
	m     *Metrics
	// replicated: other processes write to the same store.
	replicated bool

	skipMu sync.Mutex
	skip   map[string]time.Time // refresher: role+GUN set aside until

	currentCC, consistentCC []string
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
		replicated:   cfg.Invalidations != nil,
		skip:         map[string]time.Time{},
		currentCC:    []string{cacheControl(cfg.CurrentMaxAge, true)},
		consistentCC: []string{cacheControl(cfg.ConsistentMaxAge, false)},
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

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/_notary_server/health", s.handleHealth)
	mux.HandleFunc("/_signet/ready", s.handleReady)
	mux.Handle("/metrics", s.m.Handler())
	mux.HandleFunc("/", s.serveAPI)
	return s.middleware(mux)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rt := parsePath(r.URL.Path)
	op, h := s.dispatch(r.Method, rt)
	start := time.Now()
	var err error
	if s.cfg.Authorizer != nil {
		err = s.cfg.Authorizer.Authorize(w, r, requiredAccess(op, rt))
	}
	if err == nil {
		err = h(w, r, rt)
	}
	if err != nil {
		e := apierr.Write(w, err)
		lvl := slog.LevelInfo
		if e.Code.Status >= 500 {
			lvl = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), lvl, "request failed", slog.String("op", op), slog.String("gun", rt.gun),
			slog.String("code", e.Code.Name), slog.Any("detail", e.Detail), slog.Any("cause", e.Cause))
	}
	s.m.observe(op, time.Since(start))
}

func (s *Server) dispatch(method string, rt route) (string, handlerFunc) {
	switch {
	case rt.kind == routeBase && method == http.MethodGet:
		return "Main", s.handleBase
	case rt.kind == routeBase:
		return "Main", notFound(apierr.GenericNotFound)
	case rt.kind == routeChangesAll && method == http.MethodGet,
		rt.kind == routeChangesGUN && method == http.MethodGet:
		return "Changefeed", s.handleChanges
	case rt.kind == routeTUF && method == http.MethodPost:
		return "UpdateTUF", s.handleUpdate
	case rt.kind == routeTUF && method == http.MethodDelete:
		return "DeleteTUF", s.handleDelete
	case rt.kind == routeMetaChecksum && method == http.MethodGet:
		return "GetRoleByHash", s.handleGetChecksum
	case rt.kind == routeMetaVersion && method == http.MethodGet:
		return "GetRoleByVersion", s.handleGetVersion
	case rt.kind == routeMetaCurrent && method == http.MethodGet:
		return "GetRole", s.handleGetCurrent
	case rt.kind == routeKey && method == http.MethodGet:
		return "GetKey", s.handleGetKey
	case rt.kind == routeKey && method == http.MethodPost:
		return "RotateKey", s.handleRotateKey
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodHead, http.MethodDelete:
		return "NotFound", notFound(apierr.MetadataNotFound)
	}
	return "NotFound", func(w http.ResponseWriter, r *http.Request, rt route) error {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return nil
	}
}

// requiredAccess is the reference's table of actions per operation:
// reads need pull; uploads and GET .key need push and pull; rotating keys,
// deleting a repository and the global changefeed need "*"; routes without
// a GUN need "*" on the registry catalog.
func requiredAccess(op string, rt route) []Access {
	if rt.gun == "" || op == "NotFound" || op == "Main" { // the reference's catch-all has no GUN
		return []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	}
	var actions []string
	switch op {
	case "GetRole", "GetRoleByHash", "GetRoleByVersion", "Changefeed":
		actions = []string{"pull"}
	case "UpdateTUF", "GetKey":
		actions = []string{"push", "pull"}
	case "RotateKey", "DeleteTUF":
		actions = []string{"*"}
	default:
		actions = []string{"pull"}
	}
	return []Access{{Type: "repository", Name: rt.gun, Actions: actions}}
}

func notFound(code apierr.Code) handlerFunc {
	return func(http.ResponseWriter, *http.Request, route) error {
		return apierr.New(code, struct{}{})
	}
}

func (s *Server) handleBase(w http.ResponseWriter, _ *http.Request, _ route) error {
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
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(mustJSON(failed))
		return
	}
	_, _ = w.Write([]byte("{}"))
}
