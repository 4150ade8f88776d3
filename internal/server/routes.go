package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/tuf"
)

// Route is one entry of signet-server's route table: a request's path and
// method, the operation it is, the access it needs, and what serves it.
// Every route of every group is one Route; New refuses a table where any
// route lacks an operation, an access rule or a handler.
type Route struct {
	// Method is the HTTP method, or "" for every method that no other
	// route of the same pattern names. In a Group, "GET" also matches
	// HEAD (http.ServeMux), and a method no route of the path takes falls
	// to the Notary API's catch-all, as every unknown path does (404
	// METADATA_NOT_FOUND); a group that wants its own 405 adds a route
	// for any method. In the Notary API methods are exact.
	Method string
	// Pattern is the path. In a Group it is an http.ServeMux pattern
	// without method or host (Go 1.22 wildcards: "/audit/tile/{L}/{N...}").
	// In the Notary API it is the reference's route pattern of a
	// notaryapi.PathKind ("/v2/{gun}/_trust/tuf/{role}.json"), matched by
	// notaryapi.ParsePath in the reference's order.
	Pattern string
	// Op names the operation in logs, and in metrics for the Notary API
	// (the reference's names: GetRole, UpdateTUF, …).
	Op string
	// Access is what the request needs before Handler runs. It has no
	// default: the zero Access is refused.
	Access Access
	// Handler serves the request once access is granted.
	Handler http.Handler
}

// AccessKind says who decides a route's access.
type AccessKind uint8

const (
	accessUnset AccessKind = iota // the zero Access; refused by New

	// AccessPublic routes need no credentials: health, readiness,
	// metrics, the token service, later the audit log's reads.
	AccessPublic
	// AccessRepository routes need Actions on the repository (GUN) of
	// the request, granted by a registry bearer token and decided by
	// Config.Authorizer (notary-v1.md §2.12). In a Group the GUN is the
	// pattern's {gun} (or {gun...}) wildcard.
	AccessRepository
	// AccessCatalog routes need "*" on the registry catalog, decided by
	// Config.Authorizer: the reference's rule for Notary routes without a
	// GUN (/v2/, the global changefeed, the catch-all).
	AccessCatalog
	// AccessService routes need a role of the signing service (an
	// authenticated user, an admin, an auditor, a project's manager, a CI
	// identity…), granted by the service's credentials (API tokens, CI
	// OIDC tokens, browser sessions) and decided by
	// Config.ServiceAuthorizer; New refuses them without one.
	AccessService
)

// Access is the access a route needs.
type Access struct {
	Kind AccessKind
	// Actions are the Notary actions of AccessRepository: "pull",
	// "push", "*" (in the order challenges list them).
	Actions []string
	// Role is the signing service's role of AccessService, as its
	// authorizer names it.
	Role string
}

// Public is the access of a route anyone may use.
func Public() Access { return Access{Kind: AccessPublic} }

// Repository is the access of a Notary route: actions on the request's GUN.
func Repository(actions ...string) Access { return Access{Kind: AccessRepository, Actions: actions} }

// Catalog is the access of a Notary route without a GUN: "*" on the
// registry catalog.
func Catalog() Access { return Access{Kind: AccessCatalog} }

// ServiceRole is the access of a signing-service route: role, as decided
// by the ServiceAuthorizer.
func ServiceRole(role string) Access { return Access{Kind: AccessService, Role: role} }

func (a Access) String() string {
	switch a.Kind {
	case AccessPublic:
		return "public"
	case AccessRepository:
		return "repository:{gun}:" + strings.Join(a.Actions, ",")
	case AccessCatalog:
		return "registry:catalog:*"
	case AccessService:
		return "service:" + a.Role
	}
	return "none"
}

// Scope is a resource and the actions on it that a registry bearer token
// must grant: repository:<GUN>:pull,push or registry:catalog:* (§2.12).
type Scope struct {
	// Type is "repository" or "registry"; Name the GUN or "catalog".
	Type, Name string
	Actions    []string // "pull", "push", "*"
}

// Authorizer decides AccessRepository and AccessCatalog routes: whether a
// request may have the scopes it needs. It returns nil to allow, or an
// error: an *apierr.Error (UNAUTHORIZED, with a challenge set on w) is
// sent as is. Without one, every such request is allowed, as by the
// reference server without auth.
type Authorizer interface {
	Authorize(w http.ResponseWriter, r *http.Request, need []Scope) error
}

// ServiceAuthorizer decides AccessService routes: whether the credentials
// of a request hold role. It returns nil to allow, or an error that the
// route's group writes (setting any challenge or cookie on w first).
type ServiceAuthorizer interface {
	AuthorizeService(w http.ResponseWriter, r *http.Request, role string) error
}

// Group is a set of routes another part of signet-server serves beside
// the Notary API (the token service, later the signing service's /api/v1,
// the audit log's /audit and the web UI's /ui), registered into the same
// route table through Config.Groups.
type Group struct {
	// Name names the group in errors at start and in logs.
	Name string
	// Routes are the group's entries of the route table. Their patterns
	// may not reach into the Notary API: nothing under /v2/ and no
	// pattern whose first segment is a wildcard or that matches every
	// path.
	Routes []Route
	// WriteError writes a refused authorization in the group's own error
	// format. It is required when any route needs more than AccessPublic.
	WriteError func(w http.ResponseWriter, r *http.Request, err error)
}

// Registry token scope vocabulary (§2.12).
const (
	actionPull = "pull"
	actionPush = "push"
	actionAll  = "*"
)

// authorize is the one decision on access: the authorizer responsible for
// the route's access kind decides, for the request's GUN when it has one.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, a Access, gun string) error {
	switch a.Kind {
	case AccessPublic:
		return nil
	case AccessRepository:
		if s.cfg.Authorizer == nil {
			return nil
		}
		return s.cfg.Authorizer.Authorize(w, r, []Scope{{Type: "repository", Name: gun, Actions: a.Actions}})
	case AccessCatalog:
		if s.cfg.Authorizer == nil {
			return nil
		}
		return s.cfg.Authorizer.Authorize(w, r, []Scope{{Type: "registry", Name: "catalog", Actions: []string{actionAll}}})
	case AccessService:
		return s.cfg.ServiceAuthorizer.AuthorizeService(w, r, a.Role)
	}
	return errNoAccessRule // New refuses such routes; never reached
}

var errNoAccessRule = errors.New("server: the route has no access rule")

// checkRoute checks what every route needs, whatever its group.
func (s *Server) checkRoute(group string, rt Route) error {
	where := fmt.Sprintf("server: %s route %s", group, describe(rt))
	switch {
	case rt.Pattern == "":
		return fmt.Errorf("%s: no pattern", where)
	case rt.Op == "":
		return fmt.Errorf("%s: no operation", where)
	case rt.Handler == nil:
		return fmt.Errorf("%s: no handler", where)
	case rt.Method != "" && !validMethod(rt.Method):
		return fmt.Errorf("%s: %q is not an HTTP method", where, rt.Method)
	}
	a := rt.Access
	switch a.Kind {
	case accessUnset:
		return fmt.Errorf("%s: no access rule (there is no default)", where)
	case AccessPublic, AccessCatalog:
		if len(a.Actions) > 0 || a.Role != "" {
			return fmt.Errorf("%s: %s access takes no actions or role", where, a)
		}
	case AccessRepository:
		if len(a.Actions) == 0 || a.Role != "" {
			return fmt.Errorf("%s: repository access needs actions, and no role", where)
		}
		for i, act := range a.Actions {
			if act != actionPull && act != actionPush && act != actionAll || slices.Contains(a.Actions[:i], act) {
				return fmt.Errorf("%s: repository action %q: use pull, push or *, once each", where, act)
			}
		}
	case AccessService:
		if a.Role == "" || len(a.Actions) > 0 {
			return fmt.Errorf("%s: service access needs a role, and no actions", where)
		}
		if s.cfg.ServiceAuthorizer == nil {
			return fmt.Errorf("%s: needs service role %q, but no ServiceAuthorizer is configured", where, a.Role)
		}
	default:
		return fmt.Errorf("%s: unknown access kind %d", where, a.Kind)
	}
	return nil
}

func describe(rt Route) string {
	m := rt.Method
	if m == "" {
		m = "*"
	}
	return fmt.Sprintf("%s %s (%s)", m, rt.Pattern, rt.Op)
}

// validMethod: an HTTP token of upper-case letters, as methods are.
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return m != ""
}

// mount checks a group and registers its routes on mux, each behind the
// authorization its access names.
func (s *Server) mount(mux *http.ServeMux, g Group) error {
	if g.Name == "" {
		return errors.New("server: a route group has no name")
	}
	for _, rt := range g.Routes {
		if err := s.checkRoute(g.Name, rt); err != nil {
			return err
		}
		where := fmt.Sprintf("server: %s route %s", g.Name, describe(rt))
		first, _, _ := strings.Cut(strings.TrimPrefix(rt.Pattern, "/"), "/")
		switch {
		case !strings.HasPrefix(rt.Pattern, "/") || strings.ContainsAny(rt.Pattern, " \t"):
			return fmt.Errorf("%s: a group pattern is a path starting with /, without method or host", where)
		case first == "v2" || first == "" || strings.HasPrefix(first, "{"):
			return fmt.Errorf("%s: the pattern reaches into the Notary API (/v2/ and every unmatched path are its own)", where)
		case rt.Access.Kind == AccessRepository && !strings.Contains(rt.Pattern, "{gun}") && !strings.Contains(rt.Pattern, "{gun...}"):
			return fmt.Errorf("%s: repository access needs a {gun} wildcard in the pattern", where)
		case rt.Access.Kind != AccessPublic && g.WriteError == nil:
			return fmt.Errorf("%s: the group has no WriteError for refused requests", where)
		}
		pattern := rt.Pattern
		if rt.Method != "" {
			pattern = rt.Method + " " + pattern
		}
		if err := handle(mux, pattern, s.guard(g, rt)); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.routes = append(s.routes, rt)
	}
	return nil
}

// handle registers on mux, turning its panics (a malformed or conflicting
// pattern) into an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// guard puts a group route behind its authorization; a route that needs
// access to a repository gets only a GUN ParseGUN accepts (the group's
// WriteError answers any other with an INVALID_GUN *apierr.Error).
func (s *Server) guard(g Group, rt Route) http.Handler {
	if rt.Access.Kind == AccessPublic {
		return rt.Handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var gun notaryapi.GUN
		if rt.Access.Kind == AccessRepository {
			var err error
			if gun, err = notaryapi.ParseGUN(r.PathValue("gun")); err != nil {
				g.WriteError(w, r, invalidGUN(err.(*notaryapi.InvalidGUNError)))
				return
			}
		}
		if err := s.authorize(w, r, rt.Access, gun.String()); err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", slog.String("group", g.Name),
				slog.String("op", rt.Op), slog.Any("cause", err))
			g.WriteError(w, r, err)
			return
		}
		rt.Handler.ServeHTTP(w, r)
	})
}

// invalidGUN is the answer to a GUN ParseGUN refused: 400 INVALID_GUN
// with the reason as detail (the reference's code for a GUN it does not
// serve, notary-v1.md §2.1).
func invalidGUN(e *notaryapi.InvalidGUNError) *apierr.Error {
	return &apierr.Error{Code: notaryapi.InvalidGUN, Detail: e.Reason, Cause: e}
}

// notaryHandler serves a route of the Notary API given the parsed path,
// and returns its error for apierr to write. The Notary dispatcher calls it
// with the path it parsed; as an http.Handler (the route table's type) it
// parses the path itself.
type notaryHandler func(w http.ResponseWriter, r *http.Request, p notaryapi.Path) error

func (h notaryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := notaryapi.ParsePath(r.URL.Path)
	if p.GUNError != nil {
		apierr.Write(w, invalidGUN(p.GUNError))
		return
	}
	if err := h(w, r, p); err != nil {
		apierr.Write(w, err)
	}
}

// notaryRoutes is the Notary v1 API: the reference's route table
// (notary-v1.md §2.1) with the access each route needs (§2.12).
func (s *Server) notaryRoutes() []Route {
	var (
		pull     = Repository(actionPull)
		pushPull = Repository(actionPush, actionPull)
		all      = Repository(actionAll)
		catalog  = Catalog()
	)
	const (
		get, head, post, put, del = http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete
		anyOther                  = ""
	)
	pat := func(k notaryapi.PathKind) string { return k.Pattern() }
	notFound := notaryHandler(func(http.ResponseWriter, *http.Request, notaryapi.Path) error {
		return apierr.New(notaryapi.MetadataNotFound, struct{}{})
	})
	return []Route{
		{get, pat(notaryapi.PathBase), "Main", catalog, notaryHandler(s.handleBase)},
		{anyOther, pat(notaryapi.PathBase), "Main", catalog, notaryHandler(func(http.ResponseWriter, *http.Request, notaryapi.Path) error {
			return apierr.New(notaryapi.GenericNotFound, struct{}{})
		})},
		{get, pat(notaryapi.PathChangesAll), "Changefeed", catalog, notaryHandler(s.handleChanges)},
		{get, pat(notaryapi.PathChangesGUN), "Changefeed", pull, notaryHandler(s.handleChanges)},
		{post, pat(notaryapi.PathTUF), "UpdateTUF", pushPull, notaryHandler(s.handleUpdate)},
		{del, pat(notaryapi.PathTUF), "DeleteTUF", all, notaryHandler(s.handleDelete)},
		{get, pat(notaryapi.PathMetaChecksum), "GetRoleByHash", pull, notaryHandler(s.handleGetChecksum)},
		{get, pat(notaryapi.PathMetaVersion), "GetRoleByVersion", pull, notaryHandler(s.handleGetVersion)},
		{get, pat(notaryapi.PathMetaCurrent), "GetRole", pull, notaryHandler(s.handleGetCurrent)},
		{get, pat(notaryapi.PathKey), "GetKey", pushPull, notaryHandler(s.handleGetKey)},
		{post, pat(notaryapi.PathKey), "RotateKey", all, notaryHandler(s.handleRotateKey)},
		// The catch-all (route 13), also for a known path with a method
		// its routes do not take: 404 for the methods the reference
		// routes there, 405 in plain text for any other.
		{get, pat(notaryapi.PathOther), "NotFound", catalog, notFound},
		{head, pat(notaryapi.PathOther), "NotFound", catalog, notFound},
		{post, pat(notaryapi.PathOther), "NotFound", catalog, notFound},
		{put, pat(notaryapi.PathOther), "NotFound", catalog, notFound},
		{del, pat(notaryapi.PathOther), "NotFound", catalog, notFound},
		{anyOther, pat(notaryapi.PathOther), "NotFound", catalog, notaryHandler(func(w http.ResponseWriter, _ *http.Request, _ notaryapi.Path) error {
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return nil
		})},
	}
}

// Method slots of the Notary dispatcher: the methods its routes name, and
// any other.
const (
	slotGet = iota
	slotHead
	slotPost
	slotPut
	slotDelete
	slotOther
	numSlots
)

func methodSlot(m string) int {
	switch m {
	case http.MethodGet:
		return slotGet
	case http.MethodHead:
		return slotHead
	case http.MethodPost:
		return slotPost
	case http.MethodPut:
		return slotPut
	case http.MethodDelete:
		return slotDelete
	}
	return slotOther
}

// notaryRoute is a Notary route as the dispatcher uses it.
type notaryRoute struct {
	op     string
	access Access
	serve  notaryHandler
}

// notaryTable is the Notary API's dispatch, derived from its routes: the
// route of each path kind and method.
type notaryTable [notaryapi.NumPathKinds][numSlots]*notaryRoute

// buildNotary checks the Notary API's routes and derives its dispatch: a
// request takes the route of its path kind and method, else of its path
// kind for any method, else the catch-all's for its method, else the
// catch-all's for any method. Every path kind and method must end at a
// route.
func (s *Server) buildNotary(routes []Route) (*notaryTable, error) {
	var exact [notaryapi.NumPathKinds][numSlots]*notaryRoute
	var anyMethod [notaryapi.NumPathKinds]*notaryRoute
	for _, rt := range routes {
		if err := s.checkRoute("Notary API", rt); err != nil {
			return nil, err
		}
		where := "server: Notary API route " + describe(rt)
		kind, ok := notaryapi.KindOfPattern(rt.Pattern)
		if !ok {
			return nil, fmt.Errorf("%s: not a route pattern of the Notary API", where)
		}
		serve, ok := rt.Handler.(notaryHandler)
		if !ok {
			return nil, fmt.Errorf("%s: the handler is not a Notary handler", where)
		}
		if rt.Access.Kind == AccessRepository && !kind.HasGUN() {
			return nil, fmt.Errorf("%s: repository access on a path without a GUN", where)
		}
		nr := &notaryRoute{op: rt.Op, access: rt.Access, serve: serve}
		slot := &anyMethod[kind]
		if rt.Method != "" {
			m := methodSlot(rt.Method)
			if m == slotOther {
				return nil, fmt.Errorf("%s: the Notary API routes GET, HEAD, POST, PUT and DELETE, or any method", where)
			}
			slot = &exact[kind][m]
		}
		if *slot != nil {
			return nil, fmt.Errorf("%s: a second route for the same path and method", where)
		}
		*slot = nr
		s.routes = append(s.routes, rt)
	}
	t := new(notaryTable)
	for k := range notaryapi.NumPathKinds {
		for m := range numSlots {
			t[k][m] = firstRoute(exact[k][m], anyMethod[k], exact[notaryapi.PathOther][m], anyMethod[notaryapi.PathOther])
			if t[k][m] == nil {
				return nil, fmt.Errorf("server: Notary API: no route for %s with method slot %d (the catch-all must take every method)", k.Pattern(), m)
			}
		}
	}
	return t, nil
}

// firstRoute returns the first non-nil route.
func firstRoute(rs ...*notaryRoute) *notaryRoute {
	for _, r := range rs {
		if r != nil {
			return r
		}
	}
	return nil
}

// serveNotary is the Notary API's dispatcher: parse the path, take the
// route, refuse an invalid GUN, authorize, refuse a role name nothing can
// be stored under, serve, and write any error through apierr.
func (s *Server) serveNotary(w http.ResponseWriter, r *http.Request) {
	p := notaryapi.ParsePath(r.URL.Path)
	rt := s.notary[p.Kind][methodSlot(r.Method)]
	start := requestStart(w)
	var err error
	if rt.access.Kind == AccessRepository && p.GUNError != nil {
		// Before authorization, as the reference checks its GUN prefixes:
		// the name alone decides, and no authorizer, custodian or store
		// ever sees it.
		err = invalidGUN(p.GUNError)
	} else if rt.access.Kind != AccessPublic {
		err = s.authorize(w, r, rt.access, p.GUN.String())
	}
	if err == nil && p.Role != "" && rt.access.Kind == AccessRepository && !tuf.ValidRole(p.Role) {
		// The route's pattern matched, but no upload can have stored a
		// role of this name: what storage would answer, without asking it.
		err = apierr.New(notaryapi.MetadataNotFound, struct{}{})
	}
	if err == nil {
		err = rt.serve(w, r, p)
	}
	if err != nil {
		s.notaryError(w, r, rt.op, p.GUN, err)
	}
	s.m.observe(rt.op, time.Since(start))
}

// notaryError writes err in the Notary API's error envelope and logs it.
// It is apart from serveNotary so that the stack of a successful request,
// which writes its response from below serveNotary, does not carry the
// log call's frame (see writeMeta).
func (s *Server) notaryError(w http.ResponseWriter, r *http.Request, op string, gun notaryapi.GUN, err error) {
	e := apierr.Write(w, err)
	lvl := slog.LevelInfo
	if e.Code.Status() >= 500 {
		lvl = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), lvl, "request failed", slog.String("op", op), slog.String("gun", gun.String()),
		slog.String("code", e.Code.Name()), slog.Any("detail", e.Detail), slog.Any("cause", e.Cause))
}

// hostRoutes are signet-server's own routes beside the Notary API: health
// and readiness for anyone; metrics for anyone without an Authorizer, else
// only with a token for the registry catalog (an admin's), so that a
// server with auth does not show its traffic to the world (serve them on
// a separate address for a scraper: Metrics.Handler); the import of a
// repository's history. Their refusals are written in the Notary API's
// error envelope.
func (s *Server) hostRoutes() Group {
	return Group{Name: "server", Routes: []Route{
		{"", "/_notary_server/health", "Health", Public(), http.HandlerFunc(s.handleHealth)},
		{"", "/_signet/ready", "Ready", Public(), http.HandlerFunc(s.handleReady)},
		{"", "/metrics", "Metrics", Catalog(), s.m.Handler()},
		// signet mirror: a repository's history from another Notary
		// server (import.go); "*" on the GUN, an admin's scope.
		{http.MethodPost, notaryapi.ImportPrefix + "{gun...}", "ImportTUF", Repository(actionAll), http.HandlerFunc(s.handleImport)},
	}, WriteError: func(w http.ResponseWriter, _ *http.Request, err error) { apierr.Write(w, err) }}
}

// Routes returns the route table: the Notary API's routes, the server's
// own, then those of Config.Groups, in order.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }
