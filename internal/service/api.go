package service

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// Route is one route of the API, as signet-server's route table takes it:
// a method and path pattern (net/http ServeMux syntax), the operation, the
// role it needs (RoleAdmin, RoleReader, RoleUser, RoleBearer; "" for a
// public route) and its handler. Doc describes it for the OpenAPI
// document.
type Route struct {
	Method  string
	Pattern string
	Op      string
	Role    string
	Handler http.Handler
	Doc     RouteDoc
}

// RouteDoc is what the OpenAPI document says of a route.
type RouteDoc struct {
	Summary string
	// In is the request body's type (nil: none); Out the answer's (nil:
	// none, or not JSON when ContentType is set).
	In, Out     reflect.Type
	Status      int // the success status
	ContentType string
	Query       []string
	// Errors are the error statuses the route answers with besides 401,
	// 403 and 500.
	Errors []int
}

func typ[T any]() reflect.Type { return reflect.TypeFor[T]() }

// Routes returns the API's routes, to be mounted in the route table (their
// patterns start with serviceapi.Base). Every path also answers other
// methods with 405, and every other path under the base with 404, in the
// API's own error format.
func (s *Service) Routes() []Route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	b := serviceapi.Base
	list := []string{"limit", "page_token", "status", "project", "policy"}
	rs := []Route{
		{get, b + "/openapi.json", "GetOpenAPI", "", http.HandlerFunc(s.serveOpenAPI), RouteDoc{Summary: "The OpenAPI document of this API", Status: 200, ContentType: "application/json"}},
		{get, b + "/me", "GetMe", RoleBearer, s.h(RoleBearer, s.hMe), RouteDoc{Summary: "Who the credentials are", Out: typ[serviceapi.Me](), Status: 200}},

		{post, b + "/users", "CreateUser", RoleAdmin, s.h(RoleAdmin, s.hCreateUser), RouteDoc{Summary: "Create a user and their first API token (shown once)", In: typ[serviceapi.CreateUser](), Out: typ[serviceapi.UserCreated](), Status: 201, Errors: []int{400, 409, 413}}},
		{get, b + "/users", "ListUsers", RoleReader, s.h(RoleReader, s.hListUsers), RouteDoc{Summary: "List users", Out: typ[serviceapi.UserList](), Status: 200}},
		{get, b + "/users/{name}", "GetUser", RoleUser, s.h(RoleUser, s.hGetUser), RouteDoc{Summary: "Read a user", Out: typ[serviceapi.User](), Status: 200, Errors: []int{404}}},
		{patch, b + "/users/{name}", "UpdateUser", RoleUser, s.h(RoleUser, s.hUpdateUser), RouteDoc{Summary: "Change a user's password, e-mail address or roles", In: typ[serviceapi.UpdateUser](), Out: typ[serviceapi.User](), Status: 200, Errors: []int{400, 404, 413}}},
		{del, b + "/users/{name}", "DeleteUser", RoleAdmin, s.h(RoleAdmin, s.hDeleteUser), RouteDoc{Summary: "Delete a user and their tokens", Status: 204, Errors: []int{404, 409}}},
		{post, b + "/users/{name}/tokens", "CreateToken", RoleUser, s.h(RoleUser, s.hCreateToken), RouteDoc{Summary: "Make an API token (shown once)", In: typ[serviceapi.CreateToken](), Out: typ[serviceapi.TokenCreated](), Status: 201, Errors: []int{400, 404, 413}}},
		{get, b + "/users/{name}/tokens", "ListTokens", RoleUser, s.h(RoleUser, s.hListTokens), RouteDoc{Summary: "List a user's API tokens", Out: typ[serviceapi.TokenList](), Status: 200, Errors: []int{404}}},
		{del, b + "/users/{name}/tokens/{id}", "RevokeToken", RoleUser, s.h(RoleUser, s.hRevokeToken), RouteDoc{Summary: "Revoke an API token", Status: 204, Errors: []int{404}}},

		{post, b + "/projects", "CreateProject", RoleAdmin, s.h(RoleAdmin, s.hCreateProject), RouteDoc{Summary: "Create a project: its delegation key (in custody) and cosign key", In: typ[serviceapi.CreateProject](), Out: typ[serviceapi.Project](), Status: 201, Errors: []int{400, 409, 413, 503}}},
		{get, b + "/projects", "ListProjects", RoleUser, s.h(RoleUser, s.hListProjects), RouteDoc{Summary: "List the projects the credentials may see", Out: typ[serviceapi.ProjectList](), Status: 200}},
		{get, b + "/projects/{name}", "GetProject", RoleUser, s.h(RoleUser, s.hGetProject), RouteDoc{Summary: "Read a project, its keys and the state of its repository", Out: typ[serviceapi.Project](), Status: 200, Errors: []int{404}}},
		{patch, b + "/projects/{name}", "UpdateProject", RoleAdmin, s.h(RoleAdmin, s.hUpdateProject), RouteDoc{Summary: "Change a project's managers or rate limit", In: typ[serviceapi.UpdateProject](), Out: typ[serviceapi.Project](), Status: 200, Errors: []int{400, 404, 413}}},
		{del, b + "/projects/{name}", "DeleteProject", RoleAdmin, s.h(RoleAdmin, s.hDeleteProject), RouteDoc{Summary: "Delete a project, its policies and keys", Status: 204, Errors: []int{404, 409}}},
		{post, b + "/projects/{name}/keys", "RotateKey", RoleUser, s.h(RoleUser, s.hRotateKey), RouteDoc{Summary: "Give the project's (or a policy's) signer a new delegation key, generated or imported", In: typ[serviceapi.RotateKey](), Out: typ[serviceapi.Project](), Status: 201, Errors: []int{400, 404, 409, 413, 503}}},
		{post, b + "/projects/{name}/policies", "CreatePolicy", RoleUser, s.h(RoleUser, s.hCreatePolicy), RouteDoc{Summary: "Create a signing policy", In: typ[serviceapi.PolicySpec](), Out: typ[serviceapi.Policy](), Status: 201, Errors: []int{400, 404, 409, 413}}},
		{get, b + "/projects/{name}/policies", "ListPolicies", RoleUser, s.h(RoleUser, s.hListPolicies), RouteDoc{Summary: "List a project's policies", Out: typ[serviceapi.PolicyList](), Status: 200, Errors: []int{404}}},
		{get, b + "/projects/{name}/policies/{policy}", "GetPolicy", RoleUser, s.h(RoleUser, s.hGetPolicy), RouteDoc{Summary: "Read a policy", Out: typ[serviceapi.Policy](), Status: 200, Errors: []int{404}}},
		{put, b + "/projects/{name}/policies/{policy}", "UpdatePolicy", RoleUser, s.h(RoleUser, s.hUpdatePolicy), RouteDoc{Summary: "Replace a policy's rules", In: typ[serviceapi.PolicySpec](), Out: typ[serviceapi.Policy](), Status: 200, Errors: []int{400, 404, 413}}},
		{del, b + "/projects/{name}/policies/{policy}", "DeletePolicy", RoleUser, s.h(RoleUser, s.hDeletePolicy), RouteDoc{Summary: "Delete a policy", Status: 204, Errors: []int{404, 409}}},

		{post, b + "/signing-requests", "SubmitRequest", RoleBearer, s.h(RoleBearer, s.hSubmit), RouteDoc{Summary: "Submit a signing request (201; 200 when a re-run of the same CI job attaches to its pending request)", In: typ[serviceapi.Submit](), Out: typ[serviceapi.Request](), Status: 201, Errors: []int{400, 404, 409, 413, 429, 502, 503}}},
		{get, b + "/signing-requests", "ListRequests", RoleUser, s.h(RoleUser, s.hListRequests), RouteDoc{Summary: "List signing requests, newest first", Out: typ[serviceapi.RequestList](), Status: 200, Query: list, Errors: []int{400}}},
		{get, b + "/signing-requests.csv", "ExportRequests", RoleUser, s.h(RoleUser, s.hExportRequests), RouteDoc{Summary: "Export signing requests as CSV, newest first", Status: 200, ContentType: "text/csv", Query: []string{"status", "project", "policy", "limit"}, Errors: []int{400}}},
		{get, b + "/signing-requests/{id}", "GetRequest", RoleBearer, s.h(RoleBearer, s.hGetRequest), RouteDoc{Summary: "Read a signing request", Out: typ[serviceapi.Request](), Status: 200, Errors: []int{404}}},
		{post, b + "/signing-requests/{id}/approve", "ApproveRequest", RoleUser, s.h(RoleUser, s.hApprove), RouteDoc{Summary: "Approve a request (the final approval signs it)", In: typ[serviceapi.Decide](), Out: typ[serviceapi.Request](), Status: 200, Errors: []int{400, 404, 409, 413}}},
		{post, b + "/signing-requests/{id}/deny", "DenyRequest", RoleUser, s.h(RoleUser, s.hDeny), RouteDoc{Summary: "Deny a request (one denial ends it)", In: typ[serviceapi.Decide](), Out: typ[serviceapi.Request](), Status: 200, Errors: []int{400, 404, 409, 413}}},
		{post, b + "/signing-requests/{id}/cancel", "CancelRequest", RoleBearer, s.h(RoleBearer, s.hCancel), RouteDoc{Summary: "Cancel a request awaiting approval", In: typ[serviceapi.Cancel](), Out: typ[serviceapi.Request](), Status: 200, Errors: []int{400, 404, 409, 413}}},
		{post, b + "/signing-requests/{id}/resubmit", "ResubmitRequest", RoleUser, s.h(RoleUser, s.hResubmit), RouteDoc{Summary: "Send a request's images to another policy of its project", In: typ[serviceapi.Resubmit](), Out: typ[serviceapi.Request](), Status: 201, Errors: []int{400, 404, 409, 413, 429, 502}}},
	}
	// 405 for other methods of each path, 404 for every other path.
	seen := map[string]bool{}
	var extra []Route
	for _, rt := range rs {
		if seen[rt.Pattern] {
			continue
		}
		seen[rt.Pattern] = true
		var methods []string
		for _, o := range rs {
			if o.Pattern == rt.Pattern {
				methods = append(methods, o.Method)
			}
		}
		extra = append(extra, Route{"", rt.Pattern, "MethodNotAllowed", "", s.methodNotAllowed(methods), RouteDoc{}})
	}
	extra = append(extra, Route{"", b + "/", "NotFound", "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.WriteError(w, r, notFound("no such route: %s %s", r.Method, r.URL.Path))
	}), RouteDoc{}})
	return append(rs, extra...)
}

func (s *Service) methodNotAllowed(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	if strings.Contains(allow, http.MethodGet) {
		allow += ", HEAD"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.WriteError(w, r, apiErr(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s takes %s, not %s", r.URL.Path, allow, r.Method))
	})
}

// h wraps a handler: the principal of the request (held to role), and the
// one way errors are written.
func (s *Service) h(role string, fn func(w http.ResponseWriter, r *http.Request, p Principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r, role)
		if err == nil {
			err = fn(w, r, p)
		}
		if err != nil {
			s.WriteError(w, r, err)
		}
	})
}

// WriteError writes err as the API's error envelope, and logs it (with
// its internal cause, which the client never sees).
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err, "")
	lvl := slog.LevelInfo
	if e.Status >= 500 {
		lvl = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", e.Status),
		slog.String("code", e.Code), slog.String("message", e.Message)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	s.log.LogAttrs(r.Context(), lvl, "api request refused", attrs...)
	if e.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="signet"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Round(time.Second)/time.Second)))
	}
	writeJSON(w, e.Status, serviceapi.ErrorBody{Error: serviceapi.ErrorDetail{Code: e.Code, Message: e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"INTERNAL","message":"internal error"}}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decode reads a JSON body strictly into v: application/json, within the
// size limit, no unknown fields, nothing after the value. An empty body
// is {} when empty is allowed.
func (s *Service) decode(r *http.Request, v any, emptyOK bool) error {
	body := http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes)
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiErr(http.StatusRequestEntityTooLarge, serviceapi.CodeBodyTooLarge, "the body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)
		}
		return badRequest("the body could not be read: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if emptyOK {
			return nil
		}
		return badRequest("the body is empty; send a JSON object")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return badRequest("the body must be application/json, not %q", ct)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return badRequest("the body is not valid JSON (at byte %d): %v", se.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("the body is not valid JSON: it ends before the value does")
		case errors.As(err, &te):
			return badRequest("field %s: a %s is expected, not a JSON %s", te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return badRequest("unknown field %s (see the API document at %s/openapi.json)", strings.TrimPrefix(err.Error(), "json: unknown field "), serviceapi.Base)
		}
		return badRequest("the body is not the JSON object expected: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// ---- handlers ----

func (s *Service) hMe(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.Me(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hCreateUser(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.CreateUser
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, err := s.CreateUser(r.Context(), p, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", serviceapi.Base+"/users/"+out.Name)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Service) hListUsers(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.ListUsers(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hGetUser(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.GetUser(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hUpdateUser(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.UpdateUser
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, err := s.UpdateUser(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hDeleteUser(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := s.DeleteUser(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) hCreateToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.CreateToken
	if err := s.decode(r, &in, true); err != nil {
		return err
	}
	out, err := s.CreateToken(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Service) hListTokens(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.ListTokens(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hRevokeToken(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := s.RevokeToken(r.Context(), p, r.PathValue("name"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) hCreateProject(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.CreateProject
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, err := s.CreateProject(r.Context(), p, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", serviceapi.Base+"/projects/"+out.Name)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Service) hListProjects(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.ListProjects(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hGetProject(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.GetProject(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hUpdateProject(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.UpdateProject
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, err := s.UpdateProject(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hDeleteProject(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := s.DeleteProject(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) hRotateKey(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.RotateKey
	if err := s.decode(r, &in, true); err != nil {
		return err
	}
	out, err := s.RotateKey(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Service) hCreatePolicy(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.PolicySpec
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, err := s.CreatePolicy(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", serviceapi.Base+"/projects/"+out.Project+"/policies/"+out.Name)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Service) hListPolicies(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.ListPolicies(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hGetPolicy(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.GetPolicy(r.Context(), p, r.PathValue("name"), r.PathValue("policy"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hUpdatePolicy(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.PolicySpec
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, err := s.UpdatePolicy(r.Context(), p, r.PathValue("name"), r.PathValue("policy"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hDeletePolicy(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := s.DeletePolicy(r.Context(), p, r.PathValue("name"), r.PathValue("policy")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) hSubmit(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.Submit
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	out, created, err := s.Submit(r.Context(), p, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", serviceapi.Base+"/signing-requests/"+out.ID)
	writeJSON(w, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[created], out)
	return nil
}

// filterFrom reads a list's query: status, project, policy, limit (1–max,
// default 50) and page_token (opaque: the last ID of the previous page).
func filterFrom(r *http.Request, maxLimit int) (RequestFilter, error) {
	q := r.URL.Query()
	f := RequestFilter{Status: Status(q.Get("status")), Project: q.Get("project"), Policy: q.Get("policy"), Limit: 50}
	if f.Policy != "" && f.Project == "" {
		return f, badRequest("policy goes with project")
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			return f, badRequest("limit %q: give 1 to %d", l, maxLimit)
		}
		f.Limit = n
	}
	if t := q.Get("page_token"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || len(b) == 0 || len(b) > 64 {
			return f, badRequest("page_token is not one this API gave")
		}
		f.Before = string(b)
	}
	return f, nil
}

func (s *Service) hListRequests(w http.ResponseWriter, r *http.Request, p Principal) error {
	f, err := filterFrom(r, 200)
	if err != nil {
		return err
	}
	rs, err := s.ListRequests(r.Context(), p, f)
	if err != nil {
		return err
	}
	out := serviceapi.RequestList{Requests: []serviceapi.Request{}}
	required := map[string]int{}
	for _, req := range rs {
		k := req.Project + "/" + req.Policy
		n, ok := required[k]
		if !ok {
			if pol, err := s.st.GetPolicy(r.Context(), req.Project, req.Policy); err == nil {
				n = pol.Required
			}
			required[k] = n
		}
		out.Requests = append(out.Requests, requestOut(req, n))
	}
	if len(rs) == f.Limit {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(rs[len(rs)-1].ID))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maxExport bounds a CSV export.
const maxExport = 100000

func (s *Service) hExportRequests(w http.ResponseWriter, r *http.Request, p Principal) error {
	if r.URL.Query().Get("page_token") != "" {
		return badRequest("an export is not paginated; filter it instead")
	}
	f, err := filterFrom(r, maxExport)
	if err != nil {
		return err
	}
	total := f.Limit
	if r.URL.Query().Get("limit") == "" {
		total = maxExport
	}
	var rows [][]string
	f.Limit = min(500, total)
	for len(rows) < total {
		rs, err := s.ListRequests(r.Context(), p, f)
		if err != nil {
			return err
		}
		for _, req := range rs {
			rows = append(rows, csvRow(req))
		}
		if len(rs) < f.Limit {
			break
		}
		f.Before = rs[len(rs)-1].ID
		f.Limit = min(500, total-len(rows))
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write([]string{"id", "project", "policy", "status", "submitter", "images", "approvals", "denials", "reason", "created", "updated"})
	_ = cw.WriteAll(rows)
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="signing-requests.csv"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

func csvRow(r Request) []string {
	var images, approvals, denials []string
	for _, im := range r.Images {
		images = append(images, im.Ref+"@"+im.Digest)
	}
	for _, d := range r.Approvals {
		approvals = append(approvals, d.User)
	}
	for _, d := range r.Denials {
		denials = append(denials, d.User)
	}
	row := []string{r.ID, r.Project, r.Policy, string(r.Status), r.SubmitterName(), strings.Join(images, " "),
		strings.Join(approvals, " "), strings.Join(denials, " "), r.Reason,
		r.Created.UTC().Format(time.RFC3339), r.Updated.UTC().Format(time.RFC3339)}
	for i, v := range row {
		row[i] = csvEscape(v)
	}
	return row
}

func (s *Service) hGetRequest(w http.ResponseWriter, r *http.Request, p Principal) error {
	out, err := s.GetRequest(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hDecide(approve bool) func(w http.ResponseWriter, r *http.Request, p Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		var in serviceapi.Decide
		if err := s.decode(r, &in, true); err != nil {
			return err
		}
		out, err := s.decide(r.Context(), p, r.PathValue("id"), in.Comment, approve)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (s *Service) hApprove(w http.ResponseWriter, r *http.Request, p Principal) error {
	return s.hDecide(true)(w, r, p)
}

func (s *Service) hDeny(w http.ResponseWriter, r *http.Request, p Principal) error {
	return s.hDecide(false)(w, r, p)
}

func (s *Service) hCancel(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.Cancel
	if err := s.decode(r, &in, true); err != nil {
		return err
	}
	out, err := s.Cancel(r.Context(), p, r.PathValue("id"), in.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) hResubmit(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in serviceapi.Resubmit
	if err := s.decode(r, &in, false); err != nil {
		return err
	}
	if !ValidName(in.Policy) {
		return badRequest("policy %q is not a policy name", in.Policy)
	}
	out, created, err := s.Resubmit(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", serviceapi.Base+"/signing-requests/"+out.ID)
	writeJSON(w, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[created], out)
	return nil
}
