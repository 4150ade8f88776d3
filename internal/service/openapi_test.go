package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/service"
)

// apiDoc is the part of the OpenAPI document the checks read.
type apiDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	Comps   struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
}

type apiOp struct {
	OperationID string `json:"operationId"`
	Role        string `json:"x-signet-role"`
	RequestBody *struct {
		Content map[string]struct {
			Schema any `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Schema any `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

func parseDoc(t testing.TB, raw []byte) *apiDoc {
	t.Helper()
	var d apiDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	return &d
}

func (d *apiDoc) op(path, method string) (apiOp, bool) {
	raw, ok := d.Paths[path][strings.ToLower(method)]
	if !ok {
		return apiOp{}, false
	}
	var op apiOp
	if err := json.Unmarshal(raw, &op); err != nil {
		return apiOp{}, false
	}
	return op, true
}

// validate checks v (decoded with UseNumber) against schema.
func (d *apiDoc) validate(schema any, v any, at string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema %v is not an object", at, schema)
	}
	if ref, ok := s["$ref"].(string); ok {
		def, ok := d.Comps.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if !ok {
			return fmt.Errorf("%s: $ref %s does not resolve", at, ref)
		}
		return d.validate(def, v, at)
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", at, v)
		}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: required field %s is missing", at, r)
			}
		}
		for k, val := range m {
			if ps, ok := props[k]; ok {
				if err := d.validate(ps, val, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: field %s is not in the document", at, k)
				}
			case map[string]any:
				if err := d.validate(ap, val, at+"."+k); err != nil {
					return err
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", at, v)
		}
		for i, it := range a {
			if err := d.validate(s["items"], it, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: %T, want a string", at, v)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, str); err != nil {
				return fmt.Errorf("%s: %q is not an RFC 3339 time", at, str)
			}
			if !strings.HasSuffix(str, "Z") {
				return fmt.Errorf("%s: %q is not in UTC", at, str)
			}
		}
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return fmt.Errorf("%s: %v, want an integer", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, want a boolean", at, v)
		}
	default:
		return fmt.Errorf("%s: schema type %v", at, s["type"])
	}
	return nil
}

// conformance checks every answer of the API against the document and
// records which operations and statuses were seen.
type conformance struct {
	doc      *apiDoc
	patterns []struct {
		re           *regexp.Regexp
		path, method string
	}
	mu   sync.Mutex
	seen map[string]bool // operationId → exercised
	errs []string
}

func newConformance(t testing.TB, svc *service.Service) *conformance {
	c := &conformance{doc: parseDoc(t, svc.OpenAPI()), seen: map[string]bool{}}
	for path, methods := range c.doc.Paths {
		re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[a-z_]+\\\}`).ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
		for m := range methods {
			c.patterns = append(c.patterns, struct {
				re           *regexp.Regexp
				path, method string
			}{re, path, strings.ToUpper(m)})
		}
	}
	return c
}

func (c *conformance) check(req *http.Request, status int, ctype string, body []byte) {
	var path string
	for _, p := range c.patterns {
		if p.method == req.Method && p.re.MatchString(req.URL.Path) {
			// A literal path wins over one with a parameter (…/signing-requests.csv).
			if path == "" || !strings.Contains(p.path, "{") {
				path = p.path
			}
		}
	}
	fail := func(format string, args ...any) {
		c.mu.Lock()
		c.errs = append(c.errs, fmt.Sprintf("%s %s → %d: ", req.Method, req.URL.Path, status)+fmt.Sprintf(format, args...))
		c.mu.Unlock()
	}
	if path == "" {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			fail("the route is not in the document")
		}
		return
	}
	op, _ := c.doc.op(path, req.Method)
	c.mu.Lock()
	c.seen[op.OperationID] = true
	c.mu.Unlock()
	resp, ok := op.Responses[strconv.Itoa(status)]
	if !ok {
		fail("status %d is not documented for %s", status, op.OperationID)
		return
	}
	if len(resp.Content) == 0 {
		if len(body) > 0 {
			fail("the document says no body, the answer has %d bytes", len(body))
		}
		return
	}
	mt := strings.TrimSpace(strings.Split(ctype, ";")[0])
	content, ok := resp.Content[mt]
	if !ok {
		fail("content type %s is not documented", mt)
		return
	}
	if content.Schema == nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		fail("the body is not JSON: %v", err)
		return
	}
	if err := c.doc.validate(content.Schema, v, op.OperationID); err != nil {
		fail("%v", err)
	}
}

// transport checks every answer it carries.
type checkingTransport struct {
	base http.RoundTripper
	c    *conformance
}

func (ct checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := ct.base.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	ct.c.check(req, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	return resp, nil
}

// TestOpenAPIRoutes: the document has exactly the documented routes of
// the route table, with their operation IDs and roles, and every schema
// it refers to.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t, envOptions{noRun: true})
	d := parseDoc(t, e.svc.OpenAPI())
	if d.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", d.OpenAPI)
	}
	var want, got []string
	for _, rt := range e.svc.Routes() {
		if !rt.Documented() {
			continue
		}
		want = append(want, rt.Method+" "+rt.Pattern+" "+rt.Op+" "+rt.Role)
	}
	for path, methods := range d.Paths {
		for m := range methods {
			op, _ := d.op(path, m)
			got = append(got, strings.ToUpper(m)+" "+path+" "+op.OperationID+" "+op.Role)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("the document's operations:\n%s\nthe route table's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Served as it is built.
	resp, err := e.hc.Get(e.url + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, e.svc.OpenAPI()) {
		t.Errorf("GET /api/v1/openapi.json = %d, %d bytes", resp.StatusCode, len(body))
	}
	raw, _ := json.Marshal(d.Comps.Schemas)
	for _, m := range regexp.MustCompile(`#/components/schemas/(\w+)`).FindAllStringSubmatch(string(e.svc.OpenAPI())+string(raw), -1) {
		if _, ok := d.Comps.Schemas[m[1]]; !ok {
			t.Errorf("schema %s is referred to but not defined", m[1])
		}
	}
}
