package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// baseConfig is a working configuration on an in-memory database.
func baseConfig(t *testing.T) server.Config {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cust, err := custody.Open(t.Context(), st, []byte("test passphrase"), custody.AlgorithmECDSA, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return server.Config{Store: st, Custodian: cust, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestNotaryRouteTable checks the Notary API's part of the route table
// against the reference's (notary-v1.md §2.1, access from §2.12), and
// that the server's own routes are public.
func TestNotaryRouteTable(t *testing.T) {
	s, err := server.New(baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rt := range s.Routes() {
		m := rt.Method
		if m == "" {
			m = "*"
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", m, rt.Pattern, rt.Op, rt.Access))
	}
	want := []string{
		"GET /v2/ Main registry:catalog:*",
		"* /v2/ Main registry:catalog:*",
		"GET /v2/_trust/changefeed Changefeed registry:catalog:*",
		"GET /v2/{gun}/_trust/changefeed Changefeed repository:{gun}:pull",
		"POST /v2/{gun}/_trust/tuf/ UpdateTUF repository:{gun}:push,pull",
		"DELETE /v2/{gun}/_trust/tuf/ DeleteTUF repository:{gun}:*",
		"GET /v2/{gun}/_trust/tuf/{role}.{checksum}.json GetRoleByHash repository:{gun}:pull",
		"GET /v2/{gun}/_trust/tuf/{version}.{role}.json GetRoleByVersion repository:{gun}:pull",
		"GET /v2/{gun}/_trust/tuf/{role}.json GetRole repository:{gun}:pull",
		"GET /v2/{gun}/_trust/tuf/{role}.key GetKey repository:{gun}:push,pull",
		"POST /v2/{gun}/_trust/tuf/{role}.key RotateKey repository:{gun}:*",
		"GET /{other...} NotFound registry:catalog:*",
		"HEAD /{other...} NotFound registry:catalog:*",
		"POST /{other...} NotFound registry:catalog:*",
		"PUT /{other...} NotFound registry:catalog:*",
		"DELETE /{other...} NotFound registry:catalog:*",
		"* /{other...} NotFound registry:catalog:*",
		"* /_notary_server/health Health public",
		"* /_signet/ready Ready public",
		"* /metrics Metrics registry:catalog:*",
		"POST /_signet/import/{gun...} ImportTUF repository:{gun}:*",
	}
	if !slices.Equal(got, want) {
		t.Errorf("route table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A Notary route's handler serves on its own too, parsing the path.
	for _, rt := range s.Routes() {
		w := httptest.NewRecorder()
		switch {
		case rt.Op == "Main" && rt.Method == "GET":
			rt.Handler.ServeHTTP(w, httptest.NewRequest("GET", "/v2/", nil))
			if w.Code != 200 || w.Body.String() != "{}" {
				t.Errorf("Main on its own: %d %s", w.Code, w.Body)
			}
		case rt.Op == "GetRole":
			rt.Handler.ServeHTTP(w, httptest.NewRequest("GET", notaryapi.CurrentPath("g", "root"), nil))
			if errs, ok := notaryapi.ParseErrors(w.Body.Bytes()); w.Code != 404 || !ok || errs[0].Code != "METADATA_NOT_FOUND" {
				t.Errorf("GetRole on its own: %d %s", w.Code, w.Body)
			}
		}
	}
}

// scopeRecorder is an Authorizer that refuses every request, as the
// token authorizer refuses one without a token, and records the scopes
// it was asked for.
type scopeRecorder struct {
	mu  sync.Mutex
	got []string
}

func (a *scopeRecorder) Authorize(w http.ResponseWriter, r *http.Request, need []server.Scope) error {
	var s []string
	for _, n := range need {
		s = append(s, n.Type+":"+n.Name+":"+strings.Join(n.Actions, ","))
	}
	a.mu.Lock()
	a.got = append(a.got, strings.Join(s, " "))
	a.mu.Unlock()
	w.Header().Set("Www-Authenticate", `Bearer realm="test"`)
	return apierr.New(notaryapi.Unauthorized, []notaryapi.AccessRecord{})
}

func (a *scopeRecorder) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.got) == 0 {
		return ""
	}
	return a.got[len(a.got)-1]
}

// TestNotaryAuthorizationFromTable sends one request per route and checks
// that the authorizer is asked for the scopes the reference requires, and
// that a refused request runs no handler.
func TestNotaryAuthorizationFromTable(t *testing.T) {
	cfg := baseConfig(t)
	rec := &scopeRecorder{}
	cfg.Authorizer = rec
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	const g = "example.com/a"
	tests := []struct{ method, path, scopes string }{
		{"GET", "/v2/", "registry:catalog:*"},
		{"POST", "/v2/", "registry:catalog:*"},
		{"GET", "/v2/_trust/changefeed", "registry:catalog:*"},
		{"GET", "/v2/" + g + "/_trust/changefeed", "repository:" + g + ":pull"},
		{"POST", notaryapi.TUFPath(g), "repository:" + g + ":push,pull"},
		{"DELETE", notaryapi.TUFPath(g), "repository:" + g + ":*"},
		{"GET", notaryapi.ChecksumPath(g, "targets", make([]byte, 32)), "repository:" + g + ":pull"},
		{"GET", notaryapi.VersionPath(g, "root", 1), "repository:" + g + ":pull"},
		{"GET", notaryapi.CurrentPath(g, "targets/releases"), "repository:" + g + ":pull"},
		{"GET", notaryapi.KeyPath(g, "timestamp"), "repository:" + g + ":push,pull"},
		{"POST", notaryapi.KeyPath(g, "snapshot"), "repository:" + g + ":*"},
		// No route of its own: the catch-all, whose rule is the catalog's.
		{"GET", notaryapi.TUFPath(g), "registry:catalog:*"},
		{"PUT", notaryapi.CurrentPath(g, "root"), "registry:catalog:*"},
		{"HEAD", notaryapi.CurrentPath(g, "root"), "registry:catalog:*"},
		{"PATCH", notaryapi.CurrentPath(g, "root"), "registry:catalog:*"},
		{"GET", "/v2/" + g + "/_trust/tuf/root.key", "registry:catalog:*"},
		{"GET", "/nothing", "registry:catalog:*"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if got := rec.last(); got != tt.scopes {
			t.Errorf("%s %s: authorizer asked for %q, want %q", tt.method, tt.path, got, tt.scopes)
		}
		if w.Code != http.StatusUnauthorized || w.Header().Get("Www-Authenticate") == "" {
			t.Errorf("%s %s: %d, want the authorizer's 401", tt.method, tt.path, w.Code)
		}
	}
	// Nothing was created: GET timestamp.key would have minted a key.
	if ks, err := cfg.Custodian.Keys(t.Context(), g, "timestamp"); err != nil || len(ks) != 0 {
		t.Errorf("a refused GET timestamp.key reached the handler: %d keys, %v", len(ks), err)
	}
	// Health and readiness ask no one; metrics need the catalog scope, so
	// that a server with auth does not show its traffic to everyone.
	n := len(rec.got)
	for _, p := range []string{"/_notary_server/health", "/_signet/ready"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != 200 || len(rec.got) != n {
			t.Errorf("GET %s: %d, authorizer asked: %v", p, w.Code, len(rec.got) != n)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if got := rec.got[n:]; w.Code != http.StatusUnauthorized || len(got) != 1 || got[0] != "registry:catalog:*" {
		t.Errorf("GET /metrics: %d, authorizer asked for %v, want 401 after registry:catalog:*", w.Code, got)
	}
}

// roleHeader is a ServiceAuthorizer for tests: the request's X-Test-Role
// header is its role.
type roleHeader struct{}

var errForbidden = errors.New("test: role not held")

func (roleHeader) AuthorizeService(w http.ResponseWriter, r *http.Request, role string) error {
	if r.Header.Get("X-Test-Role") != role {
		return fmt.Errorf("%w: %s", errForbidden, role)
	}
	return nil
}

// testGroup is a tiny route group of the kind the signing service and the
// audit log will register: ServeMux patterns, JSON errors of its own.
func testGroup() server.Group {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.PathValue("name"))
	})
	repo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "repository %s", r.PathValue("gun"))
	})
	return server.Group{
		Name: "test",
		Routes: []server.Route{
			{Method: "GET", Pattern: "/test/hello/{name}", Op: "Hello", Access: server.Public(), Handler: hello},
			// A group takes the other methods of its paths itself, or they
			// fall to the Notary API's catch-all like any unknown path.
			{Pattern: "/test/hello/{name}", Op: "HelloOther", Access: server.Public(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, `{"error":{"code":"METHOD_NOT_ALLOWED"}}`, http.StatusMethodNotAllowed)
			})},
			{Method: "POST", Pattern: "/test/admin/{name}", Op: "Admin", Access: server.ServiceRole("admin"), Handler: hello},
			{Method: "GET", Pattern: "/test/repo/{gun...}", Op: "Repo", Access: server.Repository("pull"), Handler: repo},
		},
		WriteError: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusUnauthorized
			if errors.Is(err, errForbidden) {
				status = http.StatusForbidden
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"code":"DENIED","message":%q}}`, err.Error())
		},
	}
}

// TestGroupMounted mounts a test group beside the Notary API: its routes
// are served through the same table, middleware and authorization.
func TestGroupMounted(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Groups = []server.Group{testGroup()}
	cfg.ServiceAuthorizer = roleHeader{}
	rec := &scopeRecorder{}
	cfg.Authorizer = rec
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do := func(method, path, role string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if role != "" {
			r.Header.Set("X-Test-Role", role)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("GET", "/test/hello/ann", ""); w.Code != 200 || w.Body.String() != "hello ann" || w.Header().Get("X-Request-Id") == "" {
		t.Errorf("public group route: %d %q (request ID %q)", w.Code, w.Body, w.Header().Get("X-Request-Id"))
	}
	if w := do("POST", "/test/hello/ann", ""); w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Body.String(), "METHOD_NOT_ALLOWED") {
		t.Errorf("group route, other method: %d %s, want the group's 405", w.Code, w.Body)
	}
	if w := do("POST", "/test/repo/example.com/a", ""); w.Code != http.StatusUnauthorized || rec.last() != "registry:catalog:*" {
		t.Errorf("group path, a method the group does not take: %d, scopes %q, want the Notary catch-all", w.Code, rec.last())
	}
	if w := do("POST", "/test/admin/x", "auditor"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"code":"DENIED"`) {
		t.Errorf("service route without the role: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/test/admin/x", "admin"); w.Code != 200 || w.Body.String() != "hello x" {
		t.Errorf("service route with the role: %d %s", w.Code, w.Body)
	}
	if w := do("GET", "/test/repo/example.com/a", ""); w.Code != http.StatusUnauthorized || rec.last() != "repository:example.com/a:pull" {
		t.Errorf("group route with repository access: %d, scopes %q", w.Code, rec.last())
	}
	for _, rt := range s.Routes() {
		if rt.Op == "Hello" && rt.Pattern == "/test/hello/{name}" {
			return
		}
	}
	t.Error("the group's routes are not in Routes()")
}

// TestNewRefusesBadRoutes: a route without an access rule, an operation or
// a handler, or one the table cannot serve safely, stops the server from
// starting.
func TestNewRefusesBadRoutes(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	writeErr := func(http.ResponseWriter, *http.Request, error) {}
	good := server.Route{Method: "GET", Pattern: "/x/y", Op: "Y", Access: server.Public(), Handler: ok}
	with := func(f func(*server.Route)) server.Route { r := good; f(&r); return r }
	tests := []struct {
		name   string
		group  server.Group
		noSvc  bool
		expect string
	}{
		{"no access", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Access = server.Access{} })}}, false, "no access rule"},
		{"no operation", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Op = "" })}}, false, "no operation"},
		{"no handler", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Handler = nil })}}, false, "no handler"},
		{"no pattern", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Pattern = "" })}}, false, "no pattern"},
		{"bad method", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Method = "get" })}}, false, "not an HTTP method"},
		{"unknown kind", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Access = server.Access{Kind: 99} })}}, false, "unknown access kind"},
		{"bad action", server.Group{Name: "g", WriteError: writeErr, Routes: []server.Route{with(func(r *server.Route) {
			r.Pattern, r.Access = "/x/{gun...}", server.Repository("pull", "delete")
		})}}, false, `action "delete"`},
		{"no actions", server.Group{Name: "g", WriteError: writeErr, Routes: []server.Route{with(func(r *server.Route) {
			r.Pattern, r.Access = "/x/{gun...}", server.Repository()
		})}}, false, "needs actions"},
		{"repository without gun", server.Group{Name: "g", WriteError: writeErr, Routes: []server.Route{with(func(r *server.Route) { r.Access = server.Repository("pull") })}}, false, "{gun}"},
		{"service without authorizer", server.Group{Name: "g", WriteError: writeErr, Routes: []server.Route{with(func(r *server.Route) { r.Access = server.ServiceRole("admin") })}}, true, "no ServiceAuthorizer"},
		{"service without role", server.Group{Name: "g", WriteError: writeErr, Routes: []server.Route{with(func(r *server.Route) { r.Access = server.ServiceRole("") })}}, false, "needs a role"},
		{"no WriteError", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Access = server.ServiceRole("admin") })}}, false, "no WriteError"},
		{"under /v2/", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Pattern = "/v2/mine" })}}, false, "Notary API"},
		{"catch-all", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Pattern = "/" })}}, false, "Notary API"},
		{"wildcard first", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Pattern = "/{x}/y" })}}, false, "Notary API"},
		{"method in pattern", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Pattern = "GET /x" })}}, false, "without method"},
		{"duplicate", server.Group{Name: "g", Routes: []server.Route{good, good}}, false, "conflicts"},
		{"taken by the server", server.Group{Name: "g", Routes: []server.Route{with(func(r *server.Route) { r.Method, r.Pattern = "", "/metrics" })}}, false, "conflicts"},
		{"no name", server.Group{Routes: []server.Route{good}}, false, "no name"},
	}
	for _, tt := range tests {
		cfg := baseConfig(t)
		cfg.Groups = []server.Group{tt.group}
		if !tt.noSvc {
			cfg.ServiceAuthorizer = roleHeader{}
		}
		_, err := server.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tt.expect) {
			t.Errorf("%s: New: %v, want an error about %q", tt.name, err, tt.expect)
		}
	}
	cfg := baseConfig(t)
	cfg.Groups = []server.Group{{Name: "g", Routes: []server.Route{good}}}
	if _, err := server.New(cfg); err != nil {
		t.Errorf("a good group: %v", err)
	}
}

// faultyStore fails the calls named in fail with err, and passes the rest
// to a real store.
type faultyStore struct {
	store.MetaStore
	err error
}

func (f faultyStore) GetCurrent(ctx context.Context, gun, role string) (store.File, error) {
	return store.File{}, fmt.Errorf("get current: %w", f.err)
}

func (f faultyStore) Delete(ctx context.Context, gun string) (bool, error) {
	return false, fmt.Errorf("delete: %w", f.err)
}

func (f faultyStore) Changes(ctx context.Context, gun string, changeID int64, records int) ([]store.Change, error) {
	return nil, fmt.Errorf("changes: %w", f.err)
}

// TestErrorClassification checks the one mapping of store failures: a
// transient one (store.ErrUnavailable) is 503 UNAVAILABLE with Retry-After
// on every route, reads and writes alike; any other is the operation's
// 500 (UNKNOWN for reads, UPDATING for writes), without Retry-After.
func TestErrorClassification(t *testing.T) {
	for _, tt := range []struct {
		name         string
		err          error
		status       int
		read, delete string
	}{
		{"transient", store.Unavailable(errors.New("connection refused")), 503, "UNAVAILABLE", "UNAVAILABLE"},
		{"permanent", errors.New("no such table"), 500, "UNKNOWN", "UPDATING"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Store = faultyStore{MetaStore: cfg.Store, err: tt.err}
			s, err := server.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := s.Handler()
			for _, c := range []struct{ method, path, code string }{
				{"GET", notaryapi.CurrentPath("g", "root"), tt.read},
				{"GET", notaryapi.KeyPath("g", "timestamp"), tt.read},
				{"GET", notaryapi.ChangefeedPath("g") + "?records=10", tt.read},
				{"DELETE", notaryapi.TUFPath("g"), tt.delete},
			} {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
				wantRetry := ""
				if tt.status == 503 {
					wantRetry = notaryapi.RetryAfter
				}
				errs, ok := notaryapi.ParseErrors(w.Body.Bytes())
				if w.Code != tt.status || !ok || errs[0].Code != c.code || w.Header().Get("Retry-After") != wantRetry {
					t.Errorf("%s %s: %d %s (Retry-After %q), want %d %s", c.method, c.path, w.Code, w.Body, w.Header().Get("Retry-After"), tt.status, c.code)
				}
				if strings.Contains(w.Body.String(), "connection refused") || strings.Contains(w.Body.String(), "no such table") {
					t.Errorf("%s %s: the internal cause was sent: %s", c.method, c.path, w.Body)
				}
			}
		})
	}
}
