package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/store"
)

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// HTMXVersion is the version of htmx in static/ (from the npm package
// htmx.org; static/htmx.LICENSE is its licence).
const HTMXVersion = "2.0.11"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// RepositoryLister lists the repositories (GUNs) with trust data on the
// server, in name order: those after after that contain search, at most
// limit (sqlstore.Store.Repositories).
type RepositoryLister interface {
	Repositories(ctx context.Context, search, after string, limit int) ([]string, error)
}

// AuditLog is what the audit page reads of the server's audit log
// (*audit.Log).
type AuditLog interface {
	Status() audit.Status
	VerifierKey() string
	Origin() string
}

// AuditEntries reads the log's integrated entries (the log's audit.Store).
type AuditEntries interface {
	State(ctx context.Context) (audit.TreeState, error)
	Entries(ctx context.Context, start uint64, count int) ([]audit.Entry, error)
}

// Config holds what the dashboard shows and its settings.
type Config struct {
	// Service is the signing service: users, requests, decisions.
	Service *service.Service
	// Meta is the TUF metadata store; Repos lists its repositories.
	Meta  store.MetaStore
	Repos RepositoryLister
	// Audit and AuditEntries, when set, make the audit page; without
	// them it says the log is not configured.
	Audit        AuditLog
	AuditEntries AuditEntries
	// ServerURL is how people reach the server, for the commands shown
	// (signet audit verify, docker trust signer add); default: the
	// request's host.
	ServerURL string

	Logger *slog.Logger
	Now    func() time.Time
	// SessionTTL is how long a session lasts from login (default 8h);
	// SessionIdle how long it lasts without use (default 1h).
	SessionTTL, SessionIdle time.Duration
	// ChartTTL is how long the dashboard's activity chart is reused for
	// a user (default 1 minute; negative: drawn for every page).
	ChartTTL time.Duration
	// LoginsPerUser and LoginsPerAddress limit login attempts (default
	// 10 at once, then one every 6 s); a negative Rate turns a limit off.
	LoginsPerUser, LoginsPerAddress ratelimit.Limit
}

// UI is the dashboard.
type UI struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	sessions *sessions
	byUser   *ratelimit.Keyed
	byAddr   *ratelimit.Keyed

	chartMu sync.Mutex
	charts  map[string]cachedChart
}

var defaultLogins = ratelimit.Limit{Rate: 1.0 / 6, Burst: 10}

// New checks cfg and returns the dashboard.
func New(cfg Config) (*UI, error) {
	if cfg.Service == nil || cfg.Meta == nil || cfg.Repos == nil {
		return nil, errors.New("ui: the dashboard needs the signing service, the metadata store and a repository lister")
	}
	if (cfg.Audit == nil) != (cfg.AuditEntries == nil) {
		return nil, errors.New("ui: give both the audit log and its entries, or neither")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.ChartTTL == 0 {
		cfg.ChartTTL = time.Minute
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = time.Hour
	}
	for _, l := range []*ratelimit.Limit{&cfg.LoginsPerUser, &cfg.LoginsPerAddress} {
		if *l == (ratelimit.Limit{}) {
			*l = defaultLogins
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &UI{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, pages: pages,
		sessions: newSessions(), charts: map[string]cachedChart{},
		byUser: ratelimit.NewKeyed(cfg.LoginsPerUser, 100_000),
		byAddr: ratelimit.NewKeyed(cfg.LoginsPerAddress, 100_000),
	}, nil
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// Route is one route of the dashboard: every one is public in the route
// table, as the dashboard checks its own sessions.
type Route struct {
	Method, Pattern, Op string
	Handler             http.Handler
}

// Routes are the dashboard's routes, under Prefix.
func (u *UI) Routes() []Route {
	get, post := http.MethodGet, http.MethodPost
	return []Route{
		{get, "/ui/{$}", "UIDashboard", u.page(u.dashboard)},
		{get, "/ui/login", "UILoginForm", u.plain(u.loginForm)},
		{post, "/ui/login", "UILogin", u.plain(u.login)},
		{post, "/ui/logout", "UILogout", u.action(u.logout)},
		{get, "/ui/requests", "UIRequests", u.page(u.requests)},
		{get, "/ui/requests/{id}", "UIRequest", u.page(u.request)},
		{post, "/ui/requests/{id}/approve", "UIApprove", u.action(u.approve)},
		{post, "/ui/requests/{id}/deny", "UIDeny", u.action(u.deny)},
		{get, "/ui/repositories", "UIRepositories", u.page(u.repositories)},
		{get, "/ui/repositories/{gun...}", "UIRepository", u.page(u.repository)},
		{get, "/ui/audit", "UIAudit", u.page(u.auditPage)},
		{get, "/ui/projects", "UIProjects", u.page(u.projects)},
		{post, "/ui/projects", "UICreateProject", u.action(u.createProject)},
		{post, "/ui/projects/{name}/policies", "UICreatePolicy", u.action(u.createPolicy)},
		{get, "/ui/projects/{name}/policies/{policy}", "UIPolicy", u.page(u.editPolicy)},
		{post, "/ui/projects/{name}/policies/{policy}", "UIUpdatePolicy", u.action(u.updatePolicy)},
		{get, "/ui/users", "UIUsers", u.page(u.users)},
		{post, "/ui/users/{user}/tokens/{id}/revoke", "UIRevokeToken", u.action(u.revokeToken)},
		{get, "/ui/static/{file}", "UIStatic", u.plain(u.static)},
		{"", "/ui/", "UINotFound", u.page(func(w http.ResponseWriter, r *http.Request, s *session) error {
			return errNotFound
		})},
	}
}

// Handler serves the routes on their own mux (tests, benchmarks).
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range u.Routes() {
		p := rt.Pattern
		if rt.Method != "" {
			p = rt.Method + " " + p
		}
		mux.Handle(p, rt.Handler)
	}
	return mux
}

// csp is the Content-Security-Policy of every answer: scripts and styles
// only from /ui/static, no inline script or style, no framing, forms post
// only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// httpError is an error page's status and sentence.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var errNotFound = &httpError{http.StatusNotFound, "There is no such page."}

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// plain serves a handler that needs no session.
func (u *UI) plain(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		if err := fn(w, r); err != nil {
			u.fail(w, r, nil, err)
		}
	})
}

// page serves a page that needs a session: without one, 303 to the login.
func (u *UI) page(fn func(w http.ResponseWriter, r *http.Request, s *session) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		s := u.current(r)
		if s == nil {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if err := fn(w, r, s); err != nil {
			u.fail(w, r, s, err)
		}
	})
}

// action serves a form's POST: a session and its CSRF token are needed.
func (u *UI) action(fn func(w http.ResponseWriter, r *http.Request, s *session) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s := u.current(r)
		if s == nil {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if err := r.ParseForm(); err != nil {
			u.fail(w, r, s, badRequest("The form could not be read."))
			return
		}
		if !s.checkCSRF(r.PostForm.Get("csrf")) {
			u.log.Info("ui: form refused without its CSRF token", "path", r.URL.Path, "user", s.user)
			u.fail(w, r, s, &httpError{http.StatusForbidden, "The form was refused: it did not carry this session's token (CSRF). Reload the page and try again."})
			return
		}
		if err := fn(w, r, s); err != nil {
			u.fail(w, r, s, err)
		}
	})
}

// fail writes an error page.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong on the server; the log says what."
	var he *httpError
	var se *service.Error
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &se):
		status, msg = se.Status, se.Message
	}
	if status >= 500 {
		u.log.Error("ui: page failed", "path", r.URL.Path, "err", err)
	}
	u.render(w, r, s, status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

// view is what every page's template gets.
type view struct {
	Title   string
	User    string
	Admin   bool
	Reader  bool
	CSRF    string
	Nav     string
	HTMX    string
	Data    any
	Flash   string
	Now     time.Time
	BaseURL string
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, s *session, status int, page string, data any) {
	t, name := u.pages[page], "layout.html"
	if page == "repolist" { // a fragment, for htmx
		t, name = u.pages["repositories"], "repolist"
	}
	v := view{Nav: page, Data: data, Now: u.now(), HTMX: HTMXVersion, BaseURL: u.baseURL(r)}
	if s != nil {
		v.User, v.Admin, v.Reader, v.CSRF = s.user, s.p.Admin(), s.p.Reader(), s.csrf
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, v); err != nil {
		u.log.Error("ui: template failed", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (u *UI) baseURL(r *http.Request) string {
	if u.cfg.ServerURL != "" {
		return strings.TrimSuffix(u.cfg.ServerURL, "/")
	}
	return "https://" + r.Host
}

// static serves the embedded stylesheet and htmx.
func (u *UI) static(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	data, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		return errNotFound
	}
	switch {
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(data)
	return nil
}
