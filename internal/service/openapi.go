package service

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// The OpenAPI 3.1 document of the API is built from the route table
// (Routes) and the wire types of serviceapi, so that a route cannot exist
// undocumented; the tests check the document against the routes and every
// answer of the handlers against its schema.

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
)

// OpenAPI returns the OpenAPI document of the API, as JSON.
func (s *Service) OpenAPI() []byte {
	openAPIOnce.Do(func() {
		b, err := json.MarshalIndent(buildOpenAPI(s.Routes()), "", "  ")
		if err != nil {
			panic("service: the OpenAPI document does not encode: " + err.Error())
		}
		openAPIDoc = b
	})
	return openAPIDoc
}

func (s *Service) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.OpenAPI())
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// Documented reports whether rt is an operation of the document (not the
// API's own 404 and 405 answers).
func (rt Route) Documented() bool { return rt.Method != "" }

type schemas struct {
	defs map[string]any
}

func (sc *schemas) ref(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if _, ok := sc.defs[name]; !ok {
		sc.defs[name] = nil // placeholder against recursion
		sc.defs[name] = sc.object(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// object is the schema of a struct: its JSON fields (embedded structs'
// fields inline); fields without omitempty are required.
func (sc *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = sc.schema(f.Type)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = required
	}
	return out
}

func (sc *schemas) schema(t reflect.Type) map[string]any {
	if t == reflect.TypeFor[time.Time]() {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return sc.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": sc.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sc.schema(t.Elem())}
	case reflect.Struct:
		return sc.ref(t)
	}
	panic("service: no OpenAPI schema for " + t.String())
}

func buildOpenAPI(routes []Route) map[string]any {
	sc := &schemas{defs: map[string]any{}}
	errRef := sc.ref(reflect.TypeFor[serviceapi.ErrorBody]())
	errResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
	}
	paths := map[string]any{}
	for _, rt := range routes {
		if !rt.Documented() {
			continue
		}
		d := rt.Doc
		op := map[string]any{"operationId": rt.Op, "summary": d.Summary}
		if rt.Role != "" {
			op["security"] = []any{map[string]any{"bearer": []any{}}}
			op["x-signet-role"] = rt.Role
		} else {
			op["security"] = []any{}
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range d.Query {
			s := map[string]any{"type": "string"}
			if q == "limit" {
				s = map[string]any{"type": "integer", "minimum": 1}
			}
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": s})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if d.In != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": sc.ref(d.In)}}}
		}
		ok := map[string]any{"description": http.StatusText(d.Status)}
		switch {
		case d.Out != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": sc.ref(d.Out)}}
		case d.ContentType != "":
			ok["content"] = map[string]any{d.ContentType: map[string]any{}}
		}
		responses := map[string]any{strconv.Itoa(d.Status): ok}
		if rt.Op == "SubmitRequest" || rt.Op == "ResubmitRequest" {
			responses["200"] = map[string]any{"description": "a pending request of the same CI run", "content": ok["content"]}
		}
		errs := append([]int{http.StatusInternalServerError}, d.Errors...)
		if rt.Role != "" {
			errs = append(errs, http.StatusUnauthorized, http.StatusForbidden)
		}
		for _, st := range errs {
			responses[strconv.Itoa(st)] = errResp(http.StatusText(st))
		}
		op["responses"] = responses
		item, _ := paths[rt.Pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Pattern] = item
		}
		item[strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Signet signing service",
			"version": "1",
			"description": "Projects whose delegation key stays in the server's custody, signing policies, CI origin verification, " +
				"k-of-n approvals and semantic signing. Errors are {\"error\":{\"code\",\"message\"}}; unknown fields are refused; " +
				"times are RFC 3339 UTC; lists are newest first, paginated with limit and page_token.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": sc.defs,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer",
				"description": "An API token (sgn_…), SIGNET_ADMIN_TOKEN, a request's status token (sgs_…) or a CI OIDC ID token"}},
		},
	}
}
